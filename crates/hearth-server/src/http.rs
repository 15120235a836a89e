//! The accept loop: HTTP/1 connections (and their WebSocket upgrades) served by hyper, with
//! a deadline on request headers.
//!
//! `axum::serve` gives hyper no timer, so hyper's header deadline never runs: a client that
//! opens a connection and sends half a request line, or nothing, or keeps a connection idle
//! between requests, holds a descriptor for as long as it likes (a probe held 1,000 of them,
//! well past 200 s each). Here every connection has [`Limits::header_read_timeout_secs`] to
//! send each request's headers, counted from when the server starts waiting for them — so an
//! idle kept-alive connection is closed after that long too. A WebSocket, once upgraded,
//! leaves hyper and keeps its own ping and idle deadlines (`ws.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// hyper's read buffer per connection, which bounds a request head.
const HEAD_BUFFER_BYTES: usize = 64 * 1024;
/// Header lines hyper parses at most; `security::check_head` refuses more than 100 in JSON.
const HEAD_MAX_HEADERS: usize = 256;

/// Accepts until `shutdown` resolves, then lets every connection finish its request and
/// waits for them.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (closing, closing_rx) = watch::channel(false);
    // Every connection task holds a receiver: when none is left, every connection is done.
    let (connections, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: wait for some to be given back.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(address));
            router.clone().oneshot(request.map(Body::new))
        });
        let mut closing = closing_rx.clone();
        let open = connections.subscribe();
        tokio::spawn(async move {
            // HTTP/1 only (as `axum::serve` without its `http2` feature): detecting the version
            // first would wait, with no deadline, for a client that sends nothing.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                // Past what `security::check_head` answers in JSON (8 KiB target, 100 headers,
                // 16 KiB of them), and a tighter bound than hyper's ~400 KiB default.
                .max_buf_size(HEAD_BUFFER_BYTES)
                .max_headers(HEAD_MAX_HEADERS)
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "connection ended");
                    }
                }
                _ = async { closing.wait_for(|closing| *closing).await.map(drop) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    let _ = closing.send(true);
    connections.closed().await;
}
