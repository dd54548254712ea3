//! Where `keel run`'s log records go: a queue to a thread of its own that
//! writes them to stderr, so no runtime worker ever blocks on a slow or
//! stalled stderr (a full pipe, a paused terminal).
//!
//! The queue holds at most [`MAX_QUEUED`] bytes. A record that does not
//! fit is dropped and counted, and the writer notes the count before the
//! next record it writes: `N log records dropped: the log writer fell
//! behind`. [`LogGuard`] lets the writer finish the queue before the
//! process exits.

use super::LogFormat;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of records waiting for the writer thread.
pub const MAX_QUEUED: usize = 8 << 20;

/// How long exiting waits for the writer to finish the queue.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Message {
    Record(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

struct Counters {
    queued: AtomicUsize,
    dropped: AtomicU64,
}

/// The [`MakeWriter`] handing records to the writer thread.
pub struct LogSink {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

/// Keeps the writer's queue flushed at exit: dropping it waits (briefly)
/// until every record queued so far is written.
pub struct LogGuard {
    tx: mpsc::Sender<Message>,
}

/// Starts the writer thread; records in `format` go to stderr.
pub fn start(format: LogFormat) -> io::Result<(LogSink, LogGuard)> {
    let (tx, rx) = mpsc::channel();
    let counters = Arc::new(Counters {
        queued: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
    });
    let writer_counters = counters.clone();
    std::thread::Builder::new()
        .name("keel-log".into())
        .spawn(move || write_records(rx, &writer_counters, format))?;
    Ok((
        LogSink {
            tx: tx.clone(),
            counters,
        },
        LogGuard { tx },
    ))
}

fn write_records(rx: mpsc::Receiver<Message>, counters: &Counters, format: LogFormat) {
    let stderr = io::stderr();
    while let Ok(message) = rx.recv() {
        let mut out = stderr.lock();
        // A failed write to stderr has nowhere to be reported: it is skipped.
        match message {
            Message::Record(record) => {
                counters.queued.fetch_sub(record.len(), Ordering::AcqRel);
                let dropped = counters.dropped.swap(0, Ordering::AcqRel);
                if dropped > 0 {
                    let _ = out.write_all(dropped_note(dropped, format).as_bytes());
                }
                let _ = out.write_all(&record);
            }
            Message::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

fn dropped_note(dropped: u64, format: LogFormat) -> String {
    let message = format!("{dropped} log records dropped: the log writer fell behind");
    match format {
        LogFormat::Text => format!(" WARN keel::logging: {message}\n"),
        LogFormat::Json => {
            let record = serde_json::json!({
                "level": "WARN",
                "target": "keel::logging",
                "message": message,
                "dropped_records": dropped,
            });
            format!("{record}\n")
        }
    }
}

impl Write for &LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let counters = &self.counters;
        let fits = counters
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                q.checked_add(buf.len())
                    .filter(|&total| total <= MAX_QUEUED)
            })
            .is_ok();
        if !fits || self.tx.send(Message::Record(buf.to_vec())).is_err() {
            if fits {
                counters.queued.fetch_sub(buf.len(), Ordering::AcqRel);
            }
            counters.dropped.fetch_add(1, Ordering::AcqRel);
        }
        // A dropped record is not an error for the caller: logging goes on.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = &'a LogSink;

    fn make_writer(&'a self) -> &'a LogSink {
        self
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done, finished) = mpsc::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = finished.recv_timeout(FLUSH_WAIT);
        }
    }
}
