//! The raw TOML shape of a manifest, kept private to the loader:
//! [`WorkloadSpec`](super::WorkloadSpec) is what the rest of the host sees,
//! with paths resolved and defaults applied.

use crate::spec::units::{ByteSize, TextDuration, duration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub nats: Option<Nats>,
    #[serde(default)]
    pub plugin: Vec<Plugin>,
    #[serde(default)]
    pub workload: Vec<Workload>,
    #[serde(default)]
    pub registry: Vec<Registry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub host: Spanned<String>,
    #[serde(default)]
    pub insecure: bool,
    pub credentials: Option<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nats {
    pub url: Spanned<String>,
    pub credentials: Option<String>,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub name: Option<String>,
    pub max_streams_per_namespace: Option<u32>,
    pub subjects: Option<crate::spec::SubjectScope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    pub name: Spanned<String>,
    pub path: Option<Spanned<String>>,
    pub mode: Option<crate::spec::LinkMode>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub scope: crate::spec::SharedScope,
    #[serde(default)]
    pub forwarder: crate::spec::Forwarder,
    pub memory: Option<ByteSize>,
    #[serde(default, with = "opt_duration")]
    pub call_timeout: Option<Duration>,
    pub wraps: Option<Wraps>,
}

/// `wraps = "plugin"`, or a table of interface → plugin.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a plugin name (`wraps = \"keyvalue-nats\"`) or a table of interface = plugin"
)]
pub enum Wraps {
    One(String),
    Each(BTreeMap<String, String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub outgoing_http: Vec<Spanned<String>>,
    pub outgoing_block_private: Option<bool>,
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    #[serde(default)]
    pub sockets: Vec<Spanned<String>>,
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub name_lookup: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub namespace: Option<Spanned<String>>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub sockets: Sockets,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub volume: Vec<Spanned<Volume>>,
    #[serde(default)]
    pub component: Vec<Component>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub subscription: Vec<Subscription>,
    pub service: Option<Service>,
    pub data_name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Option<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub config_env: bool,
    #[serde(default)]
    pub max_restarts: u32,
    pub memory: Option<Spanned<ByteSize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub subject: Spanned<String>,
    pub queue: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub outgoing: Vec<Spanned<String>>,
    pub block_private: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sockets {
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub name_lookup: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory: Option<Spanned<ByteSize>>,
    pub memory_total: Option<Spanned<ByteSize>>,
    pub timeout: Option<Spanned<TextDuration>>,
    pub max_instances: Option<Spanned<u32>>,
    #[serde(default, with = "opt_duration")]
    pub queue_timeout: Option<Duration>,
    pub max_request_body: Option<ByteSize>,
    pub log_rate: Option<ByteSize>,
    pub max_running: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub host: String,
    pub guest: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: Option<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub config_env: bool,
    pub pool_size: Option<u32>,
    pub max_invocations: Option<u32>,
    pub max_concurrency: Option<u32>,
}

mod opt_duration {
    use serde::Deserializer;
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}
