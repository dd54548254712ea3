//! A workload: its id, its components, and what they are allowed to do.

use super::{
    ComponentSource, HttpSpec, Limits, Location, ServiceSpec, SocketsSpec, VolumeSpec, WarmSpec,
};
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
///
/// Built with [`WorkloadSpec::new`] (or [`WorkloadSpec::single`],
/// [`WorkloadSpec::from_bytes`]) and the `with_*` methods; every field may
/// also be set directly. New fields may be added in later versions, with
/// defaults.
///
/// ```
/// use keel::spec::{ComponentSpec, HttpSpec, Limits, SubscriptionSpec};
/// use keel::{WorkloadId, WorkloadSpec};
/// use std::time::Duration;
///
/// let spec = WorkloadSpec::new(
///     WorkloadId::new("shop", "api"),
///     ComponentSpec::new("api", "api.wasm"),
/// )
/// .with_env("GREETING", "hi")
/// .with_http(HttpSpec::default().with_host("api.shop.local"))
/// .with_limits(Limits::default().with_timeout(Duration::from_secs(5)))
/// .with_subscription(SubscriptionSpec::new("orders.*").with_queue("workers"));
/// assert_eq!(spec.components[0].name, "api");
/// assert_eq!(spec.limits.timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The name the workload's data is kept under within its namespace
    /// (keyvalue buckets, blobstore containers: plugins see it as the
    /// caller's `name` in `keel:core/identity`). `None`: the workload's
    /// name. Workloads of one namespace giving the same data name share
    /// that data, as the replicas of one deployment do; workloads of two
    /// namespaces never do, whatever they give.
    pub data_name: Option<String>,
    /// Its long-running service, if any: a `wasi:cli/run` component whose
    /// loopback listeners its components reach at `127.0.0.1`/`::1`.
    pub service: Option<ServiceSpec>,
}

/// A messaging subscription of a workload.
///
/// ```
/// use keel::spec::SubscriptionSpec;
/// let all = SubscriptionSpec::new("orders.>");
/// let shared = SubscriptionSpec::new("orders.*").with_queue("workers");
/// assert_eq!(shared.queue.as_deref(), Some("workers"));
/// # assert!(all.queue.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionSpec {
    /// The subject, in the workload's namespace (`*` and `>` allowed).
    pub subject: String,
    /// A queue group: each message goes to one member of the group.
    pub queue: Option<String>,
}

impl SubscriptionSpec {
    /// A subscription to `subject`, every message delivered to every
    /// instance subscribed (no queue group).
    pub fn new(subject: impl Into<String>) -> SubscriptionSpec {
        SubscriptionSpec {
            subject: subject.into(),
            queue: None,
        }
    }

    /// Joins the queue group `queue`: each message goes to one member.
    pub fn with_queue(mut self, queue: impl Into<String>) -> SubscriptionSpec {
        self.queue = Some(queue.into());
        self
    }
}

impl WorkloadSpec {
    /// A workload of `component` with default settings; more components
    /// are added with [`WorkloadSpec::with_component`].
    pub fn new(id: WorkloadId, component: ComponentSpec) -> WorkloadSpec {
        WorkloadSpec::with_components(id, vec![component])
    }

    /// A workload of `components` (none yet, for a caller filling them in,
    /// as the fleet's translation does) with default settings.
    pub(crate) fn with_components(id: WorkloadId, components: Vec<ComponentSpec>) -> WorkloadSpec {
        WorkloadSpec {
            id,
            components,
            env: BTreeMap::new(),
            http: HttpSpec::default(),
            sockets: SocketsSpec::default(),
            volumes: Vec::new(),
            limits: Limits::default(),
            plugins: BTreeMap::new(),
            subscriptions: Vec::new(),
            data_name: None,
            service: None,
        }
    }

    /// The name the workload's data is kept under: [`WorkloadSpec::data_name`]
    /// or, when it gives none, the workload's name.
    pub fn data_name(&self) -> &str {
        self.data_name.as_deref().unwrap_or(&self.id.name)
    }

    /// Keeps the workload's data under `name` (see [`WorkloadSpec::data_name`]).
    pub fn with_data_name(mut self, name: impl Into<String>) -> WorkloadSpec {
        self.data_name = Some(name.into());
        self
    }

    /// Gives the workload a long-running service (see [`WorkloadSpec::service`]).
    pub fn with_service(mut self, service: ServiceSpec) -> WorkloadSpec {
        self.service = Some(service);
        self
    }

    /// Adds a component (after those already there).
    pub fn with_component(mut self, component: ComponentSpec) -> WorkloadSpec {
        self.components.push(component);
        self
    }

    /// Sets the environment variable `key` for every component.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> WorkloadSpec {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Replaces the HTTP settings (route and outgoing allowlist).
    pub fn with_http(mut self, http: HttpSpec) -> WorkloadSpec {
        self.http = http;
        self
    }

    /// Replaces the socket allowlist.
    pub fn with_sockets(mut self, sockets: SocketsSpec) -> WorkloadSpec {
        self.sockets = sockets;
        self
    }

    /// Mounts a host folder into the guests.
    pub fn with_volume(mut self, volume: VolumeSpec) -> WorkloadSpec {
        self.volumes.push(volume);
        self
    }

    /// Replaces the resource bounds.
    pub fn with_limits(mut self, limits: Limits) -> WorkloadSpec {
        self.limits = limits;
        self
    }

    /// Has plugin `plugin` serve `interface` (`ns:pkg/iface`, or a full
    /// versioned name), where several plugins could.
    pub fn with_plugin(
        mut self,
        interface: impl Into<String>,
        plugin: impl Into<String>,
    ) -> WorkloadSpec {
        self.plugins.insert(interface.into(), plugin.into());
        self
    }

    /// Adds a messaging subscription.
    pub fn with_subscription(mut self, subscription: SubscriptionSpec) -> WorkloadSpec {
        self.subscriptions.push(subscription);
        self
    }

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
        WorkloadSpec::new(id, ComponentSpec::new(name, source))
    }
}

/// One component of a workload.
///
/// ```
/// use keel::spec::{ComponentSource, ComponentSpec, WarmSpec};
/// let from_file = ComponentSpec::new("api", "api.wasm")
///     .with_config("greeting", "hi")
///     .with_warm(WarmSpec::default().with_pool_size(4));
/// let bytes: Vec<u8> = std::fs::read("api.wasm").unwrap_or_default();
/// let from_bytes = ComponentSpec::new("api", ComponentSource::Bytes(bytes.into()));
/// # let _ = (from_file, from_bytes);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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

impl ComponentSpec {
    /// Component `name` from `source` (a path, or any [`ComponentSource`]),
    /// with no config of its own and fresh instances for every invocation.
    pub fn new(name: impl Into<String>, source: impl Into<ComponentSource>) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            source: source.into(),
            origin: None,
            config: BTreeMap::new(),
            config_env: false,
            warm: WarmSpec::default(),
        }
    }

    /// Sets one of its own `wasi:config` values.
    pub fn with_config(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> ComponentSpec {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Whether its environment variables form a last `wasi:config` layer.
    pub fn with_config_env(mut self, on: bool) -> ComponentSpec {
        self.config_env = on;
        self
    }

    /// How its instances are reused.
    pub fn with_warm(mut self, warm: WarmSpec) -> ComponentSpec {
        self.warm = warm;
        self
    }
}
