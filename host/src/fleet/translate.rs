//! A wasmCloud `Workload` as a keel [`WorkloadSpec`]: field by field, and
//! every field keel cannot honour refused with the field's path, never
//! dropped (README "Running a fleet" has the table).

use super::interfaces::{HostInterfaces, Subscriptions};
use super::messages::{Component, ImagePullPolicy, LocalResources, WitWorld, Workload};
use super::replicas::replica_set_of;
use crate::oci::credentials::{Credentials, Secret};
use crate::oci::{PullPolicy, PullSettings};
use crate::spec::{
    ByteSize, ComponentSource, ComponentSpec, ImageRef, OciComponent, VolumeSpec, WarmSpec,
    WorkloadId, WorkloadSpec,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// What a translation needs from the host.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where `emptyDir` volumes are made: `<dir>/<workload id>/<volume>`.
    pub scratch_dir: PathBuf,
    /// Packages (`ns:pkg`) that plugins configured on the host serve,
    /// beyond those keel serves itself.
    pub extra_packages: BTreeSet<String>,
}

/// A workload ready for [`Host::start_workload`](crate::Host::start_workload).
#[derive(Debug, Clone)]
pub struct Translation {
    /// The keel workload.
    pub spec: WorkloadSpec,
    /// How each component (same order) is pulled.
    pub pulls: Vec<PullSettings>,
    /// How the service's image is pulled, when the workload has one.
    pub service_pull: Option<PullSettings>,
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

pub(super) fn refuse(field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal {
        field: field.into(),
        message: message.into(),
    }
}

/// Translates `workload`, started under the operator's id `workload_id`
/// (which names its `emptyDir` folders), or says which field keel cannot
/// honour. The spec is checked as the host will check it, except that the
/// `emptyDir` folders need not exist yet.
pub fn translate(
    workload_id: &str,
    workload: &Workload,
    settings: &Settings,
) -> Result<Translation, Refusal> {
    crate::policy::names::validate_name(&workload.namespace)
        .map_err(|m| refuse("workload.namespace", m))?;
    crate::policy::names::validate_name(&workload.name).map_err(|m| refuse("workload.name", m))?;
    let no_world = WitWorld::default();
    let world = match (&workload.wit_world, &workload.service) {
        (Some(world), _) if !world.components.is_empty() => world,
        // A service alone is a workload too.
        (world, Some(_)) => world.as_ref().unwrap_or(&no_world),
        _ => {
            return Err(refuse(
                "workload.witWorld.components",
                "a workload needs at least one component (or a service)",
            ));
        }
    };
    let id = WorkloadId::new(&workload.namespace, &workload.name);
    let mut spec = WorkloadSpec::with_components(id, Vec::new());

    let volumes = volumes(workload_id, workload, settings)?;
    let mut interfaces = HostInterfaces::default();
    for (i, interface) in world.host_interfaces.iter().enumerate() {
        interfaces.add(i, interface, settings)?;
    }
    // Named by the workload, or what its replicas have in common.
    spec.data_name = match &interfaces.data_name {
        Some((name, _)) => Some(name.clone()),
        None => replica_set_of(&workload.name, &workload.annotations).map(str::to_string),
    };
    spec.http.host = interfaces.http_host.clone();
    spec.http.aliases = interfaces.http_aliases.clone();
    // Replicas of one deployment may land on one host: they share their
    // host names, as on wasmCloud hosts.
    spec.http.shared = true;
    if !spec.http.aliases.is_empty() && spec.http.host.is_none() {
        return Err(refuse(
            "workload.witWorld.hostInterfaces.config.host-aliases",
            "host aliases need a `host` first",
        ));
    }

    let mut pulls = Vec::new();
    let mut memory: Option<ByteSize> = None;
    let mut max_instances: Option<u32> = None;
    let mut cpu: Option<u32> = None;
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
        if let Some(cores) = cpu_limit(&field, resources.cpu_limit)? {
            cpu = Some(cpu.map_or(cores, |c| c.min(cores)));
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
    let service_pull = match &workload.service {
        Some(service) => {
            let translated =
                super::service::service_of(service, &interfaces.config, &volumes, &mut spec)?;
            if let Some(cores) = translated.cores {
                cpu = Some(cpu.map_or(cores, |c| c.min(cores)));
            }
            spec.service = Some(translated.spec);
            Some(translated.pull)
        }
        None => None,
    };
    if let Some(memory) = memory {
        spec.limits.memory = memory;
    }
    if let Some(max) = max_instances {
        spec.limits.max_instances = max;
    }
    // keel takes turns on the CPU per workload: the smallest limit of its
    // components bounds them all, so none runs on more cores than it asked.
    if let Some(cores) = cpu {
        spec.limits.max_running = Some(cores);
    }
    if subscriptions.subjects.is_empty() {
        subscriptions = interfaces.messaging.clone();
        subscriptions.component = spec.components.first().map(|c| c.name.clone());
    }
    spec.subscriptions = subscriptions.specs(&workload.namespace, &workload.name);
    let empty_dirs: Vec<PathBuf> = volumes
        .values()
        .filter(|v| v.empty)
        .map(|v| v.path.clone())
        .collect();
    // Checked as the host will check it, except that `emptyDir` folders
    // exist only once the start makes them.
    let mut check = spec.clone();
    check.volumes.retain(|v| !empty_dirs.contains(&v.host));
    check
        .validate()
        .map_err(|e| refuse("workload", format!("as a keel workload: {e}")))?;
    Ok(Translation {
        spec,
        pulls,
        service_pull,
        empty_dirs,
    })
}

/// One component: its source, name and config, and its pull settings.
pub(super) fn component_of(
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
        warm: warm(component),
    };
    Ok((
        spec,
        PullSettings {
            policy,
            credentials,
        },
    ))
}

/// `cpuLimit` as cores: `None` when not set (zero or negative, as wasmCloud
/// leaves it). wasmCloud's protocol leaves the unit unsaid ("CPU in (no
/// idea)") and its hosts do not enforce it; its own tests write 1, 2 and 4,
/// whole cores, which keel honours as CPU turns (`limits.max_running`): at
/// most that many of the workload's CPU-bound invocations run guest code at
/// once. More cores than the machine has cannot be a bound on it (and a
/// value like 500 is most likely meant as millicores, which keel cannot
/// bound below one core): refused.
pub(super) fn cpu_limit(field: &str, limit: i32) -> Result<Option<u32>, Refusal> {
    let Some(cores) = u32::try_from(limit).ok().filter(|&c| c > 0) else {
        return Ok(None);
    };
    let machine = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    if cores > machine {
        return Err(refuse(
            format!("{field}.cpuLimit"),
            format!(
                "keel reads cpuLimit as whole cores (at most that many of the workload's \
                 CPU-bound invocations at once), and this host has {machine}: {cores} cannot \
                 be honoured (keel cannot bound a workload below one core)"
            ),
        ));
    }
    Ok(Some(cores))
}

/// Invocations of `component` at once that its settings ask for: a pool
/// of `poolSize` instances each taking `maxConcurrency` calls (one when
/// unset), or `maxConcurrency` alone. `None` when neither is set. keel
/// enters an instance with one call at a time, so `maxConcurrency` calls
/// of one instance become as many instances.
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

/// Reuse of `component`'s instances, as wasmCloud means its settings: a
/// positive `poolSize` keeps that many instances warm between requests,
/// each serving at most `maxInvocations` (no bound when not positive).
/// Each instance takes one call at a time (see [`instances`]).
fn warm(component: &Component) -> WarmSpec {
    let positive = |n: i32| u32::try_from(n).ok().filter(|&n| n > 0);
    WarmSpec {
        pool_size: positive(component.pool_size).unwrap_or(0),
        max_invocations: positive(component.max_invocations),
        max_concurrency: 1,
    }
}

/// A workload volume as keel mounts it.
pub(super) struct Folder {
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
            (None, Some(_)) => {
                // The id comes from the operator: it becomes a path segment
                // only escaped, and two ids never share a folder.
                let segment = safe_segment(workload_id).ok_or_else(|| {
                    refuse(
                        "workloadId",
                        format!(
                            "a workload with emptyDir volumes needs an id of 1 to \
                             {MAX_SCRATCH_ID} bytes"
                        ),
                    )
                })?;
                Folder {
                    path: settings.scratch_dir.join(segment).join(&volume.name),
                    empty: true,
                }
            }
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

/// The longest workload id with `emptyDir` volumes (its folder name is at
/// most three times as long).
const MAX_SCRATCH_ID: usize = 80;

/// `text` as one path segment, distinct for distinct texts: ASCII letters,
/// digits and `-` kept, any other byte (a `/`, a `.`, `_` itself) as `_XX`
/// in hex. `None` for an empty or overlong text.
fn safe_segment(text: &str) -> Option<String> {
    if text.is_empty() || text.len() > MAX_SCRATCH_ID {
        return None;
    }
    let mut segment = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("_{byte:02X}"));
        }
    }
    Some(segment)
}

/// A component's mounts, outgoing hosts, name lookups and loopback ports,
/// added to the workload's (keel grants them per workload).
pub(super) fn grants(
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

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
