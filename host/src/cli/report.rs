//! What `keel inspect` and `keel compose` report: a component's imports and
//! exports, and how each import would be served under a manifest's plugins.

use crate::manifest::Manifest;
use crate::oci::Registry;
use crate::plugins::imports;
use crate::plugins::{LinkPlan, PluginSet, is_keel_core};
use crate::spec::{ComponentSource, WorkloadSpec};
use anyhow::{Context, Result, bail};
use keel_compose::ComponentInfo;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// A plugin set holding every plugin a manifest declares, over the built-ins
/// of a host with NATS if the manifest configures it.
pub fn plugins_of(manifest: Option<&Manifest>) -> Result<PluginSet> {
    let with_nats = manifest.is_some_and(|m| m.nats.is_some());
    let mut plugins = PluginSet::with_builtins(with_nats)?;
    // Reports list every plugin, built-ins included.
    plugins.load_builtins()?;
    for spec in manifest.map(|m| m.plugins.as_slice()).unwrap_or_default() {
        plugins.add(spec.clone())?;
    }
    Ok(plugins)
}

/// Resolves every `oci://` component, service and plugin of `manifest` through
/// `registry`, as `keel run` would before it starts anything.
pub async fn pull_references(manifest: &mut Manifest, registry: &Registry) -> Result<()> {
    for plugin in &mut manifest.plugins {
        if let Some(source) = &mut plugin.source {
            registry
                .fill(source)
                .await
                .with_context(|| format!("plugin `{}`", plugin.name))?;
        }
    }
    for workload in &mut manifest.workloads {
        for component in &mut workload.components {
            registry
                .fill(&mut component.source)
                .await
                .with_context(|| {
                    format!("workload `{}`, component `{}`", workload.id, component.name)
                })?;
        }
        if let Some(service) = &mut workload.service {
            let name = service.component.name.clone();
            registry
                .fill(&mut service.component.source)
                .await
                .with_context(|| format!("workload `{}`, service `{name}`", workload.id))?;
        }
    }
    Ok(())
}

/// The text `keel inspect` prints for `component` (a file, or a reference
/// already resolved, whose pinned form is printed).
pub fn inspect(component: &ComponentSource, manifest: Option<&Manifest>) -> Result<String> {
    let bytes = component.read()?;
    keel_compose::WasmKind::expect_component(&bytes).with_context(|| component.describe())?;
    let info = ComponentInfo::read(&bytes)?;
    let mut plugins = plugins_of(manifest)?;
    let picks = manifest
        .and_then(|m| {
            m.workloads.iter().find(|w| {
                w.components
                    .iter()
                    .any(|c| same_source(&c.source, component))
            })
        })
        .map(|w| w.plugins.clone())
        .unwrap_or_default();
    let plan = plugins.plan(&bytes, &info, &picks);
    let mut out = String::new();
    let _ = writeln!(out, "component {}", component.describe());
    let _ = writeln!(out, "\nexports:");
    for export in &info.exports {
        let _ = writeln!(
            out,
            "  {} ({}{})",
            export.name,
            export.kind,
            members(export)
        );
    }
    let _ = writeln!(out, "\nimports:");
    // A component importing keel:core is a plugin: its imports are served
    // by the rules for plugins, not planned as a workload's (which may not
    // import keel:core).
    if info.imports.iter().any(|i| is_keel_core(&i.name)) {
        let others: Vec<(&str, &ComponentInfo)> = plugins
            .iter()
            .filter(|p| p.bytes.as_slice() != &*bytes)
            .map(|p| (p.spec.name.as_str(), &p.info))
            .collect();
        for import in &info.imports {
            let verdict = imports::verdict(import, others.iter().copied());
            let _ = writeln!(
                out,
                "  {} ({}{}) -> {}",
                import.name,
                import.kind,
                members(import),
                verdict.describe()
            );
        }
        let _ = writeln!(
            out,
            "\nthis is a plugin (it imports keel:core): `keel plugin check` says more"
        );
        return Ok(out);
    }
    match &plan {
        Ok(plan) => {
            let served = served_by(plan);
            for import in &info.imports {
                let how = served
                    .get(import.name.as_str())
                    .cloned()
                    .unwrap_or_else(|| "denied".to_string());
                let _ = writeln!(
                    out,
                    "  {} ({}{}) -> {how}",
                    import.name,
                    import.kind,
                    members(import)
                );
            }
            if !plan.layers.is_empty() {
                let _ = write!(out, "\nplugin layers:\n{}", layer_lines(plan));
            }
        }
        Err(e) => {
            for import in &info.imports {
                let _ = writeln!(
                    out,
                    "  {} ({}{})",
                    import.name,
                    import.kind,
                    members(import)
                );
            }
            let _ = writeln!(out, "\nthis component cannot run: {e:#}");
        }
    }
    Ok(out)
}

