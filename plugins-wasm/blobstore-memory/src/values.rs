//! `outgoing-value` and `incoming-value`: bytes crossing as `wasi:io`
//! streams, through host pipes (`keel:core/pipe`).

use crate::exports::wasi::blobstore::types::{
    Error, GuestIncomingValue, GuestOutgoingValue, IncomingValue, IncomingValueAsyncBody,
    IncomingValueSyncBody, OutgoingValue,
};
use crate::store::{self, Place};
use keel_guest::quota;
use keel_guest::wasip2::io::streams::{InputStream, OutputStream};
use std::cell::{Cell, RefCell};

/// A value being written: the pipe's reading end, the writing end until the
/// workload takes it, what has arrived, and where it goes. What has arrived
/// and is not stored yet counts against the quota of the namespace that
/// made the value (`pending` bytes of it).
pub struct Outgoing {
    reader: InputStream,
    writer: RefCell<Option<OutputStream>>,
    received: RefCell<Vec<u8>>,
    target: RefCell<Option<(Place, String)>>,
    namespace: String,
    pending: Cell<u64>,
}

impl Outgoing {
    /// Reads what the pipe holds; `true` once the writer has finished.
    /// Fails, keeping what came before, once the bytes would take the
    /// namespace over its quota.
    fn drain(&self) -> Result<bool, Error> {
        let mut received = self.received.borrow_mut();
        keel_guest::read_available(&self.reader, 1 << 20, |bytes| {
            store::charge(&self.namespace, quota::len(bytes.len()), 0)?;
            self.pending.set(self.pending.get() + bytes.len() as u64);
            received.extend_from_slice(&bytes);
            Ok(())
        })
    }

    /// Stops counting what has arrived as pending: it is stored now (and
    /// counted as the object), or dropped.
    fn stored(&self) {
        let pending = i64::try_from(self.pending.replace(0)).unwrap_or(i64::MAX);
        // Shrinking never fails.
        let _ = store::charge(&self.namespace, -pending, 0);
    }

    /// `write-data`: stores what has been written so far as `name` in
    /// `place`, and remembers the target for `finish`.
    pub fn write_to(&self, place: Place, name: String) -> Result<(), Error> {
        self.drain()?;
        // What has arrived so far counts as the object from here on.
        self.stored();
        store::put(&place, &name, self.received.borrow().clone())?;
        *self.target.borrow_mut() = Some((place, name));
        Ok(())
    }
}

impl GuestOutgoingValue for Outgoing {
    fn new_outgoing_value() -> OutgoingValue {
        let (writer, reader) = crate::keel::core::pipe::new_pipe();
        OutgoingValue::new(Outgoing {
            reader,
            writer: RefCell::new(Some(writer)),
            received: RefCell::new(Vec::new()),
            target: RefCell::new(None),
            namespace: crate::keel::core::identity::caller().namespace,
            pending: Cell::new(0),
        })
    }

    fn outgoing_value_write_body(&self) -> Result<OutputStream, ()> {
        self.writer.borrow_mut().take().ok_or(())
    }

    fn finish(this: OutgoingValue) -> Result<(), Error> {
        let value: Outgoing = this.into_inner();
        if !value.drain()? {
            return Err("finish called while the value's output stream is still open".to_string());
        }
        let target = value.target.borrow_mut().take();
        let received = value.received.take();
        value.stored();
        match target {
            Some((place, name)) => store::put(&place, &name, received),
            None => Ok(()),
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.stored();
    }
}

/// A value being read.
pub struct Incoming {
    bytes: Vec<u8>,
}

impl Incoming {
    pub fn new(bytes: Vec<u8>) -> Incoming {
        Incoming { bytes }
    }
}

impl GuestIncomingValue for Incoming {
    fn incoming_value_consume_sync(this: IncomingValue) -> Result<IncomingValueSyncBody, Error> {
        Ok(this.into_inner::<Incoming>().bytes)
    }

    fn incoming_value_consume_async(this: IncomingValue) -> Result<IncomingValueAsyncBody, Error> {
        let bytes = this.into_inner::<Incoming>().bytes;
        let (writer, reader) = crate::keel::core::pipe::new_pipe();
        keel_guest::write_all(&writer, &bytes).map_err(|e| format!("{e:?}"))?;
        drop(writer);
        Ok(reader)
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}
