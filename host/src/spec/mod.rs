//! keel's data model: what a host runs ([`WorkloadSpec`]), the plugins it
//! links ([`PluginSpec`]), the NATS connection ([`NatsSpec`]), the catalog
//! of [`builtin`] plugins, and a workload's [`WorkloadStatus`].
//!
//! Specs come from a manifest (`crate::manifest` turns TOML into them) or
//! from an embedder's code; either way [`WorkloadSpec::validate`] and
//! [`PluginSpec::validate`] refuse the same things. This layer knows names
//! and policy ([`crate::policy`]) and nothing that runs.

pub mod builtin;
pub mod image_ref;
mod location;
pub mod plugin_meta;
mod registry;
mod service;
mod source;
mod status;
pub(crate) mod units;
pub(crate) mod validate;
mod warm;
mod wraps;

pub use crate::policy::names::validate_name;
pub use image_ref::{ImageRef, InvalidReference};
pub use location::Location;
pub use registry::RegistrySpec;
pub use service::ServiceSpec;
pub use source::{ComponentSource, OciComponent};
pub use status::{WorkloadState, WorkloadStatus};
pub use units::{ByteSize, parse_duration};
pub use validate::InvalidSpec;
pub use warm::WarmSpec;
pub use wraps::Wraps;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// JetStream streams the plugins acting for one namespace may create
/// through `keel:core/nats` unless the host is configured otherwise.
pub const DEFAULT_MAX_STREAMS_PER_NAMESPACE: u32 = 100;

/// How the subjects a workload names map onto the broker's subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectScope {
    /// `<namespace>.<subject>`: the tenants of one NATS account never hear
    /// each other (what `keel run` does).
    #[default]
    Namespace,
    /// As written, as wasmCloud hosts do, so keel and wasmCloud workloads on
    /// one NATS meet on the same subjects; tenants are separated by NATS
    /// accounts (each host's credentials), and the host protocol's subjects,
    /// `$` subjects and wildcard-first subscriptions are refused.
    AsWritten,
}

/// A NATS connection: production hosts share a NATS cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSpec {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for TLS.
    pub tls_ca: Option<PathBuf>,
    /// A PEM client certificate and its PEM private key, for servers that
    /// verify their clients (mutual TLS).
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// The name this connection shows the server.
    pub name: Option<String>,
    /// How many JetStream streams (buckets) the plugins acting for one
    /// namespace may create through `keel:core/nats` (default
    /// [`DEFAULT_MAX_STREAMS_PER_NAMESPACE`](crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE)).
    pub max_streams_per_namespace: u32,
    /// How workload subjects map onto the server's.
    pub subjects: SubjectScope,
}

impl NatsSpec {
    /// The servers `url` names: one URL, or several separated by commas
    /// (white space around each is ignored), each `nats://host:port` or
    /// `tls://host:port`.
    ///
    /// ```
    /// use keel::spec::NatsSpec;
    /// let spec = NatsSpec::url("nats://a:4222, nats://b:4222");
    /// assert_eq!(spec.servers().unwrap(), ["nats://a:4222", "nats://b:4222"]);
    /// assert!(NatsSpec::url("http://a").servers().is_err());
    /// ```
    pub fn servers(&self) -> Result<Vec<String>, String> {
        let servers: Vec<String> = self.url.split(',').map(|u| u.trim().to_string()).collect();
        let valid = |u: &str| {
            ["nats://", "tls://"].iter().any(|scheme| {
                u.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
            })
        };
        if servers.iter().all(|u| valid(u)) {
            Ok(servers)
        } else {
            Err(format!(
                "`{}` is not a NATS server list: give nats://host:port or tls://host:port, several separated by commas",
                crate::policy::names::printable(&self.url)
            ))
        }
    }

    /// A connection to `url` with nothing else set.
    pub fn url(url: impl Into<String>) -> NatsSpec {
        NatsSpec {
            url: url.into(),
            credentials: None,
            tls_ca: None,
            tls_client: None,
            name: None,
            max_streams_per_namespace: crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE,
            subjects: SubjectScope::default(),
        }
    }
}

/// How a plugin is linked to the workloads it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// Plugged into the workload before instantiation: one component, a
    /// fresh plugin instance per workload instance. For stateless plugins.
    #[default]
    Composed,
    /// Instantiated once in its own long-lived Store; the workload's imports
    /// forward to it. For plugins that keep state across requests.
    Shared,
}

/// A plugin: a component exporting interfaces that workloads import.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The name workloads and logs refer to it by.
    pub name: String,
    /// The component: a `.wasm` file or its bytes; `None` for the built-in
    /// plugin of this name.
    pub source: Option<ComponentSource>,
    /// How it is linked.
    pub mode: LinkMode,
    /// Values the plugin reads as its configuration.
    pub config: BTreeMap<String, String>,
    /// What the plugin itself may reach (shared plugins only; a plugin never
    /// inherits the grants of the workloads it serves).
    pub grants: PluginGrants,
    /// For shared plugins: one instance per namespace (the default), per
    /// host, or per workload.
    pub scope: SharedScope,
    /// For shared plugins: which forwarder carries the calls.
    pub forwarder: Forwarder,
    /// For shared plugins: the linear memory one instance may hold.
    pub memory: ByteSize,
    /// For shared plugins: how long one call may run in the plugin's Store,
    /// whatever its caller's deadline. Past it the plugin traps and
    /// restarts.
    pub call_timeout: Duration,
    /// The plugins serving its own imports, when it is a layer over them.
    pub wraps: Wraps,
    /// Where the manifest declared it, for error messages.
    pub origin: Option<Location>,
}

