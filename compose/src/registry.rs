//! The plugin registry: which plugin export serves which workload import.
//!
//! Each plugin's exports are read once. A workload import is matched by
//! exact interface name, then by a semver-compatible version of the same
//! interface (see [`semver_compatible`]), and every candidate must pass a
//! subtype check (the export must offer at least what the import expects).
//! Two plugins able to serve one import is an error naming both, unless the
//! caller picks one.

use crate::inspect::ComponentInfo;
use crate::names::{InterfaceName, semver_compatible};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashSet};
use wac_types::{ItemKind, Package, SubtypeChecker, Types, WorldId};

/// A plugin known to the registry.
#[derive(Debug)]
struct Registered {
    name: String,
    world: WorldId,
    info: ComponentInfo,
    priority: u8,
}

/// Plugins and the types of their exports.
#[derive(Default)]
pub struct Registry {
    types: Types,
    plugins: Vec<Registered>,
}

/// An import served by a plugin export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The workload's import name (`acme:tally/counters@0.2.0`).
    pub import: String,
    /// The plugin's name in the registry.
    pub plugin: String,
    /// The plugin's export name (`acme:tally/counters@0.2.3`).
    pub export: String,
}

/// An import no plugin serves, with the reasons near misses were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbound {
    /// The workload's import name.
    pub import: String,
    /// e.g. "plugin `tally` exports `acme:tally/counters@0.3.0`: `0.3.0` is
    /// not compatible with `0.2.0`: for 0.x versions the minor version must match".
    pub near_misses: Vec<String>,
}

/// How every interface import of a workload is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Imports a plugin serves.
    pub bindings: Vec<Binding>,
    /// Imports no plugin serves (the host may serve them, or deny them).
    pub unbound: Vec<Unbound>,
}

