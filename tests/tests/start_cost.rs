//! What a host's start leaves for later: the registry client (and the
//! system's root certificates) until a registry is reached, and keel's
//! built-in plugins until a plugin is declared or a component imports
//! something the host does not serve itself.

use keel_compose::ComponentInfo;
use keel_tests::keel::testing::plugins::{PluginSet, component_info, host_serves};
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::{builtin_plugin, get, guest, start_host};
use std::collections::BTreeMap;

fn read(name: &str) -> anyhow::Result<(Vec<u8>, ComponentInfo)> {
    let bytes = std::fs::read(guest(name))?;
    let info = ComponentInfo::read(&bytes)?;
    Ok((bytes, info))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serving_local_files_makes_no_registry_client() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = WorkloadId::new("start", "local");
    host.start_workload(WorkloadSpec::single(id, guest("http_behaviours")))
        .await?;
    let answer = get(host.http_addr().expect("ingress"), "x", "/").await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!host.registry().client_made());
    host.shutdown().await;
    Ok(())
}

#[test]
fn built_ins_are_read_only_when_a_component_imports_what_the_host_does_not_serve()
-> anyhow::Result<()> {
    let mut plugins = PluginSet::with_builtins(false)?;
    assert!(plugins.builtins_pending());
    let (bytes, info) = read("http_behaviours")?;
    let plan = plugins.plan(&bytes, &info, &BTreeMap::new())?;
    assert!(plugins.builtins_pending(), "WASI only: nothing read");
    assert!(!plan.host.is_empty() && plan.denied.is_empty(), "{plan:?}");
    assert_eq!(plugins.iter().count(), 0);

    let (bytes, info) = read("keyvalue_user")?;
    let plan = plugins.plan(&bytes, &info, &BTreeMap::new())?;
    assert!(!plugins.builtins_pending());
    assert!(
        plan.plugin_bindings()
            .any(|(b, _)| b.import.starts_with("wasi:keyvalue/store")),
        "the built-in key-value plugin serves it: {plan:?}"
    );
    Ok(())
}

#[test]
fn adding_a_plugin_reads_the_built_ins_it_may_replace_or_wrap() -> anyhow::Result<()> {
    let mut plugins = PluginSet::with_builtins(false)?;
    plugins.add(builtin_plugin("keyvalue-memory", &[], &[]))?;
    assert!(!plugins.builtins_pending());
    assert!(plugins.iter().any(|p| p.builtin));
    Ok(())
}

#[test]
fn no_built_in_exports_an_interface_the_host_serves() -> anyhow::Result<()> {
    // What lets a component importing only host-served interfaces be
    // planned without reading the built-ins.
    for with_nats in [false, true] {
        let mut plugins = PluginSet::with_builtins(with_nats)?;
        plugins.load_builtins()?;
        assert!(plugins.iter().count() > 0);
        for plugin in plugins.iter() {
            for export in &plugin.info.exports {
                assert!(
                    !host_serves(&export.name),
                    "built-in `{}` exports `{}`",
                    plugin.spec.name,
                    export.name
                );
            }
        }
    }
    Ok(())
}

#[test]
fn a_plan_without_plugins_matches_one_made_through_the_registry() -> anyhow::Result<()> {
    let (bytes, info) = read("http_behaviours")?;
    let shortcut = PluginSet::default().plan(&bytes, &info, &BTreeMap::new())?;
    let mut full = PluginSet::with_builtins(false)?;
    full.load_builtins()?;
    let resolved = full.plan(&bytes, &info, &BTreeMap::new())?;
    assert_eq!(shortcut.host, resolved.host);
    assert_eq!(shortcut.types_only, resolved.types_only);
    let names = |plan: &keel_tests::keel::testing::plugins::LinkPlan| -> Vec<String> {
        plan.denied.iter().map(|d| d.import.clone()).collect()
    };
    assert_eq!(names(&shortcut), names(&resolved));
    assert!(resolved.plugin_bindings().next().is_none());
    Ok(())
}

#[test]
fn a_compiled_component_gives_the_imports_and_exports_its_bytes_give() -> anyhow::Result<()> {
    // A warm start plans from the compiled component's types: they must
    // say what the bytes say, resources and functions of every instance
    // included, in the same order.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config)?;
    for name in [
        "http_behaviours",
        "keyvalue_user",
        "tally_user",
        "tally_plugin",
        "blobstore_user",
        "stream_user",
        "nats_plugin",
    ] {
        let (bytes, info) = read(name)?;
        let component = wasmtime::component::Component::new(&engine, &bytes)?;
        assert_eq!(
            component_info::of_component(&engine, &component),
            info,
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_start_serves_as_a_cold_one_did() -> anyhow::Result<()> {
    // The second start plans from the cached artifact's types.
    let cache = tempfile::tempdir()?;
    for round in ["cold", "warm"] {
        let host = start_host(Some(cache.path())).await?;
        let id = WorkloadId::new("start", "kv");
        host.start_workload(WorkloadSpec::single(id, guest("keyvalue_user")))
            .await?;
        let stats = host.cache_stats();
        assert_eq!(stats.loaded > 0, round == "warm", "{round}: {stats:?}");
        // Its key-value import is still served (by the built-in plugin).
        let addr = host.http_addr().expect("ingress");
        let answer = get(addr, "x", "/exists?bucket=b&key=k").await?;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "false"),
            "{round}"
        );
        host.shutdown().await;
    }
    Ok(())
}
