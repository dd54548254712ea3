//! `logging-nats`: each `wasi:logging` record goes to keel's log and is
//! published on NATS under the configured prefix, scoped to the caller's
//! namespace and workload.

use futures::StreamExt as _;
use keel_tests::nats::NatsServer;
use keel_tests::{KeelProcess, get, guest, write_file};
use std::time::Duration;

#[test]
fn records_reach_the_host_log_and_a_nats_subject() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            r#"
[[plugin]]
name = "logging-nats"
config = {{ "logging-nats.prefix" = "acme.logs" }}

[[workload]]
namespace = "shop"
name = "front-door"
[[workload.component]]
name = "greeter"
path = {path:?}
"#,
            path = guest("config_greeting")
        ),
    );
    let mut keel = KeelProcess::spawn(
        &manifest,
        &dir.path().join("cache"),
        &["--nats", &server.url()],
    )?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let records = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let mut subscriber = client.subscribe("acme.logs.>").await?;
        client.flush().await?;
        let alarm = get(addr, "localhost", "/alarm").await?;
        anyhow::ensure!(alarm.status == 200, "{alarm:?}");
        let mut records = Vec::new();
        while records.len() < 2 {
            let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
            let record: serde_json::Value = serde_json::from_slice(&message.payload)?;
            records.push((message.subject.to_string(), record));
        }
        anyhow::Ok(records)
    })?;
    let (subject, critical) = &records[1];
    assert_eq!(subject, "acme.logs.shop.front_2Ddoor");
    assert_eq!(critical["level"], "critical");
    assert_eq!(critical["context"], "alarm");
    assert_eq!(critical["message"], "the building is on fire");
    assert_eq!(critical["namespace"], "shop");
    assert_eq!(critical["workload"], "front-door");
    assert_eq!(critical["component"], "greeter");
    assert!(critical["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(records[0].1["level"], "error");
    keel.wait_for_log("the building is on fire", Duration::from_secs(10))?;
    Ok(())
}

/// The prefix becomes the plugin's grant, so it may hold no wildcard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_with_wildcards_is_refused() -> anyhow::Result<()> {
    let host = keel_tests::start_host(None).await?;
    for prefix in ["logs.*", ">", "logs..all", ""] {
        let spec =
            keel_tests::builtin_plugin("logging-nats", &[("logging-nats.prefix", prefix)], &[]);
        let refused = host.add_plugin(spec).await.expect_err("refused");
        assert!(
            format!("{refused:#}").contains("is not a subject prefix"),
            "{prefix}: {refused:#}"
        );
    }
    host.shutdown().await;
    Ok(())
}
