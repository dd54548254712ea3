//! What a wasmCloud workload's `hostInterfaces` ask of the host, and its
//! messaging subscriptions: which packages keel serves, the per-workload
//! settings it takes (an HTTP route and its aliases, `wasi:config` values,
//! subjects and a consumer group), and everything else refused by field.

use super::messages::WitInterface;
use super::translate::{Refusal, Settings, refuse};
use crate::spec::SubscriptionSpec;
use std::collections::BTreeMap;

/// Packages keel itself or its built-in plugins serve to a workload.
const SERVED_PACKAGES: &[&str] = &[
    "wasi:http",
    "wasi:keyvalue",
    "wasi:blobstore",
    "wasi:config",
    "wasi:logging",
    "wasmcloud:messaging",
    "wasi:cli",
    "wasi:clocks",
    "wasi:random",
    "wasi:io",
    "wasi:filesystem",
    "wasi:sockets",
];

/// The component config key (or `wasmcloud:messaging` host interface config
/// key) listing the subjects a component receives, comma-separated.
const SUBSCRIPTIONS: &str = "subscriptions";
/// The config key naming the queue group; `broadcast` for none.
const CONSUMER_GROUP: &str = "consumer_group";
/// A consumer group meaning "every replica receives every message".
const BROADCAST: &str = "broadcast";

/// What the workload's `hostInterfaces` say.
#[derive(Default)]
pub(super) struct HostInterfaces {
    /// `wasi:http` `incoming-handler`'s `config.host`.
    pub(super) http_host: Option<String>,
    /// Its `config["host-aliases"]`, split.
    pub(super) http_aliases: Vec<String>,
    /// `wasi:config`'s values, under every component's own.
    pub(super) config: BTreeMap<String, String>,
    /// `wasmcloud:messaging`'s `subscriptions` and `consumer_group`.
    pub(super) messaging: Subscriptions,
    /// `wasi:keyvalue`'s or `wasi:blobstore`'s `config["data-name"]`: the
    /// name the workload's data is kept under, and the field that gave it.
    pub(super) data_name: Option<(String, String)>,
}

impl HostInterfaces {
    /// Takes in `interface`, the `index`th of the workload's.
    pub(super) fn add(
        &mut self,
        index: usize,
        interface: &WitInterface,
        settings: &Settings,
    ) -> Result<(), Refusal> {
        let field = format!("workload.witWorld.hostInterfaces[{index}]");
        let package = format!("{}:{}", interface.namespace, interface.package);
        // keel's own handling first: the host's plugins export these
        // packages too (the built-ins), and that must not cost a workload
        // the per-workload settings keel takes for them.
        if !SERVED_PACKAGES.contains(&package.as_str())
            && settings.extra_packages.contains(&package)
        {
            return no_config(&field, &package, interface);
        }
        if !SERVED_PACKAGES.contains(&package.as_str()) {
            return Err(refuse(
                field,
                format!(
                    "nothing on this keel host serves `{package}` (keel serves {}, and the \
                     packages of the plugins the host is configured with)",
                    SERVED_PACKAGES.join(", ")
                ),
            ));
        }
        match package.as_str() {
            "wasi:http" => {
                for (key, value) in &interface.config {
                    match key.as_str() {
                        "host" => {
                            if let Some(other) = &self.http_host
                                && other != value
                            {
                                return Err(refuse(
                                    format!("{field}.config.host"),
                                    format!(
                                        "keel routes one host name to a workload, and `{other}` is already routed to it"
                                    ),
                                ));
                            }
                            self.http_host = Some(value.clone());
                        }
                        "host-aliases" => {
                            for alias in value.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                                if !self.http_aliases.iter().any(|a| a == alias) {
                                    self.http_aliases.push(alias.to_string());
                                }
                            }
                        }
                        other => return Err(unknown_key(&field, &package, other)),
                    }
                }
                no_name(&field, &package, interface)
            }
            "wasi:config" => {
                self.config.extend(interface.config.clone());
                no_name(&field, &package, interface)
            }
            "wasmcloud:messaging" => {
                self.messaging.read_config(&field, &interface.config)?;
                no_name(&field, &package, interface)
            }
            // `name` is the identifier the component opens: keel's plugins
            // map it to a bucket or container of the workload.
            "wasi:keyvalue" | "wasi:blobstore" => self.data_config(&field, &package, interface),
            _ => {
                no_config(&field, &package, interface)?;
                no_name(&field, &package, interface)
            }
        }
    }
}

