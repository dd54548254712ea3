//! `keel inspect` and `keel compose` on real components.

use keel_tests::keel_compose::ComponentInfo;
use keel_tests::{guest, run_keel, write_file};

fn stdout_of(args: &[&str]) -> keel_tests::KeelOutput {
    keel_tests::keel_output(args).expect("keel runs")
}

fn tally_manifest(dir: &std::path::Path, mode: &str) -> std::path::PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {:?}\nmode = {mode:?}\n\n[[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_plugin"),
            guest("tally_user")
        ),
    )
}

#[test]
fn inspect_shows_exports_imports_and_what_serves_each() {
    let user = guest("tally_user");
    let (code, out, err) = stdout_of(&["inspect", user.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("wasi:http/incoming-handler@0.2.12 (instance"),
        "{out}"
    );
    assert!(
        out.contains("acme:tally/counters@0.2.0 (instance, 8 functions, 1 resources) -> denied"),
        "{out}"
    );
    // How many stream functions the guest uses depends on its helpers.
    assert!(
        out.lines()
            .any(|l| l.contains("wasi:io/streams@0.2.12 (instance, ")
                && l.ends_with("functions, 4 resources) -> host")),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = tally_manifest(dir.path(), "composed");
    let (code, out, err) = stdout_of(&[
        "inspect",
        user.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("acme:tally/counters@0.2.0 (instance, 8 functions, 1 resources) -> plugin `tally` (composed, its export `acme:tally/counters@0.2.3`)"),
        "{out}"
    );
}

#[test]
fn inspect_says_an_interface_of_only_types_needs_nothing() {
    let ponger = keel_tests::repo_root().join("target/guests/ponger.wasm");
    let (code, out, err) = stdout_of(&["inspect", ponger.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("wasmcloud:messaging/types@0.2.0 (instance) -> types only, nothing to serve"),
        "{out}"
    );
}

/// Runs `keel compose MANIFEST -o OUTPUT [extra…]`: (exit code, stderr).
fn compose_to(
    manifest: &std::path::Path,
    output: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut args = vec![
        "compose",
        manifest.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_keel(&args).unwrap()
}

#[test]
fn compose_writes_one_component_without_the_plugin_import() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tally_manifest(dir.path(), "composed");
    let output = dir.path().join("out.wasm");
    // The tally plugin imports keel:core/identity: written only when asked,
    // with a warning that it runs nowhere.
    let (code, stderr) = compose_to(&manifest, &output, &["--allow-keel-core"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("imports `keel:core/identity@0.1.0` (from plugin `tally`)")
            && stderr.contains("it runs nowhere"),
        "{stderr}"
    );
    let info = ComponentInfo::read(&std::fs::read(&output).unwrap()).unwrap();
    assert!(
        !info
            .imports
            .iter()
            .any(|i| i.name.starts_with("acme:tally/")),
        "{:?}",
        info.imports
    );
    assert!(
        info.exports
            .iter()
            .any(|e| e.name.starts_with("wasi:http/incoming-handler@"))
    );
}

#[test]
fn compose_refuses_shared_plugins_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tally_manifest(dir.path(), "shared");
    let output = dir.path().join("out.wasm");
    let (code, stderr) = compose_to(&manifest, &output, &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("shared mode, which lives in the host"),
        "{stderr}"
    );
    assert!(!output.exists());
}

#[test]
fn compose_refuses_an_output_importing_keel_core_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tally_manifest(dir.path(), "composed");
    let output = dir.path().join("out.wasm");
    let (code, stderr) = compose_to(&manifest, &output, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "would import `keel:core/identity@0.1.0` (plugin `tally` imports it)",
        "keel refuses a workload that imports keel:core",
        "Run the manifest itself",
        "--allow-keel-core",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!output.exists());
}
