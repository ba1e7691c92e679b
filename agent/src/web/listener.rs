//! The page's connections: at most [`MAX_CONNECTIONS`] open at once, so that hosts on the LAN
//! holding connections open cannot take the file descriptors the agent's devices, history and bus
//! need; and each closed unless a request's head arrives within [`HEAD_TIME`], so that a host
//! that connects and sends nothing, or a head a byte at a time, does not hold one of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

/// Connections open at once; the next waits in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's head, the first or the next one on a
/// connection kept alive; a page following the live values sends none after its first.
const HEAD_TIME: Duration = Duration::from_secs(10);

/// The address a request came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub(super) SocketAddr);

/// Answers connections on `listener` with `routes` until the runtime stops.
pub(super) async fn serve(listener: TcpListener, routes: Router) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = Arc::clone(&open)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, from) = accept(&listener).await;
        tokio::spawn(answer(stream, Peer(from), routes.clone(), permit));
    }
}

/// The next connection.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(connection) => return connection,
            // Out of descriptors or a connection reset before it was taken: try again soon.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Answers the requests on one connection, counted as open until it closes.
async fn answer(stream: TcpStream, from: Peer, routes: Router, _open: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(from));
        routes.clone().call(request)
    });
    // A connection that failed or timed out has nobody left to tell.
    let _: Result<(), hyper::Error> = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIME)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
