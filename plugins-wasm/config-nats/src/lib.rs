//! keel's NATS config source: `wasi:config/store@0.2.0-rc.1` whose values
//! come from a JetStream KV bucket, with the manifest's values as defaults.
//! It runs composed into each workload, so a value changed in the bucket
//! is seen by the next request, without a restart.
//!
//! **Layers**, later ones winning: the plugin's manifest `config`, the
//! component's `config` (and, with `config_env`, its environment) — baked
//! in at composition, as for the built-in `config` plugin — then the
//! bucket. A key deleted from the bucket shows its default again.
//!
//! **The bucket** is named by the plugin's own setting `config-nats.bucket`;
//! `{namespace}` in it stands for the caller's namespace as a
//! [`keel_names::token`], so one manifest line gives every tenant its own
//! bucket (`"{namespace}-config"`). Naming it there grants the plugin
//! read access to it and nothing else. Settings under `config-nats.` are
//! not config values. Config keys are stored as KV keys the way
//! `keyvalue-nats` stores them ([`keel_jetstream::kv`]), so `db.url` is the
//! KV key `db.url`.
//!
//! **Errors**: a missing bucket, an unreachable server or a value that is
//! not UTF-8 is `upstream`, and logged; defaults are not served in place of
//! a bucket that cannot be read, since they may be what the bucket
//! overrides.

wit_bindgen::generate!({
    inline: "
        package keel:config-nats;
        world plugin {
            import keel:core/identity@0.1.0;
            import keel:core/nats@0.1.0;
            export wasi:config/store@0.2.0-rc.1;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-config-0.2.0-rc.1"],
    with: {
        "keel:core/nats@0.1.0": keel_jetstream::nats,
    },
    generate_all,
});

keel_guest::plugin_metadata!();

use exports::wasi::config::store::{Error, Guest};
use keel_jetstream::consumer::Consumer;
use keel_jetstream::{JsError, kv, nats};
use std::collections::BTreeMap;

static BAKED: keel_guest::baked::Region<16384> = keel_guest::baked::Region::new();

/// The plugin's own settings start with this; they are not config values.
const SETTINGS: &str = "config-nats.";
/// Entries read per round trip by `get-all`.
const BATCH: u32 = 1000;

/// The bucket to read and the defaults (every baked layer but the
/// plugin's settings).
fn layers() -> Result<(String, BTreeMap<String, String>), Error> {
    let mut defaults = BAKED.config_layers();
    let template = defaults.get(&format!("{SETTINGS}bucket")).cloned();
    defaults.retain(|key, _| !key.starts_with(SETTINGS));
    let template =
        template.ok_or_else(|| Error::Upstream("config-nats.bucket is not set".into()))?;
    let namespace = keel::core::identity::caller().namespace;
    let bucket = template.replace("{namespace}", &keel_names::token(&namespace));
    Ok((bucket, defaults))
}

thread_local! {
    /// Whether this instance has seen the bucket exist.
    static FOUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Fails unless `bucket` exists. A direct get from a missing stream is
/// never answered, so it would only time out; the stream's info says so at
/// once (asked once per instance, that is once per request).
fn ensure_exists(bucket: &str) -> Result<(), Error> {
    if FOUND.get() {
        return Ok(());
    }
    match keel_jetstream::api::stream_info(&kv::stream(bucket)) {
        Ok(Some(_)) => {
            FOUND.set(true);
            Ok(())
        }
        Ok(None) => Err(upstream(bucket, None)),
        Err(e) => Err(upstream(bucket, Some(e))),
    }
}

/// A JetStream failure (`None`: the bucket is missing) as an `upstream`
/// error, logged too.
fn upstream(bucket: &str, e: Option<JsError>) -> Error {
    let message = match e {
        None | Some(JsError::Nats(nats::Error::NoResponders)) => {
            format!("config bucket `{bucket}` does not exist (or JetStream is not enabled)")
        }
        Some(other) => format!("config bucket `{bucket}`: {other}"),
    };
    eprintln!(
        "{}",
        keel_guest::log_record::line("error", "config-nats", &message)
    );
    Error::Upstream(message)
}

fn text(bucket: &str, key: &str, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| {
        Error::Upstream(format!(
            "config bucket `{bucket}`: the value of `{key}` is not UTF-8"
        ))
    })
}

/// Every live entry of `bucket`: the last message of each key.
fn entries(bucket: &str) -> Result<Vec<(String, Vec<u8>)>, JsError> {
    let filter = format!("$KV.{bucket}.>");
    let prefix = format!("$KV.{bucket}.");
    let config = serde_json::json!({ "deliver_policy": "last_per_subject" });
    let mut consumer = Consumer::create(&kv::stream(bucket), &filter, config)?;
    let mut out = Vec::new();
    consumer.for_each(BATCH, |delivery| {
        if !kv::is_tombstone(&delivery.headers)
            && let Some(key) = delivery.subject.strip_prefix(&prefix)
        {
            out.push((kv::decode(key), delivery.body));
        }
        Ok::<(), JsError>(())
    })?;
    Ok(out)
}

struct Plugin;

impl Guest for Plugin {
    fn get(key: String) -> Result<Option<String>, Error> {
        let (bucket, mut defaults) = layers()?;
        ensure_exists(&bucket)?;
        match kv::latest(&bucket, &key) {
            Ok(Some(stored)) if !kv::is_tombstone(&stored.headers) => {
                text(&bucket, &key, stored.body).map(Some)
            }
            Ok(_) => Ok(defaults.remove(&key)),
            Err(e) => Err(upstream(&bucket, Some(e))),
        }
    }

    fn get_all() -> Result<Vec<(String, String)>, Error> {
        let (bucket, mut values) = layers()?;
        ensure_exists(&bucket)?;
        for (key, value) in entries(&bucket).map_err(|e| upstream(&bucket, Some(e)))? {
            let value = text(&bucket, &key, value)?;
            values.insert(key, value);
        }
        Ok(values.into_iter().collect())
    }
}

export!(Plugin);
