//! A workload's service: a `wasi:cli/run` component run beside the
//! workload's components under a supervisor, whose loopback listeners are
//! the workload's own "localhost" (real sockets, real HTTP, the
//! `services` fixtures and `http-behaviours` as the calling component).

use keel_tests::keel::spec::ServiceSpec;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec, WorkloadState};
use keel_tests::{Answer, get, guest, start_host};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

/// A generous bound for what a loaded machine does in milliseconds.
const WAIT: Duration = Duration::from_secs(60);

/// Workload `svc/<name>`: `http-behaviours` routed at `<name>.test`, and
/// the service built as `service` (a `services` fixture), named `db`.
fn with_service(name: &str, service: &str) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("svc", name), guest("http_behaviours"));
    spec.http.host = Some(format!("{name}.test"));
    spec.service = Some(ServiceSpec::new("db", guest(service).into()));
    spec.env.insert("SERVICE_NAME".into(), name.into());
    spec
}

/// Waits until workload `id` is in a state `done` accepts, and returns it.
async fn state_until(
    host: &Host,
    id: &WorkloadId,
    done: impl Fn(&WorkloadState) -> bool,
) -> anyhow::Result<WorkloadState> {
    let mut states: watch::Receiver<WorkloadState> = host
        .watch(id)
        .ok_or_else(|| anyhow::anyhow!("no workload {id}"))?;
    let state = tokio::time::timeout(WAIT, states.wait_for(|s| done(s))).await??;
    Ok(state.clone())
}

/// Waits until the service of `id` listens (its loopback shows a port),
/// and returns the port it asked for and the host address it got.
async fn listening(host: &Host, id: &WorkloadId) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let status = host
            .status(id)
            .ok_or_else(|| anyhow::anyhow!("no workload {id}"))?;
        if let Some(ports) = status.service_ports.first() {
            return Ok(*ports);
        }
        anyhow::ensure!(
            status.state == WorkloadState::Running,
            "workload {id} is {} before its service listened",
            status.state
        );
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "{id}'s service never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the workload's component reads from a TCP connection to `addr`.
async fn connect(host: &Host, name: &str, addr: &str) -> anyhow::Result<Answer> {
    let addr_of = host
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    get(
        addr_of,
        &format!("{name}.test"),
        &format!("/connect?addr={addr}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_workload_reaches_its_own_service_on_its_loopback() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    // Both services ask for 127.0.0.1:8080 (the second as 0.0.0.0:8080);
    // only one listener could have it on the host.
    let mut alpha = with_service("alpha", "service-listen");
    alpha.sockets.name_lookup = true;
    let mut beta = with_service("beta", "service-listen");
    beta.env
        .insert("SERVICE_ADDR".into(), "0.0.0.0:8080".into());
    let alpha = host.start_workload(alpha).await?;
    let beta = host.start_workload(beta).await?;
    let (asked_a, got_a) = listening(&host, &alpha).await?;
    let (asked_b, got_b) = listening(&host, &beta).await?;
    assert_eq!(asked_a, "127.0.0.1:8080".parse()?);
    assert_eq!(asked_b, "127.0.0.1:8080".parse()?);
    assert_ne!(got_a, got_b, "two services on one host share no port");

    let a = connect(&host, "alpha", "127.0.0.1:8080").await?;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.starts_with("hello from service alpha, connection 1"),
        "{}",
        a.body
    );
    let b = connect(&host, "beta", "127.0.0.1:8080").await?;
    assert!(
        b.body.starts_with("hello from service beta, connection 1"),
        "{}",
        b.body
    );
    // "localhost", for a workload that may resolve names.
    let a = connect(&host, "alpha", "localhost:8080").await?;
    assert!(
        a.body.starts_with("hello from service alpha, connection 2"),
        "{}",
        a.body
    );

    // Another workload's service, at the address it really got: refused.
    let stolen = connect(&host, "beta", &got_a.to_string()).await?;
    assert_eq!(stolen.status, 502, "{}", stolen.body);
    // A loopback service of the host's own: refused too.
    let own = std::net::TcpListener::bind("127.0.0.1:0")?;
    let refused = connect(&host, "alpha", &own.local_addr()?.to_string()).await?;
    assert_eq!(refused.status, 502, "{}", refused.body);
    for answer in [&stolen, &refused] {
        assert!(answer.body.contains("Permission denied"), "{}", answer.body);
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_returning_success_completes_the_workload() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = host
        .start_workload(with_service("done", "service-done"))
        .await?;
    let state = state_until(&host, &id, |s| !s.is_active()).await?;
    assert_eq!(state, WorkloadState::Completed);
    let addr = host
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    let answer = get(addr, "done.test", "/").await?;
    assert_eq!(answer.status, 503, "a completed workload serves nothing");

    // One that serves a connection first, then returns.
    let mut once = with_service("once", "service-listen");
    once.env.insert("SERVICE_EXIT_AFTER".into(), "1".into());
    let id = host.start_workload(once).await?;
    listening(&host, &id).await?;
    let answer = connect(&host, "once", "127.0.0.1:8080").await?;
    assert!(
        answer.body.starts_with("hello from service once"),
        "{}",
        answer.body
    );
    assert_eq!(
        state_until(&host, &id, |s| !s.is_active()).await?,
        WorkloadState::Completed
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_service_is_restarted_up_to_its_limit_then_the_workload_fails()
-> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = with_service("crash", "service-fail");
    if let Some(service) = spec.service.as_mut() {
        service.max_restarts = 2;
    }
    let id = host.start_workload(spec).await?;
    let state = state_until(&host, &id, |s| !s.is_active()).await?;
    let WorkloadState::Error(message) = state else {
        panic!("a failing service must fail the workload, not {state}");
    };
    assert!(
        message.contains("service `db` failed after 2 restart(s)"),
        "{message}"
    );

    // No restarts allowed: the first failure fails the workload.
    let id = host
        .start_workload(with_service("brittle", "service-fail"))
        .await?;
    let state = state_until(&host, &id, |s| !s.is_active()).await?;
    assert!(
        matches!(&state, WorkloadState::Error(m) if m.contains("after 0 restart(s)")),
        "{state}"
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_service_serves_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let host = start_host(None).await?;
    let mut spec = with_service("phoenix", "service-listen");
    spec.volumes
        .push(keel_tests::keel::spec::VolumeSpec::new(dir.path(), "/data"));
    spec.env
        .insert("SERVICE_FAIL_ONCE".into(), "/data/failed-once".into());
    if let Some(service) = spec.service.as_mut() {
        service.max_restarts = 1;
    }
    let id = host.start_workload(spec).await?;
    listening(&host, &id).await?;
    assert!(
        dir.path().join("failed-once").is_file(),
        "the first instance failed"
    );
    let answer = connect(&host, "phoenix", "127.0.0.1:8080").await?;
    assert!(
        answer
            .body
            .starts_with("hello from service phoenix, connection 1"),
        "{}",
        answer.body
    );
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Running)
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_the_workload_ends_its_service() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = host
        .start_workload(with_service("stopper", "service-listen"))
        .await?;
    let (_, got) = listening(&host, &id).await?;
    // The service answers on the address it got, from the host itself.
    tokio::net::TcpStream::connect(got).await?;
    host.stop_workload(&id).await?;
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Stopped)
    );
    assert!(
        tokio::net::TcpStream::connect(got).await.is_err(),
        "the service's listener must be gone once the stop returned"
    );
    assert!(host.status(&id).is_some_and(|s| s.service_ports.is_empty()));
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_component_that_is_no_command_is_refused_as_a_service() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("svc", "wrong"), guest("http_behaviours"));
    spec.service = Some(ServiceSpec::new("db", guest("http_behaviours").into()));
    let err = host.start_workload(spec).await.unwrap_err();
    assert!(format!("{err:#}").contains("wasi:cli/run"), "{err:#}");
    host.shutdown().await;
    Ok(())
}

