//! `wasi:io` for a synchronous plugin Store (see [`super::sync_store`]).
//!
//! wasmtime-wasi's synchronous bindings run each blocking operation to
//! completion with `Handle::block_on`, which panics on a thread of the
//! async runtime — where every plugin call runs. These bindings run the
//! same asynchronous implementations, but only as far as they go without
//! waiting: a synchronous plugin reaches no stream that is not always ready
//! (its stdio, see [`crate::store::stdio`]), so they always finish. If
//! one ever would have to wait, the call traps with a message saying so
//! instead of blocking a worker thread, and the plugin restarts.

use crate::store::InvocationState;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wasmtime::component::{HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::{poll as async_poll, streams as async_streams};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};

use async_poll::{Host as AsyncPoll, HostPollable as AsyncPollable};
use async_streams::{
    Host as AsyncStreams, HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};

/// A plugin Store's resource table, seen by the synchronous `wasi:io`
/// bindings.
pub struct NonBlockingIo<'a>(pub &'a mut ResourceTable);

/// Marks [`NonBlockingIo`] as the data the bindings run on.
pub struct NonBlocking;

impl HasData for NonBlocking {
    type Data<'a> = NonBlockingIo<'a>;
}

/// Links `wasi:io/{error,poll,streams}` into a plugin linker.
pub fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    fn table(state: &mut InvocationState) -> &mut ResourceTable {
        state.table_mut()
    }
    fn view(state: &mut InvocationState) -> NonBlockingIo<'_> {
        NonBlockingIo(state.table_mut())
    }
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<_, HasSelf<ResourceTable>>(
        linker, table,
    )?;
    poll::add_to_linker::<_, NonBlocking>(linker, view)?;
    streams::add_to_linker::<_, NonBlocking>(linker, view)?;
    Ok(())
}

/// The operation in `future`, if it finishes without waiting.
fn now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Why a synchronous plugin's call stopped.
fn would_block(operation: &str) -> wasmtime::Error {
    wasmtime::format_err!(
        "{operation} would wait for I/O, which a plugin in a synchronous Store cannot do"
    )
}

/// [`now`], or a trap if `operation` would have to wait.
fn trap_if_waiting<R>(
    operation: &str,
    future: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    now(future).unwrap_or_else(|| Err(would_block(operation)))
}

/// [`now`] for a stream operation, or a trap if it would have to wait.
fn stream_now<R>(
    operation: &str,
    future: impl Future<Output = StreamResult<R>>,
) -> StreamResult<R> {
    now(future).unwrap_or_else(|| Err(StreamError::Trap(would_block(operation))))
}

impl poll::Host for NonBlockingIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        trap_if_waiting("wasi:io/poll.poll", AsyncPoll::poll(self.0, pollables))
    }
}

impl poll::HostPollable for NonBlockingIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        trap_if_waiting("pollable.ready", AsyncPollable::ready(self.0, pollable))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        trap_if_waiting("pollable.block", AsyncPollable::block(self.0, pollable))
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        AsyncPollable::drop(self.0, pollable)
    }
}

impl streams::Host for NonBlockingIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        Ok(AsyncStreams::convert_stream_error(self.0, err)?.into())
    }
}

impl streams::HostOutputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        trap_if_waiting(
            "dropping an output-stream",
            AsyncOutput::drop(self.0, stream),
        )
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        AsyncOutput::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        AsyncOutput::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        stream_now(
            "output-stream.blocking-write-and-flush",
            AsyncOutput::blocking_write_and_flush(self.0, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        stream_now(
            "output-stream.blocking-write-zeroes-and-flush",
            AsyncOutput::blocking_write_zeroes_and_flush(self.0, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AsyncOutput::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        AsyncOutput::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        AsyncOutput::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        stream_now(
            "output-stream.blocking-flush",
            AsyncOutput::blocking_flush(self.0, stream),
        )
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        AsyncOutput::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        stream_now(
            "output-stream.blocking-splice",
            AsyncOutput::blocking_splice(self.0, dst, src, len),
        )
    }
}

impl streams::HostInputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        trap_if_waiting("dropping an input-stream", AsyncInput::drop(self.0, stream))
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AsyncInput::read(self.0, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        stream_now(
            "input-stream.blocking-read",
            AsyncInput::blocking_read(self.0, stream, len),
        )
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        AsyncInput::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        stream_now(
            "input-stream.blocking-skip",
            AsyncInput::blocking_skip(self.0, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AsyncInput::subscribe(self.0, stream)
    }
}
