//! Plugin layers (chains): a plugin that imports an interface another
//! plugin exports — an audit layer exporting `wasi:keyvalue/store` and
//! importing it from the backend beneath — is linked to that plugin.
//!
//! A plugin's own imports are resolved like a workload's, with two
//! differences: its manifest `wraps` picks the plugins beneath it (see
//! [`Wraps`](crate::spec::Wraps)), and it never serves itself. The imports
//! the host serves (WASI, `keel:core`) stay the host's. Resolution follows
//! the chain down, refusing a cycle or a missing link with the chain
//! printed (`keyvalue-audit → keyvalue-quota → keyvalue-audit`).
//!
//! How a chain is linked follows each plugin's mode. The composed plugins
//! beneath a plugin are composed into it, one level at a time (its
//! [`Stack`]); what the stack still imports from shared plugins is served by
//! forwarders — in the workload's Store when the top is composed, in the
//! layer's own Store when it is shared — and the calls keep their original
//! caller: the Store forwarding them acts for the workload it serves.
//!
//! Grants never cross a link: a shared layer's Store has the layer's
//! grants and the backend's Store the backend's. Plugins composed together
//! share one `keel:core/nats` import, so keel refuses a composed layer that
//! imports it together with a member of its stack that imports it too, and
//! a composed plugin importing it beneath a shared layer (it would act
//! under the layer's grants).

use super::composed::compose;
use super::{LoadedPlugin, PluginSet, advice, host_serves, is_keel_core, reaches_outside};
use crate::spec::{LinkMode, SharedScope};
use anyhow::{Context, Result, bail};
use keel_compose::{Binding, InterfaceName, Unbound, bake};
use std::collections::{BTreeMap, BTreeSet};

/// One link of a chain: an import of plugin `layer` served by another
/// plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerLink {
    /// The plugin whose import this is.
    pub layer: String,
    /// Its import, the plugin serving it, and that plugin's export.
    pub binding: Binding,
    /// How the serving plugin is linked.
    pub mode: LinkMode,
}

/// How a plugin's own imports that plugins may serve are resolved (once
/// per plugin).
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginLinks {
    /// Imports a plugin serves.
    bound: Vec<Binding>,
    /// Imports nothing serves: denied.
    unbound: Vec<Unbound>,
}

/// What a plugin brings when it serves a component: the composed plugins
/// beneath it, and the imports of the whole stack left to shared plugins
/// or to nothing.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// The composed plugins beneath the top, each composed into its layer.
    pub composed: Vec<String>,
    /// Imports of the stack served by shared plugins.
    pub shared: Vec<Binding>,
    /// Imports of the stack nothing serves.
    pub denied: Vec<Unbound>,
}

impl PluginSet {
    /// Resolves the chain beneath plugin `name`: every link below it,
    /// depth first, added to `out` once each. Refuses a cycle and a
    /// missing link, printing the chain.
    pub fn chain(&mut self, name: &str, out: &mut Vec<LayerLink>) -> Result<()> {
        self.chain_from(name, &mut Vec::new(), out)
    }

    /// Checks the chain of every layer declared, those no other layer
    /// wraps first (so a broken link is shown with the longest chain): a
    /// cycle or a missing link is a mistake of the manifest, refused even
    /// where no workload reaches it through its imports (two layers
    /// wrapping each other leave no candidate for the interface at all).
    pub(crate) fn check_layers(&mut self) -> Result<()> {
        let wrapped: BTreeSet<String> = (self.plugins.iter())
            .flat_map(|p| p.spec.wraps.named().map(str::to_string).collect::<Vec<_>>())
            .collect();
        let mut layers: Vec<String> = (self.plugins.iter())
            .filter(|p| !p.spec.wraps.is_empty())
            .map(|p| p.spec.name.clone())
            .collect();
        layers.sort_by_key(|name| wrapped.contains(name));
        for layer in layers {
            self.chain(&layer, &mut Vec::new())?;
        }
        Ok(())
    }

