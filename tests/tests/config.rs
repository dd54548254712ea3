//! `wasi:config` through the built-in config plugin: values from the
//! manifest, layered (plugin, then component, then the environment when
//! asked), per workload, baked into the composed component so the result
//! runs unchanged on stock Wasmtime.

use keel_tests::keel_compose::ComponentInfo;
use keel_tests::stock::StockRunner;
use keel_tests::{KeelProcess, get, guest, run_keel, write_file};
use std::time::Duration;

fn manifest(dir: &std::path::Path) -> std::path::PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            r#"
[[plugin]]
name = "config"
config = {{ greeting = "hello", colour = "red" }}

[[workload]]
name = "first"
env = {{ FROM_ENV = "from the environment", colour = "env wins" }}
[workload.http]
host = "first.test"
[[workload.component]]
path = {user:?}
config = {{ greeting = "hej", size = "large" }}
config_env = true

[[workload]]
name = "second"
env = {{ FROM_ENV = "not asked for" }}
[workload.http]
host = "second.test"
[[workload.component]]
path = {user:?}
config = {{ size = "small" }}
"#,
            user = guest("config_user")
        ),
    )
}

#[test]
fn values_are_layered_and_each_workload_sees_only_its_own() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut keel = KeelProcess::spawn(&manifest(dir.path()), &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log(
        "workload running workload=default/second",
        Duration::from_secs(60),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    let fetch = |host: &str, path: &str| runtime.block_on(get(addr, host, path));

    // component over plugin; environment over both (asked for by `first`)
    assert_eq!(fetch("first.test", "/get?key=greeting")?.body, "hej");
    assert_eq!(fetch("first.test", "/get?key=colour")?.body, "env wins");
    assert_eq!(
        fetch("first.test", "/get?key=FROM_ENV")?.body,
        "from the environment"
    );
    // `second` did not ask for its environment, and has its own values only
    assert_eq!(fetch("second.test", "/get?key=FROM_ENV")?.status, 404);
    assert_eq!(
        fetch("second.test", "/all")?.body,
        "colour=red\ngreeting=hello\nsize=small",
        "get-all returns exactly the workload's own values"
    );
    let first_all = fetch("first.test", "/all")?.body;
    assert!(
        first_all.contains("size=large") && !first_all.contains("small"),
        "{first_all}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_workload_with_baked_config_runs_on_stock_wasmtime() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = manifest(dir.path());
    let output = dir.path().join("second.wasm");
    let (code, stderr) = run_keel(&[
        "compose",
        manifest.to_str().unwrap(),
        "--workload",
        "second",
        "-o",
        output.to_str().unwrap(),
    ])?;
    assert_eq!(code, Some(0), "{stderr}");
    let info = ComponentInfo::read(&std::fs::read(&output)?)?;
    for import in &info.imports {
        assert!(
            import.name.starts_with("wasi:"),
            "the composed component still imports {}",
            import.name
        );
        assert!(
            !import.name.starts_with("wasi:config/"),
            "config is baked in, not imported"
        );
    }
    let stock = StockRunner::<()>::new(&output, |_| Ok(()))?;
    let (status, body) = stock.get("/all", ()).await?;
    assert_eq!(
        (status, body.as_str()),
        (200, "colour=red\ngreeting=hello\nsize=small")
    );
    Ok(())
}
