//! `keel:core/pipe`: an output stream and the input stream that reads what
//! was written to it. Plugins need it to hand `wasi:io` streams to their
//! callers (`wasi:blobstore` values), which a guest cannot make itself.
//!
//! **Writes never wait; they are paid for.** The protocols pipes serve have
//! the writer finish before the reader starts: a workload writes a whole
//! `outgoing-value` body before the plugin reads it in `write-data` or
//! `finish`, and a plugin fills an `incoming-value` pipe before it returns
//! the reading end. Both ends run in one single-threaded guest call, so a
//! pipe that made its writer wait for room would wait for a reader that
//! cannot run until the writer is done: the call would hang until its
//! deadline. So the buffer is not bounded by a window; instead every
//! buffered byte is reserved from the [`StoreMemory`] of the Store that
//! made the pipe (the same budget that bounds its linear memory), and given
//! back as it is read. `check-write` answers the room the budget has left
//! for buffers (at most [`WRITE_CHUNK`]; the budget keeps its last
//! mebibyte for linear memory, so a refused guest can still handle the
//! error); once it has none, `check-write` and `write`
//! fail with an error naming the limit, rather than answering 0 and leaving
//! the writer waiting for room that only a reader could make. The output
//! stream's pollable is therefore always ready: there is always either room
//! or an error to report.
//!
//! A pipe made by a shared plugin draws on the plugin's budget, also when a
//! workload writes into it (the forwarder moves the writing end into the
//! workload's Store). Once the reading end is dropped, buffered bytes are
//! given back and writes fail as closed.

use super::bindings::keel::core::pipe as api;
use super::view::CoreCtxView;
use crate::budget::StoreMemory;
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// The most one `check-write` grants, however much room the budget has.
pub const WRITE_CHUNK: usize = 1 << 20;

#[derive(Default)]
struct Buffer {
    data: BytesMut,
    /// The writing end was dropped: the stream ends once `data` is read.
    writer_gone: bool,
    /// The reading end was dropped: nothing written can ever be read.
    reader_gone: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    changed: Notify,
    budget: Arc<StoreMemory>,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Buffer) -> R) -> R {
        f(&mut self.buffer.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The writing end; dropping it ends the stream.
pub struct PipeWriter(Arc<Shared>);

/// The reading end; dropping it gives the buffered bytes back.
pub struct PipeReader(Arc<Shared>);

/// A new pipe whose buffered bytes are reserved from `budget`.
pub fn pipe(budget: Arc<StoreMemory>) -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        buffer: Mutex::new(Buffer::default()),
        changed: Notify::new(),
        budget,
    });
    (PipeWriter(shared.clone()), PipeReader(shared))
}

fn over_budget(e: crate::budget::OverBudget) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!("pipe buffer refused: {e}"))
}

impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let shared = &self.0;
        shared.with(|b| {
            if b.reader_gone {
                return Err(StreamError::Closed);
            }
            // Reserved under the buffer's lock, so a reader dropping at the
            // same time gives back these bytes too.
            shared.budget.reserve(bytes.len()).map_err(over_budget)?;
            b.data.extend_from_slice(&bytes);
            Ok(())
        })?;
        shared.changed.notify_waiters();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.0.with(|b| b.reader_gone) {
            return Err(StreamError::Closed);
        }
        match self.0.budget.buffer_room() {
            0 => Err(over_budget(crate::budget::OverBudget {
                limit: self.0.budget.limit(),
                linear: self.0.budget.linear(),
                buffered: self.0.budget.buffered(),
                wanted: 1,
            })),
            room => Ok(room.min(WRITE_CHUNK)),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    /// Always ready: `check-write` has room to grant or an error to report
    /// (see the module doc for why a writer never waits for a reader).
    async fn ready(&mut self) {}
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.with(|b| b.writer_gone = true);
        self.0.changed.notify_waiters();
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let shared = &self.0;
        shared.with(|b| {
            if !b.data.is_empty() {
                let n = size.min(b.data.len());
                shared.budget.release(n);
                Ok(b.data.split_to(n).freeze())
            } else if b.writer_gone {
                Err(StreamError::Closed)
            } else {
                Ok(Bytes::new())
            }
        })
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeReader {
    async fn ready(&mut self) {
        loop {
            // Registered before the check, so a write in between is not missed.
            let changed = self.0.changed.notified();
            if self.0.with(|b| !b.data.is_empty() || b.writer_gone) {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let shared = &self.0;
        shared.with(|b| {
            b.reader_gone = true;
            shared.budget.release(b.data.len());
            b.data = BytesMut::new();
        });
    }
}

impl api::Host for CoreCtxView<'_> {
    fn new_pipe(
        &mut self,
    ) -> wasmtime::Result<(Resource<DynOutputStream>, Resource<DynInputStream>)> {
        let (writer, reader) = pipe(self.store_memory().clone());
        let table = self.table_mut();
        let writer = table.push(Box::new(writer) as DynOutputStream)?;
        let reader = table.push(Box::new(reader) as DynInputStream)?;
        Ok((writer, reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> Arc<StoreMemory> {
        StoreMemory::new(1 << 30, None)
    }

    #[tokio::test]
    async fn what_is_written_is_read_in_order_then_the_stream_ends() {
        let (mut writer, mut reader) = pipe(roomy());
        assert_eq!(reader.read(10).unwrap(), Bytes::new(), "empty, not ended");
        writer.write(Bytes::from_static(b"hello ")).unwrap();
        writer.write(Bytes::from_static(b"world")).unwrap();
        reader.ready().await;
        assert_eq!(reader.read(3).unwrap(), Bytes::from_static(b"hel"));
        drop(writer);
        assert_eq!(reader.read(100).unwrap(), Bytes::from_static(b"lo world"));
        assert!(matches!(reader.read(1), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn a_reader_waits_for_a_write() {
        let (mut writer, mut reader) = pipe(roomy());
        let waiting = tokio::spawn(async move {
            reader.ready().await;
            reader.read(10)
        });
        tokio::task::yield_now().await;
        writer.write(Bytes::from_static(b"x")).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), Bytes::from_static(b"x"));
    }

    #[test]
    fn buffered_bytes_are_paid_from_the_budget_and_given_back_when_read() {
        // A quarter of a small budget stays for linear memory.
        let budget = StoreMemory::new(40, None);
        assert!(budget.grow_linear(20).is_ok());
        let (mut writer, mut reader) = pipe(budget.clone());
        assert_eq!(writer.check_write().unwrap(), 10, "the room the budget has");
        writer.write(Bytes::from_static(b"12345678")).unwrap();
        assert_eq!(writer.check_write().unwrap(), 2);
        let refused = writer.write(Bytes::from_static(b"abc")).unwrap_err();
        assert!(
            refused.to_string().contains("memory limit of 40 bytes"),
            "{refused}"
        );
        writer.write(Bytes::from_static(b"90")).unwrap();
        assert!(
            matches!(
                writer.check_write(),
                Err(StreamError::LastOperationFailed(_))
            ),
            "no room is an error, not a wait"
        );
        assert_eq!(reader.read(4).unwrap().len(), 4);
        assert_eq!(budget.buffered(), 6);
        assert_eq!(writer.check_write().unwrap(), 4);
    }

    #[test]
    fn dropping_the_reader_gives_the_bytes_back_and_closes_the_writer() {
        let budget = StoreMemory::new(100, None);
        let (mut writer, reader) = pipe(budget.clone());
        writer.write(Bytes::from(vec![0; 60])).unwrap();
        drop(reader);
        assert_eq!(budget.buffered(), 0);
        assert!(matches!(writer.check_write(), Err(StreamError::Closed)));
        assert!(matches!(
            writer.write(Bytes::from_static(b"x")),
            Err(StreamError::Closed)
        ));
    }
}
