//! A wasmCloud `Workload` as a keel [`WorkloadSpec`]: field by field, and
//! every field keel cannot honour refused with the field's path, never
//! dropped (README "Running a fleet" has the table).

use super::messages::{Component, ImagePullPolicy, LocalResources, WitInterface, Workload};
use crate::oci::credentials::{Credentials, Secret};
use crate::oci::{PullPolicy, PullSettings};
use crate::spec::{
    ByteSize, ComponentSource, ComponentSpec, HttpSpec, ImageRef, Limits, OciComponent,
    SocketsSpec, SubscriptionSpec, VolumeSpec, WorkloadId, WorkloadSpec,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

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

/// What a translation needs from the host.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where `emptyDir` volumes are made: `<dir>/<workload id>/<volume>`.
    pub scratch_dir: PathBuf,
    /// Packages (`ns:pkg`) that plugins configured on the host serve,
    /// beyond [`SERVED_PACKAGES`].
    pub extra_packages: BTreeSet<String>,
}

/// A workload ready for [`Host::start_workload`](crate::Host::start_workload).
#[derive(Debug, Clone)]
pub struct Translation {
    /// The keel workload.
    pub spec: WorkloadSpec,
    /// How each component (same order) is pulled.
    pub pulls: Vec<PullSettings>,
    /// The `emptyDir` folders to create before the start and remove after
    /// the stop.
    pub empty_dirs: Vec<PathBuf>,
}

/// Why a workload cannot run on keel: the field, in the protocol's JSON
/// names, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `workload.witWorld.components[0].localResources.cpuLimit`, …
    pub field: String,
    /// Why.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal {
        field: field.into(),
        message: message.into(),
    }
}

/// Translates workload `workload_id`.
pub fn translate(
    workload_id: &str,
    workload: &Workload,
    settings: &Settings,
) -> Result<Translation, Refusal> {
    crate::policy::names::validate_name(&workload.namespace)
        .map_err(|m| refuse("workload.namespace", m))?;
    crate::policy::names::validate_name(&workload.name).map_err(|m| refuse("workload.name", m))?;
    if workload.service.is_some() {
        return Err(refuse(
            "workload.service",
            "keel does not run service components (a long-running wasi:cli/run beside the \
             workload) yet",
        ));
    }
    let world = workload
        .wit_world
        .as_ref()
        .filter(|w| !w.components.is_empty())
        .ok_or_else(|| {
            refuse(
                "workload.witWorld.components",
                "a workload needs at least one component",
            )
        })?;
    let id = WorkloadId::new(&workload.namespace, &workload.name);
    let mut spec = WorkloadSpec {
        id,
        components: Vec::new(),
        env: BTreeMap::new(),
        http: HttpSpec::default(),
        sockets: SocketsSpec::default(),
        volumes: Vec::new(),
        limits: Limits::default(),
        plugins: BTreeMap::new(),
        subscriptions: Vec::new(),
    };

    let volumes = volumes(workload_id, workload, settings)?;
    let mut interfaces = HostInterfaces::default();
    for (i, interface) in world.host_interfaces.iter().enumerate() {
        interfaces.add(i, interface, settings)?;
    }
    spec.http.host = interfaces.http_host.clone();
    spec.http.aliases = interfaces.http_aliases.clone();
    if !spec.http.aliases.is_empty() && spec.http.host.is_none() {
        return Err(refuse(
            "workload.witWorld.hostInterfaces.config.host-aliases",
            "host aliases need a `host` first",
        ));
    }

    let mut pulls = Vec::new();
    let mut memory: Option<ByteSize> = None;
    let mut max_instances: Option<u32> = None;
    let mut subscriptions = Subscriptions::default();
    for (i, component) in world.components.iter().enumerate() {
        let field = format!("workload.witWorld.components[{i}]");
        let (component_spec, pull) = component_of(&field, i, component, &interfaces.config)?;
        spec.components.push(component_spec);
        pulls.push(pull);
        if let Some(n) = instances(component) {
            max_instances = Some(max_instances.map_or(n, |m| m.max(n)));
        }
        let Some(resources) = &component.local_resources else {
            continue;
        };
        let field = format!("{field}.localResources");
        if resources.cpu_limit > 0 {
            return Err(refuse(
                format!("{field}.cpuLimit"),
                "keel bounds a workload's time per invocation, not its CPU share",
            ));
        }
        if resources.memory_limit_mb > 0 {
            let mib = ByteSize::mib(u64::from(resources.memory_limit_mb.unsigned_abs()));
            memory = Some(memory.map_or(mib, |m| m.max(mib)));
        }
        for (key, value) in &resources.environment {
            if let Some(other) = spec.env.insert(key.clone(), value.clone())
                && &other != value
            {
                return Err(refuse(
                    format!("{field}.environment.{key}"),
                    "components of one keel workload share one environment, and another \
                     component sets this variable differently",
                ));
            }
        }
        grants(&field, resources, &volumes, &mut spec)?;
        subscriptions.read_config(&field, &resources.config)?;
        if subscriptions.component.is_none() && !subscriptions.subjects.is_empty() {
            subscriptions.component = spec.components.last().map(|c| c.name.clone());
        }
    }
    if let Some(memory) = memory {
        spec.limits.memory = memory;
    }
    if let Some(max) = max_instances {
        spec.limits.max_instances = max;
    }
    if subscriptions.subjects.is_empty() {
        subscriptions = interfaces.messaging.clone();
        subscriptions.component = spec.components.first().map(|c| c.name.clone());
    }
    spec.subscriptions = subscriptions.specs(&workload.namespace, &workload.name);
    spec.validate()
        .map_err(|e| refuse("workload", format!("as a keel workload: {e}")))?;
    Ok(Translation {
        spec,
        pulls,
        empty_dirs: volumes
            .values()
            .filter(|v| v.empty)
            .map(|v| v.path.clone())
            .collect(),
    })
}

