//! `keel inspect` and `keel compose` on components and plugins named by
//! `oci://` references, against a real registry (Debian's
//! `docker-registry` on a loopback port): they resolve references as
//! `keel run` does, through the OCI store, and work offline from it.

use anyhow::{Context, Result};
use keel_tests::keel_compose::ComponentInfo;
use keel_tests::registry::Registry;
use keel_tests::{guest, keel_output, write_file};
use std::path::Path;

/// Pushes guest `file` to `repo_tag` with `keel push`; the pinned reference.
fn push(registry: &Registry, file: &str, repo_tag: &str) -> Result<String> {
    let (code, stdout, stderr) = keel_output(&[
        "push",
        guest(file).to_str().context("path")?,
        &registry.reference(repo_tag),
        "--insecure",
    ])?;
    assert_eq!(code, Some(0), "keel push failed: {stderr}");
    Ok(stdout.trim().to_string())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn inspect_and_compose_resolve_references_through_the_store() -> Result<()> {
    let mut registry = Registry::start()?;
    let plugin = push(&registry, "tally_plugin", "plugins/tally:1")?;
    let user_pinned = push(&registry, "tally_user", "apps/tally-user:1")?;
    let user = registry.reference("apps/tally-user:1");
    let cache = tempfile::tempdir()?;

    // A reference alone: pulled into the store, printed pinned to its digest.
    let (code, out, err) = keel_output(&[
        "inspect",
        &user,
        "--insecure",
        "--cache-dir",
        path(cache.path()),
    ])?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!("component {user_pinned}\n")),
        "the reference is shown with the digest it resolved to ({user_pinned}):\n{out}"
    );
    assert!(
        out.contains("acme:tally/counters@0.2.0 (instance, 8 functions, 1 resources) -> denied"),
        "{out}"
    );

    // Under a manifest naming both by reference, the plugin serves it, and
    // the manifest's workload (matched by its reference) picks it.
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            r#"
[[registry]]
host = "{host}"
insecure = true

[[plugin]]
name = "tally"
path = "{plugin}"
mode = "composed"

[[workload]]
name = "user"
[[workload.component]]
path = "{user}"
"#,
            host = registry.host(),
        ),
    );
    let (code, out, err) = keel_output(&[
        "inspect",
        &user,
        "--manifest",
        path(&manifest),
        "--cache-dir",
        path(cache.path()),
    ])?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("acme:tally/counters@0.2.0 (instance, 8 functions, 1 resources) -> plugin `tally` (composed, its export `acme:tally/counters@0.2.3`)"),
        "{out}"
    );

    // With the registry gone, --offline serves both commands from the store.
    registry.stop();
    let composed = dir.path().join("out.wasm");
    let (code, _, err) = keel_output(&[
        "compose",
        path(&manifest),
        "-o",
        path(&composed),
        // The plugin imports keel:core/identity: written for inspection.
        "--allow-keel-core",
        "--offline",
        "--cache-dir",
        path(cache.path()),
    ])?;
    assert_eq!(code, Some(0), "{err}");
    let info = ComponentInfo::read(&std::fs::read(&composed)?)?;
    assert!(
        !info
            .imports
            .iter()
            .any(|i| i.name.starts_with("acme:tally/")),
        "the plugin is composed in: {:?}",
        info.imports
    );
    assert!(
        info.exports
            .iter()
            .any(|e| e.name.starts_with("wasi:http/incoming-handler@"))
    );

    // A store that never saw the reference: offline refuses, naming it.
    let empty = tempfile::tempdir()?;
    let (code, out, err) = keel_output(&[
        "inspect",
        &user,
        "--offline",
        "--cache-dir",
        path(empty.path()),
    ])?;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains(&user) && err.contains("offline"),
        "the refusal names the reference and why: {err}"
    );
    Ok(())
}