/// A manifest in `dir` holding `text`, loaded.
fn manifest(dir: &std::path::Path, text: &str) -> Result<keel_tests::keel::Manifest, String> {
    let path = keel_tests::write_file(dir, "app.toml", text);
    keel_tests::keel::Manifest::load(&path).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_declares_a_service_and_data_names() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (listen, behaviours, counter) = (
        guest("service-listen"),
        guest("http_behaviours"),
        guest("http_keyvalue_counter"),
    );
    let loaded = manifest(
        dir.path(),
        &format!(
            r#"
[[workload]]
namespace = "shop"
name = "front"
env = {{ SERVICE_NAME = "from-manifest" }}
http.host = "front.test"
[[workload.component]]
path = "{behaviours}"
[workload.service]
path = "{listen}"
max_restarts = 2
memory = "32MiB"

[[workload]]
namespace = "shop"
name = "counter-a"
data_name = "counter"
http.host = "counter-a.test"
[[workload.component]]
path = "{counter}"

[[workload]]
namespace = "shop"
name = "counter-b"
data_name = "counter"
http.host = "counter-b.test"
[[workload.component]]
path = "{counter}"
"#,
            behaviours = behaviours.display(),
            listen = listen.display(),
            counter = counter.display(),
        ),
    )
    .map_err(anyhow::Error::msg)?;
    let front = &loaded.workloads[0];
    let service = front.service.as_ref().expect("a service");
    assert_eq!(
        (service.component.name.as_str(), service.max_restarts),
        ("service-listen", 2)
    );
    assert_eq!(service.memory.map(|m| m.0), Some(32 << 20));
    assert_eq!(loaded.workloads[1].data_name.as_deref(), Some("counter"));

    let host = start_host(None).await?;
    for spec in loaded.workloads {
        host.start_workload(spec).await?;
    }
    listening(&host, &WorkloadId::new("shop", "front")).await?;
    let answer = connect(&host, "front", "127.0.0.1:8080").await?;
    assert!(
        answer.body.starts_with("hello from service from-manifest"),
        "{}",
        answer.body
    );
    // Two workloads giving one data name share their buckets.
    let addr = host
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    let a = get(addr, "counter-a.test", "/apples").await?;
    assert_eq!(a.body, "/apples has been visited 1 times\n");
    let b = get(addr, "counter-b.test", "/apples").await?;
    assert_eq!(b.body, "/apples has been visited 2 times\n");
    host.shutdown().await;
    Ok(())
}