    fn chain_from(
        &mut self,
        name: &str,
        path: &mut Vec<String>,
        out: &mut Vec<LayerLink>,
    ) -> Result<()> {
        let shown = |path: &[String], last: &str| {
            let mut chain = path.to_vec();
            chain.push(last.to_string());
            chain.join(" → ")
        };
        if path.iter().any(|p| p == name) {
            bail!(
                "plugin layers form a cycle: {}; a layer must end on a plugin that \
                 imports none of the interfaces above it",
                shown(path, name)
            );
        }
        let Some(plugin) = self.get(name) else {
            bail!(
                "missing link in the plugin chain {}",
                missing(&shown(path, name), name)
            );
        };
        let wraps = plugin.spec.wraps.clone();
        path.push(name.to_string());
        for wrapped in wraps.named() {
            if self.get(wrapped).is_none() {
                bail!(
                    "missing link in the plugin chain {}",
                    missing(&shown(path, wrapped), wrapped)
                );
            }
        }
        let links = self.links(name)?;
        for binding in links.bound {
            let mode = self
                .get(&binding.plugin)
                .map_or(LinkMode::Composed, |p| p.spec.mode);
            let link = LayerLink {
                layer: name.to_string(),
                binding: binding.clone(),
                mode,
            };
            if !out.contains(&link) {
                out.push(link);
            }
            self.chain_from(&binding.plugin, path, out)?;
        }
        path.pop();
        Ok(())
    }

    /// How the imports of plugin `name` that plugins may serve are
    /// resolved: by its `wraps`, then as a workload's, never by itself.
    fn links(&mut self, name: &str) -> Result<PluginLinks> {
        if let Some(links) = self.links.get(name) {
            return Ok(links.clone());
        }
        let plugin = self
            .get(name)
            .with_context(|| format!("no plugin `{name}`"))?
            .clone();
        let links = if plugin.info.imports.iter().any(|i| plugin_served(&i.name)) {
            let picks = self.wrap_picks(&plugin)?;
            let covered = self.covered();
            let resolution = self
                .registry
                .resolve_excluding(&plugin.bytes, &picks, &|p, i| {
                    p == name || covered.contains(&(p.to_string(), i.to_string()))
                })
                .map_err(|e| advice::pick_for_layer(e, name))
                .with_context(|| format!("resolving the imports of plugin `{name}`"))?;
            let types_only =
                |import: &str| {
                    plugin.info.imports.iter().any(|i| {
                        i.name == import && i.functions.is_empty() && i.resources.is_empty()
                    })
                };
            PluginLinks {
                bound: (resolution.bindings.into_iter())
                    .filter(|b| plugin_served(&b.import))
                    .collect(),
                unbound: (resolution.unbound.into_iter())
                    .filter(|u| plugin_served(&u.import) && !types_only(&u.import))
                    .collect(),
            }
        } else {
            PluginLinks::default()
        };
        self.links.insert(name.to_string(), links.clone());
        Ok(links)
    }

    /// The picks plugin `layer`'s `wraps` makes for its imports
    /// (unversioned interface, or the full name written, → plugin).
    fn wrap_picks(&self, layer: &LoadedPlugin) -> Result<BTreeMap<String, String>> {
        let name = &layer.spec.name;
        let imports: Vec<InterfaceName> = (layer.info.imports.iter())
            .filter(|i| plugin_served(&i.name))
            .filter_map(|i| InterfaceName::parse(&i.name))
            .collect();
        let mut picks = BTreeMap::new();
        if let Some(wrapped) = &layer.spec.wraps.plugin {
            let below = self.get(wrapped).with_context(|| {
                format!("plugin `{name}` wraps `{wrapped}`, which is not declared")
            })?;
            for import in &imports {
                if exports_interface(below, &import.unversioned()) {
                    picks.insert(import.unversioned(), wrapped.clone());
                }
            }
            if picks.is_empty() {
                let listed: Vec<String> = imports.iter().map(|i| format!("`{i}`")).collect();
                bail!(
                    "plugin `{name}` wraps `{wrapped}`, which exports none of its imports ({})",
                    if listed.is_empty() {
                        "it imports none a plugin could serve".to_string()
                    } else {
                        listed.join(", ")
                    }
                );
            }
        }
        for (interface, wrapped) in &layer.spec.wraps.interfaces {
            let imported = imports
                .iter()
                .any(|i| i.unversioned() == *interface || i.to_string() == *interface);
            if !imported {
                bail!(
                    "plugin `{name}` wraps `{wrapped}` for `{interface}`, which it does not import"
                );
            }
            picks.insert(interface.clone(), wrapped.clone());
        }
        Ok(picks)
    }

