//! keel's Object Store plugin: `wasi:blobstore@0.2.0-draft` (blobstore,
//! container, types) on NATS JetStream Object Store buckets (ADR-20),
//! spoken from inside the component over `keel:core/nats`. It runs
//! composed into each workload and keeps nothing between calls but the
//! values a call hands out: the server holds everything, in the format every
//! NATS client reads and writes.
//!
//! **Container names.** A workload's container `photos` is the Object Store
//! bucket `<namespace>-<workload>-photos` ([`keel_names::scoped`]; stream
//! `OBJ_<bucket>`), so no two workloads' containers collide. Config
//! `container.<name> = "<bucket>"` maps a container to a raw bucket name
//! (the manifest must then grant the plugin that bucket's subjects).
//!
//! **Objects** are written in 128 KiB chunks with a SHA-256 digest
//! ([`upload`]) and read by whatever chunking their writer chose
//! ([`download`]); a whole read checks size, chunk count and digest. Links
//! (`options.link`) made by other clients are followed when reading.
//! `created-at` is when the object's metadata was written (seconds since
//! the epoch); a container's is its stream's creation time.
//!
//! **`list-objects`** reads the metadata subjects through an ephemeral
//! consumer, in the order objects were last written, deleted ones skipped.
//! Objects written during a listing may or may not appear in it.
//! **`clear`** purges the whole stream; **`delete-object`** of a missing
//! object does nothing, as for the in-memory store.

wit_bindgen::generate!({
    inline: "
        package keel:blobstore-nats;
        world plugin {
            import keel:core/identity@0.1.0;
            import keel:core/nats@0.1.0;
            import keel:core/pipe@0.1.0;
            export wasi:blobstore/blobstore@0.2.0-draft;
            export wasi:blobstore/container@0.2.0-draft;
            export wasi:blobstore/types@0.2.0-draft;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-blobstore-0.2.0-draft"],
    with: {
        "keel:core/nats@0.1.0": keel_jetstream::nats,
        "wasi:io/streams@0.2.12": keel_guest::wasip2::io::streams,
        "wasi:io/streams@0.2.2": keel_guest::wasip2::io::streams,
        "wasi:io/error@0.2.12": keel_guest::wasip2::io::error,
        "wasi:io/error@0.2.2": keel_guest::wasip2::io::error,
        "wasi:io/poll@0.2.12": keel_guest::wasip2::io::poll,
        "wasi:io/poll@0.2.2": keel_guest::wasip2::io::poll,
    },
    generate_all,
});

keel_guest::plugin_metadata!();

mod bucket;
mod download;
mod listing;
mod upload;
mod values;

use bucket::Bucket;
use exports::wasi::blobstore::blobstore::Guest as BlobstoreGuest;
use exports::wasi::blobstore::container::{
    Container as ContainerHandle, ContainerMetadata, Error, GuestContainer, IncomingValue,
    ObjectMetadata, OutgoingValueBorrow, StreamObjectNames,
};
use exports::wasi::blobstore::types::ObjectId;
use keel_jetstream::JsError;

/// Configuration baked in by keel (the plugin's manifest `config`).
static CONFIG: keel_guest::baked::Region<4096> = keel_guest::baked::Region::new();

/// A JetStream error as a blobstore error. Failures of the server or the
/// connection are also logged (a structured stderr line the host
/// attributes to the workload), since the guest may swallow the error.
pub(crate) fn js_error(e: JsError) -> Error {
    match e {
        JsError::Nats(keel_jetstream::nats::Error::NotGranted(subject)) => {
            format!("access denied: subject `{subject}` is not granted to blobstore-nats")
        }
        other => {
            let message = other.to_string();
            eprintln!(
                "{}",
                keel_guest::log_record::line("error", "blobstore-nats", &message)
            );
            message
        }
    }
}

/// The bucket behind the calling workload's container `name`.
fn bucket_of(name: &str) -> Bucket {
    let mapped = format!("container.{name}");
    match CONFIG.pairs().into_iter().find(|(k, _)| *k == mapped) {
        Some((_, raw)) => Bucket::new(&raw),
        None => {
            let caller = keel::core::identity::caller();
            Bucket::new(&keel_names::scoped(&caller.namespace, &caller.name, name))
        }
    }
}

/// A container handle: the workload's name for it and its bucket.
pub struct Container {
    name: String,
    bucket: Bucket,
}

impl Container {
    /// The workload's container `name`; an error if it does not exist.
    fn open(name: &str) -> Result<Container, Error> {
        let bucket = bucket_of(name);
        let info = bucket.info().map_err(js_error)?;
        match info {
            None => Err(format!("no container `{name}`")),
            Some(info) if !info.config.allow_direct => Err(format!(
                "container `{name}` (bucket `{}`) does not allow direct gets (created by an old client?)",
                bucket.name
            )),
            Some(_) => Ok(Container {
                name: name.to_string(),
                bucket,
            }),
        }
    }

    fn missing(&self, object: &str) -> Error {
        format!("no object `{object}` in container `{}`", self.name)
    }

    /// Object `name`, links followed: where its chunks are and its metadata.
    fn resolve(&self, object: &str) -> Result<(Bucket, bucket::Object), Error> {
        self.bucket
            .resolve(object)
            .map_err(js_error)?
            .ok_or_else(|| self.missing(object))
    }
}

struct Plugin;

impl BlobstoreGuest for Plugin {
    fn create_container(name: String) -> Result<ContainerHandle, Error> {
        let bucket = bucket_of(&name);
        if !bucket.create().map_err(js_error)? {
            return Err(format!("container `{name}` already exists"));
        }
        Ok(ContainerHandle::new(Container { name, bucket }))
    }

    fn get_container(name: String) -> Result<ContainerHandle, Error> {
        Container::open(&name).map(ContainerHandle::new)
    }

    fn delete_container(name: String) -> Result<(), Error> {
        match bucket_of(&name).delete().map_err(js_error)? {
            true => Ok(()),
            false => Err(format!("no container `{name}`")),
        }
    }

    fn container_exists(name: String) -> Result<bool, Error> {
        Ok(bucket_of(&name).info().map_err(js_error)?.is_some())
    }

    fn copy_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        copy(&src, &dest).map(|_| ())
    }

    fn move_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        let from = copy(&src, &dest)?;
        if src.container != dest.container || src.object != dest.object {
            from.bucket.delete_object(&src.object).map_err(js_error)?;
        }
        Ok(())
    }
}

