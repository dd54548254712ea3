//! keel's JetStream KV plugin: `wasi:keyvalue@0.2.0-draft` store, atomics
//! and batch on NATS JetStream KV buckets (ADR-8), spoken from inside the
//! component over `keel:core/nats`. It runs composed into each workload
//! and keeps no state between calls: the server holds everything.
//!
//! **Bucket names.** A workload's `open("orders")` is the KV bucket
//! `<namespace>-<workload>-orders` ([`keel_names::scoped`]; stream
//! `KV_<bucket>`), so no two workloads' buckets collide. The manifest may map
//! an identifier to a raw bucket name with config `bucket.<identifier> =
//! "<bucket>"` (and must then grant the plugin that bucket's subjects).
//! A missing bucket is created on first `open` unless config `create` is
//! `"false"`, in which case `open` fails with `no-such-store`.
//!
//! **Keys** that are valid NATS KV keys (`[-/_=.A-Za-z0-9]`, no leading,
//! trailing or doubled `.`) and do not start with `=` are stored as they are,
//! so other NATS clients see the same keys. Any other key is stored as `=`
//! followed by its UTF-8 in unpadded URL-safe base64 ([`keel_jetstream::kv`]).
//!
//! **Counters** use [`keel_guest::counter`]'s decimal encoding; `increment`
//! is a compare-and-swap on the key's revision, retried on conflict.
//!
//! **`list-keys`** pages (1,000 keys) with a cursor that is a stream
//! sequence: keys written during a listing appear on a later page, and none
//! present at the start is missed. A key rewritten during the listing moves
//! to a later sequence and may then be listed again.

wit_bindgen::generate!({
    inline: "
        package keel:keyvalue-nats;
        world plugin {
            import keel:core/identity@0.1.0;
            import keel:core/nats@0.1.0;
            export wasi:keyvalue/store@0.2.0-draft;
            export wasi:keyvalue/atomics@0.2.0-draft;
            export wasi:keyvalue/batch@0.2.0-draft;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-keyvalue-0.2.0-draft"],
    with: {
        "keel:core/nats@0.1.0": keel_jetstream::nats,
    },
    generate_all,
});

keel_guest::plugin_metadata!();

mod bucket;

use bucket::Kv;
use exports::wasi::keyvalue::store::{
    Bucket, BucketBorrow, Error, Guest as StoreGuest, GuestBucket, KeyResponse,
};
use keel_jetstream::JsError;

/// Configuration baked in by keel (the plugin's manifest `config`).
static CONFIG: keel_guest::baked::Region<4096> = keel_guest::baked::Region::new();

/// A JetStream error as a `wasi:keyvalue` error; failures of the server or
/// the connection are also logged (as a structured stderr line the host
/// attributes to the workload), since the guest may swallow the error.
fn kv_error(e: JsError) -> Error {
    match e {
        JsError::Nats(keel_jetstream::nats::Error::NotGranted(_)) => Error::AccessDenied,
        other => {
            let message = other.to_string();
            eprintln!(
                "{}",
                keel_guest::log_record::line("error", "keyvalue-nats", &message)
            );
            Error::Other(message)
        }
    }
}

struct Plugin;

impl StoreGuest for Plugin {
    type Bucket = Kv;

    fn open(identifier: String) -> Result<Bucket, Error> {
        let pairs = CONFIG.pairs();
        let setting = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let name = match setting(&format!("bucket.{identifier}")) {
            Some(raw) => raw,
            None => {
                let caller = keel::core::identity::caller();
                keel_names::scoped(&caller.namespace, &caller.name, &identifier)
            }
        };
        let create = setting("create").is_none_or(|v| v != "false");
        match Kv::open(&name, create).map_err(kv_error)? {
            Some(kv) => Ok(Bucket::new(kv)),
            None => Err(Error::NoSuchStore),
        }
    }
}

impl GuestBucket for Kv {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entry(&key).map_err(kv_error)?.and_then(|e| e.value))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.put(&key, &value, None).map(|_| ()).map_err(kv_error)
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.remove(&key).map_err(kv_error)
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        Ok(self
            .entry(&key)
            .map_err(kv_error)?
            .is_some_and(|e| e.value.is_some()))
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let (keys, cursor) = self.page(cursor.unwrap_or(0)).map_err(kv_error)?;
        Ok(KeyResponse { keys, cursor })
    }
}

impl exports::wasi::keyvalue::atomics::Guest for Plugin {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let kv: &Kv = bucket.get();
        kv.increment(&key, delta).map_err(|e| match e {
            bucket::IncrementError::NotACounter(why) => Error::Other(why),
            bucket::IncrementError::Js(e) => kv_error(e),
        })
    }
}

type KeyValue = (String, Vec<u8>);

impl exports::wasi::keyvalue::batch::Guest for Plugin {
    fn get_many(
        bucket: BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<KeyValue>>, Error> {
        let kv: &Kv = bucket.get();
        keys.into_iter()
            .map(|key| {
                Ok(kv
                    .entry(&key)
                    .map_err(kv_error)?
                    .and_then(|e| e.value)
                    .map(|v| (key, v)))
            })
            .collect()
    }

    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<KeyValue>) -> Result<(), Error> {
        let kv: &Kv = bucket.get();
        key_values
            .iter()
            .try_for_each(|(k, v)| kv.put(k, v, None).map(|_| ()).map_err(kv_error))
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        let kv: &Kv = bucket.get();
        keys.iter().try_for_each(|k| kv.remove(k).map_err(kv_error))
    }
}

export!(Plugin);
