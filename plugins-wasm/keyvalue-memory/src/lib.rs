//! keel's in-memory key-value plugin: `wasi:keyvalue@0.2.0-draft` store,
//! atomics and batch, kept in this component's memory. It runs in shared
//! mode, so one instance holds the data of every workload of a host; buckets
//! are namespaced by the calling workload (learned from
//! `keel:core/identity`), so workload A's `open("default")` is not B's.
//!
//! A bucket the manifest names in the plugin's `shared_buckets` config (a
//! comma-separated list) is one bucket for every workload instead.
//!
//! `list-keys` returns keys in the order they were first written, 1,000 per
//! page; its cursor is a position in that order, so keys written while a
//! listing is under way appear on a later page and no key is listed twice.
//! Counters use [`keel_guest::counter`]'s decimal encoding.

wit_bindgen::generate!({
    inline: "
        package keel:keyvalue-memory;
        world plugin {
            import keel:core/identity@0.1.0;
            export wasi:keyvalue/store@0.2.0-draft;
            export wasi:keyvalue/atomics@0.2.0-draft;
            export wasi:keyvalue/batch@0.2.0-draft;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-keyvalue-0.2.0-draft"],
    generate_all,
});

use exports::wasi::keyvalue::store::{
    Bucket, BucketBorrow, Error, Guest as StoreGuest, GuestBucket, KeyResponse,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Keys per `list-keys` page.
const PAGE: usize = 1000;

/// One bucket: values by key, and keys in first-write order for listing.
///
/// Keys are hashed with the standard library's SipHash on purpose: they
/// come from every tenant of a shared instance, and faster hashers seeded
/// from addresses (foldhash, say) have no address randomisation to draw on
/// in Wasm, so one tenant's colliding keys could slow the calls of every
/// tenant (one call at a time runs in the instance).
#[derive(Default)]
struct Data {
    values: HashMap<String, (u64, Vec<u8>)>,
    order: BTreeMap<u64, String>,
    next: u64,
}

impl Data {
    fn set(&mut self, key: &str, value: Vec<u8>) {
        if let Some(entry) = self.values.get_mut(key) {
            entry.1 = value;
            return;
        }
        let position = self.next;
        self.next += 1;
        self.order.insert(position, key.to_string());
        self.values.insert(key.to_string(), (position, value));
    }

    fn delete(&mut self, key: &str) {
        if let Some((position, _)) = self.values.remove(key) {
            self.order.remove(&position);
        }
    }

    fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.values.get(key).map(|(_, value)| value)
    }

    fn page(&self, cursor: u64) -> KeyResponse {
        let mut keys = Vec::new();
        let mut next = None;
        for (position, key) in self.order.range(cursor..) {
            if keys.len() == PAGE {
                next = Some(*position);
                break;
            }
            keys.push(key.clone());
        }
        KeyResponse { keys, cursor: next }
    }
}

/// A bucket's data, shared by the bucket's handles.
type Shared = Rc<RefCell<Data>>;

thread_local! {
    /// `(owner, bucket)` → data.
    static BUCKETS: RefCell<HashMap<(String, String), Shared>> = RefCell::new(HashMap::new());
}

/// A bucket handle: the bucket's data, found once when it is opened (a
/// bucket is never removed, so the handle stays valid).
struct Handle {
    data: Shared,
}

impl Handle {
    /// The handle of `owner`'s bucket `name`, made on first use.
    fn open(owner: String, name: String) -> Handle {
        let data = BUCKETS.with(|buckets| {
            buckets
                .borrow_mut()
                .entry((owner, name))
                .or_default()
                .clone()
        });
        Handle { data }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.data.borrow_mut())
    }
}

/// Configuration baked in by keel (the plugin's manifest `config`).
static CONFIG: keel_guest::baked::Region<4096> = keel_guest::baked::Region::new();

thread_local! {
    /// Bucket names every workload shares, from `shared_buckets`.
    static SHARED: Vec<String> = CONFIG
        .pairs()
        .into_iter()
        .filter(|(key, _)| key == "shared_buckets")
        .flat_map(|(_, names)| names.split(',').map(|n| n.trim().to_string()).collect::<Vec<_>>())
        .filter(|name| !name.is_empty())
        .collect();
}

/// Whose a bucket is: the calling workload's, or nobody's for a shared one.
fn owner_of(bucket: &str) -> String {
    if SHARED.with(|shared| shared.iter().any(|s| s == bucket)) {
        return String::new();
    }
    let caller = keel::core::identity::caller();
    format!("{}/{}", caller.namespace, caller.name)
}

struct Plugin;

impl StoreGuest for Plugin {
    type Bucket = Handle;

    fn open(identifier: String) -> Result<Bucket, Error> {
        Ok(Bucket::new(Handle::open(owner_of(&identifier), identifier)))
    }
}

impl GuestBucket for Handle {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.with(|data| data.get(&key).cloned()))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.with(|data| data.set(&key, value));
        Ok(())
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.with(|data| data.delete(&key));
        Ok(())
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        Ok(self.with(|data| data.values.contains_key(&key)))
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        Ok(self.with(|data| data.page(cursor.unwrap_or(0))))
    }
}

impl exports::wasi::keyvalue::atomics::Guest for Plugin {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data| {
            let value = keel_guest::counter::increment(data.get(&key).map(Vec::as_slice), delta)
                .map_err(Error::Other)?;
            data.set(&key, keel_guest::counter::encode(value));
            Ok(value)
        })
    }
}

type KeyValue = (String, Vec<u8>);

impl exports::wasi::keyvalue::batch::Guest for Plugin {
    fn get_many(
        bucket: BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<KeyValue>>, Error> {
        let handle: &Handle = bucket.get();
        Ok(handle.with(|data| {
            keys.into_iter()
                .map(|k| data.get(&k).cloned().map(|v| (k, v)))
                .collect()
        }))
    }

    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<KeyValue>) -> Result<(), Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data| key_values.into_iter().for_each(|(k, v)| data.set(&k, v)));
        Ok(())
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data| keys.iter().for_each(|k| data.delete(k)));
        Ok(())
    }
}

export!(Plugin);