#[test]
fn manifest_errors_in_a_service_name_the_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listen = guest("service-listen");
    let workload = |extra: &str| {
        format!(
            "[[workload]]\nname = \"w\"\n[workload.service]\npath = \"{}\"\n{extra}",
            listen.display()
        )
    };
    // A service alone is a workload.
    let alone = manifest(dir.path(), &workload("")).map_err(anyhow::Error::msg)?;
    assert!(alone.workloads[0].components.is_empty());
    let unknown = manifest(dir.path(), &workload("restarts = 3\n")).unwrap_err();
    assert!(unknown.contains("restarts"), "{unknown}");
    let small = manifest(dir.path(), &workload("memory = \"1KiB\"\n")).unwrap_err();
    assert!(small.contains(":5:") && small.contains("memory"), "{small}");
    let bad_data = manifest(
        dir.path(),
        &format!(
            "[[workload]]\nname = \"w\"\ndata_name = \"A/B\"\n[[workload.component]]\npath = \"{}\"\n",
            listen.display()
        ),
    )
    .unwrap_err();
    assert!(bad_data.contains(":3:"), "{bad_data}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spinning_service_takes_turns_on_the_cpu_and_a_stop_ends_it() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = with_service("spinner", "service-spin");
    // One turn on the CPU for the whole workload, and a short invocation
    // timeout, which is the HTTP component's alone: the service has none.
    spec.limits.max_running = Some(1);
    spec.limits.timeout = Duration::from_secs(1);
    let id = host.start_workload(spec).await?;
    // The service holds the workload's one turn once it has spun a tick.
    let until = tokio::time::Instant::now() + WAIT;
    while host.status(&id).map_or(0, |s| s.cpu_running) == 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "the service never spun"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A request shorter than a tick is served beside it.
    let addr = host
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    let answer = get(addr, "spinner.test", "/").await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Running)
    );
    // Epoch preemption lets the stop end it where it spins.
    tokio::time::timeout(WAIT, host.stop_workload(&id)).await??;
    assert_eq!(
        host.status(&id).map(|s| s.state),
        Some(WorkloadState::Stopped)
    );
    assert_eq!(host.status(&id).map(|s| s.cpu_running), Some(0));
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_gets_its_own_memory_limit() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = with_service("tiny", "service-listen");
    if let Some(service) = spec.service.as_mut() {
        // One Wasm page: less than the service's own initial memory.
        service.memory = Some(keel_tests::keel::spec::ByteSize(64 << 10));
    }
    let id = host.start_workload(spec).await?;
    let state = state_until(&host, &id, |s| !s.is_active()).await?;
    assert!(
        matches!(&state, WorkloadState::Error(m) if m.contains("exceeds memory limits")),
        "{state}"
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_leaves_a_workload_of_one_instance_its_instance() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = with_service("single", "service-listen");
    spec.limits.max_instances = 1;
    let id = host.start_workload(spec).await?;
    listening(&host, &id).await?;
    // The service holds a slot of the host's pool; the one invocation the
    // workload may have in flight still gets one.
    let answer = connect(&host, "single", "127.0.0.1:8080").await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    host.shutdown().await;
    Ok(())
}

#[test]
fn keel_run_logs_a_services_output_like_a_guests() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = keel_tests::write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nnamespace = \"logs\"\nname = \"app\"\n\
             env = {{ SERVICE_NAME = \"chatty\" }}\n\
             [[workload.component]]\npath = {:?}\n\
             [workload.service]\nname = \"db\"\npath = {:?}\n",
            guest("http_behaviours"),
            guest("service-listen"),
        ),
    );
    let mut keel = keel_tests::KeelProcess::spawn(
        &path,
        &dir.path().join("cache"),
        &["--log-format", "json"],
    )?;
    let line = keel.wait_for_log("service chatty listening on 127.0.0.1:8080", WAIT)?;
    let record: serde_json::Value = serde_json::from_str(&line)?;
    assert_eq!(record["workload"], "logs/app", "{record}");
    assert_eq!(record["component"], "db", "{record}");
    assert_eq!(record["stream"], "stdout", "{record}");
    keel.signal("TERM")?;
    assert_eq!(keel.wait(WAIT)?, Some(0));
    Ok(())
}
