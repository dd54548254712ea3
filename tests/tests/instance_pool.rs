//! The host's instance pool is shared fairly: a workload holding its share
//! of the pool gets 503 for its next request while its neighbour is still
//! served; a workload asking for more instances than the host runs is
//! refused at start; shared plugin instances draw from their own reserve;
//! memory kept resident between instances is reset.

use keel_tests::gate::Gate;
use keel_tests::keel::spec::ByteSize;
use keel_tests::keel::{Error, Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, test_engine};
use std::net::SocketAddr;
use std::time::Duration;

/// A pool of 10 instances: 1 kept for shared plugins, 9 invocation slots.
const POOL: u32 = 10;

async fn host_with_pool(pool_instances: u32) -> anyhow::Result<Host> {
    Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine().with_pool_instances(pool_instances))
        .start()
        .await
}

fn workload(name: &str, gate: SocketAddr) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("pool", name), guest("http_behaviours"));
    spec.http.host = Some(format!("{name}.test"));
    spec.sockets.allow = vec![gate.to_string()];
    spec.limits.memory = ByteSize::mib(16);
    // As many as the host runs at once: only the pool's share rule stops it.
    spec.limits.max_instances = 9;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workload_holding_its_share_gets_503_and_its_neighbour_is_served() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let gate_addr = gate.addr();
    let host = host_with_pool(POOL).await?;
    assert_eq!(host.engine().pool().capacity(), 9);
    let mut greedy = workload("greedy", gate_addr);
    // Its refused request waits this long for a slot before the 503.
    greedy.limits.queue_timeout = Duration::from_millis(300);
    host.start_workload(greedy).await?;
    host.start_workload(workload("neighbour", gate_addr))
        .await?;
    let addr = host.http_addr().expect("ingress");

    // Two workloads share 9 slots: 4 each, and one left over by the
    // rounding that the greedy one may borrow. Its five requests stay
    // inside the guest until the gate lets them go.
    let mut holders = Vec::new();
    let mut releases = Vec::new();
    for _ in 0..5 {
        holders.push(tokio::spawn(async move {
            get(
                addr,
                "greedy.test",
                &format!("/hold-memory?mib=0&addr={gate_addr}"),
            )
            .await
        }));
        releases.push(gate.arrival().await?);
    }
    assert_eq!(host.engine().pool().in_use(), 5);

    // A sixth would take the slots the neighbour is guaranteed: 503.
    let refused = get(addr, "greedy.test", "/hold-memory?mib=0").await?;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.body.starts_with("host is busy"), "{}", refused.body);
    assert!(refused.body.contains("fair share is 4"), "{}", refused.body);

    // The neighbour is served, up to its whole share at once.
    let mut neighbours = Vec::new();
    for _ in 0..4 {
        neighbours.push(tokio::spawn(async move {
            get(
                addr,
                "neighbour.test",
                &format!("/hold-memory?mib=0&addr={gate_addr}"),
            )
            .await
        }));
        releases.push(gate.arrival().await?);
    }
    assert_eq!(host.engine().pool().in_use(), 9);

    for release in releases {
        release.release();
    }
    for holder in holders.into_iter().chain(neighbours) {
        let held = holder.await??;
        assert_eq!(
            (held.status, held.body.as_str()),
            (200, "held 0 MiB released")
        );
    }
    // Every slot came back with its request.
    let again = get(addr, "greedy.test", "/hold-memory?mib=0").await?;
    assert_eq!((again.status, again.body.trim()), (200, "held 0 MiB"));
    host.shutdown().await;
    assert_eq!(host.engine().pool().in_use(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_instances_than_the_host_runs_are_refused_at_start() -> anyhow::Result<()> {
    let host = host_with_pool(POOL).await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("pool", "huge"), guest("hello"));
    spec.limits.max_instances = 10;
    match host.start_workload(spec).await {
        Err(Error::InvalidSpec(invalid)) => {
            assert_eq!(invalid.field, "limits.max_instances");
            assert!(invalid.message.contains("9 invocations"), "{invalid}");
        }
        other => panic!("expected an invalid spec, got {other:?}"),
    }
    assert!(host.list().is_empty(), "a refused workload is not listed");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_plugin_instances_draw_from_their_own_reserve() -> anyhow::Result<()> {
    let host = host_with_pool(POOL).await?;
    let user = |namespace: &str| {
        let mut spec =
            WorkloadSpec::single(WorkloadId::new(namespace, "kv"), guest("keyvalue_user"));
        spec.http.host = Some(format!("{namespace}.test"));
        spec.limits.max_instances = 4;
        spec
    };
    // The in-memory key-value plugin runs one shared instance per
    // namespace; the reserve of a 10-instance pool holds one.
    host.start_workload(user("first")).await?;
    assert_eq!(host.engine().pool().shared_in_use(), 1);
    let error = host
        .start_workload(user("second"))
        .await
        .expect_err("the reserve is spent");
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(
        message.contains("keeps 1 of its 10 pool instances for shared plugin instances"),
        "{message}"
    );
    // The first namespace is still served, by its shared instance.
    let addr = host.http_addr().expect("ingress");
    let set = keel_tests::request(addr, "POST", "first.test", "/set?bucket=b&key=k", "v").await?;
    assert_eq!(set.status, 200, "{}", set.body);
    let got = get(addr, "first.test", "/get?bucket=b&key=k").await?;
    assert_eq!((got.status, got.body.as_str()), (200, "v"));
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instance_sees_none_of_the_pages_the_last_one_dirtied_kept_resident()
-> anyhow::Result<()> {
    // With the default keep-resident size, the pages kept are the ones the
    // last instance dirtied wherever they sit (its stack top, its statics,
    // the start of its heap, all around 1 MiB), found by scanning the
    // slot: each must come back reset, the `/count` counter among them.
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine().with_pool_instances(POOL))
        .start()
        .await?;
    assert!(host.engine().pooled(), "the pooling allocator is in use");
    let mut spec = WorkloadSpec::single(WorkloadId::new("pool", "dirty"), guest("http_behaviours"));
    // One at a time, so that each request gets the slot the last one left.
    spec.limits.max_instances = 1;
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    for _ in 0..5 {
        let answer = get(addr, "x", "/count").await?;
        assert_eq!((answer.status, answer.body.as_str()), (200, "call 1"));
        // A megabyte of the heap written between two counts.
        let held = get(addr, "x", "/hold-memory?mib=1").await?;
        assert_eq!((held.status, held.body.trim_end()), (200, "held 1 MiB"));
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instance_sees_none_of_the_last_ones_memory_kept_resident() -> anyhow::Result<()> {
    // 2 MiB covers the guest's stack and its statics (the `/count`
    // counter among them): the pages the last instance wrote stay mapped
    // in the slot the next one gets, and must come back reset.
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(
            test_engine()
                .with_pool_instances(POOL)
                .with_keep_resident(2 << 20),
        )
        .start()
        .await?;
    assert!(host.engine().pooled(), "the pooling allocator is in use");
    let mut spec = WorkloadSpec::single(
        WorkloadId::new("pool", "resident"),
        guest("http_behaviours"),
    );
    spec.limits.max_instances = 2;
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    for _ in 0..3 {
        let answer = get(addr, "x", "/count").await?;
        assert_eq!((answer.status, answer.body.as_str()), (200, "call 1"));
    }
    host.shutdown().await;
    Ok(())
}
