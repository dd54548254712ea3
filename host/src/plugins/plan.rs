//! A component's link plan: for each of its imports, whether a composed
//! plugin, a shared plugin, the host or a deny implementation serves it.

use super::layers::LayerLink;
use super::{PluginSet, advice, imports, reaches_outside};
use crate::policy::grants::SubjectGrants;
use crate::spec::LinkMode;
use anyhow::{Context, Result, bail};
use keel_compose::{Binding, ComponentInfo, InterfaceName, Resolution, Unbound};
use std::collections::BTreeMap;

/// How one component's imports are served.
#[derive(Debug, Clone, Default)]
pub struct LinkPlan {
    /// Imports served by plugins composed into the component.
    pub composed: Vec<Binding>,
    /// Imports served by shared plugin instances.
    pub shared: Vec<Binding>,
    /// Imports the host serves (WASI, `wasi:http`, and `keel:core` for plugins).
    pub host: Vec<String>,
    /// Imports nothing serves: linked to a deny implementation.
    pub denied: Vec<Unbound>,
    /// Imports of interfaces that hold only types (no functions, no
    /// resources, as `wasmcloud:messaging/types`): there is nothing to
    /// serve or deny; they are linked as empty instances.
    pub types_only: Vec<String>,
    /// The NATS subjects granted to the composed plugins: together, since
    /// they share the component's one `keel:core/nats` import.
    pub subjects: SubjectGrants,
    /// The links of the plugin layers beneath the plugins serving the
    /// component (see [`layers`]).
    pub layers: Vec<LayerLink>,
}

impl LinkPlan {
    /// Every import a plugin serves, with the mode it is linked in.
    pub fn plugin_bindings(&self) -> impl Iterator<Item = (&Binding, LinkMode)> {
        let composed = self.composed.iter().map(|b| (b, LinkMode::Composed));
        composed.chain(self.shared.iter().map(|b| (b, LinkMode::Shared)))
    }
}

