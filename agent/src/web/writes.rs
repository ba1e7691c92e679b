//! The page's writes, when `[web]` allows them and a password is set: logging in and out, and
//! holding a relay on or off or giving it back to demand response. Each write needs the
//! session's cookie and its CSRF token in the `X-CSRF-Token` header.

use std::sync::Arc;
use std::sync::mpsc::TrySendError;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daisee_hal::RelayState;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::access::{Refusal, SESSION, same};
use super::listener::Peer;
use super::{Site, refused};
use crate::config::ChangeError;
use crate::daemon::Command;

/// The session cookie's name.
const COOKIE: &str = "daisee_session";
/// The header a write carries its session's CSRF token in.
const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie the request carries.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A request with a session that carries the session's CSRF token; checked before the request's
/// body is read, so that a caller without one learns only that.
pub(super) struct Authorised;

impl FromRequestParts<Arc<Site>> for Authorised {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, site: &Arc<Site>) -> Result<Self, Response> {
        if !site.access.writes() {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "writes from the page are off ([web] writes, and a password set over D-Bus)",
            ));
        }
        let session = cookie(&parts.headers)
            .and_then(|c| site.access.session(c))
            .ok_or_else(|| refused(StatusCode::UNAUTHORIZED, "log in first"))?;
        let csrf = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf.is_some_and(|t| same(t, &session.csrf)) {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token",
            ));
        }
        Ok(Authorised)
    }
}

/// A request's JSON body, refused as the page's other errors are: `{"error": why}`.
pub(super) struct JsonBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(JsonBody(body)),
            Err(e) => Err(refused(e.status(), &e.body_text())),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Login {
    password: String,
}

/// `POST /api/login` `{"password"}`: the session's cookie, and its CSRF token in the answer.
pub(super) async fn log_in(
    State(site): State<Arc<Site>>,
    ConnectInfo(Peer(from)): ConnectInfo<Peer>,
    JsonBody(login): JsonBody<Login>,
) -> Response {
    match site.access.log_in(from.ip(), login.password).await {
        Ok(session) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                session.cookie,
                SESSION.as_secs()
            );
            let mut answer = Json(serde_json::json!({ "csrf": session.csrf })).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                answer.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            answer
        }
        Err(Refusal::NoPassword) => refused(
            StatusCode::FORBIDDEN,
            "no password is set: writes from the page are off",
        ),
        Err(Refusal::Wrong) => refused(StatusCode::UNAUTHORIZED, "wrong password"),
        Err(Refusal::Busy) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "another login is being checked: try again",
        ),
        Err(Refusal::Unavailable) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "no session could be opened: try again",
        ),
        Err(Refusal::Wait(wait)) => {
            let mut answer = refused(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong passwords: wait before the next try",
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs() + 1));
            answer
        }
    }
}

/// `GET /api/session`: the CSRF token of the request's session (a page loaded again keeps its
/// login); another site's page cannot read the answer.
pub(super) async fn session(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    match cookie(&headers).and_then(|c| site.access.session(c)) {
        Some(session) => Json(serde_json::json!({ "csrf": session.csrf })).into_response(),
        None => refused(StatusCode::UNAUTHORIZED, "not logged in"),
    }
}

/// `POST /api/logout`: ends the session.
pub(super) async fn log_out(
    State(site): State<Arc<Site>>,
    _: Authorised,
    headers: HeaderMap,
) -> Response {
    if let Some(cookie) = cookie(&headers) {
        site.access.log_out(cookie);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub(super) struct Switch {
    /// `on`, `off` (held by hand) or `auto` (given back).
    state: String,
}

/// `POST /api/relay/{name}` `{"state": "on" | "off" | "auto"}`.
pub(super) async fn switch(
    State(site): State<Arc<Site>>,
    Path(relay): Path<String>,
    _: Authorised,
    JsonBody(switch): JsonBody<Switch>,
) -> Response {
    if !site.relays.contains(&relay) {
        return refused(StatusCode::NOT_FOUND, "no such relay");
    }
    let state = match switch.state.as_str() {
        "on" => Some(RelayState::On),
        "off" => Some(RelayState::Off),
        "auto" => None,
        _ => return refused(StatusCode::BAD_REQUEST, "state: on, off or auto"),
    };
    match site.commands.try_send(Command::HoldRelay { relay, state }) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(TrySendError::Full(_)) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is busy: try again",
        ),
        Err(TrySendError::Disconnected(_)) => {
            refused(StatusCode::SERVICE_UNAVAILABLE, "the gateway is stopping")
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Limit {
    /// The new limit, in W.
    watts: f64,
}

/// `POST /api/limit/{import|export}` `{"watts": 6000}`: demand response's import limit or the
/// export limit, changed in the configuration as `daiseectl config set control.import_limit_w`
/// does (validated, written atomically, applied at once); `{"revision"}` of the file.
pub(super) async fn limit(
    State(site): State<Arc<Site>>,
    Path(which): Path<String>,
    _: Authorised,
    JsonBody(limit): JsonBody<Limit>,
) -> Response {
    let key = match which.as_str() {
        "import" => "control.import_limit_w",
        "export" => "control.export_limit_w",
        _ => return refused(StatusCode::NOT_FOUND, "no such limit: import or export"),
    };
    let change = site
        .settings
        .change(move |file| file.set_key(key, &limit.watts.to_string()))
        .await;
    match change {
        Ok(change) => Json(serde_json::json!({ "revision": change.revision })).into_response(),
        Err(ChangeError::Invalid(e)) => refused(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e @ ChangeError::BuiltIn) => refused(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
