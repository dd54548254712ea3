//! One JetStream KV bucket (ADR-8): stream `KV_<bucket>`, key `k` at subject
//! `$KV.<bucket>.k`, one revision kept per key, deletes as `KV-Operation`
//! tombstones.

use keel_jetstream::JsError;
use keel_jetstream::api;
use keel_jetstream::consumer::Consumer;
use keel_jetstream::kv::{self, is_tombstone};
use serde_json::json;

/// Keys per `list-keys` page.
const PAGE: u32 = 1000;
/// How often `increment` retries a compare-and-swap that lost a race.
const CAS_ATTEMPTS: u32 = 1000;

/// An open bucket.
pub struct Kv {
    name: String,
    stream: String,
}

/// A key's latest message: its revision, and its value unless it is a
/// tombstone.
pub struct Entry {
    pub revision: u64,
    pub value: Option<Vec<u8>>,
}

/// Why an increment failed.
pub enum IncrementError {
    NotACounter(String),
    Js(JsError),
}

impl Kv {
    /// Opens bucket `name`, creating it if missing and `create` allows;
    /// `None` if it is missing and may not be created.
    pub fn open(name: &str, create: bool) -> Result<Option<Kv>, JsError> {
        let stream = kv::stream(name);
        let config = match api::stream_config(&stream)? {
            Some(config) => config,
            None if !create => return Ok(None),
            None => match api::create_stream(&bucket_config(name, &stream)) {
                Ok(info) => info.config,
                // Created meanwhile by someone else, with other settings: use it.
                Err(e) if e.is(10058) => match api::stream_config(&stream)? {
                    Some(config) => config,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            },
        };
        if !config.allow_direct {
            return Err(JsError::Protocol(format!(
                "bucket `{name}` does not allow direct gets (created by an old client?)"
            )));
        }
        Ok(Some(Kv {
            name: name.to_string(),
            stream,
        }))
    }

    fn subject(&self, key: &str) -> String {
        kv::subject(&self.name, key)
    }

    /// The latest message on `key`, tombstones included (they carry the
    /// revision a create must expect).
    pub fn entry(&self, key: &str) -> Result<Option<Entry>, JsError> {
        Ok(kv::latest(&self.name, key)?.map(|stored| Entry {
            revision: stored.seq,
            value: (!is_tombstone(&stored.headers)).then_some(stored.body),
        }))
    }

    /// Writes `value`; with `expected`, only if the key's revision is still
    /// that (`0`: the key has never been written). Returns the new revision.
    pub fn put(&self, key: &str, value: &[u8], expected: Option<u64>) -> Result<u64, JsError> {
        let headers: Vec<(String, String)> = expected
            .map(|rev| {
                vec![(
                    "Nats-Expected-Last-Subject-Sequence".to_string(),
                    rev.to_string(),
                )]
            })
            .unwrap_or_default();
        Ok(api::publish(&self.subject(key), &headers, value)?.seq)
    }

    /// Deletes `key` (a `DEL` tombstone; deleting a missing key is fine).
    pub fn remove(&self, key: &str) -> Result<(), JsError> {
        let headers = [("KV-Operation".to_string(), "DEL".to_string())];
        api::publish(&self.subject(key), &headers, b"").map(|_| ())
    }

    /// Adds `delta` to the counter at `key` (missing: 0) as a compare-and-swap
    /// on its revision, retried while other writers win the race.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, IncrementError> {
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.entry(key).map_err(IncrementError::Js)?;
            let (revision, current) = match &entry {
                Some(Entry { revision, value }) => (*revision, value.as_deref()),
                None => (0, None),
            };
            let next = keel_guest::counter::increment(current, delta)
                .map_err(IncrementError::NotACounter)?;
            match self.put(key, &keel_guest::counter::encode(next), Some(revision)) {
                Ok(_) => return Ok(next),
                Err(e) if e.is(10071) => continue,
                Err(e) => return Err(IncrementError::Js(e)),
            }
        }
        Err(IncrementError::Js(JsError::Protocol(format!(
            "increment of `{key}` lost {CAS_ATTEMPTS} races in a row"
        ))))
    }

    /// Up to [`PAGE`] live keys stored at or after stream sequence `from`,
    /// and where the next page starts (none after the last).
    pub fn page(&self, from: u64) -> Result<(Vec<String>, Option<u64>), JsError> {
        let filter = format!("$KV.{}.>", self.name);
        let config = json!({
            "deliver_policy": "by_start_sequence",
            "opt_start_seq": from.max(1),
            "headers_only": true,
        });
        let mut consumer = Consumer::create(&self.stream, &filter, config)?;
        if consumer.num_pending == 0 {
            return Ok((Vec::new(), None));
        }
        let deliveries = consumer.fetch(PAGE, 2_000)?;
        let prefix = format!("$KV.{}.", self.name);
        let keys = deliveries
            .iter()
            .filter(|d| !is_tombstone(&d.headers))
            .filter_map(|d| d.subject.strip_prefix(&prefix).map(kv::decode))
            .collect();
        let next = match deliveries.last() {
            Some(last) if last.pending > 0 => Some(last.stream_seq + 1),
            _ => None,
        };
        Ok((keys, next))
    }
}

/// The stream configuration of a new bucket (ADR-8; the field is
/// `allow_rollup_hdrs`, whatever the ADR says).
fn bucket_config(name: &str, stream: &str) -> serde_json::Value {
    json!({
        "name": stream,
        "subjects": [format!("$KV.{name}.>")],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": 1,
        "max_msg_size": -1,
        "discard": "new",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120_000_000_000u64,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "deny_purge": false,
        "allow_direct": true,
    })
}