impl PluginSet {
    /// Decides how each import of `component` (whose imports and exports,
    /// read once by the caller, are `info`) is served. `picks` maps
    /// interfaces to the plugin that must serve them. A plugin a layer
    /// wraps is no candidate unless picked; the chain beneath each plugin
    /// chosen is resolved (see [`layers`]), and every declared layer's chain
    /// is checked for cycles and missing links.
    pub fn plan(
        &mut self,
        component: &[u8],
        info: &ComponentInfo,
        picks: &BTreeMap<String, String>,
    ) -> Result<LinkPlan> {
        if let Some(core) = info.imports.iter().find(|i| is_keel_core(&i.name)) {
            bail!(
                "it imports `{}`: keel:core interfaces are for plugins only; \
                 a workload reaches keel's capabilities through the standard interfaces plugins export",
                core.name
            );
        }
        // Built-ins export no interface the host serves (a test holds them
        // to it), so they change nothing for a component importing only
        // those: then they need not be read.
        if info.imports.iter().any(|i| !host_serves(&i.name)) {
            self.load_builtins()?;
        }
        let resolution = if self.plugins.is_empty() && picks.is_empty() {
            // No plugin to match: every interface import is unbound, without
            // reading the component's types a second time.
            Resolution {
                bindings: Vec::new(),
                unbound: info
                    .imports
                    .iter()
                    .filter(|i| i.interface.is_some())
                    .map(|i| Unbound {
                        import: i.name.clone(),
                        near_misses: Vec::new(),
                    })
                    .collect(),
            }
        } else {
            let covered = self.covered();
            self.registry
                .resolve_excluding(component, picks, &|p, i| {
                    covered.contains(&(p.to_string(), i.to_string()))
                })
                .map_err(advice::pick_for_workload)?
        };
        let mut plan = LinkPlan::default();
        let mut beneath = Vec::new();
        for binding in resolution.bindings {
            let mut links = Vec::new();
            self.chain(&binding.plugin, &mut links)?;
            let stack = self.stack(&binding.plugin, &links)?;
            for link in links {
                if !plan.layers.contains(&link) {
                    plan.layers.push(link);
                }
            }
            let Some(plugin) = self.get(&binding.plugin) else {
                continue;
            };
            let others = self
                .plugins
                .iter()
                .filter(|p| p.spec.name != plugin.spec.name)
                .map(|p| (p.spec.name.as_str(), &p.info));
            if let Some(refusal) = imports::refusal(&plugin.spec.name, &plugin.info, others) {
                bail!("{refusal}");
            }
            match plugin.spec.mode {
                LinkMode::Composed => {
                    if let Some(reach) = plugin
                        .info
                        .imports
                        .iter()
                        .find(|i| reaches_outside(&i.name))
                    {
                        bail!(
                            "plugin `{}` imports `{}`: {}",
                            plugin.spec.name,
                            reach.name,
                            advice::composed_reach(&reach.name)
                        );
                    }
                    for member in std::iter::once(&binding.plugin).chain(&stack.composed) {
                        let Some(member) = self.get(member) else {
                            continue;
                        };
                        let granted = SubjectGrants::parse(&member.spec.grants.subjects)
                            .map_err(anyhow::Error::msg)
                            .with_context(|| format!("plugin `{}`", member.spec.name))?;
                        plan.subjects = plan.subjects.union(&granted);
                    }
                    // What the stack still imports is the composed
                    // component's, served as its own imports are.
                    beneath.extend(
                        stack
                            .shared
                            .into_iter()
                            .map(|b| (b, binding.plugin.clone())),
                    );
                    plan.denied.extend(stack.denied);
                    plan.composed.push(binding);
                }
                LinkMode::Shared => plan.shared.push(binding),
            }
        }
        self.check_layers()?;
        for (binding, layer) in beneath {
            match plan.shared.iter().find(|b| b.import == binding.import) {
                Some(other) if other.plugin != binding.plugin => bail!(
                    "`{}` is imported by the component (served by `{}`) and by the layer `{layer}` \
                     (served by `{}`): composed into one component they import it once; \
                     serve both from one plugin",
                    binding.import,
                    other.plugin,
                    binding.plugin
                ),
                Some(_) => {}
                None => plan.shared.push(binding),
            }
        }
        for unbound in resolution.unbound {
            let types_only = info.imports.iter().any(|i| {
                i.name == unbound.import
                    && i.kind == "instance"
                    && i.functions.is_empty()
                    && i.resources.is_empty()
            });
            if host_serves(&unbound.import) {
                plan.host.push(unbound.import);
            } else if types_only {
                plan.types_only.push(unbound.import);
            } else {
                plan.denied.push(unbound);
            }
        }
        // Imports that are not interfaces (plain functions) nothing serves.
        for import in info.imports.iter().filter(|i| i.interface.is_none()) {
            plan.denied.push(Unbound {
                import: import.name.clone(),
                near_misses: Vec::new(),
            });
        }
        Ok(plan)
    }
}

/// Whether `import` names a `keel:core` interface.
pub fn is_keel_core(import: &str) -> bool {
    InterfaceName::parse(import).is_some_and(|n| n.namespace == "keel" && n.package == "core")
}

/// The WASI P2 interfaces the native core serves itself (through
/// `wasmtime-wasi` and `wasmtime-wasi-http`).
pub fn host_serves(import: &str) -> bool {
    let Some(name) = InterfaceName::parse(import) else {
        return false;
    };
    let p2 = name
        .version
        .as_ref()
        .is_some_and(|v| v.major == 0 && v.minor == 2);
    let served = match (name.namespace.as_str(), name.package.as_str()) {
        ("wasi", "cli" | "clocks" | "filesystem" | "io" | "random" | "sockets") => true,
        ("wasi", "http") => matches!(name.interface.as_str(), "types" | "outgoing-handler"),
        _ => false,
    };
    p2 && served
}
