//! `wasi:io` streams a workload passes to a plugin, lent (`borrow`) and
//! given (`own`), in shared mode (the forwarder moves them between the two
//! Stores and gives a lent one back) and in composed mode (one Store).

use keel_tests::keel::spec::{LinkMode, PluginSpec};
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::{guest, request, start_host};

async fn lend_and_give(mode: LinkMode) -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.add_plugin(PluginSpec::new(
        "reader",
        Some(guest("stream_plugin")),
        mode,
    ))
    .await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("s", "user"), guest("stream_user"));
    spec.http.host = Some("s.test".into());
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    let body = format!("hello{}", "x".repeat(200_000));

    let lent = request(addr, "POST", "s.test", "/lend", body.clone()).await?;
    assert_eq!(
        (lent.status, lent.body.as_str()),
        (200, "peeked=hello rest=200000"),
        "the plugin read 5 bytes of the lent stream, the workload the rest"
    );
    let given = request(addr, "POST", "s.test", "/give", body).await?;
    assert_eq!(
        (given.status, given.body.as_str()),
        (200, "swallowed=200005")
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_cross_into_a_shared_plugin_and_lent_ones_come_back() -> anyhow::Result<()> {
    lend_and_give(LinkMode::Shared).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_reach_a_composed_plugin() -> anyhow::Result<()> {
    lend_and_give(LinkMode::Composed).await
}
