//! Plugins: capabilities implemented as components, and how a workload's
//! imports are linked to them.
//!
//! For every component of a workload, [`PluginSet::plan`] decides how each
//! import is served: by a plugin composed in ([`composed`]), by the host
//! (WASI, `wasi:http`), or by a deny implementation ([`deny`]) that answers
//! `access-denied` or traps with a message naming the interface. A plugin
//! may itself import what other plugins export: a layer over them, linked
//! as [`layers`] describes. Plugins learn who calls them through
//! `keel:core` (`identity`); workloads may not import `keel:core`
//! themselves. What a plugin may import is decided by [`imports`]; what it
//! asks for (its metadata) against what it is granted is logged by
//! [`asks`].

pub mod advice;
pub mod asks;
pub mod component_info;
pub mod composed;
pub mod deny;
pub mod imports;
pub mod layers;
mod plan;
pub mod shared;

use crate::cache::ComponentCache;
use crate::engine::KeelEngine;
use crate::spec::builtin;
use crate::spec::plugin_meta::PluginMetadata;
use crate::spec::{LinkMode, PluginSpec, SharedScope, WorkloadId};
use anyhow::{Context, Result, bail};
use keel_compose::{ComponentInfo, Registry};
use layers::PluginLinks;
use sha2::{Digest, Sha256};
use shared::SharedPlugin;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use imports::reaches_outside;
pub use plan::{LinkPlan, host_serves, is_keel_core};

/// A plugin whose component has been read.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// What the manifest said.
    pub spec: PluginSpec,
    /// The component's bytes.
    pub bytes: Arc<Vec<u8>>,
    /// SHA-256 of the bytes.
    pub digest: [u8; 32],
    /// Its imports and exports.
    pub info: ComponentInfo,
    /// Whether it is one of keel's built-ins (which yield to declared plugins).
    pub builtin: bool,
    /// What it says about itself (its `keel-plugin` section), if anything.
    pub metadata: Option<PluginMetadata>,
}

/// The plugins a host offers its workloads, and the registry matching
/// imports to their exports.
#[derive(Default)]
pub struct PluginSet {
    plugins: Vec<LoadedPlugin>,
    registry: Registry,
    /// Live shared instances by plugin name and whom they serve.
    shared: BTreeMap<(String, Serves), LiveShared>,
    /// How each plugin's own imports are served (see [`layers`]), resolved
    /// on first use.
    links: BTreeMap<String, PluginLinks>,
    /// Built-ins offered but not read yet (`Some(with_nats)`): reading them
    /// (validating each component and its WIT) is most of a host's start,
    /// and a workload importing only what the host serves itself never
    /// needs them. See [`PluginSet::load_builtins`].
    pending_builtins: Option<bool>,
}

/// A live shared plugin instance (it holds its slot of the pool's reserve
/// for as long as any workload may still call it).
struct LiveShared {
    plugin: Arc<SharedPlugin>,
}

/// Whom one shared plugin instance serves (see [`SharedScope`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Serves {
    /// Every workload of the host.
    Host,
    /// The workloads of one namespace.
    Namespace(String),
    /// One workload.
    Workload(WorkloadId),
}

impl Serves {
    /// Whom an instance of scope `scope` serving `workload` serves.
    fn of(scope: SharedScope, workload: &WorkloadId) -> Serves {
        match scope {
            SharedScope::Host => Serves::Host,
            SharedScope::Namespace => Serves::Namespace(workload.namespace.clone()),
            SharedScope::Workload => Serves::Workload(workload.clone()),
        }
    }

    /// For log lines.
    fn describe(&self) -> String {
        match self {
            Serves::Host => "every workload of the host".to_string(),
            Serves::Namespace(namespace) => format!("namespace {namespace}"),
            Serves::Workload(id) => format!("workload {id}"),
        }
    }
}

impl LinkMode {
    /// `composed` or `shared`, as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Composed => "composed",
            LinkMode::Shared => "shared",
        }
    }
}