fn members(item: &keel_compose::Item) -> String {
    match (item.functions.len(), item.resources.len()) {
        (0, 0) => String::new(),
        (f, 0) => format!(", {f} functions"),
        (f, r) => format!(", {f} functions, {r} resources"),
    }
}

/// Import name → "plugin `x` (composed)", "host", "types only…", "denied: why".
fn served_by(plan: &LinkPlan) -> BTreeMap<&str, String> {
    let mut served = BTreeMap::new();
    for (binding, mode) in plan.plugin_bindings() {
        let layer = plan.layers.iter().any(|l| l.layer == binding.plugin);
        let how = if layer {
            // A layer's own imports are in its chain, shown after the imports.
            format!(
                "plugin `{}` ({}, its export `{}`), a layer: {}",
                binding.plugin,
                mode.as_str(),
                binding.export,
                chain_of(plan, &binding.plugin, &binding.import)
            )
        } else {
            format!(
                "plugin `{}` ({}, its export `{}`)",
                binding.plugin,
                mode.as_str(),
                binding.export
            )
        };
        // The component's own import first: the same name may come again,
        // as what a composed layer left to the plugin beneath it (shown
        // with the layers).
        served.entry(binding.import.as_str()).or_insert(how);
    }
    for import in &plan.host {
        served.insert(import.as_str(), "host".to_string());
    }
    for import in &plan.types_only {
        served.insert(import.as_str(), "types only, nothing to serve".to_string());
    }
    for denied in &plan.denied {
        let why = if denied.near_misses.is_empty() {
            String::new()
        } else {
            format!(" ({})", denied.near_misses.join("; "))
        };
        served.insert(denied.import.as_str(), format!("denied{why}"));
    }
    served
}

/// Whether a manifest's component is the one inspected: the same file, or
/// the same reference.
fn same_source(declared: &ComponentSource, inspected: &ComponentSource) -> bool {
    match (declared, inspected) {
        (ComponentSource::Path(a), ComponentSource::Path(b)) => same_file(a, b),
        (ComponentSource::Oci(a), ComponentSource::Oci(b)) => a.reference == b.reference,
        _ => false,
    }
}

/// The chain beneath plugin `top` for interface `import` (the plugins the
/// call passes on its way down, with their modes): `keyvalue-audit
/// (shared) → keyvalue-memory (shared)`.
fn chain_of(plan: &LinkPlan, top: &str, import: &str) -> String {
    let interface = keel_compose::InterfaceName::parse(import).map(|n| n.unversioned());
    let mode_of = |name: &str| {
        plan.plugin_bindings()
            .find(|(b, _)| b.plugin == name)
            .map(|(_, m)| m)
            .or_else(|| {
                plan.layers
                    .iter()
                    .find(|l| l.binding.plugin == name)
                    .map(|l| l.mode)
            })
            .map_or("", |m| m.as_str())
    };
    let mut shown = vec![format!("{top} ({})", mode_of(top))];
    let mut at = top.to_string();
    // Bounded by the number of links: the chain was checked for cycles.
    for _ in 0..plan.layers.len() {
        let next = plan.layers.iter().find(|l| {
            l.layer == at
                && keel_compose::InterfaceName::parse(&l.binding.import).map(|n| n.unversioned())
                    == interface
        });
        let Some(next) = next else {
            break;
        };
        at = next.binding.plugin.clone();
        shown.push(format!("{at} ({})", next.mode.as_str()));
    }
    shown.join(" → ")
}