/// Copies object `src` to `dest` chunk by chunk (the destination container
/// must exist); returns the source container.
fn copy(src: &ObjectId, dest: &ObjectId) -> Result<Container, Error> {
    let from = Container::open(&src.container)?;
    let to = Container::open(&dest.container)?;
    let (holder, object) = from.resolve(&src.object)?;
    let mut upload = upload::Upload::start(to.bucket, &dest.object);
    let size = object.info.size;
    download::read(&holder, &object.info, 0, size, &mut |chunk| {
        upload.write(chunk).map_err(js_error)
    })?;
    upload.finish().map_err(js_error)?;
    Ok(from)
}

impl GuestContainer for Container {
    fn name(&self) -> Result<String, Error> {
        Ok(self.name.clone())
    }

    fn info(&self) -> Result<ContainerMetadata, Error> {
        let info = self
            .bucket
            .info()
            .map_err(js_error)?
            .ok_or_else(|| format!("no container `{}`", self.name))?;
        Ok(ContainerMetadata {
            name: self.name.clone(),
            created_at: keel_jetstream::time::unix_seconds(&info.created).unwrap_or(0),
        })
    }

    fn get_data(&self, name: String, start: u64, end: u64) -> Result<IncomingValue, Error> {
        let (holder, object) = self.resolve(&name)?;
        Ok(IncomingValue::new(values::Incoming::new(
            holder,
            object.info,
            start,
            end,
        )))
    }

    fn write_data(&self, name: String, data: OutgoingValueBorrow<'_>) -> Result<(), Error> {
        data.get::<values::Outgoing>()
            .write_to(self.bucket.clone(), &name)
    }

    fn list_objects(&self) -> Result<StreamObjectNames, Error> {
        listing::Names::start(&self.bucket)
            .map(StreamObjectNames::new)
            .map_err(js_error)
    }

    fn delete_object(&self, name: String) -> Result<(), Error> {
        self.bucket.delete_object(&name).map_err(js_error)
    }

    fn delete_objects(&self, names: Vec<String>) -> Result<(), Error> {
        names
            .iter()
            .try_for_each(|name| self.bucket.delete_object(name).map_err(js_error))
    }

    fn has_object(&self, name: String) -> Result<bool, Error> {
        Ok(self.bucket.object(&name).map_err(js_error)?.is_some())
    }

    fn object_info(&self, name: String) -> Result<ObjectMetadata, Error> {
        let (_, object) = self.resolve(&name)?;
        Ok(ObjectMetadata {
            name,
            container: self.name.clone(),
            created_at: object.written,
            size: object.info.size,
        })
    }

    fn clear(&self) -> Result<(), Error> {
        self.bucket.clear().map_err(js_error)
    }
}

impl exports::wasi::blobstore::container::Guest for Plugin {
    type Container = Container;
    type StreamObjectNames = listing::Names;
}

impl exports::wasi::blobstore::types::Guest for Plugin {
    type OutgoingValue = values::Outgoing;
    type IncomingValue = values::Incoming;
}

export!(Plugin);
