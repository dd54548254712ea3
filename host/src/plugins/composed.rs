//! Composed mode: plugins plugged into a workload component before
//! instantiation, cached as a compiled artifact keyed by every input.

use super::PluginSet;
use crate::cache::ComponentCache;
use anyhow::{Context, Result};
use keel_compose::{Binding, PluginBytes};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The composed, compiled component for `workload` with `bindings`. The
/// cache key covers the workload's bytes and, for every binding, the import,
/// the plugin's bytes, export and config, so a second start with the same
/// inputs neither composes nor compiles.
pub fn composed_component(
    engine: &Engine,
    cache: &ComponentCache,
    label: &str,
    workload: &[u8],
    plugins: &PluginSet,
    bindings: &[Binding],
) -> Result<Component> {
    let mut key = Sha256::new();
    key.update(b"keel-composed-v1\0");
    key.update(Sha256::digest(workload));
    for binding in bindings {
        let plugin = plugins
            .get(&binding.plugin)
            .with_context(|| format!("plugin `{}` vanished", binding.plugin))?;
        for part in [
            binding.import.as_bytes(),
            binding.plugin.as_bytes(),
            binding.export.as_bytes(),
        ] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
        key.update(plugin.digest);
        for (name, value) in &plugin.spec.config {
            key.update((name.len() as u64).to_le_bytes());
            key.update(name.as_bytes());
            key.update((value.len() as u64).to_le_bytes());
            key.update(value.as_bytes());
        }
    }
    let key: [u8; 32] = key.finalize().into();
    cache.load_composed(engine, label, key, || {
        let sources: Vec<PluginBytes<'_>> = bindings
            .iter()
            .filter_map(|b| plugins.get(&b.plugin))
            .map(|p| PluginBytes {
                name: &p.spec.name,
                bytes: &p.bytes,
            })
            .collect();
        keel_compose::compose(workload, &sources, bindings)
    })
}
