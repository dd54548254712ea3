//! Static composition: plugging plugin exports into a workload's imports
//! with `wac-graph`, producing one component. The plugins' own remaining
//! imports, and the workload's unserved ones, become imports of the result.

use crate::registry::Binding;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use wac_graph::{CompositionGraph, EncodeOptions, types::Package};

/// A plugin to compose in, with its bytes.
#[derive(Debug, Clone, Copy)]
pub struct PluginBytes<'a> {
    /// Its name (as in the [`Binding`]s).
    pub name: &'a str,
    /// The component.
    pub bytes: &'a [u8],
}

/// Composes `workload` with the plugins that `bindings` name; each plugin
/// is instantiated once inside the result. Errors carry wac-graph's whole
/// cause chain (print them with `{:#}`).
pub fn compose(
    workload: &[u8],
    plugins: &[PluginBytes<'_>],
    bindings: &[Binding],
) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes("keel:workload", None, workload.to_vec(), graph.types_mut())
        .context("reading the workload component")?;
    let workload_package = graph
        .register_package(package)
        .context("registering the workload")?;
    let workload_instance = graph.instantiate(workload_package);

    let mut instances = BTreeMap::new();
    for binding in bindings {
        let instance = match instances.get(&binding.plugin) {
            Some(instance) => *instance,
            None => {
                let plugin = plugins
                    .iter()
                    .find(|p| p.name == binding.plugin)
                    .with_context(|| {
                        format!("plugin `{}` was bound but not supplied", binding.plugin)
                    })?;
                // Named, so that a trap inside it is told from the workload's.
                let bytes = crate::module_names::name_modules(plugin.bytes, plugin.name)
                    .with_context(|| format!("naming the modules of plugin `{}`", plugin.name))?;
                let package = Package::from_bytes(
                    &format!("keel-plugin:p{}", instances.len()),
                    None,
                    bytes,
                    graph.types_mut(),
                )
                .with_context(|| format!("reading plugin `{}`", plugin.name))?;
                let id = graph
                    .register_package(package)
                    .with_context(|| format!("registering plugin `{}`", plugin.name))?;
                let instance = graph.instantiate(id);
                instances.insert(binding.plugin.clone(), instance);
                instance
            }
        };
        let export = graph
            .alias_instance_export(instance, &binding.export)
            .with_context(|| {
                format!(
                    "taking `{}` from plugin `{}`",
                    binding.export, binding.plugin
                )
            })?;
        graph
            .set_instantiation_argument(workload_instance, &binding.import, export)
            .with_context(|| {
                format!(
                    "plugging `{}` of `{}` into import `{}`",
                    binding.export, binding.plugin, binding.import
                )
            })?;
    }

    let exports: Vec<String> = graph.types()[graph[workload_package].ty()]
        .exports
        .keys()
        .cloned()
        .collect();
    for name in exports {
        let export = graph
            .alias_instance_export(workload_instance, &name)
            .with_context(|| format!("re-exporting `{name}`"))?;
        graph
            .export(export, &name)
            .with_context(|| format!("re-exporting `{name}`"))?;
    }
    graph
        .encode(EncodeOptions::default())
        .context("encoding the composed component")
}
