//! keel's Redis plugin: `wasi:keyvalue@0.2.0-draft` store, atomics and
//! batch on a Redis server, spoken as RESP2 over `wasi:sockets` TCP from
//! inside the component. It imports sockets, so it runs in shared mode
//! only, and reaches only the addresses its `[plugin.grants] sockets`
//! list; one connection per instance, opened on first use and again after
//! it broke.
//!
//! **Config** (`[plugin.config]`): `address` (`host:port`, required),
//! `password` (and `username`) for `AUTH`, `db` for `SELECT`, `prefix`
//! (default `keel:`), `timeout_ms` (default 2,000: how long one call may
//! wait on Redis in all) and `max_reply_bytes` (default 32 MiB).
//!
//! **Tenancy**: keys are named per caller (learned from
//! `keel:core/identity`) and bucket, see [`keys`].
//!
//! **Operations**: `get`/`set`/`delete`/`exists` are `GET`/`SET`/`DEL`/
//! `EXISTS`; the batch functions `MGET`/`MSET`/`DEL`; `increment` a
//! compare-and-swap (`WATCH`, `GET`, `MULTI`/`SET`/`EXEC`) with
//! [`keel_guest::counter`]'s decimal encoding, so it behaves as keel's
//! other backends do (a missing key is 0; a value that is not a counter,
//! or a sum past `u64`, is an error); `list-keys` is `SCAN` with `MATCH`
//! on the bucket's prefix, its cursor Redis's: keys present for the whole
//! listing are listed, keys that are not UTF-8 (written by other clients)
//! are skipped.

wit_bindgen::generate!({
    inline: "
        package keel:keyvalue-redis;
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

keel_guest::plugin_metadata!();

mod client;
mod conn;
mod keys;
pub mod resp;
mod settings;

use client::{Client, Retry, refused};
use conn::{Deadline, Failure};
use exports::wasi::keyvalue::store::{
    Bucket, BucketBorrow, Error, Guest as StoreGuest, GuestBucket, KeyResponse,
};
use resp::Reply;
use std::cell::RefCell;

/// `SCAN`'s `COUNT` hint: about how many keys one step looks at.
const SCAN_COUNT: &str = "1000";
/// Steps one `list-keys` takes at most while they find none of the
/// bucket's keys (a small bucket in a large database), before it returns
/// an empty page with a cursor.
const SCAN_STEPS: usize = 16;
/// How often `increment` retries a compare-and-swap that lost a race.
const CAS_ATTEMPTS: usize = 100;

/// Configuration baked in by keel (the plugin's manifest `config`).
static CONFIG: keel_guest::baked::Region<4096> = keel_guest::baked::Region::new();

thread_local! {
    static CLIENT: RefCell<Client> =
        RefCell::new(Client::new(settings::Settings::from_pairs(&CONFIG.pairs())));
}

/// Runs `f` with the client and a deadline for this call.
fn with_client<R>(
    f: impl FnOnce(&mut Client, &Deadline) -> Result<R, Failure>,
) -> Result<R, Error> {
    CLIENT
        .with(|client| {
            let mut client = client.borrow_mut();
            let deadline = client.deadline()?;
            f(&mut client, &deadline)
        })
        .map_err(kv_error)
}

/// A failure as a `wasi:keyvalue` error, and logged (as a structured
/// stderr line the host attributes to the plugin), since the guest may
/// swallow the error.
fn kv_error(failure: Failure) -> Error {
    let message = format!("keyvalue-redis: {failure}");
    eprintln!(
        "{}",
        keel_guest::log_record::line("error", "keyvalue-redis", &message)
    );
    Error::Other(message)
}

fn unexpected(what: &str, reply: &Reply) -> Failure {
    Failure::Reply(format!("unexpected reply to {what}: {reply:?}"))
}

/// An open bucket: the prefix of its keys.
pub struct Handle {
    prefix: Vec<u8>,
}

impl Handle {
    fn key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key.as_bytes());
        full
    }
}

struct Plugin;

impl StoreGuest for Plugin {
    type Bucket = Handle;

    /// Connects unless connected, so that a Redis that cannot be reached
    /// (or an address not granted) is reported by `open` already.
    fn open(identifier: String) -> Result<Bucket, Error> {
        let caller = keel::core::identity::caller();
        with_client(|client, deadline| {
            client.connect(deadline)?;
            let prefix = &client.settings()?.prefix;
            Ok(Bucket::new(Handle {
                prefix: keys::bucket_prefix(prefix, &caller.namespace, &caller.name, &identifier),
            }))
        })
    }
}

