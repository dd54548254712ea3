//! keel's in-memory blob store: `wasi:blobstore@0.2.0-draft` (blobstore,
//! container, types) kept in this component's memory. It runs in shared
//! mode, so one instance holds every workload's containers; containers are
//! namespaced by the calling workload (from `keel:core/identity`), so
//! workload A's `create-container("photos")` is not B's.
//!
//! Values travel as `wasi:io` streams made with `keel:core/pipe`:
//! `outgoing-value-write-body` hands the workload the writing end of a pipe
//! whose reading end the plugin keeps; `write-data` stores what has been
//! written so far and `finish` whatever came after, so either order of
//! calls works. `incoming-value-consume-async` returns the reading end of a
//! pipe already holding the bytes.
//!
//! `get-data(name, start, end)` returns bytes `start..=end` (inclusive, as
//! the interface says), `end` clamped to the object's last byte; a `start`
//! past the end gives no bytes. Timestamps are seconds since the Unix
//! epoch. `list-objects` lists names in order, from a snapshot taken when it
//! is called.
//!
//! Each namespace has a quota (config `max_bytes_per_namespace`, default
//! 64 MiB of container names, object names and values, including values
//! still being written; `max_objects_per_namespace`, default 100,000
//! objects and containers). A write past it fails with a `quota exceeded:
//! …` error and changes nothing, rather than filling the instance's memory
//! until an allocation traps it.

wit_bindgen::generate!({
    inline: "
        package keel:blobstore-memory;
        world plugin {
            import keel:core/identity@0.1.0;
            import keel:core/pipe@0.1.0;
            export wasi:blobstore/blobstore@0.2.0-draft;
            export wasi:blobstore/container@0.2.0-draft;
            export wasi:blobstore/types@0.2.0-draft;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-blobstore-0.2.0-draft"],
    with: {
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

mod store;
mod values;

use exports::wasi::blobstore::blobstore::Guest as BlobstoreGuest;
use exports::wasi::blobstore::container::{
    Container as ContainerHandle, ContainerMetadata, Error, GuestContainer, GuestStreamObjectNames,
    IncomingValue, ObjectMetadata, OutgoingValueBorrow, StreamObjectNames,
};
use exports::wasi::blobstore::types::ObjectId;
use store::Place;

struct Plugin;

/// A container handle: whose and which.
pub struct Container(Place);

/// A snapshot of object names being read.
pub struct Names {
    names: std::cell::RefCell<std::collections::VecDeque<String>>,
}

impl BlobstoreGuest for Plugin {
    fn create_container(name: String) -> Result<ContainerHandle, Error> {
        let place = Place::of_caller(&name);
        store::create(&place)?;
        Ok(ContainerHandle::new(Container(place)))
    }

    fn get_container(name: String) -> Result<ContainerHandle, Error> {
        let place = Place::of_caller(&name);
        store::with(&place, |_| Ok(()))?;
        Ok(ContainerHandle::new(Container(place)))
    }

    fn delete_container(name: String) -> Result<(), Error> {
        store::delete(&Place::of_caller(&name))
    }

    fn container_exists(name: String) -> Result<bool, Error> {
        Ok(store::exists(&Place::of_caller(&name)))
    }

    fn copy_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        store::copy(&src, &dest, false)
    }

    fn move_object(src: ObjectId, dest: ObjectId) -> Result<(), Error> {
        store::copy(&src, &dest, true)
    }
}

impl GuestContainer for Container {
    fn name(&self) -> Result<String, Error> {
        Ok(self.0.name.clone())
    }

    fn info(&self) -> Result<ContainerMetadata, Error> {
        store::with(&self.0, |c| {
            Ok(ContainerMetadata {
                name: self.0.name.clone(),
                created_at: c.created,
            })
        })
    }

    fn get_data(&self, name: String, start: u64, end: u64) -> Result<IncomingValue, Error> {
        let bytes = store::with(&self.0, |c| {
            let object = c
                .objects
                .get(&name)
                .ok_or_else(|| missing_object(&self.0.name, &name))?;
            Ok(range(&object.data, start, end).to_vec())
        })?;
        Ok(IncomingValue::new(values::Incoming::new(bytes)))
    }

    fn write_data(&self, name: String, data: OutgoingValueBorrow<'_>) -> Result<(), Error> {
        store::with(&self.0, |_| Ok(()))?;
        data.get::<values::Outgoing>()
            .write_to(self.0.clone(), name)
    }

    fn list_objects(&self) -> Result<StreamObjectNames, Error> {
        let names = store::with(&self.0, |c| Ok(c.objects.keys().cloned().collect()))?;
        Ok(StreamObjectNames::new(Names {
            names: std::cell::RefCell::new(names),
        }))
    }

    fn delete_object(&self, name: String) -> Result<(), Error> {
        store::remove(&self.0, &[name])
    }

    fn delete_objects(&self, names: Vec<String>) -> Result<(), Error> {
        store::remove(&self.0, &names)
    }

    fn has_object(&self, name: String) -> Result<bool, Error> {
        store::with(&self.0, |c| Ok(c.objects.contains_key(&name)))
    }

    fn object_info(&self, name: String) -> Result<ObjectMetadata, Error> {
        store::with(&self.0, |c| {
            let object = c
                .objects
                .get(&name)
                .ok_or_else(|| missing_object(&self.0.name, &name))?;
            Ok(ObjectMetadata {
                name: name.clone(),
                container: self.0.name.clone(),
                created_at: object.created,
                size: object.data.len() as u64,
            })
        })
    }

    fn clear(&self) -> Result<(), Error> {
        store::clear(&self.0)
    }
}

impl GuestStreamObjectNames for Names {
    fn read_stream_object_names(&self, len: u64) -> Result<(Vec<String>, bool), Error> {
        let mut names = self.names.borrow_mut();
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(names.len());
        let read: Vec<String> = names.drain(..n).collect();
        Ok((read, names.is_empty()))
    }

    fn skip_stream_object_names(&self, num: u64) -> Result<(u64, bool), Error> {
        let mut names = self.names.borrow_mut();
        let n = usize::try_from(num).unwrap_or(usize::MAX).min(names.len());
        names.drain(..n);
        Ok((n as u64, names.is_empty()))
    }
}

impl exports::wasi::blobstore::container::Guest for Plugin {
    type Container = Container;
    type StreamObjectNames = Names;
}

impl exports::wasi::blobstore::types::Guest for Plugin {
    type OutgoingValue = values::Outgoing;
    type IncomingValue = values::Incoming;
}

/// Bytes `start..=end` of `data`, `end` clamped to the last byte.
fn range(data: &[u8], start: u64, end: u64) -> &[u8] {
    let len = data.len() as u64;
    if start >= len || start > end {
        return &[];
    }
    let last = end.min(len - 1);
    &data[start as usize..=last as usize]
}

fn missing_object(container: &str, name: &str) -> Error {
    format!("no object `{name}` in container `{container}`")
}

export!(Plugin);
