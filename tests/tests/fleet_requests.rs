//! How a `keel host` serves requests while a start is under way: each
//! request on a task of its own, so a hanging pull delays neither
//! heartbeats nor other requests, and a stop that comes mid-start ends
//! that start. The registries here hold a pull on a signal (the host
//! connected) rather than a timer: one never answers, one is a proxy that
//! forwards only once released.

use anyhow::Result;
use keel_tests::fleet::{
    KeelHost, Operator, assert_error, http_workload, insecure_config, push_guest, state,
};
use keel_tests::get;
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use serde_json::json;
use std::time::Duration;

fn spawn(nats: &NatsServer, dir: &std::path::Path, config: &str) -> Result<KeelHost> {
    KeelHost::spawn(&nats.url(), dir, &["--config", config])
}

/// A registry that accepts connections and never answers: a pull from it
/// hangs until the host gives up, which it signals by connecting.
async fn silent_registry() -> Result<(String, tokio::sync::mpsc::Receiver<tokio::net::TcpStream>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if tx.send(stream).await.is_err() {
                return;
            }
        }
    });
    Ok((addr.to_string(), rx))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_pull_delays_neither_heartbeats_nor_other_requests() -> Result<()> {
    let nats = NatsServer::start()?;
    let (silent, mut connections) = silent_registry().await?;
    let dir = tempfile::tempdir()?;
    let config = insecure_config(dir.path(), &silent, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = spawn(&nats, dir.path(), &config)?;
    operator.heartbeat_of(&host.id, |_| true).await?;

    let image = format!("{silent}/apps/slow:1");
    let workload = http_workload("default", "slow", &image, "slow.local");
    let start = operator.start_in_background(&host.id, "uid-slow", workload);
    // The host is inside the pull: it has connected to the registry.
    let held = tokio::time::timeout(Duration::from_secs(60), connections.recv())
        .await?
        .expect("the host connects");
    // Meanwhile it answers, and beats.
    let status = operator.status(&host.id, "uid-slow").await?;
    assert_eq!(state(&status), "WORKLOAD_STATE_STARTING", "{status}");
    let beat = operator.request(&host.id, "heartbeat", json!({})).await?;
    assert_eq!(beat["id"], host.id.as_str());
    let seen = operator.seen.get(&host.id).map_or(0, Vec::len);
    operator.heartbeat_of(&host.id, |_| true).await?;
    assert!(operator.seen.get(&host.id).map_or(0, Vec::len) > seen);
    assert!(
        !start.is_finished(),
        "the start answered before its pull ended"
    );
    // The registry hangs up: the start fails, naming the image.
    drop(held);
    drop(connections);
    assert_error(&start.await??, &[&image]);
    Ok(())
}

/// A proxy to `registry` that holds every connection until `release` is
/// sent true, reporting each on the channel as it arrives.
async fn held_proxy(
    registry: String,
) -> Result<(
    String,
    tokio::sync::mpsc::Receiver<()>,
    tokio::sync::watch::Sender<bool>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (arrived, arrivals) = tokio::sync::mpsc::channel(16);
    let (release, released) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let _ = arrived.send(()).await;
            let mut released = released.clone();
            let registry = registry.clone();
            tokio::spawn(async move {
                if released.wait_for(|r| *r).await.is_err() {
                    return;
                }
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&registry).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok((addr.to_string(), arrivals, release))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_during_a_start_ends_that_start() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    push_guest(&registry, "hello", "apps/hello:1").await?;
    let (proxy, mut arrivals, release) = held_proxy(registry.host()).await?;
    let dir = tempfile::tempdir()?;
    let config = insecure_config(dir.path(), &proxy, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = spawn(&nats, dir.path(), &config)?;
    operator.heartbeat_of(&host.id, |_| true).await?;

    let image = format!("{proxy}/apps/hello:1");
    let workload = http_workload("default", "held", &image, "held.local");
    let start = operator.start_in_background(&host.id, "uid-held", workload);
    // The host is pulling; a stop comes.
    tokio::time::timeout(Duration::from_secs(60), arrivals.recv())
        .await?
        .expect("the host connects");
    operator.stop_stopping(&host.id, "uid-held").await?;
    // The pull goes through and the workload starts, but the stop wins:
    // the start undoes itself and says so.
    release.send(true)?;
    assert_error(&start.await??, &["stopped while"]);
    let after = operator.status(&host.id, "uid-held").await?;
    assert_eq!(state(&after), "WORKLOAD_STATE_NOT_FOUND", "{after}");
    assert_eq!(get(host.http, "held.local", "/").await?.status, 404);
    Ok(())
}
