//! keel's in-memory key-value plugin: `wasi:keyvalue@0.2.0-draft` store,
//! atomics and batch, kept in this component's memory. It runs in shared
//! mode, so one instance holds the data of every workload it serves (those
//! of one namespace, by default); buckets are namespaced by the calling
//! workload (learned from `keel:core/identity`), so workload A's
//! `open("default")` is not B's.
//!
//! A bucket the manifest names in the plugin's `shared_buckets` config (a
//! comma-separated list) is one bucket for every workload the instance
//! serves instead.
//!
//! Each namespace has a quota (config `max_bytes_per_namespace`, default
//! 64 MiB of key, bucket name and value bytes; `max_keys_per_namespace`,
//! default 100,000 keys and buckets); shared buckets count as a namespace
//! of their own. A write past it fails with `error::other("quota
//! exceeded: …")` and changes nothing, rather than filling the instance's
//! memory until an allocation traps it.
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

keel_guest::plugin_metadata!();

use exports::wasi::keyvalue::store::{
    Bucket, BucketBorrow, Error, Guest as StoreGuest, GuestBucket, KeyResponse,
};
use keel_guest::quota::{self, Quota, Usage};
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
    /// Sets `key`, if `account`'s quota allows.
    fn set(&mut self, account: &Account, key: &str, value: Vec<u8>) -> Result<(), Error> {
        if let Some(entry) = self.values.get_mut(key) {
            account.charge(quota::len(value.len()) - quota::len(entry.1.len()), 0)?;
            entry.1 = value;
            return Ok(());
        }
        account.charge(quota::len(key.len() + value.len()), 1)?;
        let position = self.next;
        self.next += 1;
        self.order.insert(position, key.to_string());
        self.values.insert(key.to_string(), (position, value));
        Ok(())
    }

    fn delete(&mut self, account: &Account, key: &str) {
        if let Some((position, value)) = self.values.remove(key) {
            self.order.remove(&position);
            // Shrinking never fails.
            let _ = account.charge(-quota::len(key.len() + value.len()), -1);
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
    /// What each namespace holds (`""`: the shared buckets).
    static USAGE: RefCell<HashMap<String, Rc<RefCell<Usage>>>> = RefCell::new(HashMap::new());
    /// Each namespace's quota, from the config.
    static QUOTA: Quota = Quota::from_config(&CONFIG.pairs(), "max_keys_per_namespace");
}

/// The namespace a bucket's contents count against.
#[derive(Clone)]
struct Account {
    namespace: String,
    usage: Rc<RefCell<Usage>>,
}

impl Account {
    fn of(namespace: String) -> Account {
        let usage = USAGE.with(|all| {
            all.borrow_mut()
                .entry(namespace.clone())
                .or_default()
                .clone()
        });
        Account { namespace, usage }
    }

    /// Counts `bytes` and `entries` more (or fewer), within the quota.
    fn charge(&self, bytes: i64, entries: i64) -> Result<(), Error> {
        QUOTA
            .with(|quota| {
                self.usage
                    .borrow_mut()
                    .apply(quota, &self.namespace, bytes, entries)
            })
            .map_err(Error::Other)
    }
}

/// A bucket handle: the bucket's data, found once when it is opened (a
/// bucket is never removed, so the handle stays valid), and the account
/// its contents count against.
struct Handle {
    data: Shared,
    account: Account,
}

impl Handle {
    /// The handle of `owner`'s bucket `name`, made on first use (counted
    /// against `account`).
    fn open(owner: String, name: String, account: Account) -> Result<Handle, Error> {
        let data = BUCKETS.with(|buckets| {
            let mut buckets = buckets.borrow_mut();
            let key = (owner, name);
            if let Some(data) = buckets.get(&key) {
                return Ok(data.clone());
            }
            account.charge(quota::len(key.1.len()), 1)?;
            Ok(buckets.entry(key).or_default().clone())
        })?;
        Ok(Handle { data, account })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Data, &Account) -> R) -> R {
        f(&mut self.data.borrow_mut(), &self.account)
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

/// Whose a bucket is, and the namespace it counts against: the calling
/// workload's, or nobody's for a shared one.
fn owner_of(bucket: &str) -> (String, Account) {
    if SHARED.with(|shared| shared.iter().any(|s| s == bucket)) {
        return (String::new(), Account::of(String::new()));
    }
    let caller = keel::core::identity::caller();
    let owner = format!("{}/{}", caller.namespace, caller.name);
    (owner, Account::of(caller.namespace))
}

struct Plugin;

impl StoreGuest for Plugin {
    type Bucket = Handle;

    fn open(identifier: String) -> Result<Bucket, Error> {
        let (owner, account) = owner_of(&identifier);
        Ok(Bucket::new(Handle::open(owner, identifier, account)?))
    }
}

impl GuestBucket for Handle {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.with(|data, _| data.get(&key).cloned()))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.with(|data, account| data.set(account, &key, value))
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.with(|data, account| data.delete(account, &key));
        Ok(())
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        Ok(self.with(|data, _| data.values.contains_key(&key)))
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        Ok(self.with(|data, _| data.page(cursor.unwrap_or(0))))
    }
}

impl exports::wasi::keyvalue::atomics::Guest for Plugin {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data, account| {
            let value = keel_guest::counter::increment(data.get(&key).map(Vec::as_slice), delta)
                .map_err(Error::Other)?;
            data.set(account, &key, keel_guest::counter::encode(value))?;
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
        Ok(handle.with(|data, _| {
            keys.into_iter()
                .map(|k| data.get(&k).cloned().map(|v| (k, v)))
                .collect()
        }))
    }

    /// Not atomic, as the interface allows: past the quota, the pairs
    /// before the one that did not fit stay set.
    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<KeyValue>) -> Result<(), Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data, account| {
            key_values
                .into_iter()
                .try_for_each(|(k, v)| data.set(account, &k, v))
        })
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        let handle: &Handle = bucket.get();
        handle.with(|data, account| keys.iter().for_each(|k| data.delete(account, k)));
        Ok(())
    }
}

export!(Plugin);