impl PluginSpec {
    /// Plugin `name` from `path` (`None`: the built-in of that name), linked
    /// in `mode`, with no config, no grants and the default scope: the
    /// library API's way to declare one, fields set afterwards as needed.
    ///
    /// ```
    /// use keel::spec::{LinkMode, PluginSpec};
    /// let mut plugin = PluginSpec::new("keyvalue-memory", None, LinkMode::Shared);
    /// plugin.config.insert("shared_buckets".into(), "orders".into());
    /// ```
    pub fn new(name: impl Into<String>, path: Option<PathBuf>, mode: LinkMode) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            source: path.map(ComponentSource::Path),
            mode,
            config: BTreeMap::new(),
            grants: PluginGrants::default(),
            scope: SharedScope::default(),
            forwarder: Forwarder::default(),
            memory: PluginSpec::DEFAULT_MEMORY,
            call_timeout: PluginSpec::DEFAULT_CALL_TIMEOUT,
            wraps: Wraps::default(),
            origin: None,
        }
    }

    /// Plugin `name` from the component `bytes` (as a control plane or a
    /// registry hands them over), linked in `mode`, otherwise as
    /// [`PluginSpec::new`].
    pub fn from_bytes(
        name: impl Into<String>,
        bytes: impl Into<Arc<[u8]>>,
        mode: LinkMode,
    ) -> PluginSpec {
        PluginSpec {
            source: Some(ComponentSource::Bytes(bytes.into())),
            ..PluginSpec::new(name, None, mode)
        }
    }

    /// A shared plugin instance's memory when the manifest names none.
    pub const DEFAULT_MEMORY: ByteSize = ByteSize::mib(256);

    /// A shared plugin call's time limit when the manifest names none:
    /// generous, since calls normally take microseconds, and short enough
    /// that a plugin stuck in a loop holds its callers only briefly.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
}

/// How many instances of a shared plugin there are.
///
/// An instance is the unit that fails together: a trap restarts it empty,
/// losing the state of every workload it serves. The default keeps one
/// tenant (namespace) from ever costing another its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedScope {
    /// Each namespace gets its own instance, shared by its workloads.
    #[default]
    Namespace,
    /// One instance serves every workload of the host, whatever its
    /// namespace (what state shared across namespaces needs).
    Host,
    /// Each workload gets its own instance.
    Workload,
}

impl SharedScope {
    /// `namespace`, `host` or `workload`, as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedScope::Namespace => "namespace",
            SharedScope::Host => "host",
            SharedScope::Workload => "workload",
        }
    }
}

/// How calls reach a shared plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forwarder {
    /// The default: host shims generated for the interface where keel has
    /// them (the built-in interfaces, e.g. `wasi:keyvalue`), the generic
    /// forwarder elsewhere.
    #[default]
    Auto,
    /// As [`Forwarder::Auto`], asked for in so many words: keel warns at
    /// start about each interface of the plugin it has no typed forwarder
    /// for, since those calls go through the generic one.
    Typed,
    /// The generic forwarder (`Val`s) for every interface: slower, kept for
    /// comparison and as a way around a typed forwarder.
    Generic,
}

/// The outside world a shared plugin may reach: nothing unless listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginGrants {
    /// Outgoing HTTP allowlist, as `http.outgoing` of a workload.
    pub outgoing_http: Vec<String>,
    /// Whether host names granted by a `*.domain` entry of `outgoing_http`
    /// may not resolve to internal addresses, as `http.block_private` of a
    /// workload (default on).
    pub outgoing_block_private: bool,
    /// Socket allowlist, as `sockets.allow` of a workload.
    pub sockets: Vec<String>,
    /// Local addresses it may listen on, as `sockets.listen` of a workload.
    pub listen: Vec<String>,
    /// Whether it may resolve host names.
    pub name_lookup: bool,
    /// NATS subject patterns it may use through `keel:core/nats` (see
    /// [`crate::policy::grants`]).
    pub subjects: Vec<String>,
}

