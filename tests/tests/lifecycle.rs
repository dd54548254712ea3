//! The host API: start, stop (draining in-flight work), status and list;
//! routing while workloads start; and the `keel run` process draining on
//! SIGTERM, also during startup.

use keel_tests::gate::Gate;
use keel_tests::keel::testing::{Unavailable, Workload};
use keel_tests::keel::{WorkloadId, WorkloadSpec, WorkloadState};
use keel_tests::raw::wait_until;
use keel_tests::{KeelProcess, get, guest, start_host, write_file};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> WorkloadSpec {
    WorkloadSpec::single(WorkloadId::new("life", name), guest("http_behaviours"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_status_list_and_duplicate_ids() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = host.start_workload(fixture("one")).await?;
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Running)
    );
    let again = host.start_workload(fixture("one")).await.unwrap_err();
    assert!(format!("{again:#}").contains("already exists"), "{again:#}");
    assert_eq!(
        host.list().len(),
        1,
        "a refused duplicate must not add a second copy"
    );
    host.stop_workload(&id).await?;
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Stopped)
    );
    // A stopped id may be started again.
    host.start_workload(fixture("one")).await?;
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Running)
    );
    assert!(
        host.stop_workload(&WorkloadId::new("life", "nobody"))
            .await
            .is_err()
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_start_is_listed_in_error_and_answers_503() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let junk = write_file(dir.path(), "junk.wasm", "definitely not wasm");
    let host = start_host(None).await?;
    let err = host
        .start_workload(WorkloadSpec::single(WorkloadId::new("life", "junk"), junk))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("not a WebAssembly file"),
        "{err:#}"
    );
    let status = host
        .status(&WorkloadId::new("life", "junk"))
        .expect("listed");
    assert!(
        matches!(status.state, WorkloadState::Error(ref m) if m.contains("not a WebAssembly file")),
        "{status:?}"
    );
    let answer = get(host.http_addr().expect("ingress"), "x", "/").await?;
    assert_eq!(answer.status, 503, "{}", answer.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_workload_that_never_runs_admits_nothing_past_its_queue_timeout() {
    let mut spec = fixture("early");
    spec.limits.queue_timeout = Duration::from_millis(20);
    let workload = Workload::new(spec);
    assert_eq!(
        workload.admit().await.unwrap_err(),
        Unavailable::NotRunning(WorkloadState::Starting)
    );
}

// One thread: the spawned admission runs up to its wait before the test
// goes on, so it is waiting when the workload leaves `Starting`.
#[tokio::test(flavor = "current_thread")]
async fn an_admission_waiting_for_a_start_ends_when_the_workload_leaves_starting() {
    let mut spec = fixture("held");
    spec.limits.queue_timeout = Duration::from_secs(3600);
    let workload = std::sync::Arc::new(Workload::new(spec));
    let admitting = tokio::spawn({
        let workload = workload.clone();
        async move { workload.admit().await.err() }
    });
    tokio::task::yield_now().await;
    assert!(
        !admitting.is_finished(),
        "it waits while the workload starts"
    );
    workload.stop().await;
    let refused = tokio::time::timeout(Duration::from_secs(60), admitting)
        .await
        .expect("woken by the state change, not the queue timeout")
        .expect("the admission task");
    assert!(
        matches!(
            refused,
            Some(Unavailable::NotRunning(
                WorkloadState::Stopping | WorkloadState::Stopped
            ))
        ),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_arriving_while_its_workload_starts_is_answered_once_it_runs()
-> anyhow::Result<()> {
    // No cache: the start compiles, long enough for a request to arrive.
    let host = std::sync::Arc::new(start_host(None).await?);
    let id = WorkloadId::new("life", "early-bird");
    let starting = tokio::spawn({
        let host = host.clone();
        async move { host.start_workload(fixture("early-bird")).await }
    });
    wait_until("the workload is starting", Duration::from_secs(60), || {
        host.status(&id)
            .is_some_and(|s| s.state == WorkloadState::Starting)
    })
    .await?;
    let answer = get(host.http_addr().expect("ingress"), "x", "/").await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    starting.await??;
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_drains_in_flight_requests_then_answers_503() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let host = std::sync::Arc::new(start_host(None).await?);
    let mut spec = fixture("drain");
    spec.sockets.allow = vec![gate.addr().to_string()];
    let id = host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    let hold = gate.hold_path();
    let in_flight = tokio::spawn(async move { get(addr, "x", &hold).await });
    let held = gate.arrival().await?;
    assert_eq!(host.status(&id).map(|s| s.in_flight), Some(1));
    let stopping = {
        let (host, id) = (host.clone(), id.clone());
        tokio::spawn(async move { host.stop_workload(&id).await.map(|()| Instant::now()) })
    };
    let state = || host.status(&id).map(|s| s.state);
    wait_until(
        "the workload leaving running",
        Duration::from_secs(30),
        || state() != Some(WorkloadState::Running),
    )
    .await?;
    // The request is held in its handler: stop waits for it…
    assert_eq!(state(), Some(WorkloadState::Stopping));
    assert!(
        !stopping.is_finished(),
        "stop returned with a request in flight"
    );
    let released = Instant::now();
    held.release();
    let stopped = stopping.await??;
    assert!(
        stopped >= released,
        "stop returned before the in-flight request finished"
    );
    assert_eq!(state(), Some(WorkloadState::Stopped));
    // …and that request was answered normally.
    let answer = in_flight.await??;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "held 0 MiB released")
    );
    assert_eq!(get(addr, "x", "/").await?.status, 503);
    host.shutdown().await;
    Ok(())
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_zero() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let mut gate = runtime.block_on(Gate::start())?;
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nname = \"held\"\n[[workload.component]]\npath = {:?}\n\
             [workload.sockets]\nallow = [\"{}\"]\n",
            guest("http_behaviours"),
            gate.addr()
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let hold = gate.hold_path();
    let in_flight = runtime.spawn(async move { get(addr, "x", &hold).await });
    let held = runtime.block_on(gate.arrival())?;
    keel.signal("TERM")?;
    // keel has taken the signal while the request is still in its handler.
    keel.wait_for_log(
        "shutting down: finishing in-flight requests",
        Duration::from_secs(30),
    )?;
    held.release();
    let answer = runtime.block_on(in_flight)??;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "held 0 MiB released")
    );
    assert_eq!(
        keel.wait(Duration::from_secs(20))?,
        Some(0),
        "log:\n{}",
        keel.log().join("\n")
    );
    // After the signal nothing new is accepted.
    assert!(runtime.block_on(get(addr, "x", "/")).is_err());
    Ok(())
}

