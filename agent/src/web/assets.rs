//! The page and what it loads, built into the binary: the gateway may have no internet, and the
//! plotting library (uPlot, agent/web/vendor, pinned by agent/web/package-lock.json) is the one
//! the tests checked.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/app.js");
const STYLE: &str = include_str!("../../web/style.css");
const PLOT_SCRIPT: &str = include_str!("../../web/vendor/uPlot.iife.min.js");
const PLOT_STYLE: &str = include_str!("../../web/vendor/uPlot.min.css");

/// `body` as `content_type`; checked again at each load, so an updated gateway serves its own.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8")
}

pub(super) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub(super) async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

pub(super) async fn plot_script() -> Response {
    asset(PLOT_SCRIPT, "text/javascript; charset=utf-8")
}

pub(super) async fn plot_style() -> Response {
    asset(PLOT_STYLE, "text/css; charset=utf-8")
}