impl GuestBucket for Handle {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        with_client(|client, deadline| {
            match client.one(cmd!(b"GET", self.key(&key)), Retry::Idempotent, deadline)? {
                Reply::Bulk(value) => Ok(value),
                other => Err(unexpected("GET", &other)),
            }
        })
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        with_client(|client, deadline| {
            client.one(
                cmd!(b"SET", self.key(&key), value),
                Retry::Idempotent,
                deadline,
            )?;
            Ok(())
        })
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        with_client(|client, deadline| {
            client.one(cmd!(b"DEL", self.key(&key)), Retry::Idempotent, deadline)?;
            Ok(())
        })
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        with_client(|client, deadline| {
            match client.one(cmd!(b"EXISTS", self.key(&key)), Retry::Idempotent, deadline)? {
                Reply::Integer(n) => Ok(n > 0),
                other => Err(unexpected("EXISTS", &other)),
            }
        })
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let pattern = keys::match_pattern(&self.prefix);
        with_client(|client, deadline| {
            let mut cursor = cursor.unwrap_or(0);
            let mut keys = Vec::new();
            for _ in 0..SCAN_STEPS {
                let command = cmd!(
                    b"SCAN",
                    cursor.to_string(),
                    b"MATCH",
                    pattern,
                    b"COUNT",
                    SCAN_COUNT
                );
                let (next, found) =
                    scan_reply(client.one(command, Retry::Idempotent, deadline)?)?;
                cursor = next;
                keys.extend(found.into_iter().filter_map(|full| {
                    let key = full.strip_prefix(self.prefix.as_slice())?;
                    String::from_utf8(key.to_vec()).ok()
                }));
                if cursor == 0 || !keys.is_empty() {
                    break;
                }
            }
            Ok(KeyResponse {
                keys,
                cursor: (cursor != 0).then_some(cursor),
            })
        })
    }
}

/// The next cursor and the keys of a `SCAN` reply.
fn scan_reply(reply: Reply) -> Result<(u64, Vec<Vec<u8>>), Failure> {
    if let Reply::Array(Some(parts)) = &reply
        && let [Reply::Bulk(Some(cursor)), Reply::Array(Some(found))] = parts.as_slice()
        && let Some(cursor) = std::str::from_utf8(cursor)
            .ok()
            .and_then(|c| c.parse().ok())
    {
        let mut keys = Vec::with_capacity(found.len());
        for key in found {
            match key {
                Reply::Bulk(Some(key)) => keys.push(key.clone()),
                _ => return Err(unexpected("SCAN", &reply)),
            }
        }
        return Ok((cursor, keys));
    }
    Err(unexpected("SCAN", &reply))
}

impl exports::wasi::keyvalue::atomics::Guest for Plugin {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let handle: &Handle = bucket.get();
        let key = handle.key(&key);
        with_client(|client, deadline| {
            for _ in 0..CAS_ATTEMPTS {
                let watched = client.run(
                    &[cmd!(b"WATCH", key), cmd!(b"GET", key)],
                    Retry::Idempotent,
                    deadline,
                )?;
                let current = match watched.into_iter().map(refused).nth(1).transpose()? {
                    Some(Reply::Bulk(value)) => value,
                    other => {
                        return Err(Failure::Reply(format!(
                            "unexpected reply to GET: {other:?}"
                        )));
                    }
                };
                let next = match keel_guest::counter::increment(current.as_deref(), delta) {
                    Ok(next) => next,
                    Err(why) => {
                        client.one(cmd!(b"UNWATCH"), Retry::Never, deadline)?;
                        return Err(Failure::Server(why));
                    }
                };
                let encoded = keel_guest::counter::encode(next);
                let group = [cmd!(b"MULTI"), cmd!(b"SET", key, encoded), cmd!(b"EXEC")];
                match client
                    .run(&group, Retry::Never, deadline)?
                    .pop()
                    .map(refused)
                {
                    Some(Ok(Reply::Array(Some(_)))) => return Ok(next),
                    // Someone wrote the key since WATCH: try again.
                    Some(Ok(Reply::Array(None))) => continue,
                    Some(Err(e)) => return Err(e),
                    other => {
                        return Err(Failure::Reply(format!(
                            "unexpected reply to EXEC: {other:?}"
                        )));
                    }
                }
            }
            Err(Failure::Server(format!(
                "the increment lost {CAS_ATTEMPTS} races in a row to other writers"
            )))
        })
    }
}

type KeyValue = (String, Vec<u8>);

impl exports::wasi::keyvalue::batch::Guest for Plugin {
    fn get_many(
        bucket: BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<KeyValue>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let handle: &Handle = bucket.get();
        let mut command = cmd!(b"MGET");
        command.extend(keys.iter().map(|k| handle.key(k)));
        with_client(|client, deadline| {
            let reply = client.one(command, Retry::Idempotent, deadline)?;
            let Reply::Array(Some(values)) = reply else {
                return Err(unexpected("MGET", &reply));
            };
            if values.len() != keys.len() {
                return Err(Failure::Reply(format!(
                    "MGET of {} keys answered {} values",
                    keys.len(),
                    values.len()
                )));
            }
            keys.into_iter()
                .zip(values)
                .map(|(key, value)| match value {
                    Reply::Bulk(value) => Ok(value.map(|v| (key, v))),
                    other => Err(unexpected("MGET", &other)),
                })
                .collect()
        })
    }

    /// `MSET`: all pairs are set at once, or none.
    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<KeyValue>) -> Result<(), Error> {
        if key_values.is_empty() {
            return Ok(());
        }
        let handle: &Handle = bucket.get();
        let mut command = cmd!(b"MSET");
        for (key, value) in key_values {
            command.push(handle.key(&key));
            command.push(value);
        }
        with_client(|client, deadline| {
            client.one(command, Retry::Idempotent, deadline)?;
            Ok(())
        })
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let handle: &Handle = bucket.get();
        let mut command = cmd!(b"DEL");
        command.extend(keys.iter().map(|k| handle.key(k)));
        with_client(|client, deadline| {
            client.one(command, Retry::Idempotent, deadline)?;
            Ok(())
        })
    }
}

export!(Plugin);
