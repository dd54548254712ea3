//! A workload: its id, its components, and what they are allowed to do.

use super::{ComponentSource, HttpSpec, Limits, Location, SocketsSpec, VolumeSpec, WarmSpec};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// `namespace/name`: what identifies a workload on a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadId {
    /// The tenant or team the workload belongs to.
    pub namespace: String,
    /// The workload's name within its namespace.
    pub name: String,
}

impl WorkloadId {
    /// Builds an id from its two parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> WorkloadId {
        WorkloadId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One workload: its components and everything they are allowed to do.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Namespace and name.
    pub id: WorkloadId,
    /// The components, in manifest order. At most one may export
    /// `wasi:http/incoming-handler`; it receives the workload's HTTP traffic.
    pub components: Vec<ComponentSpec>,
    /// Environment variables every component of the workload sees.
    pub env: BTreeMap<String, String>,
    /// HTTP routing and the outgoing allowlist.
    pub http: HttpSpec,
    /// Socket allowlist.
    pub sockets: SocketsSpec,
    /// Host folders the guest sees.
    pub volumes: Vec<VolumeSpec>,
    /// Resource bounds.
    pub limits: Limits,
    /// Interface (`ns:pkg/iface`, or a full versioned name) → the plugin
    /// that must serve it. Needed only where several plugins could.
    pub plugins: BTreeMap<String, String>,
    /// Subjects whose messages go to the workload's
    /// `wasmcloud:messaging/handler` export.
    pub subscriptions: Vec<SubscriptionSpec>,
}

/// A messaging subscription of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// The subject, in the workload's namespace (`*` and `>` allowed).
    pub subject: String,
    /// A queue group: each message goes to one member of the group.
    pub queue: Option<String>,
}

impl WorkloadSpec {
    /// A workload of one component file with default settings: the
    /// shortest way to start something from the library API.
    pub fn single(id: WorkloadId, component: impl Into<PathBuf>) -> WorkloadSpec {
        WorkloadSpec::of(id, ComponentSource::Path(component.into()))
    }

    /// A workload of one component given as bytes (named `name` within the
    /// workload), with default settings: what an embedder fed by a control
    /// plane or a registry starts.
    pub fn from_bytes(
        id: WorkloadId,
        name: impl Into<String>,
        bytes: impl Into<Arc<[u8]>>,
    ) -> WorkloadSpec {
        let mut spec = WorkloadSpec::of(id, ComponentSource::Bytes(bytes.into()));
        spec.components[0].name = name.into();
        spec
    }

    /// One component named like the workload, default settings.
    fn of(id: WorkloadId, source: ComponentSource) -> WorkloadSpec {
        let name = id.name.clone();
        WorkloadSpec {
            id,
            components: vec![ComponentSpec {
                name,
                source,
                origin: None,
                config: BTreeMap::new(),
                config_env: false,
                warm: WarmSpec::default(),
            }],
            env: BTreeMap::new(),
            http: HttpSpec::default(),
            sockets: SocketsSpec::default(),
            volumes: Vec::new(),
            limits: Limits::default(),
            plugins: BTreeMap::new(),
            subscriptions: Vec::new(),
        }
    }
}

/// One component of a workload.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// Its name within the workload (defaults to the file stem).
    pub name: String,
    /// The `.wasm` file (already resolved against the manifest's folder), or
    /// the component's bytes.
    pub source: ComponentSource,
    /// Where the manifest declared it, for error messages.
    pub origin: Option<Location>,
    /// Its own `wasi:config` values, layered over the config plugin's.
    pub config: BTreeMap<String, String>,
    /// Whether its environment variables form a last `wasi:config` layer.
    pub config_env: bool,
    /// Whether its instances serve more than one request (off by default).
    pub warm: WarmSpec,
}
