//! `keel host`'s start path as the operator sees it: from a `workload.start`
//! request to its reply, and to the first 200 over HTTP, for a component
//! already in the OCI store and for one pulled from a loopback registry;
//! then 100 workloads started on one host at once, every one answering.
//! The fleet host runs in this process (`keel::testing::FleetHost`), over a real
//! nats-server; the operator is a NATS client sending the protocol's JSON.

use anyhow::{Context, Result, ensure};
use keel_tests::fleet::{Operator, http_workload, state};
use keel_tests::keel::Host;
use keel_tests::keel::oci::{OciOptions, Registry as KeelRegistry};
use keel_tests::keel::spec::{ImageRef, NatsSpec, SubjectScope};
use keel_tests::keel::testing::{FleetHost, Identity, Settings};
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use keel_tests::{get, guest, test_engine};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;
const MANY: usize = 100;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let insecure = registry.insecure();
    let pusher = KeelRegistry::new(OciOptions::default().with_registry(insecure.clone()))?;
    let hello = std::fs::read(guest("hello"))?;
    // One tag per round: each is pulled once (the bytes, and so the
    // compiled component, are the same).
    for round in 0..ROUNDS {
        let reference = ImageRef::parse(&registry.reference(&format!("apps/hello:{round}")))?;
        pusher.push(&reference, &hello).await?;
    }
    let cache = tempfile::tempdir()?;
    let mut nats_spec = NatsSpec::url(nats.url());
    nats_spec.subjects = SubjectScope::AsWritten;
    let host = Arc::new(
        Host::builder()
            .http_listen("127.0.0.1:0".parse()?)
            .engine_options(test_engine().with_pool_instances(1000))
            .nats(nats_spec)
            .cache_dir(cache.path())
            .oci(
                OciOptions::default()
                    .with_store_dir(cache.path().join("oci"))
                    .with_registry(insecure),
            )
            .start()
            .await?,
    );
    let client = match host.broker() {
        keel_tests::keel::testing::Broker::Nats(c) => c.client().clone(),
        keel_tests::keel::testing::Broker::Bus(_) => anyhow::bail!("no NATS"),
    };
    let identity = Identity::new(None, BTreeMap::new(), "bench".into());
    let settings = Settings {
        scratch_dir: cache.path().join("scratch"),
        ..Settings::default()
    };
    let fleet = Arc::new(FleetHost::new(host.clone(), client, identity, settings));
    let id = fleet.id().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(fleet.clone().serve(Duration::from_secs(15), async {
        let _ = stopped.await;
    }));
    let mut operator = Operator::connect(&nats.url()).await?;
    operator.heartbeat_of(&id, |_| true).await?;
    let addr = host.http_addr().context("ingress")?;

    // The first start pulls and compiles; the others find the compiled
    // component in the cache (their bytes are the same).
    let first = format!("{}/apps/hello:0", registry.host());
    let (replied, answered) = timed_start(&operator, &id, addr, "warm", &first).await?;
    println!(
        "first start (pull and compile): workload.start -> RUNNING reply {replied:.1} ms, -> first 200 {answered:.1} ms"
    );

    let (mut pulled, mut stored) = (Vec::new(), Vec::new());
    for round in 1..ROUNDS {
        let image = format!("{}/apps/hello:{round}", registry.host());
        pulled.push(timed_start(&operator, &id, addr, &format!("p{round}"), &image).await?);
        // The same image again: the host has it (OCI store, and resolved
        // once already), no registry is asked.
        stored.push(timed_start(&operator, &id, addr, &format!("s{round}"), &image).await?);
    }
    report("already in the OCI store", &mut stored);
    report("pulled from a loopback registry", &mut pulled);

    // 100 at once.
    let started = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for n in 0..MANY {
        let operator = Operator::connect(&nats.url()).await?;
        let id = id.clone();
        let workload = http_workload("bench", &format!("w{n}"), &first, &format!("w{n}.test"));
        starts.spawn(async move { operator.start(&id, &format!("uid-w{n}"), workload).await });
    }
    while let Some(reply) = starts.join_next().await {
        let status = reply??;
        ensure!(state(&status) == "WORKLOAD_STATE_RUNNING", "{status}");
    }
    let all_running = started.elapsed();
    for n in 0..MANY {
        let answer = get(addr, &format!("w{n}.test"), "/").await?;
        ensure!(answer.status == 200, "w{n}: {}", answer.status);
    }
    let all_answered = started.elapsed();
    let beat = operator
        .request(&id, "heartbeat", serde_json::json!({}))
        .await?;
    println!(
        "{MANY} workloads started at once on one host: all RUNNING after {:.0} ms, all answering 200 after {:.0} ms (heartbeat workloadCount {})",
        all_running.as_secs_f64() * 1e3,
        all_answered.as_secs_f64() * 1e3,
        beat["workloadCount"]
    );
    let _ = stop.send(());
    serving.await??;
    host.shutdown().await;
    Ok(())
}

/// (ms to the start's reply, ms to the first 200) for one workload, then
/// stops it.
async fn timed_start(
    operator: &Operator,
    host: &str,
    addr: SocketAddr,
    name: &str,
    image: &str,
) -> Result<(f64, f64)> {
    let route = format!("{name}.test");
    let uid = format!("uid-{name}");
    let workload = http_workload("bench", name, image, &route);
    let started = Instant::now();
    let status = operator.start(host, &uid, workload).await?;
    let replied = started.elapsed();
    ensure!(state(&status) == "WORKLOAD_STATE_RUNNING", "{status}");
    let answer = get(addr, &route, "/").await?;
    let answered = started.elapsed();
    ensure!(answer.status == 200, "{}", answer.status);
    let stopped = operator.stop(host, &uid).await?;
    ensure!(state(&stopped) == "WORKLOAD_STATE_STOPPING", "{stopped}");
    Ok((replied.as_secs_f64() * 1e3, answered.as_secs_f64() * 1e3))
}

fn report(what: &str, samples: &mut [(f64, f64)]) {
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut replies: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let mut answers: Vec<f64> = samples.iter().map(|s| s.1).collect();
    println!(
        "component {what}: workload.start -> RUNNING reply median {:.1} ms, -> first 200 median {:.1} ms ({} runs)",
        median(&mut replies),
        median(&mut answers),
        samples.len()
    );
}
