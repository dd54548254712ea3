//! The built-in plugins, embedded in the binary at build time (see
//! `host/build.rs`), and offered to every workload unless a plugin the
//! manifest declares serves the same interface.
//!
//! Two sets share the embedded list: the in-memory one (`keyvalue-memory`,
//! `blobstore-memory`, the in-process bus behind `messaging`) is the default
//! of a host on its own, the NATS-backed one (`keyvalue-nats`,
//! `blobstore-nats`, NATS behind `messaging`) of a host with a NATS server.
//! A manifest may still name any built-in explicitly.

use crate::manifest::{LinkMode, PluginGrants};

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
}

impl DefaultOf {
    /// Whether a built-in of this kind is a default of a host that does, or
    /// does not, have NATS.
    pub fn applies(self, with_nats: bool) -> bool {
        match self {
            DefaultOf::Any => true,
            DefaultOf::Memory => !with_nats,
            DefaultOf::Nats => with_nats,
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
/// [`keel_names`] tokens), and nothing else.
pub fn default_grants(name: &str) -> PluginGrants {
    let subjects: &[&str] = match name {
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
    PluginGrants {
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        ..PluginGrants::default()
    }
}
