//! `keel plugin check PLUGIN.wasm`: what keel would say about a plugin
//! before it is deployed, with the rules keel applies when it links one
//! (the same functions, not copies): which imports it can serve, whether
//! the metadata matches the exports, and the modes the plugin can be
//! linked in.

use super::CheckArgs;
use crate::cli::report;
use crate::manifest::Manifest;
use crate::oci::{OciOptions, Registry};
use crate::plugins::imports::{self, ImportVerdict};
use crate::spec::plugin_meta::PluginMetadata;
use crate::spec::{ImageRef, LinkMode, RegistrySpec};
use anyhow::{Context, Result, bail};
use keel_compose::{ComponentInfo, NotAComponent, WasmKind};
use std::fmt::Write as _;

/// What the check found: the report, and how many problems it holds.
#[derive(Debug, Default)]
pub struct Checked {
    /// The text to print.
    pub report: String,
    /// Problems: each makes the check fail.
    pub problems: usize,
}

/// Runs the check, prints the report, and fails when it found problems.
pub fn run(args: &CheckArgs) -> Result<()> {
    let mut manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    let reference = args
        .plugin
        .starts_with("oci://")
        .then(|| ImageRef::parse(&args.plugin))
        .transpose()?;
    let manifest_pulls = manifest.as_ref().is_some_and(|m| {
        m.plugins
            .iter()
            .any(|p| p.source.as_ref().is_some_and(|s| s.reference().is_some()))
    });
    // The plugin, and the manifest's plugins named by reference (they may
    // serve its imports), come through one registry client, as `keel run`
    // would pull them.
    let pulled = if reference.is_some() || manifest_pulls {
        let registry = registry(args, reference.as_ref(), manifest.as_ref())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        if let Some(manifest) = &mut manifest {
            runtime.block_on(pull_plugins(manifest, &registry))?;
        }
        match &reference {
            Some(reference) => Some(
                runtime
                    .block_on(registry.resolve(reference))
                    .with_context(|| format!("pulling {}", args.plugin))?
                    .artifact
                    .bytes
                    .to_vec(),
            ),
            None => None,
        }
    } else {
        None
    };
    let bytes = match pulled {
        Some(bytes) => bytes,
        None => std::fs::read(&args.plugin).with_context(|| format!("reading {}", args.plugin))?,
    };
    let checked = check(&bytes, manifest.as_ref())?;
    print!("{}", checked.report);
    if checked.problems > 0 {
        bail!(
            "{}: {} problem{}",
            args.plugin,
            checked.problems,
            if checked.problems == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// A registry client with the manifest's registry settings, and plain
/// HTTP to the checked plugin's registry with `--insecure`.
fn registry(
    args: &CheckArgs,
    reference: Option<&ImageRef>,
    manifest: Option<&Manifest>,
) -> Result<Registry> {
    let mut registries: Vec<RegistrySpec> =
        manifest.map(|m| m.registries.clone()).unwrap_or_default();
    if let Some(reference) = reference.filter(|_| args.insecure) {
        match registries
            .iter_mut()
            .find(|r| r.host == reference.registry())
        {
            Some(spec) => spec.insecure = true,
            None => registries.push(RegistrySpec {
                insecure: true,
                ..RegistrySpec::new(reference.registry())
            }),
        }
    }
    Registry::new(OciOptions {
        registries,
        ..OciOptions::default()
    })
}

/// Pulls the manifest's plugins named by `oci://` reference.
async fn pull_plugins(manifest: &mut Manifest, registry: &Registry) -> Result<()> {
    for plugin in &mut manifest.plugins {
        if let Some(source) = &mut plugin.source {
            registry
                .fill(source)
                .await
                .with_context(|| format!("plugin `{}`", plugin.name))?;
        }
    }
    Ok(())
}

/// Checks the plugin `bytes` against the built-ins (and the plugins of
/// `manifest`) that could serve its imports.
pub fn check(bytes: &[u8], manifest: Option<&Manifest>) -> Result<Checked> {
    let mut out = Checked::default();
    if let Err(e) = WasmKind::expect_component(bytes) {
        let why = match e {
            NotAComponent::CoreModule => e.to_string(),
            NotAComponent::Invalid(_) => format!("not a component: {e}"),
        };
        problem(&mut out, why);
        return Ok(out);
    }
    let info = ComponentInfo::read(bytes)?;
    let plugins = report::plugins_of(manifest)?;
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
    let others: Vec<(&str, &ComponentInfo)> = plugins
        .iter()
        .filter(|p| p.digest != digest)
        .map(|p| (p.spec.name.as_str(), &p.info))
        .collect();

    let _ = writeln!(out.report, "exports:");
    let interfaces: Vec<&str> = info
        .exports
        .iter()
        .filter(|e| e.interface.is_some())
        .map(|e| e.name.as_str())
        .collect();
    for export in &info.exports {
        let _ = writeln!(out.report, "  {} ({})", export.name, export.kind);
    }
    let _ = writeln!(out.report, "\nimports:");
    let mut refused = Vec::new();
    for import in &info.imports {
        let verdict = imports::verdict(import, others.iter().copied());
        let _ = writeln!(out.report, "  {} -> {}", import.name, verdict.describe());
        if let ImportVerdict::Refused(why) = verdict {
            refused.push(format!(
                "it imports `{}`, which keel cannot serve: {why}",
                import.name
            ));
        }
    }

    let _ = writeln!(out.report, "\nmetadata:");
    let metadata = match PluginMetadata::read(bytes) {
        Ok(Some(meta)) => {
            describe_metadata(&mut out.report, &meta);
            Some(meta)
        }
        Ok(None) => {
            let _ = writeln!(out.report, "  none");
            refused.push(
                "it carries no metadata: add a custom section named `keel-plugin` holding \
                 its TOML (README, \"Plugin metadata\"; `keel plugin new` writes one)"
                    .to_string(),
            );
            None
        }
        Err(e) => {
            let _ = writeln!(out.report, "  unreadable");
            refused.push(format!("metadata: {e}"));
            None
        }
    };
    if interfaces.is_empty() {
        refused.push("it exports no interface: there is nothing for a workload to import".into());
    }
    let composable = imports::composable(&info);
    let mut warnings = Vec::new();
    if let Some(meta) = &metadata {
        for claimed in &meta.interfaces {
            if !exports_interface(&interfaces, claimed) {
                refused.push(format!(
                    "its metadata says it serves `{claimed}`, but it does not export it (it exports {})",
                    listed(&interfaces)
                ));
            }
        }
        for export in &interfaces {
            if !meta
                .interfaces
                .iter()
                .any(|c| exports_interface(&[export], c))
            {
                warnings.push(format!(
                    "it exports `{export}`, which its metadata does not list"
                ));
            }
        }
        if meta.mode == LinkMode::Composed
            && let Err(why) = &composable
        {
            refused.push(format!(
                "its metadata says it is meant to be composed, but {why}"
            ));
        }
        if meta.mode == LinkMode::Composed && meta.keeps_state {
            warnings.push(
                "its metadata says it keeps state and is meant to be composed: a composed \
                 plugin gets a fresh instance per request, so its state does not last"
                    .to_string(),
            );
        }
    }

    let _ = writeln!(out.report, "\nlink modes:");
    match &composable {
        Ok(()) => {
            let _ = writeln!(out.report, "  composed: yes");
        }
        Err(why) => {
            let _ = writeln!(out.report, "  composed: no: {why}");
        }
    }
    let _ = writeln!(
        out.report,
        "  shared: yes (its own Store, with the grants its manifest entry gives)"
    );

    for warning in warnings {
        let _ = writeln!(out.report, "\nwarning: {warning}");
    }
    for why in refused {
        problem(&mut out, why);
    }
    if out.problems == 0 {
        let _ = writeln!(out.report, "\nok: keel can load this plugin");
    }
    Ok(out)
}

fn problem(out: &mut Checked, why: String) {
    out.problems += 1;
    let _ = writeln!(out.report, "\nproblem: {why}");
}

fn describe_metadata(report: &mut String, meta: &PluginMetadata) {
    let _ = writeln!(report, "  name: {} {}", meta.name, meta.version);
    let _ = writeln!(report, "  description: {}", meta.description);
    let _ = writeln!(report, "  serves: {}", meta.interfaces.join(", "));
    let _ = writeln!(report, "  mode: {}", meta.mode.as_str());
    let _ = writeln!(report, "  keeps state: {}", meta.keeps_state);
    let _ = writeln!(report, "  asks: {}", meta.asks_line());
    for key in &meta.config {
        let _ = writeln!(report, "  config {}: {}", key.key, key.description);
    }
}

/// Whether an export among `exports` is the interface `claimed` (by its
/// full name, or by its unversioned name when `claimed` has no version).
fn exports_interface(exports: &[&str], claimed: &str) -> bool {
    exports.iter().any(|export| {
        *export == claimed
            || keel_compose::InterfaceName::parse(export)
                .is_some_and(|e| !claimed.contains('@') && e.unversioned() == claimed)
    })
}

fn listed(items: &[&str]) -> String {
    if items.is_empty() {
        return "nothing".to_string();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
