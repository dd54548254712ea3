//! A workload's instances in flight share one memory budget: when they
//! hold it all, its next request gets 503, and its neighbours are untouched.

use keel_tests::gate::Gate;
use keel_tests::keel::spec::ByteSize;
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, start_host};

fn workload(name: &str, gate: std::net::SocketAddr) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("budget", name), guest("http_behaviours"));
    spec.http.host = Some(format!("{name}.test"));
    spec.sockets.allow = vec![gate.to_string()];
    spec.limits.memory = ByteSize::mib(48);
    spec.limits.memory_total = Some(ByteSize::mib(64));
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_in_flight_share_the_workload_budget() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let gate_addr = gate.addr();
    let host = start_host(None).await?;
    host.start_workload(workload("greedy", gate_addr)).await?;
    host.start_workload(workload("neighbour", gate_addr))
        .await?;
    let addr = host.http_addr().expect("ingress");

    // One request holds 40 MiB of the greedy workload's 64 until released.
    let holder = tokio::spawn(async move {
        get(
            addr,
            "greedy.test",
            &format!("/hold-memory?mib=40&addr={gate_addr}"),
        )
        .await
    });
    let release = gate.arrival().await?;

    // A second 40 MiB request of the same workload does not fit beside it:
    // 503, and the first is untouched.
    let refused = get(addr, "greedy.test", "/hold-memory?mib=40").await?;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    // The neighbour's budget is its own.
    let neighbour = get(addr, "neighbour.test", "/hold-memory?mib=40").await?;
    assert_eq!(
        (neighbour.status, neighbour.body.trim()),
        (200, "held 40 MiB")
    );

    release.release();
    let held = holder.await??;
    assert_eq!(
        (held.status, held.body.as_str()),
        (200, "held 40 MiB released")
    );
    // The holder's memory went back to the budget with its Store.
    let again = get(addr, "greedy.test", "/hold-memory?mib=40").await?;
    assert_eq!(again.status, 200, "{}", again.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_smaller_than_one_instance_is_refused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("budget", "tiny"), guest("hello"));
    spec.limits.memory_total = Some(ByteSize::mib(1));
    let error = host.start_workload(spec).await.expect_err("refused");
    assert!(error.to_string().contains("limits.memory_total"), "{error}");
    host.shutdown().await;
    Ok(())
}
