//! What a plugin or workload author meets first, tried as a new user would:
//! building against keel's WIT from `keel wit export` alone, the warning
//! for a typed forwarder keel does not have, the advice for a composed
//! plugin reaching files, the pick to add for two fitting plugins, and a
//! composed plugin's trap logged as the plugin's.

use keel_tests::{KeelProcess, get, guest, keel_bin, repo_root, write_file};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `keel <args>`: (exit code, stdout and stderr together).
fn keel(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(keel_bin())
        .args(args)
        .output()
        .expect("keel runs");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `keel wit export DIR`, which must succeed.
fn wit_export(dir: &Path) {
    let (code, out) = keel(&["wit", "export", dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
}

/// Starts `keel run` on `manifest` and waits until it has started every
/// workload (or failed).
fn running(dir: &Path, manifest: &Path) -> anyhow::Result<(KeelProcess, std::net::SocketAddr)> {
    let mut keel = KeelProcess::spawn(manifest, &dir.join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(120))?;
    Ok((keel, addr))
}

/// Runs `keel run` on a manifest that must be refused; returns its log.
fn refused(dir: &Path, manifest: &Path) -> anyhow::Result<String> {
    let mut keel = KeelProcess::spawn(manifest, &dir.join("cache"), &[])?;
    let code = keel.wait(Duration::from_secs(120))?;
    let log = keel.log().join("\n");
    assert_eq!(code, Some(1), "{log}");
    Ok(log)
}

#[test]
fn a_plugin_built_against_keel_wit_export_alone_serves_a_workload() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugin = dir.path().join("whoami");
    wit_export(&plugin.join("wit/deps"));
    // Flat, one folder a package, as wit-bindgen and wkg read deps/.
    for folder in [
        "keel-core",
        "wasi-io-0.2.12",
        "wasi-config-0.2.0-rc.1",
        "wasi-http-0.2.12",
    ] {
        assert!(plugin.join("wit/deps").join(folder).is_dir(), "{folder}");
    }
    assert!(!plugin.join("wit/deps/keel-core/deps").exists());
    std::fs::create_dir_all(plugin.join("src"))?;
    write_file(
        &plugin,
        "wit/world.wit",
        "package local:whoami;\n\nworld plugin {\n    import keel:core/identity@0.1.0;\n    \
         export wasi:config/store@0.2.0-rc.1;\n}\n",
    );
    write_file(
        &plugin,
        "Cargo.toml",
        "[package]\nname = \"whoami\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen = \"0.61\"\n\n\
         [profile.release]\nopt-level = \"s\"\nstrip = true\n\n[workspace]\n",
    );
    write_file(
        &plugin,
        "keel-plugin.toml",
        "name = \"whoami\"\nversion = \"0.1.0\"\ndescription = \"answers who asks\"\n\
         interfaces = [\"wasi:config/store@0.2.0-rc.1\"]\nmode = \"composed\"\nkeeps_state = false\n",
    );
    write_file(
        &plugin,
        "src/lib.rs",
        r#"wit_bindgen::generate!({
    world: "local:whoami/plugin",
    path: "wit",
    generate_all,
});

#[used]
#[unsafe(link_section = "keel-plugin")]
static KEEL_PLUGIN: [u8; include_bytes!("../keel-plugin.toml").len()] =
    *include_bytes!("../keel-plugin.toml");

use exports::wasi::config::store::{Error, Guest};

struct Whoami;

impl Guest for Whoami {
    fn get(key: String) -> Result<Option<String>, Error> {
        let caller = keel::core::identity::caller();
        Ok(Some(format!("{key} for {}/{}", caller.namespace, caller.name)))
    }

    fn get_all() -> Result<Vec<(String, String)>, Error> {
        Ok(Vec::new())
    }
}

export!(Whoami);
"#,
    );
    let wasm = keel_tests::build_guest_crate(&plugin, "whoami.wasm");
    let (code, out) = keel(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");

    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"whoami\"\npath = {wasm:?}\n\n\
             [[workload]]\nnamespace = \"shop\"\nname = \"reader\"\n\
             [[workload.component]]\npath = {:?}\n",
            guest("config_user")
        ),
    );
    let (_keel, addr) = running(dir.path(), &manifest)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let answer = runtime.block_on(get(addr, "x", "/get?key=colour"))?;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "colour for shop/reader")
    );
    Ok(())
}

#[test]
fn an_example_workload_builds_with_crates_io_and_the_exported_wit_only() -> anyhow::Result<()> {
    // The example as it is in the repository, its WIT from `keel wit
    // export` at the place the repository's wit/ has: nothing else of keel.
    let dir = tempfile::tempdir()?;
    wit_export(&dir.path().join("wit"));
    let example = dir.path().join("examples/http-keyvalue-counter");
    std::fs::create_dir_all(example.join("src"))?;
    let source = repo_root().join("examples/http-keyvalue-counter");
    let cargo = std::fs::read_to_string(source.join("Cargo.toml"))?;
    assert!(
        !cargo.contains("path =") && !cargo.contains(".workspace"),
        "the example depends on crates.io only: {cargo}"
    );
    write_file(&example, "Cargo.toml", &format!("{cargo}\n[workspace]\n"));
    write_file(
        &example,
        "src/lib.rs",
        &std::fs::read_to_string(source.join("src/lib.rs"))?,
    );
    let wasm = keel_tests::build_guest_crate(&example, "http_keyvalue_counter.wasm");

    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!("[[workload]]\nname = \"counter\"\n[[workload.component]]\npath = {wasm:?}\n"),
    );
    let (_keel, addr) = running(dir.path(), &manifest)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(get(addr, "x", "/apples"))?;
    let second = runtime.block_on(get(addr, "x", "/apples"))?;
    assert_eq!(
        (second.status, second.body.as_str()),
        (200, "/apples has been visited 2 times\n")
    );
    Ok(())
}

