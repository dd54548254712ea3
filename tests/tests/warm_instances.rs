//! Warm instances, opted in per component: an instance serves request
//! after request (and keeps its guest state) only when its component asks
//! for it, is discarded after `max_invocations`, a trap, a deadline or a
//! response body left unfinished, is not handed out while its body
//! streams, never serves two workloads, takes one call at a time, and is
//! kept idle only while its workload's memory budget has room beside it.
//! And the CPU-bound invocations of one workload take turns
//! (`max_running`), and those of all workloads leave a worker thread free.
//!
//! The `http_behaviours` route `/count` counts its calls in a global: the
//! count it answers tells which instance served a request.

use keel_tests::gate::Gate;
use keel_tests::keel::spec::{ByteSize, WarmSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec, WorkloadStatus};
use keel_tests::{get, guest, start_host};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a test waits for a state before failing.
const WAIT: Duration = Duration::from_secs(30);

fn workload(name: &str, warm: WarmSpec) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("warm", name), guest("http_behaviours"));
    spec.http.host = Some(format!("{name}.test"));
    spec.components[0].warm = warm;
    spec.limits.max_instances = 4;
    spec
}

fn pool(pool_size: u32, max_invocations: Option<u32>) -> WarmSpec {
    let mut warm = WarmSpec::default().with_pool_size(pool_size);
    warm.max_invocations = max_invocations;
    warm
}

