//! A bare HTTP/1.1 client connection for tests of connection handling:
//! it keeps its socket, sends exactly the bytes it is given, and can wait
//! for the server to close.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One client connection, read and written by hand.
pub struct RawConnection {
    stream: TcpStream,
    /// Bytes read past the last response.
    pending: Vec<u8>,
}

/// How long a test waits for a response it expects.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl RawConnection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<RawConnection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        Ok(RawConnection::from_stream(stream))
    }

    /// Wraps a stream connected some other way (e.g. with a small receive
    /// buffer).
    pub fn from_stream(stream: TcpStream) -> RawConnection {
        RawConnection {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await.context("sending")
    }

    /// Sends `GET path` with Host `x`, keeping the connection alive, and
    /// reads the response: (status, body).
    pub async fn get(&mut self, path: &str) -> Result<(u16, String)> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        tokio::time::timeout(ANSWER_TIMEOUT, self.read_response())
            .await
            .context("no response")?
    }

    /// Reads one response, its body sized by `content-length` or chunked:
    /// (status, body).
    async fn read_response(&mut self) -> Result<(u16, String)> {
        let head = self.read_head().await?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let header = |wanted: &str| {
            head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_ascii_lowercase())
            })
        };
        let body = if let Some(length) = header("content-length") {
            let length: usize = length.parse().context("content-length")?;
            self.take(length).await?
        } else if header("transfer-encoding").as_deref() == Some("chunked") {
            let mut body = Vec::new();
            loop {
                let size = self.read_line().await?;
                let size = usize::from_str_radix(size.trim(), 16)
                    .with_context(|| format!("chunk size {size:?}"))?;
                body.extend(self.take(size).await?);
                self.read_line().await?;
                if size == 0 {
                    break body;
                }
            }
        } else {
            bail!("no body length in {head:?}");
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// The response head, up to and without its blank line.
    async fn read_head(&mut self) -> Result<String> {
        self.read_until(b"\r\n\r\n").await
    }

    async fn read_line(&mut self) -> Result<String> {
        self.read_until(b"\r\n").await
    }

    async fn read_until(&mut self, end: &[u8]) -> Result<String> {
        loop {
            if let Some(at) = self.pending.windows(end.len()).position(|w| w == end) {
                let text = String::from_utf8_lossy(&self.pending[..at]).into_owned();
                self.pending.drain(..at + end.len());
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.pending.len() < n {
            self.fill().await?;
        }
        Ok(self.pending.drain(..n).collect())
    }

    async fn fill(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        let n = self.stream.read(&mut buf).await.context("reading")?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// Waits (at most `timeout`) for the server to close the connection,
    /// discarding what it still sends; returns how many bytes that was.
    /// A reset counts as closed.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<usize> {
        let mut received = 0;
        let mut buf = vec![0u8; 64 << 10];
        let closing = async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
            }
        };
        tokio::time::timeout(timeout, closing)
            .await
            .with_context(|| format!("the server kept the connection open for {timeout:?}"))?;
        Ok(received)
    }
}

/// Polls `check` until it holds, at most `timeout`: for waiting on a state
/// the host reports (never a sleep standing in for a signal).
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let until = tokio::time::Instant::now() + timeout;
    while !check() {
        if tokio::time::Instant::now() > until {
            bail!("{what}: not reached within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