#[test]
fn forwarder_typed_without_a_typed_forwarder_is_a_warning_at_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {:?}\nmode = \"shared\"\nforwarder = \"typed\"\n\n\
             [[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\nforwarder = \"typed\"\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_plugin"),
            guest("tally_user")
        ),
    );
    let (keel, _) = running(dir.path(), &manifest)?;
    let log = keel.log();
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("keel has no typed forwarder"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", log.join("\n"));
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("for `acme:tally/counters@0.2.3`")
            && warnings[0].contains("plugin=\"tally\""),
        "{}",
        warnings[0]
    );
    Ok(())
}

/// A manifest serving config-user's `wasi:config/store` from the plugin
/// that reads files, in `mode`.
fn files_manifest(dir: &Path, mode: &str) -> PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"files\"\npath = {:?}\nmode = {mode:?}\n\n\
             [[workload]]\nname = \"reader\"\n[[workload.component]]\npath = {:?}\n",
            guest("files_plugin"),
            guest("config_user")
        ),
    )
}

#[test]
fn a_composed_plugin_reaching_files_is_told_what_keel_offers_for_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = refused(dir.path(), &files_manifest(dir.path(), "composed"))?;
    assert!(
        log.contains("plugin `files` imports `wasi:filesystem/"),
        "{log}"
    );
    assert!(
        log.contains("keel gives a plugin no files") && log.contains("there is no files grant"),
        "{log}"
    );
    assert!(!log.contains("give it its own `grants`"), "{log}");

    // The check says the same.
    let (_, out) = keel(&["plugin", "check", guest("files_plugin").to_str().unwrap()]);
    assert!(
        out.contains("composed: no: it imports `wasi:filesystem/")
            && out.contains("keel gives a plugin no files"),
        "{out}"
    );

    // And what it says holds: declared shared, it links.
    let shared = tempfile::tempdir()?;
    running(shared.path(), &files_manifest(shared.path(), "shared"))?;
    Ok(())
}

#[test]
fn two_fitting_plugins_name_the_workload_plugins_table_and_the_line_to_add() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugin = guest("tally_plugin");
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally-a\"\npath = {plugin:?}\n\n\
             [[plugin]]\nname = \"tally-b\"\npath = {plugin:?}\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_user")
        ),
    );
    let log = refused(dir.path(), &manifest)?;
    assert!(
        log.contains("can be served by plugins `tally-a` and `tally-b`"),
        "{log}"
    );
    assert!(log.contains("`[workload.plugins]` table"), "{log}");
    assert!(
        log.contains("\"acme:tally/counters\" = \"tally-a\""),
        "{log}"
    );
    Ok(())
}

#[test]
fn two_plugins_fitting_a_layers_import_name_the_wraps_to_add() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\n\n\
             [[plugin]]\nname = \"keyvalue-redis\"\npath = {:?}\nmode = \"shared\"\n\n\
             [[plugin]]\nname = \"keyvalue-audit\"\npath = {:?}\nmode = \"shared\"\n\n\
             [[workload]]\nname = \"user\"\n[workload.plugins]\n\
             \"wasi:keyvalue/store\" = \"keyvalue-audit\"\n\
             \"wasi:keyvalue/atomics\" = \"keyvalue-audit\"\n\
             \"wasi:keyvalue/batch\" = \"keyvalue-audit\"\n\
             [[workload.component]]\npath = {:?}\n",
            guest("keyvalue_redis"),
            guest("keyvalue_audit"),
            guest("keyvalue_user")
        ),
    );
    let log = refused(dir.path(), &manifest)?;
    assert!(
        log.contains(
            "of plugin `keyvalue-audit` can be served by plugins `keyvalue-memory` and `keyvalue-redis`"
        ),
        "{log}"
    );
    assert!(
        log.contains("name = \"keyvalue-audit\"") && log.contains("wraps = \"keyvalue-memory\""),
        "{log}"
    );
    Ok(())
}

#[test]
fn a_trap_inside_a_composed_plugin_is_logged_as_the_plugins() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {:?}\nmode = \"composed\"\n\n\
             [[workload]]\nname = \"user\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_plugin"),
            guest("tally_user")
        ),
    );
    let (mut keel, addr) = running(dir.path(), &manifest)?;
    let runtime = tokio::runtime::Runtime::new()?;

    // The workload trapping on its own, after a call into the plugin
    // returned, stays the workload's.
    let own = runtime.block_on(get(addr, "x", "/open-and-trap?name=a"))?;
    assert_eq!(own.status, 500);
    let line = keel.wait_for_log("guest trapped", Duration::from_secs(30))?;
    assert!(!line.contains("plugin="), "{line}");

    let crashed = runtime.block_on(get(addr, "x", "/crash"))?;
    assert_eq!(crashed.status, 500);
    let line = keel.wait_for_log_line(
        "a trap attributed to the plugin",
        |l| l.contains("guest trapped") && l.contains("plugin=\"tally\""),
        Duration::from_secs(30),
    )?;
    assert!(
        line.contains("guest trapped in composed plugin `tally`")
            && line.contains("workload=\"default/user\""),
        "{line}"
    );
    // Its frames name the plugin too.
    assert!(line.contains("keel-plugin:tally!"), "{line}");
    Ok(())
}
