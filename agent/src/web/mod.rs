//! The web page adapter (`[web]`): serves the gateway's page on the LAN with live power from the
//! snapshot watch (server-sent events), history plots from the store, and the relays', inverters'
//! and demand response's state. It only reads: nothing on the page changes the gateway.

mod assets;
mod history;
mod live;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::{Semaphore, watch};

use crate::config::{Config, WebConfig};
use crate::snapshot::Snapshot;

/// Pages following the live values at once: each holds a connection and a task.
const MAX_VIEWERS: usize = 32;

/// What the handlers share.
struct Site {
    /// The gateway's name and grid channel, for the page's title and power flow.
    about: live::About,
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    history: history::History,
    viewers: Arc<Semaphore>,
}

/// Serves the page on `web.listen` from a task of the current runtime; the address it listens
/// on (the port the system chose, for port 0).
pub fn spawn(
    config: &Config,
    web: &WebConfig,
    history: Option<PathBuf>,
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(web.listen)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let address = listener.local_addr()?;
    let site = Arc::new(Site {
        about: live::About::of(config),
        snapshots,
        history: history::History::new(history, config.channels()),
        viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes(site)).await {
            eprintln!("daisee-agent: the web page stopped: {e}");
        }
    });
    Ok(address)
}

/// Every path the page has.
fn routes(site: Arc<Site>) -> Router {
    Router::new()
        .route("/", get(assets::page))
        .route("/app.js", get(assets::script))
        .route("/style.css", get(assets::style))
        .route("/uPlot.iife.min.js", get(assets::plot_script))
        .route("/uPlot.min.css", get(assets::plot_style))
        .route("/api/live", get(live::now))
        .route("/api/events", get(live::events))
        .route("/api/history", get(history::history))
        .layer(axum::middleware::map_response(guarded))
        .with_state(site)
}

/// Every answer: only the page's own scripts and styles, never in a frame of another site,
/// its type as given.
async fn guarded(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
