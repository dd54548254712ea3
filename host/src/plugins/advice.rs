//! What keel tells the author of a manifest or of a plugin when linking
//! does not go as written: the pick to add when two plugins fit an
//! import, what to do with a composed plugin that reaches outside, and a
//! typed forwarder asked for where keel has none.

use super::LoadedPlugin;
use super::shared::forwarders::typed;
use crate::spec::{Forwarder, LinkMode};
use keel_compose::{InterfaceName, ResolveError};

/// `error`, reworded when it is two plugins fitting one import of a
/// workload: the line to add to the workload's `[workload.plugins]` table.
pub fn pick_for_workload(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<ResolveError>() {
        Some(ResolveError::Ambiguous {
            import,
            interface,
            plugins,
        }) => anyhow::anyhow!(
            "import `{import}` can be served by plugins {}: pick one in the workload's \
             `[workload.plugins]` table, e.g.\n\n[workload.plugins]\n\"{interface}\" = \"{}\"\n",
            listed(plugins),
            plugins.first().map_or("", String::as_str)
        ),
        _ => error,
    }
}

/// `error`, reworded when it is two plugins fitting one import of layer
/// `layer`: the `wraps` to give the layer.
pub fn pick_for_layer(error: anyhow::Error, layer: &str) -> anyhow::Error {
    match error.downcast_ref::<ResolveError>() {
        Some(ResolveError::Ambiguous {
            import,
            interface,
            plugins,
        }) => anyhow::anyhow!(
            "import `{import}` of plugin `{layer}` can be served by plugins {}: say which one \
             it wraps in its `[[plugin]]` table, e.g.\n\n[[plugin]]\nname = \"{layer}\"\n\
             wraps = \"{first}\"\n\n(or per interface: `[plugin.wraps]` with \
             \"{interface}\" = \"{first}\")\n",
            listed(plugins),
            first = plugins.first().map_or("", String::as_str)
        ),
        _ => error,
    }
}

fn listed(plugins: &[String]) -> String {
    plugins
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Why a plugin importing `import` (which reaches outside, see
/// [`super::reaches_outside`]) cannot be composed into what it would share
/// grants with, and what keel offers instead; to follow "imports `…`: ". Files differ from the
/// network: no grant gives a plugin files, so declaring it shared links it
/// but opens no folder to it.
pub fn composed_reach(import: &str) -> String {
    let files = InterfaceName::parse(import)
        .is_some_and(|n| n.namespace == "wasi" && n.package == "filesystem");
    if files {
        "composed, it would see the folders of what it is composed into (the workload's \
         volumes). keel gives a plugin no files: declared with mode = \"shared\" it links, but \
         no folder is open to it (there is no files grant), so it can keep data only through \
         interfaces it imports, such as wasi:keyvalue or wasi:blobstore"
            .to_string()
    } else {
        "composed, it would share the grants of what it is composed into; declare it with \
         mode = \"shared\" and give it its own `grants`"
            .to_string()
    }
}

/// Warns, naming the plugin and the interface, about each interface a
/// shared plugin declared with `forwarder = "typed"` exports that keel has
/// no typed forwarder for: its calls go through the generic forwarder.
pub fn log_forwarder(plugin: &LoadedPlugin) {
    if plugin.spec.mode != LinkMode::Shared || plugin.spec.forwarder != Forwarder::Typed {
        return;
    }
    for export in untyped_exports(plugin) {
        tracing::warn!(
            plugin = plugin.spec.name,
            interface = export,
            "forwarder = \"typed\": keel has no typed forwarder for `{export}`; plugin `{}` is \
             called through the generic forwarder for it",
            plugin.spec.name
        );
    }
}

/// The interfaces `plugin` exports with something to call (functions or
/// resources) that no typed forwarder serves.
pub fn untyped_exports(plugin: &LoadedPlugin) -> Vec<&str> {
    plugin
        .info
        .exports
        .iter()
        .filter(|e| e.interface.is_some())
        .filter(|e| !e.functions.is_empty() || !e.resources.is_empty())
        .filter(|e| !typed::serves(&e.name))
        .map(|e| e.name.as_str())
        .collect()
}
