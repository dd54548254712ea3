//! The plugin kit: `keel plugin list`, `keel plugin check`, `keel plugin
//! new`, plugin metadata in `keel run`, and the refusal of plugin imports
//! nothing serves — on real components built in the repository.

use keel_tests::{KeelProcess, get, guest, repo_root, write_file};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `keel <args>`: (exit code, stdout, stderr).
fn keel(args: &[&str]) -> keel_tests::KeelOutput {
    keel_tests::keel_output(args).expect("keel runs")
}

/// `keel plugin check PATH`: (exit code, report and error together).
fn check(path: &Path) -> (Option<i32>, String) {
    let (code, out, err) = keel(&["plugin", "check", path.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[test]
fn plugin_list_prints_every_builtin_with_its_metadata() {
    let (code, out, err) = keel(&["plugin", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(
            "keyvalue-memory 0.1.0  (shared mode, keeps state, a default of hosts without NATS)"
        ),
        "{out}"
    );
    assert!(
        out.contains("serves: wasi:keyvalue/store@0.2.0-draft, wasi:keyvalue/atomics@0.2.0-draft, wasi:keyvalue/batch@0.2.0-draft"),
        "{out}"
    );
    assert!(
        out.contains("asks: subjects $KV.{namespace}-*.>, "),
        "{out}"
    );
    assert!(
        out.contains("config logging-nats.prefix (default \"keel.logs\"): "),
        "{out}"
    );
    for name in keel::spec::builtin::names() {
        assert!(
            out.contains(&format!("\n{name} 0.1.0  ("))
                || out.starts_with(&format!("{name} 0.1.0  (")),
            "{name}: {out}"
        );
    }
    assert!(!out.contains("carries no metadata"), "{out}");
}

#[test]
fn check_passes_a_builtin_plugin() {
    let (code, out) = check(&guest("blobstore_memory"));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("keel:core/pipe@0.1.0 -> keel:core (the host)"),
        "{out}"
    );
    assert!(out.contains("ok: keel can load this plugin"), "{out}");
}

#[test]
fn every_builtin_passes_the_check_and_its_metadata_matches_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    for name in keel::spec::builtin::names() {
        let (mode, bytes) = keel::spec::builtin::builtin(name).unwrap();
        let meta = keel::spec::plugin_meta::PluginMetadata::read(bytes)
            .unwrap()
            .unwrap_or_else(|| panic!("built-in `{name}` carries no metadata"));
        assert_eq!((meta.name.as_str(), meta.mode), (name, mode), "{name}");
        let file = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, bytes).unwrap();
        let (code, out) = check(&file);
        assert_eq!(code, Some(0), "{name}: {out}");
    }
}

/// keel's plugins that are named in manifests rather than built in carry
/// metadata too, and pass the check in the modes they are meant for.
#[test]
fn the_plugins_named_in_manifests_pass_the_check() {
    for (file, name, mode) in [
        ("keyvalue_redis", "keyvalue-redis", "shared"),
        ("keyvalue_audit", "keyvalue-audit", "composed"),
    ] {
        let (code, out) = check(&guest(file));
        assert_eq!(code, Some(0), "{name}: {out}");
        assert!(out.contains(&format!("name: {name} 0.1.0")), "{out}");
        assert!(out.contains(&format!("mode: {mode}")), "{out}");
    }
}

#[test]
fn inspect_shows_how_a_plugins_imports_are_served() {
    let (code, out, err) = keel(&["inspect", guest("keyvalue_memory").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("keel:core/identity@0.1.0 (instance, 1 functions) -> keel:core (the host)"),
        "{out}"
    );
    assert!(!out.contains("cannot run"), "{out}");
}

#[test]
fn check_refuses_a_core_module() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let (code, out) = check(&module);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("problem: this is a core WebAssembly module, not a component"),
        "{out}"
    );
}

