//! `keyvalue-audit`: a layer over any `wasi:keyvalue@0.2.0-draft` backend.
//! It exports `store`, `atomics` and `batch`, imports the same three from
//! the plugin it wraps (the manifest's `wraps = "…"`), and records every
//! call through `wasi:logging` before handing back the backend's answer
//! unchanged.
//!
//! **Record**: one `wasi:logging` record per call, level `info`, context
//! `keyvalue-audit`, message
//!
//! ```text
//! caller=<namespace>/<workload> op=<operation> bucket="<bucket>" key="<key>" outcome=ok
//! ```
//!
//! `caller` is the workload the call serves (from `keel:core/identity`:
//! keel passes the original caller through the layer to the backend too);
//! `op` is the interface's function name (`open`, `get`, `set`, `delete`,
//! `exists`, `list-keys`, `increment`, `get-many`, `set-many`,
//! `delete-many`); `key` is left out where a call has none (`open`,
//! `list-keys`) and is the keys joined by `,` for the batch functions;
//! `outcome` is `ok` or `error(<the backend's error>)`. Names are written
//! as JSON strings, so a quote or a space in a key cannot forge a field.
//!
//! The layer keeps no state of its own between calls (a bucket handle holds
//! only the backend's handle and its name), so it may run composed or
//! shared. A function the backend does not export reaches keel's deny
//! implementation, whose error the record shows.

wit_bindgen::generate!({
    inline: "
        package keel:keyvalue-audit;
        world plugin {
            import keel:core/identity@0.1.0;
            import wasi:logging/logging@0.1.0-draft;
            import wasi:keyvalue/store@0.2.0-draft;
            import wasi:keyvalue/atomics@0.2.0-draft;
            import wasi:keyvalue/batch@0.2.0-draft;
            export wasi:keyvalue/store@0.2.0-draft;
            export wasi:keyvalue/atomics@0.2.0-draft;
            export wasi:keyvalue/batch@0.2.0-draft;
        }
    ",
    path: [
        "../../wit/keel-core",
        "../../wit/wasi-logging-0.1.0-draft",
        "../../wit/wasi-keyvalue-0.2.0-draft",
    ],
    generate_all,
});

keel_guest::plugin_metadata!();

use exports::wasi::keyvalue::store::{
    Bucket, BucketBorrow, Error, Guest as StoreGuest, GuestBucket, KeyResponse,
};
use keel_guest::log_record::json_string;
use wasi::keyvalue as backend;
use wasi::logging::logging::{Level, log};

/// The `wasi:logging` context of every record.
const CONTEXT: &str = "keyvalue-audit";

/// A bucket handed to the caller: the backend's bucket and its name.
struct Audited {
    inner: backend::store::Bucket,
    name: String,
}

/// The backend's error as this layer's (the same variant: the types are
/// the same interface's, generated twice).
fn lift(error: backend::store::Error) -> Error {
    match error {
        backend::store::Error::NoSuchStore => Error::NoSuchStore,
        backend::store::Error::AccessDenied => Error::AccessDenied,
        backend::store::Error::Other(text) => Error::Other(text),
    }
}

/// How an error reads in a record.
fn describe(error: &Error) -> String {
    match error {
        Error::NoSuchStore => "no-such-store".to_string(),
        Error::AccessDenied => "access-denied".to_string(),
        Error::Other(text) => format!("other: {text}"),
    }
}

/// Records one call: `op` on `bucket` (with `key`, if the call has one),
/// and how it ended; then hands back `result` as the layer's.
fn record<T>(
    op: &str,
    bucket: &str,
    key: Option<&str>,
    result: Result<T, backend::store::Error>,
) -> Result<T, Error> {
    let result = result.map_err(lift);
    let caller = keel::core::identity::caller();
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error({})", describe(e)),
    };
    let key = key
        .map(|k| format!(" key={}", json_string(k)))
        .unwrap_or_default();
    let message = format!(
        "caller={}/{} op={op} bucket={}{key} outcome={outcome}",
        caller.namespace,
        caller.name,
        json_string(bucket)
    );
    log(Level::Info, CONTEXT, &message);
    result
}

struct Layer;

impl StoreGuest for Layer {
    type Bucket = Audited;

    fn open(identifier: String) -> Result<Bucket, Error> {
        let opened = record("open", &identifier, None, backend::store::open(&identifier))?;
        Ok(Bucket::new(Audited {
            inner: opened,
            name: identifier,
        }))
    }
}

impl GuestBucket for Audited {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        record("get", &self.name, Some(&key), self.inner.get(&key))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        record("set", &self.name, Some(&key), self.inner.set(&key, &value))
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        record("delete", &self.name, Some(&key), self.inner.delete(&key))
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        record("exists", &self.name, Some(&key), self.inner.exists(&key))
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let listed = self.inner.list_keys(cursor).map(|r| KeyResponse {
            keys: r.keys,
            cursor: r.cursor,
        });
        record("list-keys", &self.name, None, listed)
    }
}

impl exports::wasi::keyvalue::atomics::Guest for Layer {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let bucket: &Audited = bucket.get();
        let result = backend::atomics::increment(&bucket.inner, &key, delta);
        record("increment", &bucket.name, Some(&key), result)
    }
}

type KeyValue = (String, Vec<u8>);

impl exports::wasi::keyvalue::batch::Guest for Layer {
    fn get_many(
        bucket: BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<KeyValue>>, Error> {
        let bucket: &Audited = bucket.get();
        let result = backend::batch::get_many(&bucket.inner, &keys);
        record("get-many", &bucket.name, Some(&keys.join(",")), result)
    }

    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<KeyValue>) -> Result<(), Error> {
        let bucket: &Audited = bucket.get();
        let keys: Vec<&str> = key_values.iter().map(|(k, _)| k.as_str()).collect();
        let keys = keys.join(",");
        let result = backend::batch::set_many(&bucket.inner, &key_values);
        record("set-many", &bucket.name, Some(&keys), result)
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        let bucket: &Audited = bucket.get();
        let result = backend::batch::delete_many(&bucket.inner, &keys);
        record("delete-many", &bucket.name, Some(&keys.join(",")), result)
    }
}

export!(Layer);