    /// (plugin, unversioned interface) pairs a layer wraps while
    /// exporting the interface itself: a workload reaches such a plugin
    /// through its layer unless the manifest picks it, so it is no second
    /// candidate beside the layer.
    pub(crate) fn covered(&self) -> BTreeSet<(String, String)> {
        let mut covered = BTreeSet::new();
        for layer in self.plugins.iter().filter(|p| !p.spec.wraps.is_empty()) {
            let Ok(picks) = self.wrap_picks(layer) else {
                continue;
            };
            for (interface, wrapped) in picks {
                let Some(name) = InterfaceName::parse(&interface) else {
                    continue;
                };
                if exports_interface(layer, &name.unversioned()) {
                    covered.insert((wrapped, name.unversioned()));
                }
            }
        }
        covered
    }

    /// The stack plugin `top` brings, given its chain `links`: the composed
    /// plugins beneath it, and the imports left to shared plugins or to
    /// nothing. Refuses what would let grants cross a link (see the module
    /// documentation), a composed plugin reaching outside, and a shared
    /// plugin beneath a shared layer serving wider than it.
    pub fn stack(&self, top: &str, links: &[LayerLink]) -> Result<Stack> {
        let mut stack = Stack::default();
        let mut members = vec![top.to_string()];
        let mut at = 0;
        while let Some(member) = members.get(at).cloned() {
            at += 1;
            for link in links.iter().filter(|l| l.layer == member) {
                let below = &link.binding.plugin;
                match link.mode {
                    LinkMode::Composed => {
                        if let Some(plugin) = self.get(below)
                            && let Some(reach) = plugin
                                .info
                                .imports
                                .iter()
                                .find(|i| reaches_outside(&i.name))
                        {
                            bail!(
                                "plugin `{below}` (beneath `{member}`) imports `{}`: {}",
                                reach.name,
                                advice::composed_reach(&reach.name)
                            );
                        }
                        if !members.contains(below) {
                            members.push(below.clone());
                            stack.composed.push(below.clone());
                        }
                    }
                    LinkMode::Shared => add_shared(&mut stack.shared, &link.binding, &member)?,
                }
            }
            if let Some(own) = self.links.get(&member) {
                stack.denied.extend(own.unbound.iter().cloned());
            }
        }
        let nats: Vec<&String> = members
            .iter()
            .filter(|m| self.get(m).is_some_and(imports_nats))
            .collect();
        let top_mode = self.get(top).map_or(LinkMode::Composed, |p| p.spec.mode);
        // A layer composed together with another member importing
        // keel:core/nats would share that import, and so its grants.
        let layer_with_nats = nats.iter().find(|m| {
            let is_layer = links
                .iter()
                .any(|l| l.layer.as_str() == m.as_str() && l.mode == LinkMode::Composed);
            is_layer && nats.len() > 1
        });
        if let (LinkMode::Composed, Some(layer)) = (top_mode, layer_with_nats) {
            let other = (nats.iter())
                .find(|m| m.as_str() != layer.as_str())
                .map_or("", |m| m.as_str());
            bail!(
                "plugin `{layer}` imports keel:core/nats and is composed together with `{other}`, \
                 which imports it too: one would act under the other's subject grants; declare \
                 one of them with mode = \"shared\""
            );
        }
        if top_mode == LinkMode::Shared {
            if let Some(below) = nats.iter().find(|m| m.as_str() != top) {
                bail!(
                    "plugin `{below}` imports keel:core/nats and is composed beneath the shared \
                     layer `{top}`, where it would act under `{top}`'s grants; declare it with \
                     mode = \"shared\""
                );
            }
            self.check_scopes(top, &stack)?;
        }
        Ok(stack)
    }

    /// Refuses a shared plugin beneath shared layer `top` whose instances
    /// serve fewer workloads than `top`'s: one instance of `top` would
    /// carry the calls of several workloads into an instance meant for
    /// one of them.
    fn check_scopes(&self, top: &str, stack: &Stack) -> Result<()> {
        let Some(layer) = self.get(top) else {
            return Ok(());
        };
        for binding in &stack.shared {
            let Some(below) = self.get(&binding.plugin) else {
                continue;
            };
            if width(below.spec.scope) < width(layer.spec.scope) {
                bail!(
                    "shared layer `{top}` (scope = \"{}\") cannot wrap `{}` (scope = \"{}\"): \
                     one instance of `{top}` would carry several workloads' calls into an \
                     instance meant for fewer; give `{top}` scope = \"{}\"",
                    layer.spec.scope.as_str(),
                    below.spec.name,
                    below.spec.scope.as_str(),
                    below.spec.scope.as_str()
                );
            }
        }
        Ok(())
    }
}