impl PluginSet {
    /// A set offering keel's built-in plugins (see [`builtin`]): the NATS-backed
    /// set when the host has NATS, the in-memory set otherwise. They are
    /// read on first need ([`PluginSet::load_builtins`]): when a plugin is
    /// added, or a component to plan imports anything the host does not
    /// serve itself.
    pub fn with_builtins(with_nats: bool) -> Result<PluginSet> {
        Ok(PluginSet {
            pending_builtins: Some(with_nats),
            ..PluginSet::default()
        })
    }

    /// Reads and registers the built-ins offered and not read yet; nothing
    /// when they are read already or none are offered. [`PluginSet::iter`]
    /// and [`PluginSet::get`] see built-ins only after this.
    pub fn load_builtins(&mut self) -> Result<()> {
        let Some(with_nats) = self.pending_builtins.take() else {
            return Ok(());
        };
        for name in builtin::defaults(with_nats) {
            let Some((mode, bytes)) = builtin::builtin(name) else {
                continue;
            };
            let spec = PluginSpec {
                grants: builtin::default_grants(name, &BTreeMap::new())?,
                ..PluginSpec::new(name, None, mode)
            };
            self.register(spec, bytes.to_vec(), true)?;
        }
        Ok(())
    }

    /// Whether built-ins are offered but not read yet.
    pub fn builtins_pending(&self) -> bool {
        self.pending_builtins.is_some()
    }

    /// Reads the plugin's component and registers its exports. A plugin
    /// with a source named like a built-in replaces that built-in; one
    /// without a source configures the built-in (and takes its place among the
    /// declared plugins), with the built-in's grants added to its own.
    pub fn add(&mut self, mut spec: PluginSpec) -> Result<()> {
        // A declared plugin may replace or configure a built-in, wrap one as
        // a layer, or import what one exports.
        self.load_builtins()?;
        if self
            .plugins
            .iter()
            .any(|p| p.spec.name == spec.name && !p.builtin)
        {
            bail!("plugin `{}` is declared twice", spec.name);
        }
        let at = located(&spec);
        let bytes = match &spec.source {
            Some(source) => source
                .read()
                .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e:#}", spec.name))?
                .into_owned(),
            None => {
                let bytes = builtin::builtin(&spec.name)
                    .with_context(|| format!("{at}no built-in plugin `{}`", spec.name))?
                    .1;
                let mut subjects = builtin::default_grants(&spec.name, &spec.config)
                    .map_err(|e| anyhow::anyhow!("{at}{e:#}"))?
                    .subjects;
                subjects.append(&mut spec.grants.subjects);
                spec.grants.subjects = subjects;
                bytes.to_vec()
            }
        };
        self.register(spec, bytes, false)?;
        if let Some(plugin) = self.plugins.last() {
            asks::log(plugin);
            advice::log_forwarder(plugin);
        }
        Ok(())
    }

