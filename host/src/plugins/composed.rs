//! Composed mode: plugins plugged into a workload component before
//! instantiation, cached as a compiled artifact keyed by every input.

use super::PluginSet;
use crate::cache::ComponentCache;
use crate::spec::ComponentSpec;
use anyhow::{Context, Result};
use keel_compose::{Binding, PluginBytes, bake};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The interface whose plugin also receives the component's own config.
const CONFIG_STORE: &str = "wasi:config/store";

/// Each plugin bound in `bindings`, as it is composed into `component`: with
/// its configuration baked in. A plugin gets its own manifest `config`; the
/// plugin serving `wasi:config/store` gets, layered over that, the
/// component's `config` and, if asked, its environment.
///
/// A layer comes with the composed plugins beneath it composed in (see
/// [`super::layers`]), as `layers` link them.
pub fn prepared_plugins(
    plugins: &PluginSet,
    component: &ComponentSpec,
    bindings: &[Binding],
    layers: &[super::layers::LayerLink],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut prepared: Vec<(String, Vec<u8>)> = Vec::new();
    for binding in bindings {
        if prepared.iter().any(|(name, _)| *name == binding.plugin) {
            continue;
        }
        let plugin = plugins
            .get(&binding.plugin)
            .with_context(|| format!("plugin `{}` vanished", binding.plugin))?;
        let mut pairs: Vec<(String, String)> = plugin
            .spec
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let serves_config = bindings.iter().any(|b| {
            b.plugin == binding.plugin
                && crate::policy::names::is_interface(&b.import, CONFIG_STORE)
        });
        if serves_config {
            pairs.extend(component.config.iter().map(|(k, v)| (k.clone(), v.clone())));
            if component.config_env {
                pairs.push((bake::ENV_LAYER_KEY.to_string(), "true".to_string()));
            }
        }
        let bytes = if bake::accepts_config(&plugin.bytes) {
            bake::bake(&plugin.bytes, &pairs)
                .with_context(|| format!("baking configuration into plugin `{}`", binding.plugin))?
        } else {
            if !pairs.is_empty() {
                tracing::warn!(
                    plugin = binding.plugin,
                    "the plugin has configuration but takes none (no baked-config region); it is not delivered"
                );
            }
            plugin.bytes.to_vec()
        };
        let bytes = super::layers::stack_bytes(plugins, &binding.plugin, bytes, layers)?;
        prepared.push((binding.plugin.clone(), bytes));
    }
    Ok(prepared)
}

/// The composed, compiled component for `workload` with `bindings`, from
/// `prepared` plugins. The cache key covers the workload's bytes, every
/// binding, and every prepared plugin's bytes (so its baked configuration),
/// so a second start with the same inputs neither composes nor compiles.
pub fn composed_component(
    engine: &Engine,
    cache: &ComponentCache,
    label: &str,
    workload: &[u8],
    prepared: &[(String, Vec<u8>)],
    bindings: &[Binding],
) -> Result<Component> {
    let mut key = Sha256::new();
    key.update(b"keel-composed-v3\0");
    key.update(Sha256::digest(workload));
    for binding in bindings {
        for part in [
            binding.import.as_bytes(),
            binding.plugin.as_bytes(),
            binding.export.as_bytes(),
        ] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
    }
    for (name, bytes) in prepared {
        key.update((name.len() as u64).to_le_bytes());
        key.update(name.as_bytes());
        key.update(Sha256::digest(bytes));
    }
    let key: [u8; 32] = key.finalize().into();
    cache.load_composed(engine, label, key, || compose(workload, prepared, bindings))
}

/// Composes `workload` with `prepared` plugins.
pub fn compose(
    workload: &[u8],
    prepared: &[(String, Vec<u8>)],
    bindings: &[Binding],
) -> Result<Vec<u8>> {
    let sources: Vec<PluginBytes<'_>> = prepared
        .iter()
        .map(|(name, bytes)| PluginBytes { name, bytes })
        .collect();
    keel_compose::compose(workload, &sources, bindings)
}