/// One component: its source, name and config, and its pull settings.
fn component_of(
    field: &str,
    index: usize,
    component: &Component,
    workload_config: &BTreeMap<String, String>,
) -> Result<(ComponentSpec, PullSettings), Refusal> {
    let written = component.image.trim();
    let reference = if ImageRef::is_reference(written) {
        ImageRef::parse(written)
    } else {
        ImageRef::parse(&format!("oci://{written}"))
    }
    .map_err(|e| refuse(format!("{field}.image"), e.to_string()))?;
    let name = if component.name.is_empty() {
        format!("component-{index}")
    } else {
        component.name.clone()
    };
    crate::policy::names::validate_name(&name).map_err(|m| refuse(format!("{field}.name"), m))?;
    let mut config = workload_config.clone();
    if let Some(resources) = &component.local_resources {
        config.extend(resources.config.clone());
    }
    let policy = match component.image_pull_policy {
        ImagePullPolicy::Unspecified => None,
        ImagePullPolicy::IfNotPresent => Some(PullPolicy::IfNotPresent),
        ImagePullPolicy::Always => Some(PullPolicy::Always),
        ImagePullPolicy::Never => Some(PullPolicy::Never),
    };
    let credentials = component
        .image_pull_secret
        .as_ref()
        .filter(|s| !s.username.is_empty() || !s.password.is_empty())
        .map(|s| Credentials {
            username: s.username.clone(),
            password: Secret::new(s.password.clone()),
            origin: format!("{field}.imagePullSecret"),
        });
    let spec = ComponentSpec {
        name,
        source: ComponentSource::Oci(OciComponent {
            reference,
            pulled: None,
        }),
        origin: None,
        config,
        config_env: false,
    };
    Ok((
        spec,
        PullSettings {
            policy,
            credentials,
        },
    ))
}

/// Invocations of `component` at once that its settings ask for: a pool
/// of `poolSize` instances each taking `maxConcurrency` calls (one when
/// unset), or `maxConcurrency` alone. `None` when neither is set.
/// `maxInvocations` needs nothing: keel never reuses an instance, so each
/// serves one invocation, within any positive bound.
fn instances(component: &Component) -> Option<u32> {
    let pool = u32::try_from(component.pool_size).ok().filter(|&n| n > 0);
    let concurrency = u32::try_from(component.max_concurrency)
        .ok()
        .filter(|&n| n > 0);
    match (pool, concurrency) {
        (Some(pool), concurrency) => Some(pool.saturating_mul(concurrency.unwrap_or(1))),
        (None, concurrency) => concurrency,
    }
}

/// A workload volume as keel mounts it.
struct Folder {
    path: PathBuf,
    empty: bool,
}

fn volumes(
    workload_id: &str,
    workload: &Workload,
    settings: &Settings,
) -> Result<BTreeMap<String, Folder>, Refusal> {
    let mut folders = BTreeMap::new();
    for (i, volume) in workload.volumes.iter().enumerate() {
        let field = format!("workload.volumes[{i}]");
        crate::policy::names::validate_name(&volume.name)
            .map_err(|m| refuse(format!("{field}.name"), m))?;
        let folder = match (&volume.host_path, &volume.empty_dir) {
            (Some(host), None) => Folder {
                path: PathBuf::from(&host.local_path),
                empty: false,
            },
            (None, Some(_)) => Folder {
                // The id comes from the operator: only a checked name may
                // become a path segment.
                path: settings
                    .scratch_dir
                    .join(safe_segment(workload_id))
                    .join(&volume.name),
                empty: true,
            },
            _ => {
                return Err(refuse(
                    field,
                    "a volume is exactly one of hostPath or emptyDir",
                ));
            }
        };
        if folders.insert(volume.name.clone(), folder).is_some() {
            return Err(refuse(
                format!("{field}.name"),
                format!("volume `{}` is declared twice", volume.name),
            ));
        }
    }
    Ok(folders)
}