/// Plugin `top`'s component (`bytes`, its configuration baked in) with the
/// composed plugins beneath it composed in, each with its own stack, as
/// `links` say. Each plugin beneath gets only its own configuration.
pub fn stack_bytes(
    plugins: &PluginSet,
    top: &str,
    bytes: Vec<u8>,
    links: &[LayerLink],
) -> Result<Vec<u8>> {
    let below: Vec<&LayerLink> = links
        .iter()
        .filter(|l| l.layer == top && l.mode == LinkMode::Composed)
        .collect();
    if below.is_empty() {
        return Ok(bytes);
    }
    let mut prepared: Vec<(String, Vec<u8>)> = Vec::new();
    for link in &below {
        let name = &link.binding.plugin;
        if prepared.iter().any(|(n, _)| n == name) {
            continue;
        }
        let plugin = plugins
            .get(name)
            .with_context(|| format!("plugin `{name}` vanished"))?;
        let own = stack_bytes(plugins, name, baked(plugin)?, links)?;
        prepared.push((name.clone(), own));
    }
    let bindings: Vec<Binding> = below.iter().map(|l| l.binding.clone()).collect();
    compose(&bytes, &prepared, &bindings).with_context(|| {
        let names: Vec<&str> = prepared.iter().map(|(n, _)| n.as_str()).collect();
        format!("composing plugin `{top}` over {}", names.join(", "))
    })
}

/// `plugin`'s component with its own configuration baked in (if it takes
/// any).
pub fn baked(plugin: &LoadedPlugin) -> Result<Vec<u8>> {
    if !bake::accepts_config(&plugin.bytes) {
        return Ok(plugin.bytes.to_vec());
    }
    let pairs: Vec<(String, String)> = (plugin.spec.config.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    bake::bake(&plugin.bytes, &pairs)
        .with_context(|| format!("baking configuration into plugin `{}`", plugin.spec.name))
}

/// Adds `binding` (an import of `layer`) to the shared bindings of a stack,
/// once; refuses one import name served by two plugins (composed into one
/// component, the stack can import it only once).
fn add_shared(shared: &mut Vec<Binding>, binding: &Binding, layer: &str) -> Result<()> {
    match shared.iter().find(|b| b.import == binding.import) {
        Some(other) if other.plugin != binding.plugin => bail!(
            "`{}` is imported twice in one component, served by `{}` and (for `{layer}`) by `{}`: \
             a component imports an interface once; serve both from one plugin",
            binding.import,
            other.plugin,
            binding.plugin
        ),
        Some(_) => Ok(()),
        None => {
            shared.push(binding.clone());
            Ok(())
        }
    }
}

/// `chain (missing)`, with what to do.
fn missing(chain: &str, name: &str) -> String {
    let hint = if crate::spec::builtin::builtin(name).is_some() {
        format!(
            ": `{name}` is a built-in this host does not offer by default; declare it with [[plugin]] name = \"{name}\""
        )
    } else {
        format!(": no plugin `{name}` is declared")
    };
    format!("{chain} (missing){hint}")
}

/// Whether an import of a plugin may be served by another plugin (it is
/// an interface the host does not serve itself).
fn plugin_served(import: &str) -> bool {
    InterfaceName::parse(import).is_some() && !host_serves(import) && !is_keel_core(import)
}

/// Whether `plugin` exports interface `unversioned`, at any version.
fn exports_interface(plugin: &LoadedPlugin, unversioned: &str) -> bool {
    plugin
        .info
        .exports
        .iter()
        .any(|e| InterfaceName::parse(&e.name).is_some_and(|n| n.unversioned() == unversioned))
}

/// Whether `plugin` imports `keel:core/nats` (what subject grants govern).
fn imports_nats(plugin: &LoadedPlugin) -> bool {
    plugin.info.imports.iter().any(|i| {
        InterfaceName::parse(&i.name)
            .is_some_and(|n| n.namespace == "keel" && n.package == "core" && n.interface == "nats")
    })
}

/// How many workloads an instance of `scope` serves, in order.
fn width(scope: SharedScope) -> u8 {
    match scope {
        SharedScope::Workload => 0,
        SharedScope::Namespace => 1,
        SharedScope::Host => 2,
    }
}
