//! HTTP ingress end to end: routing, status codes for every failure path, and
//! guests that trap, spin or hoard memory while others keep answering.

use keel_tests::gate::Gate;
use keel_tests::keel::spec::ByteSize;
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::raw::wait_until;
use keel_tests::{get, guest, raw_request, request, start_host};
use std::time::{Duration, Instant};

fn fixture(name: &str, host: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("test", name), guest("http_behaviours"));
    spec.http.host = host.map(str::to_string);
    spec.env.insert("KEEL_FIXTURE_NAME".into(), name.into());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hello_example_answers_on_any_host() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("examples", "hello"),
        guest("hello"),
    ))
    .await?;
    let addr = host.http_addr().expect("ingress");
    let answer = get(addr, "whatever.test", "/greet").await?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "Hello from keel! You asked for /greet\n");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_routed_by_host_header_and_unknown_hosts_get_404() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(fixture("alpha", Some("alpha.test")))
        .await?;
    host.start_workload(fixture("beta", Some("beta.test")))
        .await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "alpha.test", "/").await?.body, "hello from alpha");
    assert_eq!(
        get(addr, "BETA.test:8080", "/").await?.body,
        "hello from beta"
    );
    let unknown = get(addr, "gamma.test", "/").await?;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("gamma.test"), "{}", unknown.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_the_limit_get_413_whether_declared_or_streamed() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = fixture("echo", None);
    spec.limits.max_request_body = ByteSize(1024);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");

    let ok = request(addr, "POST", "echo.test", "/echo", vec![b'a'; 1000]).await?;
    assert_eq!((ok.status, ok.body.len()), (200, 1000));
    let declared = request(addr, "POST", "echo.test", "/echo", vec![b'a'; 4096]).await?;
    assert_eq!(declared.status, 413, "{}", declared.body);
    // A chunked body declares no length: the limit trips while streaming.
    let mut chunked = b"POST /echo HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[b'b'; 0x400]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let streamed = raw_request(addr, &chunked).await?;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trap_is_a_500_and_the_next_request_succeeds() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(fixture("trappy", None)).await?;
    let addr = host.http_addr().expect("ingress");
    let trapped = get(addr, "x", "/trap").await?;
    assert_eq!(trapped.status, 500);
    assert_eq!(get(addr, "x", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spinning_guest_is_cut_at_its_deadline_while_another_workload_answers()
-> anyhow::Result<()> {
    // Long enough that five answers of the other workload always fit in it,
    // however loaded the machine.
    let deadline = Duration::from_secs(3);
    let host = start_host(None).await?;
    let mut spinner = fixture("spinner", Some("spin.test"));
    spinner.limits.timeout = deadline;
    let spinner = host.start_workload(spinner).await?;
    host.start_workload(fixture("steady", Some("steady.test")))
        .await?;
    let addr = host.http_addr().expect("ingress");

    let started = Instant::now();
    let spin = tokio::spawn(async move { get(addr, "spin.test", "/loop").await });
    let spinning = || host.status(&spinner).is_some_and(|s| s.in_flight == 1);
    wait_until(
        "the spinner is in flight",
        Duration::from_secs(30),
        spinning,
    )
    .await?;
    // While the spinner burns its budget, the other workload answers promptly.
    for _ in 0..5 {
        let answer = get(addr, "steady.test", "/").await?;
        assert_eq!(answer.body, "hello from steady");
    }
    assert!(spinning(), "the spinning guest ended before its deadline");
    let cut = spin.await??;
    assert_eq!(cut.status, 504, "{}", cut.body);
    assert!(started.elapsed() >= deadline);
    // The spinner's next, ordinary request works.
    assert_eq!(get(addr, "spin.test", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_hoarding_memory_stops_at_its_limit() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = fixture("hoarder", None);
    spec.limits.memory = ByteSize::mib(32);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    let answer = get(addr, "x", "/grow").await?;
    assert_eq!(answer.status, 500);
    assert!(answer.body.contains("memory"), "{}", answer.body);
    assert_eq!(get(addr, "x", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}

/// A workload with one instance slot, whose requests wait `queue_timeout`
/// for it and may reach `gate`.
fn one_slot(name: &str, gate: &Gate, queue_timeout: Duration) -> WorkloadSpec {
    let mut spec = fixture(name, Some(&format!("{name}.test")));
    spec.limits.max_instances = 1;
    spec.limits.queue_timeout = queue_timeout;
    spec.sockets.allow = vec![gate.addr().to_string()];
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_in_flight_are_bounded() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let host = start_host(None).await?;
    let patient = host
        .start_workload(one_slot("patient", &gate, Duration::from_secs(30)))
        .await?;
    let narrow = host
        .start_workload(one_slot("narrow", &gate, Duration::from_millis(300)))
        .await?;
    let addr = host.http_addr().expect("ingress");
    let hold = gate.hold_path();

    // A request held at the gate takes the only slot.
    let first = tokio::spawn({
        let hold = hold.clone();
        async move { get(addr, "patient.test", &hold).await }
    });
    let held = gate.arrival().await?;
    assert_eq!(host.status(&patient).map(|s| s.in_flight), Some(1));
    // The second request queues for the slot, and gets it once it is freed.
    let second = tokio::spawn(async move {
        let answer = get(addr, "patient.test", "/").await;
        (answer, Instant::now())
    });
    let connected = || host.http_connections().is_some_and(|n| n >= 2);
    wait_until(
        "the second request is sent",
        Duration::from_secs(30),
        connected,
    )
    .await?;
    assert!(!second.is_finished(), "the second request did not wait");
    let released = Instant::now();
    held.release();
    assert_eq!(first.await??.status, 200);
    let (waited, answered) = second.await?;
    assert_eq!(waited?.status, 200);
    assert!(answered >= released, "answered before the slot was free");

    // A request that cannot get a slot within `queue_timeout` gets 503:
    // the slot is held for as long as it takes.
    let hog = tokio::spawn(async move { get(addr, "narrow.test", &hold).await });
    let held = gate.arrival().await?;
    assert_eq!(host.status(&narrow).map(|s| s.in_flight), Some(1));
    let refused = get(addr, "narrow.test", "/").await?;
    assert_eq!(refused.status, 503, "{}", refused.body);
    held.release();
    assert_eq!(hog.await??.status, 200);
    assert_eq!(get(addr, "narrow.test", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}
