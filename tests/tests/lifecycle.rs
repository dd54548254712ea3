//! The host API: start, stop (draining in-flight work), status and list;
//! and the `keel run` process draining on SIGTERM.

use keel_tests::keel::workload::{Unavailable, Workload};
use keel_tests::keel::{WorkloadId, WorkloadSpec, WorkloadState};
use keel_tests::{KeelProcess, get, guest, start_host, write_file};
use std::time::Duration;

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
async fn a_starting_workload_admits_nothing() {
    let workload = Workload::new(fixture("early"));
    assert_eq!(
        workload.admit().await.unwrap_err(),
        Unavailable::NotRunning(WorkloadState::Starting)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_drains_in_flight_requests_then_answers_503() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = host.start_workload(fixture("drain")).await?;
    let addr = host.http_addr().expect("ingress");
    let sent = std::time::Instant::now();
    let slow = tokio::spawn(async move { get(addr, "x", "/sleep?ms=700").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(host.status(&id).map(|s| s.in_flight), Some(1));
    host.stop_workload(&id).await?;
    // stop returned only once the in-flight request had finished its work…
    assert!(
        sent.elapsed() >= Duration::from_millis(700),
        "stop returned after {:?}",
        sent.elapsed()
    );
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Stopped)
    );
    // …and that request was answered normally.
    assert_eq!(slow.await??.body, "slept");
    assert_eq!(get(addr, "x", "/").await?.status, 503);
    host.shutdown().await;
    Ok(())
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_zero() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nname = \"sleepy\"\n[[workload.component]]\npath = {:?}\n",
            guest("http_behaviours")
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let slow = runtime.spawn(async move { get(addr, "x", "/sleep?ms=800").await });
    std::thread::sleep(Duration::from_millis(250));
    keel.signal("TERM")?;
    let answer = runtime.block_on(slow)??;
    assert_eq!((answer.status, answer.body.as_str()), (200, "slept"));
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