/// The links of every plugin layer `plan` uses, one line each.
fn layer_lines(plan: &LinkPlan) -> String {
    let mut out = String::new();
    for link in &plan.layers {
        let _ = writeln!(
            out,
            "  {} imports {} -> plugin `{}` ({}, its export `{}`)",
            link.layer,
            link.binding.import,
            link.binding.plugin,
            link.mode.as_str(),
            link.binding.export
        );
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Composes the component of `workload` with its composed plugins, for
/// `keel compose`. Shared plugins cannot live in a file and are an error.
/// So is a result importing `keel:core` (left by a composed plugin that
/// imports it) unless `allow_keel_core`: keel refuses such a workload, and
/// no other runtime serves `keel:core`, so it would run nowhere. With
/// `allow_keel_core` it is written and its `keel:core` imports returned,
/// each with the plugins importing it, for a warning.
pub fn compose_workload(
    manifest: &Manifest,
    workload: &WorkloadSpec,
    allow_keel_core: bool,
) -> Result<(Vec<u8>, Vec<CoreImport>)> {
    let [component] = workload.components.as_slice() else {
        bail!(
            "workload `{}` has {} components; `keel compose` writes one component",
            workload.id,
            workload.components.len()
        );
    };
    let bytes = component.source.read()?;
    keel_compose::WasmKind::expect_component(&bytes)
        .with_context(|| component.source.describe())?;
    let info = ComponentInfo::read(&bytes)?;
    let mut plugins = plugins_of(Some(manifest))?;
    let plan = plugins
        .plan(&bytes, &info, &workload.plugins)
        .with_context(|| format!("component `{}`", component.name))?;
    if let Some(shared) = plan.shared.first() {
        bail!(
            "`{}` is served by plugin `{}` in shared mode, which lives in the host and cannot be written into a file; \
             declare it with mode = \"composed\" to compose it",
            shared.import,
            shared.plugin
        );
    }
    let prepared = crate::plugins::composed::prepared_plugins(
        &plugins,
        component,
        &plan.composed,
        &plan.layers,
    )?;
    let composed = crate::plugins::composed::compose(&bytes, &prepared, &plan.composed)?;
    let members: Vec<&str> = (plan.composed.iter().map(|b| b.plugin.as_str()))
        .chain(
            (plan.layers.iter())
                .filter(|l| l.mode == crate::spec::LinkMode::Composed)
                .map(|l| l.binding.plugin.as_str()),
        )
        .collect();
    let core = keel_core_imports(&composed, &plugins, &members)?;
    if let Some((import, from)) = core.first()
        && !allow_keel_core
    {
        bail!(
            "the composed component would import `{import}` (plugin {} imports it), and keel \
             refuses a workload that imports keel:core (only plugins may: it reaches raw NATS, \
             host pipes and messaging as a plugin does, outside any plugin's grants); no other \
             runtime serves keel:core either, so the file would run nowhere. Run the manifest \
             itself (`keel run` composes the same at start and serves keel:core to the \
             plugin), or compose only plugins that import no keel:core; `--allow-keel-core` \
             writes it anyway, for inspection",
            from.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((composed, core))
}

/// A `keel:core` interface a composed component imports, with the plugins
/// composed into it that import it.
pub type CoreImport = (String, Vec<String>);

/// The `keel:core` interfaces the composed component `bytes` imports, each
/// with those of the plugins `members` that import it.
fn keel_core_imports(
    bytes: &[u8],
    plugins: &PluginSet,
    members: &[&str],
) -> Result<Vec<CoreImport>> {
    let info = ComponentInfo::read(bytes).context("reading the composed component")?;
    Ok(info
        .imports
        .iter()
        .filter(|i| is_keel_core(&i.name))
        .map(|import| {
            let mut from: Vec<String> = members
                .iter()
                .filter(|m| {
                    plugins
                        .get(m)
                        .is_some_and(|p| p.info.imports.iter().any(|i| i.name == import.name))
                })
                .map(|m| m.to_string())
                .collect();
            from.sort();
            from.dedup();
            (import.name.clone(), from)
        })
        .collect())
}
