//! The HTTP server: accepts connections, hands each request to the
//! [`handler`](super::handler), and on shutdown stops accepting and lets
//! in-flight requests finish.

use super::handler;
use super::router::Router;
use crate::engine::KeelEngine;
use anyhow::{Context, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A running ingress; [`Ingress::shutdown`] stops it gracefully.
pub struct Ingress {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Ingress {
    /// Binds `addr` and starts serving.
    pub async fn bind(
        addr: SocketAddr,
        router: Arc<Router>,
        engine: Arc<KeelEngine>,
    ) -> Result<Ingress> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for HTTP on {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, engine, stopped));
        Ok(Ingress { addr, stop, task })
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for open ones to finish their
    /// in-flight requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Arc<Router>,
    engine: Arc<KeelEngine>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, router.clone(), engine.clone(), stopped.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Arc<Router>,
    engine: Arc<KeelEngine>,
    mut stopped: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request| {
        let router = router.clone();
        let engine = engine.clone();
        async move {
            Ok::<_, std::convert::Infallible>(handler::handle(&router, &engine, request).await)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result
        && !e.is_incomplete_message()
    {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