#[test]
fn check_refuses_an_import_nobody_serves() {
    let (code, out) = check(&guest("kit_importer"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("problem: it imports `acme:kit/unserved@0.1.0`, which keel cannot serve: no plugin exports `acme:kit/unserved@0.1.0` and the host does not serve it"),
        "{out}"
    );
}

#[test]
fn check_refuses_a_plugin_without_metadata_and_says_why_it_cannot_be_composed() {
    let (code, out) = check(&guest("fetch_plugin"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("problem: it carries no metadata: add a custom section named `keel-plugin`"),
        "{out}"
    );
    assert!(
        out.contains("composed: no: it imports `wasi:http/outgoing-handler@0.2.12`"),
        "{out}"
    );
    assert!(out.contains("shared: yes"), "{out}");
}

#[test]
fn check_refuses_metadata_that_lies_about_the_exports() {
    let (code, out) = check(&guest("kit_liar"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("problem: its metadata says it serves `wasi:keyvalue/store@0.2.0-draft`, but it does not export it (it exports `acme:fetch/fetcher@0.1.0`)"),
        "{out}"
    );
}

#[test]
fn check_reads_a_plugin_from_a_registry() -> anyhow::Result<()> {
    let registry = keel_tests::registry::Registry::start()?;
    let reference = registry.reference("plugins/liar:1");
    let (code, _, err) = keel(&[
        "push",
        guest("kit_liar").to_str().unwrap(),
        &reference,
        "--insecure",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = keel(&["plugin", "check", &reference, "--insecure"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("problem: its metadata says it serves `wasi:keyvalue/store@0.2.0-draft`"),
        "{out}"
    );
    assert!(err.contains(&format!("{reference}: 1 problem")), "{err}");
    Ok(())
}

/// A manifest's plugins named by `oci://` reference count among those that
/// may serve the checked plugin's imports: the check pulls them, as `keel
/// run` would, rather than stopping at "has not been pulled".
#[test]
fn check_pulls_the_plugins_a_manifest_names_by_reference() -> anyhow::Result<()> {
    let registry = keel_tests::registry::Registry::start()?;
    let reference = registry.reference("plugins/tally:0.2.3");
    let pushed = Command::new(keel_tests::keel_bin())
        .args([
            "push",
            guest("tally_plugin").to_str().unwrap(),
            &reference,
            "--insecure",
        ])
        .output()?;
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[registry]]\nhost = {:?}\ninsecure = true\n\n\
             [[plugin]]\nname = \"tally\"\npath = {reference:?}\nmode = \"shared\"\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            registry.host(),
            guest("tally_user")
        ),
    );
    // A component importing acme:tally/counters (a workload, so it carries
    // no metadata: the check reports that too, which is not the point).
    let output = Command::new(keel_tests::keel_bin())
        .args([
            "plugin",
            "check",
            guest("tally_user").to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()?;
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!out.contains("has not been pulled"), "{out}");
    assert!(
        out.contains("acme:tally/counters@0.2.0 -> plugin `tally`"),
        "{out}"
    );
    Ok(())
}

/// `component` with a `keel-plugin` custom section holding `data` appended
/// at its top level (a component may carry custom sections anywhere).
fn with_metadata(component: &[u8], data: &[u8]) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb128("keel-plugin".len(), &mut body);
    body.extend_from_slice(b"keel-plugin");
    body.extend_from_slice(data);
    let mut out = component.to_vec();
    out.push(0);
    leb128(body.len(), &mut out);
    out.extend(body);
    out
}

#[test]
fn malformed_or_oversized_metadata_is_refused_by_check_and_by_keel_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tally = std::fs::read(guest("tally_plugin"))?;
    let unknown = dir.path().join("unknown.wasm");
    std::fs::write(
        &unknown,
        with_metadata(
            &tally,
            b"name = \"tally\"\nversion = \"0.1.0\"\ninterfaces = [\"acme:tally/counters@0.2.3\"]\nmode = \"shared\"\ncolour = \"red\"\n",
        ),
    )?;
    let (code, out) = check(&unknown);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("problem: metadata: its `keel-plugin` section is not valid metadata: unknown field `colour`"),
        "{out}"
    );
    let huge = dir.path().join("huge.wasm");
    std::fs::write(&huge, with_metadata(&tally, &vec![b' '; 70_000]))?;
    let (code, out) = check(&huge);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("its `keel-plugin` section is 70000 bytes; at most 65536 are read"),
        "{out}"
    );

    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {unknown:?}\nmode = \"shared\"\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_user")
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let code = keel.wait(Duration::from_secs(60))?;
    assert_eq!(code, Some(1), "{}", keel.log().join("\n"));
    let log = keel.log().join("\n");
    assert!(
        log.contains("plugin `tally`: its `keel-plugin` section is not valid metadata: unknown field `colour`"),
        "{log}"
    );
    Ok(())
}

/// A manifest: plugin `name` from `plugin` (shared, with `grants` lines)
/// serving the fetch-user workload.
fn fetch_manifest(dir: &Path, name: &str, plugin: &Path, grants: &str) -> PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            "[[plugin]]\nname = {name:?}\npath = {plugin:?}\nmode = \"shared\"\n[plugin.grants]\n{grants}\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("fetch_user")
        ),
    )
}

