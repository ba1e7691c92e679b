//! The web page adapter (`[web]`): serves the gateway's page on the LAN with live power from the
//! snapshot watch (server-sent events), history plots from the store, and the relays', inverters'
//! and demand response's state. It reads only, unless `[web]` allows writes and a password is
//! set over D-Bus: then a person logged in switches relays from it.

mod access;
mod assets;
mod history;
mod listener;
mod live;
mod writes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{Semaphore, watch};

pub use access::{Access, PasswordError};

use crate::config::{Config, SharedConfig, WebConfig};
use crate::daemon::{Command, Handles};
use crate::dialogue::DialogueStatus;
use crate::ledger::LedgerStatus;
use crate::snapshot::Snapshot;

/// Pages following the live values at once: each holds a connection and a task.
const MAX_VIEWERS: usize = 32;
/// The largest request body taken: logins and switches are a few bytes.
const MAX_BODY_BYTES: usize = 4096;
/// How long a request's body may take to arrive.
const BODY_TIME: Duration = Duration::from_secs(10);

/// What the handlers share.
struct Site {
    /// The gateway's name and grid channel, for the page's title and power flow.
    about: live::About,
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    community: Community,
    history: history::History,
    viewers: Arc<Semaphore>,
    access: Arc<Access>,
    relays: Vec<String>,
    commands: SyncSender<Command>,
    /// The configuration, whose limits a person logged in changes.
    settings: SharedConfig,
}

/// The community's adapters the page shows, when they run.
#[derive(Debug, Default)]
pub struct Community {
    /// The machine dialogue's status.
    pub dialogue: Option<watch::Receiver<DialogueStatus>>,
    /// The ledger's status.
    pub ledger: Option<watch::Receiver<LedgerStatus>>,
}

/// The running page, for D-Bus.
#[derive(Debug, Clone)]
pub struct WebHandle {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its password and sessions.
    pub access: Arc<Access>,
}

/// Serves the page on `web.listen` from a task of the current runtime, with the history in
/// `store` (whose directory keeps the password's hash when writes are allowed).
pub fn spawn(
    config: &Config,
    web: &WebConfig,
    store: Option<&Path>,
    handles: &Handles,
    settings: SharedConfig,
    community: Community,
) -> std::io::Result<WebHandle> {
    let listener = std::net::TcpListener::bind(web.listen)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let address = listener.local_addr()?;
    let access = Arc::new(Access::new(store.filter(|_| web.writes)));
    let site = Arc::new(Site {
        about: live::About::of(config),
        snapshots: handles.snapshots.clone(),
        community,
        history: history::History::new(
            store.map(|dir| dir.join("history.sqlite")),
            config.channels(),
        ),
        viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
        access: Arc::clone(&access),
        relays: config.relays.iter().map(|r| r.name.clone()).collect(),
        commands: handles.commands.clone(),
        settings,
    });
    tokio::spawn(listener::serve(listener, routes(site)));
    Ok(WebHandle { address, access })
}

/// An error the page shows: `{"error": message}`.
fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
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
        .route("/api/login", post(writes::log_in))
        .route("/api/session", get(writes::session))
        .route("/api/logout", post(writes::log_out))
        .route("/api/relay/{name}", post(writes::switch))
        .route("/api/limit/{which}", post(writes::limit))
        .fallback(|| async { refused(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn(read_in_time))
        .layer(axum::middleware::map_response(guarded))
        .with_state(site)
}

/// Every request's body read whole before its handler runs, at most [`MAX_BODY_BYTES`] within
/// [`BODY_TIME`]: a host trickling a body in does not hold a connection, and a handler that
/// changes something is never cut off halfway by a client that went away.
async fn read_in_time(request: Request, next: Next) -> Response {
    let (head, body) = request.into_parts();
    match tokio::time::timeout(BODY_TIME, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => next.run(Request::from_parts(head, Body::from(body))).await,
        Ok(Err(_)) => refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request is larger than any the page sends",
        ),
        Err(_) => refused(StatusCode::REQUEST_TIMEOUT, "the request came too slowly"),
    }
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
