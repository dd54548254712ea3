//! The keyvalue suite against the built-in in-memory plugin (shared mode),
//! through the typed forwarder (the default) and the generic one.

use keel_tests::keyvalue_suite::Target;
use keel_tests::start_host;

async fn memory() -> anyhow::Result<Target> {
    memory_with(None).await
}

/// Workloads `a.test` and `b.test` on one host, with the built-in plugin
/// configured by `plugin` when given.
async fn memory_with(
    plugin: Option<keel_tests::keel::manifest::PluginSpec>,
) -> anyhow::Result<Target> {
    let host = start_host(None).await?;
    if let Some(plugin) = plugin {
        host.add_plugin(plugin).await?;
    }
    Target::start(host, "kv", "keyvalue_user", None).await
}

keel_tests::keyvalue_suite!(memory);

/// The same plugin with `forwarder = "generic"`: the suite must not tell
/// the two forwarders apart.
mod generic_forwarder {
    use super::*;
    use keel_tests::keel::manifest::{Forwarder, LinkMode, PluginSpec};

    async fn memory_generic() -> anyhow::Result<Target> {
        memory_with(Some(PluginSpec {
            forwarder: Forwarder::Generic,
            ..PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
        }))
        .await
    }

    keel_tests::keyvalue_suite!(memory_generic);
}

/// A bucket the manifest names as shared is one bucket for all workloads;
/// every other bucket stays per workload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buckets_named_shared_are_seen_by_every_workload() -> anyhow::Result<()> {
    use keel_tests::keel::manifest::{LinkMode, PluginSpec};
    use keel_tests::{get, request};
    let Target { host, addr, .. } = memory_with(Some(PluginSpec {
        config: [("shared_buckets".to_string(), "orders, sessions".to_string())].into(),
        ..PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
    }))
    .await?;
    request(addr, "PUT", "a.test", "/set?bucket=orders&key=o1", "from a").await?;
    request(
        addr,
        "PUT",
        "a.test",
        "/set?bucket=private&key=p1",
        "from a",
    )
    .await?;
    assert_eq!(
        get(addr, "b.test", "/get?bucket=orders&key=o1").await?.body,
        "from a"
    );
    assert_eq!(
        get(addr, "b.test", "/get?bucket=private&key=p1")
            .await?
            .status,
        404
    );
    host.shutdown().await;
    Ok(())
}

/// With `scope = "workload"` each workload has its own instance of the
/// plugin: even a bucket named shared is not shared across workloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_scoped_per_workload_keeps_one_instance_each() -> anyhow::Result<()> {
    use keel_tests::keel::manifest::{LinkMode, PluginSpec, SharedScope};
    use keel_tests::{get, request};
    let Target { host, addr, .. } = memory_with(Some(PluginSpec {
        config: [("shared_buckets".to_string(), "orders".to_string())].into(),
        scope: SharedScope::Workload,
        ..PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
    }))
    .await?;
    request(addr, "PUT", "a.test", "/set?bucket=orders&key=o1", "from a").await?;
    assert_eq!(
        get(addr, "a.test", "/get?bucket=orders&key=o1").await?.body,
        "from a"
    );
    assert_eq!(
        get(addr, "b.test", "/get?bucket=orders&key=o1")
            .await?
            .status,
        404
    );
    host.shutdown().await;
    Ok(())
}

/// Instances of one workload calling the plugin from every worker thread at
/// once: calls that find it busy wait their turn, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_from_many_threads_at_once_wait_their_turn() -> anyhow::Result<()> {
    use keel_tests::request;
    const REQUESTS: u32 = 8;
    const TIMES: u32 = 2_000;
    let Target { host, addr, .. } = memory().await?;
    let path = format!("/increment?bucket=default&key=busy&times={TIMES}");
    let mut tasks = Vec::new();
    for _ in 0..REQUESTS {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            request(addr, "POST", "a.test", &path, "").await
        }));
    }
    for task in tasks {
        let answer = task.await??;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
    }
    let total = keel_tests::get(addr, "a.test", "/get?bucket=default&key=busy").await?;
    host.shutdown().await;
    assert_eq!(total.body, (REQUESTS * TIMES).to_string());
    Ok(())
}