#[test]
fn keel_run_refuses_a_plugin_importing_what_nobody_serves() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = fetch_manifest(dir.path(), "importer", &guest("kit_importer"), "");
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let code = keel.wait(Duration::from_secs(60))?;
    assert_eq!(code, Some(1), "{}", keel.log().join("\n"));
    let log = keel.log().join("\n");
    assert!(
        log.contains("plugin `importer` imports `acme:kit/unserved@0.1.0`, which keel cannot serve: no plugin exports `acme:kit/unserved@0.1.0` and the host does not serve it"),
        "{log}"
    );
    Ok(())
}

#[test]
fn keel_run_logs_what_a_plugin_asks_for_against_what_it_is_granted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = fetch_manifest(
        dir.path(),
        "liar",
        &guest("kit_liar"),
        "outgoing_http = [\"api.example.com\"]",
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let log = keel.log().join("\n");
    assert!(
        log.contains("granted=\"outgoing_http api.example.com\""),
        "{log}"
    );
    assert!(
        log.contains("plugin asks for outgoing_http `api.example.com`: granted"),
        "{log}"
    );
    assert!(
        log.contains(
            "plugin asks for sockets `127.0.0.1:6379`: not granted by the manifest, stays denied"
        ),
        "{log}"
    );
    Ok(())
}

/// Builds the crate in `dir` for wasm32-wasip2 and returns the component.
/// The build shares a target folder with earlier runs (under
/// `CARGO_TARGET_DIR`, or the repository's `target/`), so wit-bindgen is
/// compiled once, not per run.
fn build_scaffold(dir: &Path, crate_name: &str) -> PathBuf {
    keel_tests::build_guest_crate(dir, &format!("{}.wasm", crate_name.replace('-', "_")))
}

#[test]
fn a_scaffold_builds_passes_the_check_and_serves_a_workload_once_implemented() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let crate_dir = dir.path().join("tally-stub");
    let wit = repo_root().join("tests/fixtures/wit/tally-0.2.0");
    let (code, _, err) = keel(&[
        "plugin",
        "new",
        "tally-stub",
        "--interface",
        wit.to_str().unwrap(),
        "--dir",
        crate_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Dependencies flat under wit/deps/, keel:core among them.
    assert!(crate_dir.join("wit/deps/keel-core/identity.wit").is_file());
    assert!(crate_dir.join("wit/deps/tally-0.2.0/tally.wit").is_file());

    let plugin = build_scaffold(&crate_dir, "tally-stub");
    let (code, out) = check(&plugin);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: keel can load this plugin"), "{out}");

    // Implement one function; the others still answer with their message.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib)?;
    let stub = "not_implemented(\"acme:tally/counters@0.2.0: `sum-all` is not implemented yet\")";
    assert!(source.contains(stub), "{source}");
    std::fs::write(&lib, source.replace(stub, "_values.iter().sum()"))?;
    let plugin = build_scaffold(&crate_dir, "tally-stub");

    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {plugin:?}\nmode = \"composed\"\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_user")
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let sum = runtime.block_on(get(addr, "x", "/sum?values=1,2,39"))?;
    assert_eq!((sum.status, sum.body.as_str()), (200, "42"));
    let open = runtime.block_on(get(addr, "x", "/add?name=a&delta=1"))?;
    assert!(
        open.body.contains("`open` is not implemented yet"),
        "{} {}",
        open.status,
        open.body
    );
    Ok(())
}

#[test]
fn a_scaffold_of_chosen_interfaces_answers_their_error_values() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let crate_dir = dir.path().join("kv-stub");
    let wit = repo_root().join("wit/wasi-keyvalue-0.2.0-draft");
    let (code, _, err) = keel(&[
        "plugin",
        "new",
        "kv-stub",
        "--interface",
        wit.to_str().unwrap(),
        "--export",
        "store",
        "--export",
        "wasi:keyvalue/atomics",
        "--dir",
        crate_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let source = std::fs::read_to_string(crate_dir.join("src/lib.rs"))?;
    // `wasi:keyvalue`'s error has an `other(string)` case: the stub uses it.
    assert!(
        source.contains("Error::Other(\"wasi:keyvalue/store@0.2.0-draft: `bucket.get` is not implemented yet\".to_string())"),
        "{source}"
    );
    let plugin = build_scaffold(&crate_dir, "kv-stub");
    let (code, out) = check(&plugin);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("serves: wasi:keyvalue/store@0.2.0-draft, wasi:keyvalue/atomics@0.2.0-draft"),
        "{out}"
    );
    Ok(())
}