/// A workload that subscribes to `ping` (over NATS when the host has it):
/// while the NATS server is paused its start waits for the server to confirm
/// the subscription, which holds it in `starting` for exactly as long as a
/// test needs.
fn subscriber(name: &str) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("life", name), guest("ponger"));
    spec.subscriptions
        .push(keel_tests::keel::spec::SubscriptionSpec::new("ping"));
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http_workload_answers_while_another_is_still_starting() -> anyhow::Result<()> {
    let nats = keel_tests::nats::NatsServer::start()?;
    let host = std::sync::Arc::new(keel_tests::nats::host_on(&nats).await?);
    host.start_workload(fixture("web")).await?;
    let addr = host.http_addr().expect("ingress");
    let slow = WorkloadId::new("life", "slow");
    nats.pause()?;
    let starting = {
        let host = host.clone();
        tokio::spawn(async move { host.start_workload(subscriber("slow")).await })
    };
    wait_until(
        "the second workload starting",
        Duration::from_secs(20),
        || host.status(&slow).map(|s| s.state) == Some(WorkloadState::Starting),
    )
    .await?;
    // Both have no host name; the one that serves HTTP takes the requests.
    let answer = get(addr, "x", "/").await?;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "hello from fixture")
    );
    assert_eq!(
        host.status(&slow).map(|s| s.state),
        Some(WorkloadState::Starting),
        "still held"
    );
    // Let the second one start: it serves no HTTP, so nothing changes.
    nats.resume()?;
    starting.await??;
    assert_eq!(
        host.status(&slow).map(|s| (s.state, s.serves_http)),
        Some((WorkloadState::Running, Some(false)))
    );
    assert_eq!(get(addr, "x", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}

#[test]
fn sigterm_while_workloads_start_drains_what_runs_and_exits_zero() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let nats = keel_tests::nats::NatsServer::start()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[nats]\nurl = {:?}\n\n\
             [[workload]]\nname = \"web\"\n[[workload.component]]\npath = {:?}\n\n\
             [[workload]]\nname = \"slow\"\n[[workload.component]]\npath = {:?}\n\
             [[workload.subscription]]\nsubject = \"ping\"\n",
            nats.url(),
            guest("http_behaviours"),
            guest("ponger"),
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    // Connected: from here on `web` needs nothing of NATS, and `slow` waits
    // for the paused server to confirm its subscription.
    keel.wait_for_log("messaging goes through NATS", Duration::from_secs(60))?;
    nats.pause()?;
    keel.wait_for_log(
        "workload running workload=default/web",
        Duration::from_secs(60),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    let held = runtime.spawn(async move { get(addr, "x", "/hold?ms=500").await });
    keel.wait_for_log("holding the request", Duration::from_secs(20))?;
    // `slow` is still subscribing: startup has not finished.
    keel.signal("TERM")?;
    let answer = runtime.block_on(held)??;
    assert_eq!((answer.status, answer.body.as_str()), (200, "held"));
    assert_eq!(
        keel.wait(Duration::from_secs(20))?,
        Some(0),
        "log:\n{}",
        keel.log().join("\n")
    );
    let log = keel.log();
    assert!(
        log.iter()
            .any(|l| l.contains("shutting down while workloads were starting")),
        "{}",
        log.join("\n")
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("default/slow") && l.contains("running")),
        "{}",
        log.join("\n")
    );
    Ok(())
}

#[test]
fn a_second_signal_exits_without_waiting_for_in_flight_requests() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nname = \"stuck\"\n[workload.limits]\ntimeout = \"10m\"\n\
             [[workload.component]]\npath = {:?}\n",
            guest("http_behaviours")
        ),
    );
    let mut keel = KeelProcess::spawn(
        &manifest,
        &dir.path().join("cache"),
        &["--shutdown-timeout", "1h"],
    )?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _held = runtime.spawn(async move { get(addr, "x", "/hold?ms=600000").await });
    keel.wait_for_log("holding the request", Duration::from_secs(20))?;
    keel.signal("INT")?;
    keel.wait_for_log("shutting down", Duration::from_secs(20))?;
    // Draining would wait ten minutes for the held request; a second
    // signal ends it now.
    keel.signal("INT")?;
    assert_eq!(
        keel.wait(Duration::from_secs(20))?,
        Some(1),
        "log:\n{}",
        keel.log().join("\n")
    );
    assert!(
        keel.log().iter().any(|l| l.contains("a second signal")),
        "{}",
        keel.log().join("\n")
    );
    Ok(())
}
