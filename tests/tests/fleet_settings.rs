//! A `keel host`'s own settings: the plugins it offers come from its host
//! configuration (`--config`), where a workload asking for their
//! interfaces runs, the heartbeat lists what they export, and a workload
//! asking for an interface nothing serves is refused naming it; and its
//! pull policy holds for every start of its long life.

use anyhow::Result;
use keel_tests::fleet::{KeelHost, Operator, assert_error, host_config, http_workload, push_guest};
use keel_tests::get;
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_of_the_host_configuration_serves_the_workloads_that_ask_for_it() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "tally_user", "apps/tally-user:1").await?;
    let plugin = push_guest(&registry, "tally_plugin", "plugins/tally:1").await?;
    let dir = tempfile::tempdir()?;
    // The plugin by OCI reference: the host pulls it as it starts.
    let more = format!("[[plugin]]\nname = \"tally\"\npath = \"oci://{plugin}\"\n");
    let config = host_config(dir.path(), &registry, &more);
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = KeelHost::spawn(&nats.url(), dir.path(), &["--config", &config])?;

    let beat = operator.heartbeat_of(&host.id, |_| true).await?;
    let exports = beat["exports"].as_array().cloned().unwrap_or_default();
    let tally = exports
        .iter()
        .find(|e| e["namespace"] == "acme" && e["package"] == "tally")
        .unwrap_or_else(|| panic!("acme:tally among the exports: {exports:?}"));
    assert_eq!(tally["interfaces"], json!(["counters"]));
    assert!(
        exports
            .iter()
            .any(|e| e["namespace"] == "wasi" && e["package"] == "keyvalue"),
        "the built-ins are exported too: {exports:?}"
    );

    let mut workload = http_workload("plugins", "user", &image, "tally.local");
    workload["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({"namespace": "acme", "package": "tally", "interfaces": ["counters"]}));
    operator.start_running(&host.id, "uid-1", workload).await?;
    assert_eq!(
        get(host.http, "tally.local", "/sum?values=1,2,39")
            .await?
            .body,
        "42"
    );

    let mut unknown = http_workload("plugins", "other", &image, "other.local");
    unknown["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({"namespace": "acme", "package": "ledger", "interfaces": ["books"]}));
    let refused = operator.start(&host.id, "uid-2", unknown).await?;
    assert_error(
        &refused,
        &["workload.witWorld.hostInterfaces[1]", "acme:ledger"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn under_pull_always_every_start_follows_a_moved_tag() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "hello", "apps/moving:stable").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = KeelHost::spawn(
        &nats.url(),
        dir.path(),
        &["--config", &config, "--pull", "always"],
    )?;
    operator.heartbeat_of(&host.id, |_| true).await?;
    let workload = http_workload("default", "moving", &image, "moving.local");

    operator
        .start_running(&host.id, "uid-1", workload.clone())
        .await?;
    let first = get(host.http, "moving.local", "/apples").await?.body;
    assert!(first.starts_with("Hello from keel!"), "{first}");
    operator.stop(&host.id, "uid-1").await?;

    // The tag moves to another component; the next start runs it.
    push_guest(&registry, "http_keyvalue_counter", "apps/moving:stable").await?;
    operator.start_running(&host.id, "uid-2", workload).await?;
    let second = get(host.http, "moving.local", "/apples").await?.body;
    assert_eq!(second, "/apples has been visited 1 times\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_workloads_and_leaves_no_scratch_behind() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "hello", "apps/hello:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let mut host = KeelHost::spawn(&nats.url(), dir.path(), &["--config", &config])?;
    operator.heartbeat_of(&host.id, |_| true).await?;
    let mut workload = http_workload("default", "hello", &image, "hello.local");
    workload["volumes"] = json!([{"name": "tmp", "emptyDir": {}}]);
    workload["witWorld"]["components"][0]["localResources"] =
        json!({"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]});
    operator.start_running(&host.id, "uid-1", workload).await?;
    let scratch = dir.path().join("scratch").join(&host.id);
    assert!(scratch.join("uid-1").join("tmp").is_dir());

    host.process.signal("TERM")?;
    assert_eq!(host.process.wait(Duration::from_secs(60))?, Some(0));
    let log = host.process.log();
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
    assert!(!scratch.exists(), "the host's scratch folder is gone");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_joins_a_nats_server_that_verifies_its_clients() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (nats, tls) = keel_tests::nats::NatsServer::start_mutual_tls(dir.path())?;
    let url = nats.url().replace("nats://", "tls://");
    let operator = async_nats::ConnectOptions::new()
        .add_root_certificates(tls.ca.clone())
        .add_client_certificate(tls.client_cert.clone(), tls.client_key.clone())
        .require_tls(true)
        .connect(&url)
        .await?;
    let mut beats = operator.subscribe("runtime.operator.heartbeat.*").await?;
    operator.flush().await?;
    let ca = tls.ca.display().to_string();
    let cert = tls.client_cert.display().to_string();
    let key = tls.client_key.display().to_string();

    // Without a client certificate the server turns the host away.
    let cache = dir.path().join("cache").display().to_string();
    let (code, stderr) = keel_tests::run_keel(&[
        "host",
        "--nats",
        &url,
        "--nats-tls-ca",
        &ca,
        "--listen",
        "127.0.0.1:0",
        "--cache-dir",
        &cache,
    ])?;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("connecting to NATS"), "{stderr}");

    // With one it joins and beats.
    let host = KeelHost::spawn(
        &url,
        &dir.path().join("host"),
        &[
            "--nats-tls-ca",
            &ca,
            "--nats-tls-cert",
            &cert,
            "--nats-tls-key",
            &key,
        ],
    )?;
    let beat = tokio::time::timeout(
        Duration::from_secs(60),
        futures::StreamExt::next(&mut beats),
    )
    .await?
    .expect("a heartbeat");
    let beat: serde_json::Value = serde_json::from_slice(&beat.payload)?;
    assert_eq!(beat["id"], host.id.as_str());
    Ok(())
}
