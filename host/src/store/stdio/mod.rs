//! A guest's stdout and stderr, turned into host log records that carry the
//! workload's and the component's names.
//!
//! The WASI P2 stream a guest writes to logs in the write itself and is
//! always ready: a guest never waits on its log, and a plugin in a
//! synchronous Store (see `plugins::shared::sync_store`) can print without
//! the async runtime. What a guest can make the host do is bounded:
//!
//! - splitting is linear in the bytes written ([`lines`]);
//! - a line keeps at most [`MAX_LINE`] bytes; a longer one is logged cut,
//!   ending with `… [N bytes cut]`;
//! - a workload's output is limited to a rate in bytes per second, shared by
//!   all its invocations and both streams ([`rate`]); what is over it is
//!   dropped and reported as "N bytes of output dropped".
//!
//! Records go to whatever `tracing` subscriber is installed; `keel run`'s
//! writes them from a thread of its own (see [`crate::logging`]), so
//! logging never blocks a runtime worker on stderr.

pub mod lines;
pub mod rate;

pub use rate::OutputRate;

use lines::{Line, LineSplitter};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The most of one line that is logged; the rest is cut.
pub const MAX_LINE: usize = 16 * 1024;

/// A log rate of `bytes_per_second` for one workload's guests (or one
/// shared plugin's). A workload's comes from `[workload.limits] log_rate`
/// ([`crate::spec::Limits`], 1 MiB/s by default).
pub fn log_rate(bytes_per_second: u64) -> Arc<OutputRate> {
    Arc::new(OutputRate::new(bytes_per_second, MAX_LINE))
}

/// How many bytes a guest may hand over in one `write` (what `check-write`
/// answers). A larger write is taken too, in the same linear pass.
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
    labels: LogLabels,
    stream: Stream,
    rate: Arc<OutputRate>,
}

/// Who writes, in guest log lines: made once per workload component (or
/// plugin instance) and shared by every Store it makes.
#[derive(Debug, Clone)]
pub struct LogLabels(Arc<Labels>);

#[derive(Debug)]
struct Labels {
    workload: String,
    component: String,
}

impl LogLabels {
    /// Lines of `component` in `workload` (`ns/name`, or `plugin:<name>`).
    pub fn new(workload: &str, component: &str) -> LogLabels {
        LogLabels(Arc::new(Labels {
            workload: workload.to_string(),
            component: component.to_string(),
        }))
    }
}

impl GuestLog {
    /// A sink for `stream` of the guest `labels` name, drawing on the
    /// workload's log `rate`.
    pub fn new(labels: LogLabels, stream: Stream, rate: Arc<OutputRate>) -> GuestLog {
        GuestLog {
            labels,
            stream,
            rate,
        }
    }

    /// Logs `line` if the rate allows it.
    fn take(&self, line: Line<'_>) {
        let cost = (line.text.len() as u64).saturating_add(rate::RECORD_COST);
        if !self.rate.admit(cost, line.written as u64) {
            return;
        }
        let text = String::from_utf8_lossy(line.text);
        if line.cut > 0 {
            self.emit(&format!("{text} … [{} bytes cut]", line.cut));
        } else {
            self.emit(&text);
        }
    }

    fn emit(&self, line: &str) {
        let Labels {
            workload,
            component,
        } = &*self.labels.0;
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

    /// Reports dropped output, if a report is due.
    fn report(&self, now: Instant, stream_ended: bool) {
        let Some(report) = self.rate.report_due(now, stream_ended) else {
            return;
        };
        let Labels {
            workload,
            component,
        } = &*self.labels.0;
        let bytes = report.bytes;
        tracing::warn!(
            target: "keel::guest",
            workload,
            component,
            dropped_bytes = bytes,
            log_rate = self.rate.rate(),
            "{bytes} bytes of output dropped: the workload wrote more than its log rate of {} bytes/s",
            self.rate.rate()
        );
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
            lines: LineSplitter::new(MAX_LINE),
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
        self.0.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

/// Splits writes into lines and logs them within the rate; a partial line
/// is logged when the stream is shut down or dropped.
struct LineWriter {
    sink: GuestLog,
    lines: LineSplitter,
}

impl LineWriter {
    fn write(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        self.sink.rate.refill(now);
        // An episode that just ended is reported before the lines after it.
        self.sink.report(now, false);
        let sink = &self.sink;
        self.lines.push(bytes, |line| sink.take(line));
        self.sink.report(now, false);
    }

    fn end(&mut self) {
        let sink = &self.sink;
        self.lines.flush(|line| sink.take(line));
        self.sink.report(Instant::now(), true);
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.end();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structured_line_is_a_record_and_plain_text_is_not() {
        let line =
            "\u{1e}keel-log {\"level\":\"critical\",\"context\":\"db\",\"message\":\"down\"}";
        assert_eq!(
            GuestRecord::parse(line).map(|r| r.level),
            Some("critical".to_string())
        );
        assert!(GuestRecord::parse("plain text").is_none());
    }
}
