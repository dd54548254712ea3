//! A plugin's declaration: its component, how it is linked, its
//! configuration, and what it may reach itself.

use super::{ByteSize, ComponentSource, Location, Wraps};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
///
/// ```
/// use keel::spec::{LinkMode, PluginGrants, PluginSpec, SharedScope};
/// use std::time::Duration;
/// let plugin = PluginSpec::new("tally", Some("tally_plugin.wasm".into()), LinkMode::Shared)
///     .with_config("start", "10")
///     .with_scope(SharedScope::Host)
///     .with_call_timeout(Duration::from_secs(1))
///     .with_grants(PluginGrants::default().with_subjects("tally.>"));
/// assert_eq!(plugin.scope, SharedScope::Host);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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

    /// Sets one of the values the plugin reads as its configuration.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> PluginSpec {
        self.config.insert(key.into(), value.into());
        self
    }

    /// What the plugin itself may reach (shared plugins only).
    pub fn with_grants(mut self, grants: PluginGrants) -> PluginSpec {
        self.grants = grants;
        self
    }

    /// How many instances a shared plugin has.
    pub fn with_scope(mut self, scope: SharedScope) -> PluginSpec {
        self.scope = scope;
        self
    }

    /// Which forwarder carries the calls to a shared plugin.
    pub fn with_forwarder(mut self, forwarder: Forwarder) -> PluginSpec {
        self.forwarder = forwarder;
        self
    }

    /// The linear memory one shared instance may hold.
    pub fn with_memory(mut self, memory: ByteSize) -> PluginSpec {
        self.memory = memory;
        self
    }

    /// How long one call may run in a shared plugin's Store.
    pub fn with_call_timeout(mut self, timeout: Duration) -> PluginSpec {
        self.call_timeout = timeout;
        self
    }

    /// The plugins serving its own imports, when it is a layer over them.
    pub fn with_wraps(mut self, wraps: Wraps) -> PluginSpec {
        self.wraps = wraps;
        self
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
///
/// ```
/// use keel::spec::PluginGrants;
/// let grants = PluginGrants::default()
///     .with_outgoing_http("api.example.com")
///     .with_sockets("127.0.0.1:6379")
///     .with_subjects("kv.>");
/// assert!(!grants.name_lookup);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl PluginGrants {
    /// Allows outgoing HTTP to `pattern`, as `http.outgoing` of a workload.
    pub fn with_outgoing_http(mut self, pattern: impl Into<String>) -> PluginGrants {
        self.outgoing_http.push(pattern.into());
        self
    }

    /// Whether host names granted by a `*.domain` pattern may not resolve
    /// to internal addresses (on by default).
    pub fn with_outgoing_block_private(mut self, block: bool) -> PluginGrants {
        self.outgoing_block_private = block;
        self
    }

    /// Allows connecting or sending to `pattern`, as `sockets.allow` of a
    /// workload.
    pub fn with_sockets(mut self, pattern: impl Into<String>) -> PluginGrants {
        self.sockets.push(pattern.into());
        self
    }

    /// Allows listening on `pattern`, as `sockets.listen` of a workload.
    pub fn with_listen(mut self, pattern: impl Into<String>) -> PluginGrants {
        self.listen.push(pattern.into());
        self
    }

    /// Whether it may resolve host names.
    pub fn with_name_lookup(mut self, on: bool) -> PluginGrants {
        self.name_lookup = on;
        self
    }

    /// Allows the NATS subject pattern `pattern` through `keel:core/nats`.
    pub fn with_subjects(mut self, pattern: impl Into<String>) -> PluginGrants {
        self.subjects.push(pattern.into());
        self
    }
}