/// `text` as one path segment: ASCII letters, digits, `-` and `_` kept,
/// anything else (a `/`, `..`) as `_`.
fn safe_segment(text: &str) -> String {
    let segment: String = text
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if segment.is_empty() {
        "_".to_string()
    } else {
        segment
    }
}

/// A component's mounts, outgoing hosts, name lookups and loopback ports,
/// added to the workload's (keel grants them per workload).
fn grants(
    field: &str,
    resources: &LocalResources,
    volumes: &BTreeMap<String, Folder>,
    spec: &mut WorkloadSpec,
) -> Result<(), Refusal> {
    for (j, mount) in resources.volume_mounts.iter().enumerate() {
        let folder = volumes.get(&mount.name).ok_or_else(|| {
            refuse(
                format!("{field}.volumeMounts[{j}].name"),
                format!("no volume `{}` in workload.volumes", mount.name),
            )
        })?;
        spec.volumes.push(VolumeSpec {
            host: folder.path.clone(),
            guest: mount.mount_path.clone(),
            read_only: mount.read_only,
        });
    }
    for host in &resources.allowed_hosts {
        if !spec.http.outgoing.contains(host) {
            spec.http.outgoing.push(host.clone());
        }
    }
    match resources.allowed_ip_name_lookups.as_slice() {
        [] => {}
        [all] if all == "*" => spec.sockets.name_lookup = true,
        _ => {
            return Err(refuse(
                format!("{field}.allowedIpNameLookups"),
                "keel grants name lookups all or nothing: give [\"*\"] or none",
            ));
        }
    }
    for (j, port) in resources.allowed_host_loopback_ports.iter().enumerate() {
        let number = port
            .strip_suffix("/tcp")
            .or_else(|| port.strip_suffix("/udp"))
            .unwrap_or(port);
        let number: u16 = number.parse().map_err(|_| {
            refuse(
                format!("{field}.allowedHostLoopbackPorts[{j}]"),
                format!("`{port}` is not a port, `PORT/tcp` or `PORT/udp`"),
            )
        })?;
        // keel's socket allowlist covers TCP and UDP alike.
        let pattern = format!("127.0.0.1:{number}");
        if !spec.sockets.allow.contains(&pattern) {
            spec.sockets.allow.push(pattern);
        }
    }
    Ok(())
}

/// What the workload's `hostInterfaces` say.
#[derive(Default)]
struct HostInterfaces {
    /// `wasi:http` `incoming-handler`'s `config.host`.
    http_host: Option<String>,
    /// Its `config["host-aliases"]`, split.
    http_aliases: Vec<String>,
    /// `wasi:config`'s values, under every component's own.
    config: BTreeMap<String, String>,
    /// `wasmcloud:messaging`'s `subscriptions` and `consumer_group`.
    messaging: Subscriptions,
}

impl HostInterfaces {
    fn add(
        &mut self,
        index: usize,
        interface: &WitInterface,
        settings: &Settings,
    ) -> Result<(), Refusal> {
        let field = format!("workload.witWorld.hostInterfaces[{index}]");
        let package = format!("{}:{}", interface.namespace, interface.package);
        if settings.extra_packages.contains(&package) {
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
            "wasi:keyvalue" | "wasi:blobstore" => no_config(&field, &package, interface),
            _ => {
                no_config(&field, &package, interface)?;
                no_name(&field, &package, interface)
            }
        }
    }
}

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
             the host"
        ),
    )
}

/// Subjects and a consumer group from config values.
#[derive(Debug, Clone, Default)]
struct Subscriptions {
    subjects: Vec<String>,
    /// `None`: the default group; `Some(None)`: broadcast.
    group: Option<Option<String>>,
    /// The component whose config named the subjects (it names the
    /// default group).
    component: Option<String>,
}

impl Subscriptions {
    fn read_config(
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
    fn specs(&self, namespace: &str, workload: &str) -> Vec<SubscriptionSpec> {
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
fn default_consumer_group(namespace: &str, workload: &str, component: &str) -> String {
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

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