impl HostInterfaces {
    /// The per-workload config of `wasi:keyvalue` and `wasi:blobstore`.
    /// Only [`DATA_NAME`] is taken: it moves the workload's buckets and
    /// containers to another name within the workload's own namespace
    /// (plugins scope data by namespace first). Every other key of
    /// wasmCloud's backends (`backend`, `url`, `bucket`, `root`,
    /// credentials) would choose what the plugin reaches, which a host
    /// decides in its own configuration, so it is refused by name.
    fn data_config(
        &mut self,
        field: &str,
        package: &str,
        interface: &WitInterface,
    ) -> Result<(), Refusal> {
        for (key, value) in &interface.config {
            if key != DATA_NAME {
                return Err(unknown_key(field, package, key));
            }
            let key_field = format!("{field}.config.{DATA_NAME}");
            crate::policy::names::validate_name(value).map_err(|m| refuse(key_field.clone(), m))?;
            if let Some((other, other_field)) = &self.data_name
                && other != value
            {
                return Err(refuse(
                    key_field,
                    format!(
                        "a workload keeps all its data under one name, and {other_field} \
                         already names `{other}`"
                    ),
                ));
            }
            self.data_name = Some((value.clone(), key_field));
        }
        Ok(())
    }
}

/// The `wasi:keyvalue` and `wasi:blobstore` config key naming the data the
/// workload shares with others of its namespace giving the same name.
pub(super) const DATA_NAME: &str = "data-name";

fn no_config(field: &str, package: &str, interface: &WitInterface) -> Result<(), Refusal> {
    match interface.config.keys().next() {
        Some(key) => Err(unknown_key(field, package, key)),
        None => Ok(()),
    }
}

fn no_name(field: &str, package: &str, interface: &WitInterface) -> Result<(), Refusal> {
    if interface.name.is_empty() {
        Ok(())
    } else {
        Err(refuse(
            format!("{field}.name"),
            format!("keel serves one `{package}` to a workload: instance names are not supported"),
        ))
    }
}

fn unknown_key(field: &str, package: &str, key: &str) -> Refusal {
    refuse(
        format!("{field}.config.{key}"),
        format!(
            "keel takes no per-workload `{key}` for `{package}`: its plugins are configured on \
             the host only (a plugin's config can widen what the plugin may reach)"
        ),
    )
}

/// Subjects and a consumer group from config values.
#[derive(Debug, Clone, Default)]
pub(super) struct Subscriptions {
    /// The subjects, in order, each once.
    pub(super) subjects: Vec<String>,
    /// `None`: the default group; `Some(None)`: broadcast.
    group: Option<Option<String>>,
    /// The component whose config named the subjects (it names the
    /// default group).
    pub(super) component: Option<String>,
}

impl Subscriptions {
    /// Takes in the `subscriptions` and `consumer_group` of `config`
    /// (found at `field`).
    pub(super) fn read_config(
        &mut self,
        field: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        if let Some(list) = config.get(SUBSCRIPTIONS) {
            for subject in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !self.subjects.iter().any(|s| s == subject) {
                    self.subjects.push(subject.to_string());
                }
            }
        }
        if let Some(group) = config.get(CONSUMER_GROUP) {
            let group = match group.as_str() {
                BROADCAST => None,
                "" => {
                    return Err(refuse(
                        format!("{field}.config.{CONSUMER_GROUP}"),
                        "empty: omit it for the default group, or say `broadcast`",
                    ));
                }
                named => Some(named.to_string()),
            };
            self.group = Some(group);
        }
        Ok(())
    }

    /// Keel's subscriptions: each a queue subscription (so one message
    /// reaches one replica) in the group wasmCloud hosts use for the same
    /// workload, unless the config says otherwise.
    pub(super) fn specs(&self, namespace: &str, workload: &str) -> Vec<SubscriptionSpec> {
        let component = self.component.as_deref().unwrap_or(workload);
        let queue = match &self.group {
            None => Some(default_consumer_group(namespace, workload, component)),
            Some(group) => group.clone(),
        };
        self.subjects
            .iter()
            .map(|subject| SubscriptionSpec {
                subject: subject.clone(),
                queue: queue.clone(),
            })
            .collect()
    }
}

/// The queue group of a component's replicas: readable, with an FNV-1a
/// hash of the identity, as wasmCloud hosts name it, so keel and wasmCloud
/// replicas of one workload share the group.
pub(super) fn default_consumer_group(namespace: &str, workload: &str, component: &str) -> String {
    const PREFIX: &str = "wasmcloud";
    const MAX_LEN: usize = 128;
    let identity = format!("{namespace}\0{workload}\0{component}");
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in identity.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Names are checked (letters, digits, `-`, `_`): nothing to replace.
    let readable = format!("{namespace}.{workload}.{component}");
    let suffix = format!(".{hash:016x}");
    let room = MAX_LEN.saturating_sub(PREFIX.len() + 1 + suffix.len());
    let readable: String = readable.chars().take(room).collect();
    format!("{PREFIX}.{readable}{suffix}")
}
