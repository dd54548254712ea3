//! A guest's stdout and stderr, turned into host log records that carry the
//! workload's and the component's names.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Lines longer than this are logged in pieces, so a guest cannot make the
/// host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

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

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            sink: self.clone(),
            pending: Vec::new(),
        })
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