/// Why a workload's imports cannot be matched.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// More than one plugin fits and none was picked.
    #[error(
        "import `{import}` can be served by plugins {}: pick one for `{interface}` in the manifest",
        plugins.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" and ")
    )]
    Ambiguous {
        /// The import.
        import: String,
        /// Its unversioned interface name, the key to pick with.
        interface: String,
        /// Every plugin that fits.
        plugins: Vec<String>,
    },
    /// The picked plugin cannot serve the import.
    #[error("plugin `{plugin}` was picked for `{import}` but cannot serve it: {why}")]
    PickDoesNotFit {
        /// The import.
        import: String,
        /// The picked plugin.
        plugin: String,
        /// Why not.
        why: String,
    },
    /// The picked plugin is not registered.
    #[error("plugin `{plugin}` (picked for `{interface}`) is not declared")]
    UnknownPlugin {
        /// The pick's interface key.
        interface: String,
        /// The unknown plugin name.
        plugin: String,
    },
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a plugin under `name`, reading its exports.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.add_with_priority(name, bytes, 1)
    }

    /// Adds a plugin that yields to others: where plugins of higher priority
    /// fit an import, plugins of lower priority are not considered (keel's
    /// built-ins have priority 0, plugins a manifest declares 1).
    pub fn add_with_priority(&mut self, name: &str, bytes: &[u8], priority: u8) -> Result<()> {
        let info =
            ComponentInfo::read(bytes).with_context(|| format!("reading plugin `{name}`"))?;
        let package = Package::from_bytes(
            &format!("keel-plugin:p{}", self.plugins.len()),
            None,
            bytes.to_vec(),
            &mut self.types,
        )
        .with_context(|| format!("reading plugin `{name}`"))?;
        self.plugins.push(Registered {
            name: name.to_string(),
            world: package.ty(),
            info,
            priority,
        });
        Ok(())
    }

    /// The names of the registered plugins.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().map(|p| p.name.as_str())
    }

    /// What plugin `name` exports.
    pub fn plugin_info(&self, name: &str) -> Option<&ComponentInfo> {
        self.plugins
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.info)
    }

    /// Matches every interface import of `workload` to a plugin export.
    /// `picks` maps an interface (`acme:tally/counters`, unversioned, or a
    /// full versioned name) to the plugin that must serve it. Imports that
    /// are not interfaces are left out of the result.
    pub fn resolve(
        &mut self,
        workload: &[u8],
        picks: &BTreeMap<String, String>,
    ) -> Result<Resolution> {
        self.resolve_excluding(workload, picks, &|_, _| false)
    }

    /// [`resolve`](Self::resolve), where plugin `p` is no candidate for an
    /// unpicked import of interface `i` (unversioned) when `excluded(p, i)`:
    /// a plugin does not serve its own imports, and a plugin a layer wraps
    /// is reached through the layer unless picked.
    pub fn resolve_excluding(
        &mut self,
        workload: &[u8],
        picks: &BTreeMap<String, String>,
        excluded: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Resolution> {
        for (interface, plugin) in picks {
            if !self.plugins.iter().any(|p| &p.name == plugin) {
                return Err(ResolveError::UnknownPlugin {
                    interface: interface.clone(),
                    plugin: plugin.clone(),
                }
                .into());
            }
        }
        let package =
            Package::from_bytes("keel:workload", None, workload.to_vec(), &mut self.types)
                .context("reading the workload's imports")?;
        let imports: Vec<(String, ItemKind)> = self.types[package.ty()]
            .imports
            .iter()
            .map(|(n, k)| (n.clone(), *k))
            .collect();
        let mut resolution = Resolution::default();
        for (import, import_kind) in imports {
            let Some(name) = InterfaceName::parse(&import) else {
                continue;
            };
            let pick = picks
                .get(&import)
                .or_else(|| picks.get(&name.unversioned()));
            let mut fits = Vec::new();
            let mut near_misses = Vec::new();
            for plugin in &self.plugins {
                if pick.is_some_and(|p| p != &plugin.name) {
                    continue;
                }
                if pick.is_none() && excluded(&plugin.name, &name.unversioned()) {
                    continue;
                }
                match self.candidate(plugin, &name, import_kind) {
                    Ok(Some(export)) => fits.push((plugin.name.clone(), export, plugin.priority)),
                    Ok(None) => {}
                    Err(why) => near_misses.push(format!("plugin `{}` {why}", plugin.name)),
                }
            }
            if let Some(top) = fits.iter().map(|(_, _, p)| *p).max() {
                fits.retain(|(_, _, p)| *p == top);
            }
            match (fits.len(), pick) {
                (1, _) => {
                    let (plugin, export, _) = fits.remove(0);
                    resolution.bindings.push(Binding {
                        import,
                        plugin,
                        export,
                    });
                }
                (0, Some(plugin)) => {
                    let why = near_misses
                        .pop()
                        .unwrap_or_else(|| "it exports no such interface".to_string());
                    return Err(ResolveError::PickDoesNotFit {
                        import,
                        plugin: plugin.clone(),
                        why,
                    }
                    .into());
                }
                (0, None) => resolution.unbound.push(Unbound {
                    import,
                    near_misses,
                }),
                _ => {
                    return Err(ResolveError::Ambiguous {
                        import,
                        interface: name.unversioned(),
                        plugins: fits.into_iter().map(|(p, _, _)| p).collect(),
                    }
                    .into());
                }
            }
        }
        Ok(resolution)
    }

    /// The export of `plugin` that can serve `import`: exact name first, then
    /// a semver-compatible one; `Err` explains a near miss.
    fn candidate(
        &self,
        plugin: &Registered,
        import: &InterfaceName,
        import_kind: ItemKind,
    ) -> Result<Option<String>, String> {
        let exports = &self.types[plugin.world].exports;
        let same_interface = exports.iter().filter(|(export, _)| {
            InterfaceName::parse(export).is_some_and(|e| e.unversioned() == import.unversioned())
        });
        let mut why_not = None;
        // Exact names sort first so that they win over compatible versions.
        let mut ordered: Vec<_> = same_interface.collect();
        ordered.sort_by_key(|(export, _)| **export != import.to_string());
        for (export, export_kind) in ordered {
            let export_name = InterfaceName::parse(export).and_then(|e| e.version);
            let version_ok = match (&import.version, &export_name) {
                (Some(imported), Some(exported)) => semver_compatible(imported, exported),
                (None, None) => Ok(()),
                _ => Err("one side is versioned and the other is not".to_string()),
            };
            if let Err(why) = version_ok {
                why_not = Some(format!("exports `{export}`: {why}"));
                continue;
            }
            let mut cache = HashSet::new();
            let mut checker = SubtypeChecker::new(&mut cache);
            match checker.is_subtype(*export_kind, &self.types, import_kind, &self.types) {
                Ok(()) => return Ok(Some(export.clone())),
                Err(e) => {
                    why_not = Some(format!("exports `{export}` with a different type: {e:#}"))
                }
            }
        }
        why_not.map_or(Ok(None), Err)
    }
}
