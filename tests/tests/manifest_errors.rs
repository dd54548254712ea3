//! `keel run` with bad input: every case exits non-zero with an error that
//! names the manifest's file, line and column and says what was expected.

use keel_tests::{guest, run_keel, write_file};
use std::path::Path;

/// Runs `keel run` on `manifest` text; returns the error output, asserting
/// the exit code is non-zero.
fn run_broken(dir: &Path, manifest: &str) -> String {
    let path = write_file(dir, "app.toml", manifest);
    let cache = dir.join("cache");
    let (code, stderr) = run_keel(&[
        "run",
        path.to_str().expect("utf-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().expect("utf-8 path"),
    ])
    .expect("keel runs");
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit code {code:?}; stderr:\n{stderr}"
    );
    stderr
}

fn component_manifest(path: &Path, extra: &str) -> String {
    format!("[[workload]]\nname = \"app\"\n{extra}\n[[workload.component]]\npath = {path:?}\n")
}

#[test]
fn malformed_toml() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_broken(dir.path(), "[[workload]]\nname = \"app\n");
    assert!(stderr.contains("app.toml:2:"), "{stderr}");
}

#[test]
fn unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_broken(
        dir.path(),
        "[[workload]]\nname = \"app\"\n[workload.limits]\nmemroy = \"1MiB\"\n",
    );
    assert!(
        stderr.contains("app.toml:4:1: unknown field `memroy`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("memory"),
        "the error should list the expected keys: {stderr}"
    );
}

#[test]
fn missing_component_file() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_broken(
        dir.path(),
        "[[workload]]\nname = \"app\"\n[[workload.component]]\npath = \"gone.wasm\"\n",
    );
    assert!(stderr.contains("app.toml:4:8: component file"), "{stderr}");
    assert!(stderr.contains("gone.wasm"), "{stderr}");
}

#[test]
fn a_file_that_is_not_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write_file(dir.path(), "junk.wasm", "hello, I am text");
    let stderr = run_broken(dir.path(), &component_manifest(&junk, ""));
    assert!(
        stderr.contains("app.toml:5:8: component `junk`"),
        "{stderr}"
    );
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
}

#[test]
fn a_core_module_instead_of_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let stderr = run_broken(dir.path(), &component_manifest(&module, ""));
    assert!(
        stderr.contains("app.toml:5:8: component `module`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("core WebAssembly module, not a component"),
        "{stderr}"
    );
}

#[test]
fn a_host_name_on_a_component_without_an_http_handler() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_broken(
        dir.path(),
        &component_manifest(&guest("no-http"), "[workload.http]\nhost = \"app.test\""),
    );
    assert!(
        stderr.contains("app.toml:4:8: workload `default/app` declares HTTP host `app.test`"),
        "{stderr}"
    );
    assert!(stderr.contains("wasi:http/incoming-handler"), "{stderr}");
}

#[test]
fn a_missing_manifest() {
    let (code, stderr) = run_keel(&["run", "/nonexistent/app.toml"]).unwrap();
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("/nonexistent/app.toml: cannot read the manifest"),
        "{stderr}"
    );
}

#[test]
fn limits_that_can_never_work_are_refused_where_written() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guest("hello");
    for (limits, at, says) in [
        (
            "memory = \"0\"",
            "app.toml:4:10: ",
            "`memory` must be at least",
        ),
        (
            "timeout = \"0s\"",
            "app.toml:4:11: ",
            "`timeout` must be more than 0s",
        ),
        ("max_instances = 0", "app.toml:4:17: ", "at least 1"),
    ] {
        let stderr = run_broken(
            dir.path(),
            &component_manifest(&hello, &format!("[workload.limits]\n{limits}")),
        );
        assert!(
            stderr.contains(at) && stderr.contains(says),
            "{limits}: {stderr}"
        );
    }
}

#[test]
fn host_names_and_outgoing_patterns_that_can_never_match_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guest("hello");
    for (http, at, says) in [
        (
            "host = \"*.example.com\"",
            "app.toml:4:8: ",
            "is not a host name",
        ),
        (
            "host = \"api\\u0007.test\"",
            "app.toml:4:8: ",
            "is not a host name",
        ),
        (
            "outgoing = [\"a:b:c\"]",
            "app.toml:4:13: ",
            "not an outgoing HTTP pattern",
        ),
    ] {
        let stderr = run_broken(
            dir.path(),
            &component_manifest(&hello, &format!("[workload.http]\n{http}")),
        );
        assert!(
            stderr.contains(at) && stderr.contains(says),
            "{http}: {stderr}"
        );
    }
}

#[test]
fn a_manifest_or_component_that_is_not_a_regular_file_is_not_read() {
    let (code, stderr) = run_keel(&["run", "/dev/zero"]).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("/dev/zero: cannot read the manifest") && stderr.contains("regular file"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_broken(dir.path(), &component_manifest(Path::new("/dev/zero"), ""));
    assert!(
        stderr.contains("app.toml:5:8: component path /dev/zero is not a regular file"),
        "{stderr}"
    );
}

#[test]
fn plugin_limits_that_can_never_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guest("hello");
    for (limit, says) in [
        ("memory = \"0\"", "`memory` must be at least"),
        (
            "call_timeout = \"0s\"",
            "`call_timeout` must be more than 0s",
        ),
    ] {
        let manifest = format!(
            "[[plugin]]\nname = \"keyvalue-memory\"\n{limit}\n{}",
            component_manifest(&hello, "")
        );
        let stderr = run_broken(dir.path(), &manifest);
        assert!(
            stderr.contains("app.toml:2:8: ") && stderr.contains(says),
            "{limit}: {stderr}"
        );
    }
}

#[test]
fn warm_instance_settings_keel_cannot_honour_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guest("hello");
    let concurrent = format!(
        "{}pool_size = 2\nmax_concurrency = 4\n",
        component_manifest(&hello, "")
    );
    let stderr = run_broken(dir.path(), &concurrent);
    assert!(stderr.contains("max_concurrency"), "{stderr}");
    assert!(stderr.contains("only 1 is supported"), "{stderr}");
    let oversized = format!(
        "{}pool_size = 3\n",
        component_manifest(&hello, "[workload.limits]\nmax_instances = 2\n")
    );
    let stderr = run_broken(dir.path(), &oversized);
    assert!(stderr.contains("`pool_size` (3) is more than"), "{stderr}");
}