    /// Registers a plugin's bytes. Built-ins get a lower priority: where a
    /// declared plugin fits an import, built-ins are not considered.
    fn register(&mut self, spec: PluginSpec, bytes: Vec<u8>, builtin: bool) -> Result<()> {
        let at = located(&spec);
        self.links.clear();
        keel_compose::WasmKind::expect_component(&bytes)
            .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e}", spec.name))?;
        let info =
            ComponentInfo::read(&bytes).with_context(|| format!("{at}plugin `{}`", spec.name))?;
        let metadata = PluginMetadata::read(&bytes)
            .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e}", spec.name))?;
        if self.plugins.iter().any(|p| p.spec.name == spec.name) {
            // Replacing a built-in: rebuild the registry without it.
            self.plugins.retain(|p| p.spec.name != spec.name);
            self.shared.retain(|(name, _), _| *name != spec.name);
            self.registry = Registry::new();
            for plugin in &self.plugins {
                self.registry.add_with_priority(
                    &plugin.spec.name,
                    &plugin.bytes,
                    u8::from(!plugin.builtin),
                )?;
            }
        }
        self.registry
            .add_with_priority(&spec.name, &bytes, u8::from(!builtin))
            .with_context(|| format!("{at}plugin `{}`", spec.name))?;
        let digest = Sha256::digest(&bytes).into();
        self.plugins.push(LoadedPlugin {
            spec,
            bytes: Arc::new(bytes),
            digest,
            info,
            builtin,
            metadata,
        });
        Ok(())
    }

    /// The plugin named `name` (a built-in only once read,
    /// [`PluginSet::load_builtins`]).
    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.iter().find(|p| p.spec.name == name)
    }

    /// Every plugin, in the order added (built-ins only once read,
    /// [`PluginSet::load_builtins`]).
    pub fn iter(&self) -> impl Iterator<Item = &LoadedPlugin> {
        self.plugins.iter()
    }

    /// The shared instance of plugin `name` serving `workload`: its
    /// namespace's (the default scope), the host's one for `scope =
    /// "host"`, or the workload's own for `scope = "workload"` (created,
    /// and its component compiled or loaded from the cache, on first use).
    pub fn shared_instance(
        &mut self,
        engine: &KeelEngine,
        cache: &ComponentCache,
        name: &str,
        workload: &WorkloadId,
        broker: &crate::core_api::broker::Broker,
        resolver: &crate::outgoing::Resolver,
    ) -> Result<Arc<SharedPlugin>> {
        let loaded = self
            .get(name)
            .with_context(|| format!("no plugin `{name}`"))?;
        let key = (name.to_string(), Serves::of(loaded.spec.scope, workload));
        if let Some(live) = self.shared.get(&key) {
            return Ok(live.plugin.clone());
        }
        // Taken first, so that a host out of slots says so before compiling.
        let reserved = engine.pool().reserve_shared().with_context(|| {
            format!(
                "starting a shared instance of plugin `{name}` for {}",
                key.1.describe()
            )
        })?;
        // The chain beneath it: composed plugins composed into its
        // component, shared ones reached through forwarders in its Store.
        let mut links = Vec::new();
        self.chain(name, &mut links)?;
        let stack = self.stack(name, &links)?;
        let loaded = self
            .get(name)
            .with_context(|| format!("no plugin `{name}`"))?;
        // A shared plugin's configuration is baked in like a composed one's.
        let bytes = layers::stack_bytes(self, name, layers::baked(loaded)?, &links)?;
        let spec = loaded.spec.clone();
        let component = cache.load(engine.engine(), name, &bytes)?;
        let mut beneath = Vec::new();
        for binding in &stack.shared {
            let below =
                self.shared_instance(engine, cache, &binding.plugin, workload, broker, resolver)?;
            beneath.push((binding.clone(), below));
        }
        let plugin = Arc::new(
            SharedPlugin::layered(
                engine,
                name,
                &component,
                &spec.grants,
                broker,
                beneath,
                &stack.denied,
            )?
            .resolving_with(resolver.clone())
            .with_forwarder(spec.forwarder)
            .with_limits(spec.memory.as_usize(), spec.call_timeout)
            .serving(key.1.describe())
            .holding(reserved),
        );
        self.shared.insert(
            key,
            LiveShared {
                plugin: plugin.clone(),
            },
        );
        Ok(plugin)
    }

    /// Drops the shared instances that served only `workload` (those of
    /// plugins of scope `workload`), so that a new workload with its id
    /// starts with fresh ones. Returns how many were dropped.
    pub fn release_workload(&mut self, workload: &WorkloadId) -> usize {
        let before = self.shared.len();
        self.shared
            .retain(|(_, serves), _| !matches!(serves, Serves::Workload(id) if id == workload));
        before - self.shared.len()
    }

    /// Drops the shared instances that served the workloads of namespace
    /// `namespace` (the default scope), once none of them is left on the
    /// host. Returns how many were dropped.
    pub fn release_namespace(&mut self, namespace: &str) -> usize {
        let before = self.shared.len();
        self.shared
            .retain(|(_, serves), _| !matches!(serves, Serves::Namespace(ns) if ns == namespace));
        before - self.shared.len()
    }

    /// How many times the shared instances of plugin `name` restarted,
    /// together.
    pub fn shared_restarts(&self, name: &str) -> u64 {
        self.shared
            .iter()
            .filter(|((plugin, _), _)| plugin == name)
            .map(|(_, live)| live.plugin.restarts())
            .sum()
    }
}

/// `file:line:col: ` of a plugin's declaration, or nothing.
fn located(spec: &PluginSpec) -> String {
    spec.origin
        .as_ref()
        .map(|l| format!("{l}: "))
        .unwrap_or_default()
}
