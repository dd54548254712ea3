//! `keel:core/pipe`: an output stream and the input stream that reads what
//! was written to it. Plugins need it to hand `wasi:io` streams to their
//! callers (`wasi:blobstore` values), which a guest cannot make itself.
//!
//! The buffer is unbounded: a workload typically writes a whole value
//! before the plugin reads any of it, so a bounded pipe would stall. The
//! plugin's own memory limit and the workload's request-body limit bound
//! what goes through.

use crate::plugins::identity::bindings::keel::core::pipe as api;
use crate::workload::InvocationState;
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// What one write may carry (a guest's `check-write` budget).
const WRITE_BUDGET: usize = 1 << 20;

#[derive(Default)]
struct Buffer {
    data: BytesMut,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    changed: Notify,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Buffer) -> R) -> R {
        f(&mut self.buffer.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The writing end; dropping it ends the stream.
pub struct PipeWriter(Arc<Shared>);

/// The reading end.
pub struct PipeReader(Arc<Shared>);

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared::default());
    (PipeWriter(shared.clone()), PipeReader(shared))
}

impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.with(|b| b.data.extend_from_slice(&bytes));
        self.0.changed.notify_waiters();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {}
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.with(|b| b.closed = true);
        self.0.changed.notify_waiters();
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.0.with(|b| {
            if !b.data.is_empty() {
                let n = size.min(b.data.len());
                Ok(b.data.split_to(n).freeze())
            } else if b.closed {
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
            if self.0.with(|b| !b.data.is_empty() || b.closed) {
                return;
            }
            changed.await;
        }
    }
}

impl api::Host for InvocationState {
    fn new_pipe(
        &mut self,
    ) -> wasmtime::Result<(Resource<DynOutputStream>, Resource<DynInputStream>)> {
        let (writer, reader) = pipe();
        let table = self.table_mut();
        let writer = table.push(Box::new(writer) as DynOutputStream)?;
        let reader = table.push(Box::new(reader) as DynInputStream)?;
        Ok((writer, reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_written_is_read_in_order_then_the_stream_ends() {
        let (mut writer, mut reader) = pipe();
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
        let (mut writer, mut reader) = pipe();
        let waiting = tokio::spawn(async move {
            reader.ready().await;
            reader.read(10)
        });
        tokio::task::yield_now().await;
        writer.write(Bytes::from_static(b"x")).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), Bytes::from_static(b"x"));
    }
}