/// Waits until the status of workload `name` satisfies `ready`.
async fn until(
    host: &Host,
    name: &str,
    ready: impl Fn(&WorkloadStatus) -> bool,
) -> anyhow::Result<()> {
    let id = WorkloadId::new("warm", name);
    let started = tokio::time::Instant::now();
    loop {
        let status = host
            .status(&id)
            .ok_or_else(|| anyhow::anyhow!("workload {id} is gone"))?;
        if ready(&status) {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < WAIT, "{id} never got there: {status:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `GET /count` on workload `name`, once its pool holds `idle` instances
/// (so the request finds the instance the previous one gave back).
async fn count(host: &Host, name: &str, idle: u32) -> anyhow::Result<String> {
    until(host, name, |s| s.warm_idle == idle).await?;
    let addr = host.http_addr().expect("ingress");
    let answer = get(addr, &format!("{name}.test"), "/count").await?;
    anyhow::ensure!(answer.status == 200, "{}: {}", answer.status, answer.body);
    Ok(answer.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_across_requests_only_when_opted_in() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(workload("fresh", WarmSpec::default()))
        .await?;
    host.start_workload(workload("kept", pool(1, None))).await?;
    for _ in 0..3 {
        assert_eq!(count(&host, "fresh", 0).await?, "call 1");
    }
    assert_eq!(count(&host, "kept", 0).await?, "call 1");
    assert_eq!(count(&host, "kept", 1).await?, "call 2");
    assert_eq!(count(&host, "kept", 1).await?, "call 3");
    assert_eq!(host.engine().warm().kept(), 1);
    // Stopping the workload drops its idle instance and its place.
    host.stop_workload(&WorkloadId::new("warm", "kept")).await?;
    assert_eq!(host.engine().warm().kept(), 0);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_discarded_after_max_invocations() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(workload("bounded", pool(1, Some(2))))
        .await?;
    assert_eq!(count(&host, "bounded", 0).await?, "call 1");
    assert_eq!(count(&host, "bounded", 1).await?, "call 2");
    // Its second invocation was its last: a fresh instance serves the next.
    assert_eq!(count(&host, "bounded", 0).await?, "call 1");
    assert_eq!(count(&host, "bounded", 1).await?, "call 2");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_or_a_deadline_discards_the_instance() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = workload("failing", pool(1, None));
    spec.limits.timeout = Duration::from_millis(500);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(count(&host, "failing", 0).await?, "call 1");
    assert_eq!(count(&host, "failing", 1).await?, "call 2");
    let trapped = get(addr, "failing.test", "/trap").await?;
    assert_eq!(trapped.status, 500, "{}", trapped.body);
    // The trapped instance (the warm one) is gone: the next starts over.
    assert_eq!(count(&host, "failing", 0).await?, "call 1");
    assert_eq!(count(&host, "failing", 1).await?, "call 2");
    let cut = get(addr, "failing.test", "/loop").await?;
    assert_eq!(cut.status, 504, "{}", cut.body);
    assert_eq!(count(&host, "failing", 0).await?, "call 1");
    host.shutdown().await;
    Ok(())
}

/// A guest that returns while keeping its response slot did not answer:
/// its client gets an answer (not a connection held open), and the
/// instance, which could otherwise answer that client from a later
/// request, is not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_keeping_an_unanswered_response_slot_is_not_reused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(workload("stash", pool(1, None)))
        .await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(count(&host, "stash", 0).await?, "call 1");
    assert_eq!(count(&host, "stash", 1).await?, "call 2");
    let stashed = tokio::time::timeout(WAIT, get(addr, "stash.test", "/stash")).await??;
    assert_eq!(stashed.status, 500, "{}", stashed.body);
    assert_eq!(count(&host, "stash", 0).await?, "call 1");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workloads_never_share_an_instance() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(workload("one", pool(1, None))).await?;
    host.start_workload(workload("two", pool(1, None))).await?;
    assert_eq!(count(&host, "one", 0).await?, "call 1");
    assert_eq!(count(&host, "two", 0).await?, "call 1");
    assert_eq!(count(&host, "one", 1).await?, "call 2");
    assert_eq!(count(&host, "two", 1).await?, "call 2");
    assert_eq!(host.engine().warm().kept(), 2);
    host.shutdown().await;
    Ok(())
}

/// Two `/count` requests held inside the guest at `gate` at once.
async fn two_held(addr: SocketAddr, gate: &mut Gate) -> anyhow::Result<Vec<String>> {
    let gate_addr = gate.addr();
    let mut held = Vec::new();
    let mut releases = Vec::new();
    for _ in 0..2 {
        held.push(tokio::spawn(async move {
            get(addr, "busy.test", &format!("/count?addr={gate_addr}")).await
        }));
        releases.push(gate.arrival().await?);
    }
    // Both are inside the guest now: one instance per call.
    for release in releases {
        release.release();
    }
    let mut bodies = Vec::new();
    for answer in held {
        let answer = answer.await??;
        anyhow::ensure!(answer.status == 200, "{}", answer.body);
        bodies.push(answer.body);
    }
    bodies.sort();
    Ok(bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_takes_one_call_at_a_time() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let host = start_host(None).await?;
    let mut spec = workload("busy", pool(2, None));
    spec.sockets.allow = vec![gate.addr().to_string()];
    spec.limits.max_instances = 2;
    spec.limits.queue_timeout = Duration::from_millis(100);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    // Two calls at once: two fresh instances, both kept.
    assert_eq!(two_held(addr, &mut gate).await?, ["call 1", "call 1"]);
    until(&host, "busy", |s| s.warm_idle == 2).await?;
    // Two more at once: each warm instance serves one of them.
    assert_eq!(two_held(addr, &mut gate).await?, ["call 2", "call 2"]);
    until(&host, "busy", |s| s.warm_idle == 2).await?;
    // A third call while two are inside waits for an instance: no third
    // one is made past `max_instances`, none is entered twice.
    let gate_addr = gate.addr();
    let mut held = Vec::new();
    let mut releases = Vec::new();
    for _ in 0..2 {
        held.push(tokio::spawn(async move {
            get(addr, "busy.test", &format!("/count?addr={gate_addr}")).await
        }));
        releases.push(gate.arrival().await?);
    }
    let refused = get(addr, "busy.test", "/count").await?;
    assert_eq!(refused.status, 503, "{}", refused.body);
    for release in releases {
        release.release();
    }
    for answer in held {
        assert_eq!(answer.await??.body, "call 3");
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_bound_invocations_of_a_workload_take_turns() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spinner = workload("spinner", WarmSpec::default());
    spinner.limits.max_running = Some(1);
    spinner.limits.timeout = Duration::from_secs(5);
    host.start_workload(spinner).await?;
    host.start_workload(workload("quiet", WarmSpec::default()))
        .await?;
    let addr = host.http_addr().expect("ingress");
    let spinning: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(addr, "spinner.test", "/loop").await }))
        .collect();
    // One spins at a time; the other two wait for their turn outside the
    // runtime's run queues.
    until(&host, "spinner", |s| s.in_flight == 3 && s.cpu_waiting == 2).await?;
    let status = host
        .status(&WorkloadId::new("warm", "spinner"))
        .expect("running");
    assert!(status.cpu_running <= 1, "{status:?}");
    // The neighbour is served meanwhile.
    let hello = get(addr, "quiet.test", "/").await?;
    assert_eq!(hello.status, 200, "{}", hello.body);
    for spin in spinning {
        assert_eq!(spin.await??.status, 504);
    }
    until(&host, "spinner", |s| {
        s.cpu_running == 0 && s.cpu_waiting == 0
    })
    .await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_bound_invocations_of_all_workloads_leave_a_worker_thread_free() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    // Two worker threads: one CPU-bound invocation runs at a time, host-wide.
    assert_eq!(host.cpu().size(), 1);
    for name in ["spin-a", "spin-b"] {
        let mut spinner = workload(name, WarmSpec::default());
        spinner.limits.max_running = Some(1);
        spinner.limits.timeout = Duration::from_secs(3);
        host.start_workload(spinner).await?;
    }
    host.start_workload(workload("calm", WarmSpec::default()))
        .await?;
    let addr = host.http_addr().expect("ingress");
    let spinning: Vec<_> = ["spin-a", "spin-a", "spin-b", "spin-b"]
        .into_iter()
        .map(|name| tokio::spawn(async move { get(addr, &format!("{name}.test"), "/loop").await }))
        .collect();
    // Each workload has a turn of its own free for one of its two, yet only
    // one of the four runs: the other workload's CPU-bound invocation holds
    // its own turn and waits for the host's.
    let status = |name: &str| {
        host.status(&WorkloadId::new("warm", name))
            .ok_or_else(|| anyhow::anyhow!("{name} is gone"))
    };
    let started = tokio::time::Instant::now();
    loop {
        let (a, b) = (status("spin-a")?, status("spin-b")?);
        let (running, waiting) = (host.cpu().running(), host.cpu().waiting());
        if a.in_flight == 2
            && b.in_flight == 2
            && a.cpu_running + b.cpu_running == 1
            && a.cpu_waiting + b.cpu_waiting == 3
            && (running, waiting) == (1, 1)
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < WAIT,
            "never one CPU-bound invocation at a time: {a:?} {b:?}, host {running} running, {waiting} waiting"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(host.cpu().running() <= host.cpu().size());
    // The neighbour is served meanwhile.
    let hello = get(addr, "calm.test", "/").await?;
    assert_eq!(hello.status, 200, "{}", hello.body);
    for spin in spinning {
        assert_eq!(spin.await??.status, 504);
    }
    assert_eq!((host.cpu().running(), host.cpu().waiting()), (0, 0));
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_streaming_its_body_is_not_handed_to_another_request() -> anyhow::Result<()> {
    let mut gate = Gate::start().await?;
    let host = start_host(None).await?;
    let mut spec = workload("streamer", pool(1, None));
    spec.sockets.allow = vec![gate.addr().to_string()];
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(count(&host, "streamer", 0).await?, "call 1");
    until(&host, "streamer", |s| s.warm_idle == 1).await?;
    // The idle instance serves a response whose body is still streaming:
    // the guest is inside its handler, between two writes.
    let gate_addr = gate.addr();
    let streaming = tokio::spawn(async move {
        get(addr, "streamer.test", &format!("/stream?addr={gate_addr}")).await
    });
    let inside = gate.arrival().await?;
    // Another request meanwhile gets a fresh instance, not the streaming one.
    assert_eq!(count(&host, "streamer", 0).await?, "call 1");
    inside.release();
    let streamed = streaming.await??;
    assert_eq!(
        (streamed.status, streamed.body.as_str()),
        (200, "streaming\nfinished\n")
    );
    host.shutdown().await;
    Ok(())
}

/// A guest that returns leaving its response body open could finish it
/// from its next request, writing that request's data to this client: the
/// body is aborted when the call returns, and the instance is not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_leaving_its_body_unfinished_is_not_reused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(workload("open", pool(1, None))).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(count(&host, "open", 0).await?, "call 1");
    assert_eq!(count(&host, "open", 1).await?, "call 2");
    let open = tokio::spawn(async move { get(addr, "open.test", "/stream-unfinished").await });
    // The instance is gone once that call returned: the next request
    // starts over.
    assert_eq!(count(&host, "open", 0).await?, "call 1");
    // The open response ends with an error (before or after its head and
    // first part reached the client), never with a later request's data
    // nor as if it were complete.
    let answer = tokio::time::timeout(WAIT, open).await??;
    assert!(
        answer.is_err(),
        "the unfinished body ended cleanly: {answer:?}"
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_charged_to_the_budget_and_leave_room_for_one_more() -> anyhow::Result<()>
{
    let mut gate = Gate::start().await?;
    let host = start_host(None).await?;
    let memory = ByteSize::mib(16);
    let total = ByteSize::mib(40);
    let mut spec = workload("hoard", pool(3, None));
    spec.sockets.allow = vec![gate.addr().to_string()];
    spec.limits.max_instances = 3;
    spec.limits.memory = memory;
    spec.limits.memory_total = Some(total);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    // Three instances at once, each holding 8 MiB (9–10 MiB of linear
    // memory with the guest's own), all inside their handlers.
    let gate_addr = gate.addr();
    let mut held = Vec::new();
    let mut releases = Vec::new();
    for _ in 0..3 {
        held.push(tokio::spawn(async move {
            get(
                addr,
                "hoard.test",
                &format!("/hold-memory?mib=8&addr={gate_addr}"),
            )
            .await
        }));
        releases.push(gate.arrival().await?);
    }
    for release in releases {
        release.release();
    }
    for answer in held {
        let answer = answer.await??;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    until(&host, "hoard", |s| s.in_flight == 0).await?;
    let status = host
        .status(&WorkloadId::new("warm", "hoard"))
        .expect("running");
    // All three could be kept by `pool_size`, but beside three there is no
    // room left for a fourth at the full limit: one is dropped.
    assert_eq!(status.warm_idle, 2, "{status:?}");
    // The idle ones' memory stays charged to the workload's budget...
    assert!(
        status.memory_used >= 16 << 20,
        "idle instances are not charged: {status:?}"
    );
    // ...and room for one more instance at the full limit is left.
    assert!(
        status.memory_used + memory.0 <= total.0,
        "no room left beside the idle instances: {status:?}"
    );
    host.shutdown().await;
    Ok(())
}
