//! The keyvalue suite against the built-in in-memory plugin (shared mode),
//! through the typed forwarder (the default) and the generic one.

use keel_tests::keyvalue_suite::Target;
use keel_tests::start_host;

async fn memory() -> anyhow::Result<Target> {
    memory_with(None).await
}

/// Workloads `a.test` and `b.test` on one host, with the built-in plugin
/// configured by `plugin` when given.
async fn memory_with(plugin: Option<keel_tests::keel::spec::PluginSpec>) -> anyhow::Result<Target> {
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
    use keel_tests::keel::spec::{Forwarder, LinkMode, PluginSpec};

    async fn memory_generic() -> anyhow::Result<Target> {
        memory_with(Some(
            PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
                .with_forwarder(Forwarder::Generic),
        ))
        .await
    }

    keel_tests::keyvalue_suite!(memory_generic);
}

/// A bucket the manifest names as shared is one bucket for all workloads;
/// every other bucket stays per workload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buckets_named_shared_are_seen_by_every_workload() -> anyhow::Result<()> {
    use keel_tests::keel::spec::{LinkMode, PluginSpec};
    use keel_tests::{get, request};
    let Target { host, addr, .. } = memory_with(Some(
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
            .with_config("shared_buckets", "orders, sessions"),
    ))
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
    use keel_tests::keel::spec::{LinkMode, PluginSpec, SharedScope};
    use keel_tests::{get, request};
    let Target { host, addr, .. } = memory_with(Some(
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
            .with_config("shared_buckets", "orders")
            .with_scope(SharedScope::Workload),
    ))
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

/// Starts workload `namespace/name` of the `keyvalue-user` fixture, routed
/// as `<name>.test`, with invocation `timeout` if given.
async fn user(
    host: &keel_tests::keel::Host,
    namespace: &str,
    name: &str,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    use keel_tests::keel::{WorkloadId, WorkloadSpec};
    let mut spec = WorkloadSpec::single(
        WorkloadId::new(namespace, name),
        keel_tests::guest("keyvalue_user"),
    );
    spec.http.host = Some(format!("{name}.test"));
    if let Some(timeout) = timeout {
        spec.limits.timeout = timeout;
    }
    host.start_workload(spec).await?;
    Ok(())
}

/// A workload incrementing in a loop until its deadline passes, most of
/// its time inside the plugin: the deadline ends the workload's request,
/// never the plugin instance its namespace shares, so another workload's
/// key survives (the plugin used to trap when a caller's deadline passed
/// mid-call, and restart empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workload_running_out_of_time_mid_call_costs_no_one_their_data() -> anyhow::Result<()> {
    use keel_tests::{get, request};
    let host = start_host(None).await?;
    user(
        &host,
        "kv",
        "a",
        Some(std::time::Duration::from_millis(500)),
    )
    .await?;
    user(&host, "kv", "b", None).await?;
    let addr = host.http_addr().expect("ingress");
    let set = request(addr, "PUT", "b.test", "/set?bucket=default&key=kept", "b's").await?;
    assert_eq!(set.status, 200, "{}", set.body);
    for _ in 0..4 {
        let busy = request(
            addr,
            "POST",
            "a.test",
            "/increment?bucket=default&key=n&times=100000000",
            "",
        )
        .await?;
        assert_eq!(busy.status, 504, "{}", busy.body);
        assert_eq!(host.shared_plugin_restarts("keyvalue-memory"), 0);
    }
    let kept = get(addr, "b.test", "/get?bucket=default&key=kept").await?;
    assert_eq!((kept.status, kept.body.as_str()), (200, "b's"));
    host.shutdown().await;
    Ok(())
}

/// A tenant filling the plugin with 9 MiB values meets its namespace's
/// quota as an error value: nothing traps, the plugin keeps running, and
/// another tenant's data (on the same instance, with `scope = "host"`) is
/// still there and still writable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_filling_memory_gets_quota_errors_and_others_keep_their_data() -> anyhow::Result<()>
{
    use keel_tests::keel::spec::{LinkMode, PluginSpec, SharedScope};
    use keel_tests::{get, request};
    let host = start_host(None).await?;
    host.add_plugin(
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared).with_scope(SharedScope::Host),
    )
    .await?;
    user(&host, "greedy", "a", None).await?;
    user(&host, "modest", "b", None).await?;
    let addr = host.http_addr().expect("ingress");
    let set = request(addr, "PUT", "b.test", "/set?bucket=default&key=kept", "b's").await?;
    assert_eq!(set.status, 200, "{}", set.body);
    let value = vec![b'x'; 9 << 20];
    let mut refused = None;
    for i in 0..28 {
        let path = format!("/set?bucket=default&key=v{i}");
        let answer = request(addr, "PUT", "a.test", &path, value.clone()).await?;
        if answer.status != 200 {
            refused = Some((i, answer));
            break;
        }
    }
    let (at, answer) = refused.expect("the quota never refused a value");
    // 64 MiB by default: the eighth 9 MiB value is one too many.
    assert_eq!(at, 7);
    assert_eq!(answer.status, 500);
    assert!(
        answer
            .body
            .starts_with("Error::Other(\"quota exceeded: namespace `greedy`"),
        "{}",
        answer.body
    );
    assert_eq!(host.shared_plugin_restarts("keyvalue-memory"), 0);
    // The greedy tenant's earlier values, and the other tenant's, are kept.
    let first = get(addr, "a.test", "/exists?bucket=default&key=v0").await?;
    assert_eq!(first.body, "true");
    let kept = get(addr, "b.test", "/get?bucket=default&key=kept").await?;
    assert_eq!((kept.status, kept.body.as_str()), (200, "b's"));
    let more = request(addr, "PUT", "b.test", "/set?bucket=default&key=more", value).await?;
    assert_eq!(more.status, 200, "{}", more.body);
    // Deleting makes room again.
    let deleted = request(
        addr,
        "DELETE",
        "a.test",
        "/delete?bucket=default&key=v0",
        "",
    )
    .await?;
    assert_eq!(deleted.status, 200);
    let again = request(
        addr,
        "PUT",
        "a.test",
        "/set?bucket=default&key=v7",
        vec![b'y'; 9 << 20],
    )
    .await?;
    assert_eq!(again.status, 200, "{}", again.body);
    host.shutdown().await;
    Ok(())
}

/// The quota is the plugin's config: `max_keys_per_namespace` bounds the
/// keys (and buckets) of a namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_key_quota_comes_from_the_plugins_config() -> anyhow::Result<()> {
    use keel_tests::keel::spec::{LinkMode, PluginSpec};
    use keel_tests::request;
    let host = start_host(None).await?;
    host.add_plugin(
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
            .with_config("max_keys_per_namespace", "10"),
    )
    .await?;
    user(&host, "kv", "a", None).await?;
    let addr = host.http_addr().expect("ingress");
    // The bucket counts as one: nine keys fit.
    let nine = request(addr, "POST", "a.test", "/fill?bucket=b&n=9&prefix=k", "").await?;
    assert_eq!(nine.status, 200, "{}", nine.body);
    let tenth = request(addr, "PUT", "a.test", "/set?bucket=b&key=one-more", "x").await?;
    assert_eq!(tenth.status, 500);
    assert!(
        tenth.body.contains("over its max_keys_per_namespace of 10"),
        "{}",
        tenth.body
    );
    // Replacing a value adds no key.
    let replaced = request(addr, "PUT", "a.test", "/set?bucket=b&key=k0", "new").await?;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(host.shared_plugin_restarts("keyvalue-memory"), 0);
    host.shutdown().await;
    Ok(())
}
