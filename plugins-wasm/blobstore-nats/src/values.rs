//! `outgoing-value` and `incoming-value`: bytes crossing as `wasi:io`
//! streams made with `keel:core/pipe`.
//!
//! An outgoing value's bytes wait in the host pipe until `write-data` names
//! the object; from then on they are sent in chunks as they are read. If
//! the workload has already closed the stream, `write-data` stores the
//! object at once; otherwise `finish` sends the rest and stores it. A value
//! dropped unfinished leaves the old object as it was. One value writes one
//! object.
//!
//! An incoming value reads nothing until it is consumed: `size` comes from
//! the metadata, and consuming fetches the chunks (into a pipe, for the
//! stream form).

use crate::bucket::{Bucket, ObjectInfo};
use crate::download;
use crate::exports::wasi::blobstore::types::{
    Error, GuestIncomingValue, GuestOutgoingValue, IncomingValue, IncomingValueAsyncBody,
    IncomingValueSyncBody, OutgoingValue,
};
use crate::js_error;
use crate::upload::{CHUNK, Upload};
use keel_guest::wasip2::io::streams::{InputStream, OutputStream};
use std::cell::{Cell, RefCell};

/// A value being written.
pub struct Outgoing {
    reader: InputStream,
    writer: RefCell<Option<OutputStream>>,
    upload: RefCell<Option<Upload>>,
    /// The object has been stored (or `write-data` failed part way).
    settled: Cell<bool>,
}

impl Outgoing {
    /// Moves what the pipe holds into `upload`; `true` once the workload
    /// has closed its end and everything was read.
    fn pump(&self, upload: &mut Upload) -> Result<bool, Error> {
        keel_guest::read_available(&self.reader, CHUNK as u64, |bytes| {
            upload.write(&bytes).map_err(js_error)
        })
    }

    /// `write-data`: this value becomes object `name` of `bucket`.
    pub fn write_to(&self, bucket: Bucket, name: &str) -> Result<(), Error> {
        if self.settled.get() || self.upload.borrow().is_some() {
            return Err("this outgoing value is already written to an object".into());
        }
        let mut upload = Upload::start(bucket, name);
        let closed = self
            .pump(&mut upload)
            .inspect_err(|_| self.settled.set(true))?;
        if closed {
            self.settled.set(true);
            upload.finish().map_err(js_error)
        } else {
            *self.upload.borrow_mut() = Some(upload);
            Ok(())
        }
    }
}

impl GuestOutgoingValue for Outgoing {
    fn new_outgoing_value() -> OutgoingValue {
        let (writer, reader) = crate::keel::core::pipe::new_pipe();
        OutgoingValue::new(Outgoing {
            reader,
            writer: RefCell::new(Some(writer)),
            upload: RefCell::new(None),
            settled: Cell::new(false),
        })
    }

    fn outgoing_value_write_body(&self) -> Result<OutputStream, ()> {
        self.writer.borrow_mut().take().ok_or(())
    }

    fn finish(this: OutgoingValue) -> Result<(), Error> {
        let value: Outgoing = this.into_inner();
        let Some(mut upload) = value.upload.borrow_mut().take() else {
            return Ok(());
        };
        if !value.pump(&mut upload)? {
            return Err("finish called while the value's output stream is still open".into());
        }
        upload.finish().map_err(js_error)
    }
}

/// A value to read: bytes `start..start + len` of an object.
pub struct Incoming {
    bucket: Bucket,
    info: ObjectInfo,
    start: u64,
    len: u64,
}

impl Incoming {
    /// Bytes `start..=end` of object `info` in `bucket`, `end` clamped to
    /// its last byte (no bytes if `start` is past it).
    pub fn new(bucket: Bucket, info: ObjectInfo, start: u64, end: u64) -> Incoming {
        let len = if start >= info.size || start > end {
            0
        } else {
            end.min(info.size - 1) - start + 1
        };
        Incoming {
            bucket,
            info,
            start,
            len,
        }
    }

    fn read(&self, sink: &mut download::Sink<'_>) -> Result<(), Error> {
        Ok(download::read(
            &self.bucket,
            &self.info,
            self.start,
            self.len,
            sink,
        )?)
    }
}

impl GuestIncomingValue for Incoming {
    fn incoming_value_consume_sync(this: IncomingValue) -> Result<IncomingValueSyncBody, Error> {
        let value: Incoming = this.into_inner();
        let mut bytes = Vec::with_capacity(usize::try_from(value.len).unwrap_or(0));
        value.read(&mut |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(bytes)
    }

    fn incoming_value_consume_async(this: IncomingValue) -> Result<IncomingValueAsyncBody, Error> {
        let value: Incoming = this.into_inner();
        let (writer, reader) = crate::keel::core::pipe::new_pipe();
        value.read(&mut |chunk| {
            keel_guest::write_all(&writer, chunk).map_err(|e| format!("{e:?}"))
        })?;
        drop(writer);
        Ok(reader)
    }

    fn size(&self) -> u64 {
        self.len
    }
}
