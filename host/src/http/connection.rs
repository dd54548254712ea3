//! One accepted connection: HTTP/1.1 served by hyper, each request handed to
//! the [`handler`](super::handler), closed when it overruns a timeout
//! ([`watchdog`](super::watchdog)), and finished gracefully on shutdown.

use super::handler;
use super::options::IngressOptions;
use super::router::Router;
use super::watchdog::{Activity, Tracked, Watched};
use crate::engine::KeelEngine;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Serves `stream` until the client closes it, it overruns a timeout, or
/// shutdown (`stopped`) lets its request in flight finish.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Arc<Router>,
    engine: Arc<KeelEngine>,
    options: &IngressOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new(options);
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let in_flight = requests.request_started();
        let router = router.clone();
        let engine = engine.clone();
        async move {
            let response = handler::handle(&router, &engine, request).await;
            Ok::<_, std::convert::Infallible>(response.map(|body| Tracked::new(body, in_flight)))
        }
    });
    // hyper's header timer is off: it would also close kept-alive connections
    // at the header timeout. The watchdog times heads and idleness apart.
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        expiry = activity.expired() => {
            tracing::debug!(%peer, "closing an HTTP connection: {expiry}");
            return;
        }
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                expiry = activity.expired() => {
                    tracing::debug!(%peer, "closing an HTTP connection during shutdown: {expiry}");
                    return;
                }
            }
        }
    };
    if let Err(e) = result
        && !e.is_incomplete_message()
    {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
