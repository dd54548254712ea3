//! A guest's stdout and stderr, turned into host log records that carry the
//! workload's and the component's names.
//!
//! The WASI P2 stream a guest writes to logs in the write itself and is
//! always ready: a guest never waits on its log, and a plugin in a
//! synchronous Store (see `plugins::shared::sync_store`) can print without
//! the async runtime.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines longer than this are logged in pieces, so a guest cannot make the
/// host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// How many bytes a guest may hand over in one `write` (what `check-write`
/// answers).
const WRITE_PERMIT: usize = 64 * 1024;

/// Which of the two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

/// A [`StdoutStream`] that logs each line the guest writes.
#[derive(Debug, Clone)]
pub struct GuestLog {
    labels: Arc<Labels>,
    stream: Stream,
}

#[derive(Debug)]
struct Labels {
    workload: String,
    component: String,
}

impl GuestLog {
    /// A sink for `stream` of `component` in `workload`.
    pub fn new(workload: &str, component: &str, stream: Stream) -> GuestLog {
        GuestLog {
            labels: Arc::new(Labels {
                workload: workload.to_string(),
                component: component.to_string(),
            }),
            stream,
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let Labels {
            workload,
            component,
        } = &*self.labels;
        if let Some(record) = GuestRecord::parse(line) {
            record.emit(workload, component);
            return;
        }
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "keel::guest", workload, component, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "keel::guest", workload, component, stream = "stderr", "{line}")
            }
        }
    }
}

/// What opens a structured record line (written by keel's logging plugin,
/// `keel_guest::log_record` in `plugins-wasm`): an ASCII record separator and
/// `keel-log `, then a JSON object `{"level", "context", "message"}`.
pub const RECORD_PREFIX: &str = "\u{1e}keel-log ";

/// One `wasi:logging` record a guest wrote as a structured line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct GuestRecord {
    /// `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub level: String,
    /// The record's context (`wasi:logging`'s free-form category).
    pub context: String,
    /// The message.
    pub message: String,
}

impl GuestRecord {
    /// The record in `line`, if it is a well-formed structured line.
    ///
    /// ```
    /// use keel::workload::stdio::GuestRecord;
    /// let line = "\u{1e}keel-log {\"level\":\"critical\",\"context\":\"db\",\"message\":\"down\"}";
    /// assert_eq!(GuestRecord::parse(line).unwrap().level, "critical");
    /// assert!(GuestRecord::parse("plain text").is_none());
    /// ```
    pub fn parse(line: &str) -> Option<GuestRecord> {
        serde_json::from_str(line.strip_prefix(RECORD_PREFIX)?).ok()
    }

    /// Logs the record as the host's own, attributed to `workload` and
    /// `component`, with the guest's level in the `severity` field.
    /// `tracing` has no level above error, so `critical` is an error record
    /// whose `severity` says `critical`.
    fn emit(&self, workload: &str, component: &str) {
        let GuestRecord {
            level,
            context,
            message,
        } = self;
        match level.as_str() {
            "trace" => {
                tracing::trace!(target: "keel::guest", workload, component, severity = level.as_str(), context, "{message}")
            }
            "debug" => {
                tracing::debug!(target: "keel::guest", workload, component, severity = level.as_str(), context, "{message}")
            }
            "info" => {
                tracing::info!(target: "keel::guest", workload, component, severity = level.as_str(), context, "{message}")
            }
            "warn" => {
                tracing::warn!(target: "keel::guest", workload, component, severity = level.as_str(), context, "{message}")
            }
            _ => {
                tracing::error!(target: "keel::guest", workload, component, severity = level.as_str(), context, "{message}")
            }
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.line_writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogOutputStream(self.line_writer()))
    }
}

impl GuestLog {
    fn line_writer(&self) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// The WASI P2 output stream of a [`GuestLog`]: a write is logged before it
/// returns, so the stream is always ready and never needs a background task.
struct LogOutputStream(LineWriter);

#[wasmtime_wasi::async_trait]
impl Pollable for LogOutputStream {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogOutputStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.0.pending.extend_from_slice(&bytes);
        self.0.take_lines();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

/// Splits writes into lines; a partial line is logged when the stream is
/// flushed, shut down or dropped.
struct LineWriter {
    sink: GuestLog,
    pending: Vec<u8>,
}

impl LineWriter {
    fn take_lines(&mut self) {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.sink.emit(&line);
        }
        while self.pending.len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            self.sink.emit(&piece);
        }
    }

    fn flush_partial(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.sink.emit(&rest);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        self.take_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_partial();
    }
}
