//! The HTTP server: accepts connections up to its limit, serves each (see
//! [`connection`](super::connection)), and on shutdown stops accepting, lets
//! in-flight requests finish, and closes what is left at the deadline.

use super::connection;
use super::options::IngressOptions;
use super::router::Router;
use crate::engine::KeelEngine;
use anyhow::{Context, Result};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Connections over the limit being answered at once; past it they are
/// closed without an answer, so that refusing costs a bounded amount.
const REFUSING_AT_ONCE: usize = 64;
/// How long a refused connection may take to read its `503`.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// The first and the longest pause after `accept` fails for lack of
/// resources (out of file descriptors, memory).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A running ingress; [`Ingress::shutdown`] stops it gracefully.
pub struct Ingress {
    addr: SocketAddr,
    max_connections: usize,
    slots: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the accept loop serves with.
struct Serving {
    router: Arc<Router>,
    engine: Arc<KeelEngine>,
    options: Arc<IngressOptions>,
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

impl Ingress {
    /// Binds `addr` and starts serving within `options`.
    pub async fn bind(
        addr: SocketAddr,
        router: Arc<Router>,
        engine: Arc<KeelEngine>,
        options: IngressOptions,
    ) -> Result<Ingress> {
        anyhow::ensure!(
            options.max_connections > 0,
            "the HTTP connection limit must be at least 1"
        );
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for HTTP on {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        let max_connections = options.max_connections;
        let slots = Arc::new(Semaphore::new(max_connections));
        let (stop, stopped) = watch::channel(false);
        let serving = Serving {
            router,
            engine,
            options: Arc::new(options),
            slots: slots.clone(),
            refusing: Arc::new(Semaphore::new(REFUSING_AT_ONCE)),
        };
        let task = tokio::spawn(accept_loop(listener, serving, stopped));
        Ok(Ingress {
            addr,
            max_connections,
            slots,
            stop,
            task,
        })
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.slots.available_permits())
    }

    /// Stops accepting connections, waits (up to the shutdown timeout) for
    /// open ones to finish their in-flight requests, then closes the rest.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, serving: Serving, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = backoff.wait(), if backoff.paused() => backoff.resume(),
            accepted = listener.accept(), if !backoff.paused() => match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    admit(&serving, &mut connections, stream, peer, &stopped);
                }
                Err(e) => backoff.failed(&e),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let deadline = serving.options.shutdown_timeout;
    let drained = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            timeout_ms = deadline.as_millis() as u64,
            "HTTP connections still open at the shutdown deadline: closing them"
        );
        connections.shutdown().await;
    }
}

/// Serves `stream` in a slot of its own, or refuses it when every slot is taken.
fn admit(
    serving: &Serving,
    connections: &mut JoinSet<()>,
    stream: TcpStream,
    peer: SocketAddr,
    stopped: &watch::Receiver<bool>,
) {
    let Ok(slot) = serving.slots.clone().try_acquire_owned() else {
        refuse(serving, stream, peer);
        return;
    };
    let (router, engine) = (serving.router.clone(), serving.engine.clone());
    let (options, stopped) = (serving.options.clone(), stopped.clone());
    connections.spawn(async move {
        let _slot = slot;
        connection::serve(stream, peer, router, engine, &options, stopped).await;
    });
}

/// Answers a connection over the limit with `503` and closes it.
fn refuse(serving: &Serving, stream: TcpStream, peer: SocketAddr) {
    let max = serving.options.max_connections;
    tracing::debug!(%peer, max, "refusing an HTTP connection: at the connection limit");
    // Past REFUSING_AT_ONCE the connection is just dropped (closed).
    let Ok(permit) = serving.refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_LINGER, answer_busy(stream, max)).await;
    });
}

/// Writes the `503`, then reads until the client closes: closing a socket
/// with unread bytes resets the connection, which can destroy the answer
/// before the client reads it.
async fn answer_busy(mut stream: TcpStream, max: usize) -> io::Result<()> {
    let body = format!("the server is at its limit of {max} connections; retry later\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Pauses accepting after `accept` fails for lack of resources (out of file
/// descriptors, memory): retrying at once would spin, since the pending
/// connection stays in the queue. Pauses double up to a second.
#[derive(Default)]
struct Backoff {
    pause: Option<Duration>,
    until: Option<Instant>,
}

impl Backoff {
    fn paused(&self) -> bool {
        self.until.is_some()
    }

    async fn wait(&self) {
        if let Some(until) = self.until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn resume(&mut self) {
        self.until = None;
    }

    fn succeeded(&mut self) {
        self.pause = None;
    }

    fn failed(&mut self, error: &io::Error) {
        // Errors of one connection (it was reset before it was accepted): go on.
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        ) {
            tracing::debug!(error = %error, "a connection failed before it was accepted");
            return;
        }
        let (first, longest) = ACCEPT_BACKOFF;
        let pause = self.pause.map_or(first, |p| (p * 2).min(longest));
        if self.pause.is_none() {
            tracing::warn!(error = %error, "accepting HTTP connections failed; pausing and retrying");
        } else {
            tracing::debug!(error = %error, pause_ms = pause.as_millis() as u64, "accepting HTTP connections still fails");
        }
        self.pause = Some(pause);
        self.until = Some(Instant::now() + pause);
    }
}