impl Default for PluginGrants {
    /// Nothing granted; internal addresses blocked for pattern grants.
    fn default() -> PluginGrants {
        PluginGrants {
            outgoing_http: Vec::new(),
            outgoing_block_private: true,
            sockets: Vec::new(),
            listen: Vec::new(),
            name_lookup: false,
            subjects: Vec::new(),
        }
    }
}

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
            data_name: None,
            service: None,
        }
    }

    /// The name the workload's data is kept under: [`WorkloadSpec::data_name`]
    /// or, when it gives none, the workload's name.
    pub fn data_name(&self) -> &str {
        self.data_name.as_deref().unwrap_or(&self.id.name)
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

/// HTTP settings of a workload.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// The Host header (without port) routed to this workload. Without one,
    /// the workload receives every request only while it is the host's only
    /// HTTP workload without a host name (the development default).
    pub host: Option<String>,
    /// More Host headers routed to this workload, besides `host` (which
    /// they need).
    pub aliases: Vec<String>,
    /// Whether other workloads that say so too may serve the same host
    /// names, requests going to each running one in turn: replicas of one
    /// service on one host. Off, a host name belongs to one workload.
    pub shared: bool,
    /// Where the manifest declared `host`, for error messages.
    pub host_origin: Option<Location>,
    /// Outgoing HTTP allowlist: `host`, `host:port`, or `*.domain[:port]`.
    /// Empty means outgoing HTTP is denied.
    pub outgoing: Vec<String>,
    /// Whether a host name granted only by a `*.domain` entry is refused when
    /// it resolves to an internal address (loopback, private, link-local,
    /// unique local, multicast, unspecified: see
    /// [`crate::policy::addresses`]). On by default; entries naming the
    /// host itself (`db.internal`, `127.0.0.1:9000`) are never refused.
    pub block_private: bool,
}

impl HttpSpec {
    /// Every Host header routed to the workload: `host`, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.host.iter().chain(&self.aliases)
    }
}

impl Default for HttpSpec {
    /// No route, no outgoing HTTP, internal addresses blocked for pattern
    /// grants.
    fn default() -> HttpSpec {
        HttpSpec {
            host: None,
            aliases: Vec::new(),
            shared: false,
            host_origin: None,
            outgoing: Vec::new(),
            block_private: true,
        }
    }
}

/// Socket settings of a workload: denied unless listed.
#[derive(Debug, Clone, Default)]
pub struct SocketsSpec {
    /// `ip:port` or `ip:*` patterns of remote addresses the guest may
    /// connect or send to, over TCP and UDP. Empty means none.
    pub allow: Vec<String>,
    /// Local addresses the guest may bind and listen on (a server inside the
    /// guest). Empty, the default, means it may not listen at all.
    pub listen: Vec<String>,
    /// Whether the guest may resolve host names.
    pub name_lookup: bool,
}

/// A host folder mounted into the guest.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    /// The folder on the host, resolved against the manifest's folder.
    pub host: PathBuf,
    /// Where the guest sees it (e.g. `/data`).
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

impl VolumeSpec {
    /// Host folder `host` seen by the guest at `guest`, read-only or not.
    pub fn new(host: impl Into<PathBuf>, guest: impl Into<String>, read_only: bool) -> VolumeSpec {
        VolumeSpec {
            host: host.into(),
            guest: guest.into(),
            read_only,
        }
    }
}

/// The bounds on a workload's guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory one instance may grow to.
    pub memory: ByteSize,
    /// Linear memory all the workload's instances in flight may hold
    /// together; past it a growth fails (the request gets 503). `None`:
    /// [`Limits::DEFAULT_MEMORY_TOTAL`], or `memory` if that is larger.
    pub memory_total: Option<ByteSize>,
    /// Wall-clock time one invocation may take, CPU included.
    pub timeout: Duration,
    /// Instances in flight at once; further requests wait for a free slot.
    pub max_instances: u32,
    /// How long a request waits for a free instance slot before it gets 503.
    pub queue_timeout: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub max_request_body: ByteSize,
    /// Bytes per second of stdout and stderr the workload's guests may log
    /// together; what is over it is dropped and reported.
    pub log_rate: ByteSize,
    /// Invocations of the workload that may run guest code at once once
    /// they have used a whole epoch tick (the CPU-bound ones); the others
    /// wait for a turn, so a workload spinning many invocations leaves the
    /// host's other cores to its neighbours. `None`:
    /// [`Limits::default_max_running`].
    pub max_running: Option<u32>,
}

impl Limits {
    /// The memory budget of a workload that sets none.
    pub const DEFAULT_MEMORY_TOTAL: ByteSize = ByteSize::mib(1024);

    /// CPU-bound invocations of one workload at once when it sets none:
    /// half the host's cores, at least one.
    pub fn default_max_running() -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        u32::try_from(cores / 2).unwrap_or(u32::MAX).max(1)
    }

    /// CPU-bound invocations of the workload at once.
    pub fn max_running(&self) -> u32 {
        self.max_running
            .unwrap_or_else(Limits::default_max_running)
            .max(1)
    }

    /// The memory budget across the workload's instances in flight.
    pub fn memory_total(&self) -> ByteSize {
        self.memory_total
            .unwrap_or(Limits::DEFAULT_MEMORY_TOTAL.max(self.memory))
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: ByteSize::mib(128),
            memory_total: None,
            timeout: Duration::from_secs(30),
            max_instances: 100,
            queue_timeout: Duration::from_secs(1),
            max_request_body: ByteSize::mib(10),
            log_rate: ByteSize::mib(1),
            max_running: None,
        }
    }
}
