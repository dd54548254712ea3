//! What `keel inspect` and `keel compose` report: a component's imports and
//! exports, and how each import would be served under a manifest's plugins.

use crate::manifest::Manifest;
use crate::plugins::imports;
use crate::plugins::{LinkPlan, PluginSet, is_keel_core};
use crate::spec::WorkloadSpec;
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
    for spec in manifest.map(|m| m.plugins.as_slice()).unwrap_or_default() {
        plugins.add(spec.clone())?;
    }
    Ok(plugins)
}

/// The text `keel inspect` prints for `component`.
pub fn inspect(component: &Path, manifest: Option<&Manifest>) -> Result<String> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    keel_compose::WasmKind::expect_component(&bytes)
        .with_context(|| component.display().to_string())?;
    let info = ComponentInfo::read(&bytes)?;
    let mut plugins = plugins_of(manifest)?;
    let picks = manifest
        .and_then(|m| {
            m.workloads.iter().find(|w| {
                w.components
                    .iter()
                    .any(|c| c.source.path().is_some_and(|p| same_file(p, component)))
            })
        })
        .map(|w| w.plugins.clone())
        .unwrap_or_default();
    let plan = plugins.plan(&bytes, &info, &picks);
    let mut out = String::new();
    let _ = writeln!(out, "component {}", component.display());
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
            .filter(|p| p.bytes.as_slice() != bytes.as_slice())
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
        served.insert(
            binding.import.as_str(),
            format!(
                "plugin `{}` ({}, its export `{}`)",
                binding.plugin,
                mode.as_str(),
                binding.export
            ),
        );
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

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Composes the component of `workload` with its composed plugins, for
/// `keel compose`. Shared plugins cannot live in a file and are an error.
pub fn compose_workload(manifest: &Manifest, workload: &WorkloadSpec) -> Result<Vec<u8>> {
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
    let prepared = crate::plugins::composed::prepared_plugins(&plugins, component, &plan.composed)?;
    crate::plugins::composed::compose(&bytes, &prepared, &plan.composed)
}
