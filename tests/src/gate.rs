//! A TCP gate: a loopback server that reports each connection and answers
//! it only when the test releases it. A guest that connects to it (the
//! `http_behaviours` route `/hold-memory?mib=0&addr=<gate>`) is known to be
//! inside its handler once its connection arrives, and stays there until
//! released: "in flight, held until I say", without any timer.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

/// How long a test waits for a guest to reach the gate before failing.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running gate. Connections that are never released are answered when
/// their [`Held`] is dropped, so a failing test does not leave guests stuck.
pub struct Gate {
    addr: SocketAddr,
    arrivals: mpsc::Receiver<Held>,
}

/// One connection waiting at the gate.
pub struct Held {
    release: Option<oneshot::Sender<()>>,
}

impl Held {
    /// Answers the connection (`released`, then close), letting its guest
    /// go on.
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

impl Gate {
    /// Starts a gate on a free loopback port (on the current Tokio runtime).
    pub async fn start() -> Result<Gate> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (arrived, arrivals) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (release, released) = oneshot::channel::<()>();
                let held = Held {
                    release: Some(release),
                };
                if arrived.send(held).await.is_err() {
                    return;
                }
                tokio::spawn(async move {
                    // Released or dropped: either way the guest may go on.
                    let _ = released.await;
                    let _ = stream.write_all(b"released").await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Gate { addr, arrivals })
    }

    /// The address guests connect to (add it to the workload's
    /// `sockets.allow`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path of the `http_behaviours` route that holds its request at
    /// this gate.
    pub fn hold_path(&self) -> String {
        format!("/hold-memory?mib=0&addr={}", self.addr)
    }

    /// Waits (at most 30 s) for the next connection to arrive.
    pub async fn arrival(&mut self) -> Result<Held> {
        tokio::time::timeout(ARRIVAL_TIMEOUT, self.arrivals.recv())
            .await
            .with_context(|| format!("no guest reached the gate within {ARRIVAL_TIMEOUT:?}"))?
            .context("the gate stopped accepting")
    }
}
