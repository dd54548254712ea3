//! The built-in plugins, embedded in the binary at build time (see
//! `host/build.rs`), and offered to every workload unless a plugin the
//! manifest declares serves the same interface.
//!
//! Two sets share the embedded list: the in-memory one (`keyvalue-memory`,
//! `blobstore-memory`, the in-process bus behind `messaging`) is the default
//! of a host on its own, the NATS-backed one (`keyvalue-nats`,
//! `blobstore-nats`, NATS behind `messaging`) of a host with a NATS server.
//! A manifest may still name any built-in explicitly.

use crate::spec::{LinkMode, PluginGrants};
use anyhow::{Context, Result, ensure};
use std::collections::BTreeMap;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Which hosts a built-in is a default of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultOf {
    /// Every host.
    Any,
    /// Hosts without a NATS server.
    Memory,
    /// Hosts with a NATS server.
    Nats,
    /// No host: used only where a manifest names it.
    Named,
}

impl DefaultOf {
    /// Which hosts, in words (for `keel plugin list`).
    pub fn describe(self) -> &'static str {
        match self {
            DefaultOf::Any => "a default of every host",
            DefaultOf::Memory => "a default of hosts without NATS",
            DefaultOf::Nats => "a default of hosts with NATS",
            DefaultOf::Named => "used where a manifest names it",
        }
    }

    /// Whether a built-in of this kind is a default of a host that does, or
    /// does not, have NATS.
    pub fn applies(self, with_nats: bool) -> bool {
        match self {
            DefaultOf::Any => true,
            DefaultOf::Memory => !with_nats,
            DefaultOf::Nats => with_nats,
            DefaultOf::Named => false,
        }
    }
}

/// The built-in plugin named `name`: its default mode and bytes.
pub fn builtin(name: &str) -> Option<(LinkMode, &'static [u8])> {
    EMBEDDED
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, mode, _, bytes)| (*mode, *bytes))
}

/// Which hosts the built-in named `name` is a default of.
pub fn default_of(name: &str) -> Option<DefaultOf> {
    EMBEDDED
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, _, default_of, _)| *default_of)
}

/// The names of every built-in plugin this binary carries.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, ..)| *name)
}

/// The names of the built-in plugins this binary carries that are defaults
/// of a host with (or without) NATS.
pub fn defaults(with_nats: bool) -> impl Iterator<Item = &'static str> {
    EMBEDDED
        .iter()
        .filter(move |(_, _, default_of, _)| default_of.applies(with_nats))
        .map(|(name, ..)| *name)
}

/// What a built-in is granted before the manifest adds anything: the
/// NATS-backed plugins reach the JetStream subjects of the caller's own
/// namespace (their buckets are named `<namespace>-<workload>-<id>` in
/// [`keel_names`] tokens), and nothing else. `config-nats` may read the KV
/// bucket its own `config` names (`config-nats.bucket`), and `logging-nats`
/// publish under its subject prefix (`logging-nats.prefix`, default
/// `keel.logs`) in the caller's namespace: naming them in the plugin's
/// entry is what grants them. Fails on a name that would widen the grant
/// (a wildcard, an empty token).
pub fn default_grants(name: &str, config: &BTreeMap<String, String>) -> Result<PluginGrants> {
    let fixed: &[&str] = match name {
        "keyvalue-nats" => &[
            "$KV.{namespace}-*.>",
            "$JS.API.STREAM.INFO.KV_{namespace}-*",
            "$JS.API.STREAM.CREATE.KV_{namespace}-*",
            "$JS.API.DIRECT.GET.KV_{namespace}-*",
            "$JS.API.DIRECT.GET.KV_{namespace}-*.>",
            "$JS.API.CONSUMER.CREATE.KV_{namespace}-*.>",
            "$JS.API.CONSUMER.MSG.NEXT.KV_{namespace}-*.*",
            "$JS.API.CONSUMER.DELETE.KV_{namespace}-*.*",
        ],
        "blobstore-nats" => &[
            "$O.{namespace}-*.>",
            "$JS.API.STREAM.*.OBJ_{namespace}-*",
            "$JS.API.DIRECT.GET.OBJ_{namespace}-*",
            "$JS.API.DIRECT.GET.OBJ_{namespace}-*.>",
            "$JS.API.CONSUMER.CREATE.OBJ_{namespace}-*.>",
            "$JS.API.CONSUMER.MSG.NEXT.OBJ_{namespace}-*.*",
            "$JS.API.CONSUMER.DELETE.OBJ_{namespace}-*.*",
        ],
        _ => &[],
    };
    let mut subjects: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    match name {
        "config-nats" => {
            let bucket = config
                .get(CONFIG_BUCKET)
                .with_context(|| format!("plugin `config-nats` needs `{CONFIG_BUCKET}`: the KV bucket its values come from"))?;
            let token = bucket.replace("{namespace}", "");
            ensure!(
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "plugin `config-nats`: `{CONFIG_BUCKET} = {bucket:?}` is not a KV bucket name (letters, digits, `-`, `_`, and `{{namespace}}`)"
            );
            subjects.extend([
                format!("$JS.API.STREAM.INFO.KV_{bucket}"),
                format!("$JS.API.DIRECT.GET.KV_{bucket}.>"),
                format!("$JS.API.CONSUMER.CREATE.KV_{bucket}.>"),
                format!("$JS.API.CONSUMER.MSG.NEXT.KV_{bucket}.*"),
                format!("$JS.API.CONSUMER.DELETE.KV_{bucket}.*"),
            ]);
        }
        "logging-nats" => {
            let prefix = config
                .get(LOG_PREFIX)
                .map(String::as_str)
                .unwrap_or(DEFAULT_LOG_PREFIX);
            ensure!(
                prefix.split('.').all(|token| !token.is_empty()
                    && !token.contains(|c: char| c.is_whitespace() || "*>{}".contains(c))),
                "plugin `logging-nats`: `{LOG_PREFIX} = {prefix:?}` is not a subject prefix (dot-separated tokens, no wildcards)"
            );
            subjects.push(format!("{prefix}.{{namespace}}.>"));
        }
        _ => {}
    }
    Ok(PluginGrants {
        subjects,
        ..PluginGrants::default()
    })
}

/// `config-nats`'s setting: the KV bucket its values come from.
pub const CONFIG_BUCKET: &str = "config-nats.bucket";
/// `logging-nats`'s setting: the subject prefix records are published under.
pub const LOG_PREFIX: &str = "logging-nats.prefix";
/// `logging-nats`'s prefix when its config names none.
pub const DEFAULT_LOG_PREFIX: &str = "keel.logs";
