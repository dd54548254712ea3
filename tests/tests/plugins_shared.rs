//! Shared mode end to end: one plugin instance serving many requests and
//! workloads through the generic forwarder and proxy resources.

use keel_tests::keel::spec::builtin::builtin;
use keel_tests::keel::spec::{LinkMode, PluginGrants, PluginSpec};
use keel_tests::keel::testing::Broker;
use keel_tests::keel::testing::Bus;
use keel_tests::keel::testing::KeelEngine;
use keel_tests::keel::testing::SharedPlugin;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, start_host};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wasmtime::component::Component;

fn tally(mode: LinkMode) -> PluginSpec {
    PluginSpec::new("tally", Some(guest("tally_plugin")), mode)
}

fn user(name: &str, host: &str) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("tenants", name), guest("tally_user"));
    spec.http.host = Some(host.into());
    spec
}

async fn host_in(mode: LinkMode) -> anyhow::Result<(Host, SocketAddr)> {
    let host = start_host(None).await?;
    host.add_plugin(tally(mode)).await?;
    host.start_workload(user("a", "a.test")).await?;
    host.start_workload(user("b", "b.test")).await?;
    let addr = host.http_addr().expect("ingress");
    Ok((host, addr))
}

/// Requests whose answers do not depend on state kept between requests.
async fn stateless_answers(addr: SocketAddr) -> anyhow::Result<Vec<(u16, String)>> {
    let mut answers = Vec::new();
    for path in [
        "/sum?values=1,2,3",
        "/sum?values=",
        "/open-empty",
        "/merge?target=x&source=y",
        "/snapshot?name=fresh",
        "/add?name=n&delta=-4",
    ] {
        let answer = get(addr, "a.test", path).await?;
        answers.push((answer.status, answer.body));
    }
    Ok(answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_and_composed_modes_give_the_same_answers() -> anyhow::Result<()> {
    let (composed, addr) = host_in(LinkMode::Composed).await?;
    let expected = stateless_answers(addr).await?;
    composed.shutdown().await;
    let (shared, addr) = host_in(LinkMode::Shared).await?;
    assert_eq!(stateless_answers(addr).await?, expected);
    shared.shutdown().await;
    assert_eq!(expected[0], (200, "6".to_string()));
    assert_eq!(
        expected[3],
        (
            200,
            "name=x value=0 history=[0] owner=tenants/a".to_string()
        )
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_survives_requests_in_shared_mode_and_is_fresh_in_composed_mode() -> anyhow::Result<()>
{
    let (shared, addr) = host_in(LinkMode::Shared).await?;
    assert_eq!(
        get(addr, "a.test", "/add?name=hits&delta=1").await?.body,
        "1"
    );
    assert_eq!(
        get(addr, "a.test", "/add?name=hits&delta=1").await?.body,
        "2"
    );
    assert_eq!(
        get(addr, "a.test", "/snapshot?name=hits").await?.body,
        "name=hits value=2 history=[1, 1] owner=tenants/a"
    );
    // One instance, two tenants: keel:core/identity keeps them apart.
    assert_eq!(
        get(addr, "b.test", "/add?name=hits&delta=10").await?.body,
        "10"
    );
    assert_eq!(
        get(addr, "a.test", "/add?name=hits&delta=1").await?.body,
        "3"
    );
    shared.shutdown().await;

    let (composed, addr) = host_in(LinkMode::Composed).await?;
    assert_eq!(
        get(addr, "a.test", "/add?name=hits&delta=1").await?.body,
        "1"
    );
    assert_eq!(
        get(addr, "a.test", "/add?name=hits&delta=1").await?.body,
        "1"
    );
    composed.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trapping_shared_plugin_is_restarted_and_only_that_call_fails() -> anyhow::Result<()> {
    let (host, addr) = host_in(LinkMode::Shared).await?;
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=5").await?.body,
        "5"
    );
    let crashed = get(addr, "a.test", "/crash").await?;
    assert_eq!(crashed.status, 500);
    // Later calls work, on a fresh instance: the old state is gone.
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=1").await?.body,
        "1"
    );
    assert_eq!(get(addr, "b.test", "/sum?values=2,2").await?.body, "4");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_call_that_never_returns_ends_by_the_plugins_call_timeout() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut plugin = tally(LinkMode::Shared);
    plugin.call_timeout = Duration::from_secs(1);
    host.add_plugin(plugin).await?;
    let mut impatient = user("a", "a.test");
    impatient.limits.timeout = Duration::from_millis(300);
    host.start_workload(impatient).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=5").await?.body,
        "5"
    );
    // The plugin runs in a synchronous Store on the caller's thread: its
    // epoch callback, not the caller, has to stop it.
    let started = Instant::now();
    let spun = get(addr, "a.test", "/spin").await?;
    assert_eq!(spun.status, 500, "{}", spun.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the spin ended after {:?}",
        started.elapsed()
    );
    // The plugin restarted: later calls work, and the old state is gone.
    assert_eq!(host.shared_plugin_restarts("tally"), 1);
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=1").await?.body,
        "1"
    );
    host.shutdown().await;
    Ok(())
}

/// A caller whose deadline passes while its call computes in the plugin
/// gets its deadline error once the call returns; the plugin is not
/// trapped, and keeps every workload's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callers_deadline_passing_mid_call_leaves_the_plugin_running() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.add_plugin(tally(LinkMode::Shared)).await?;
    let mut impatient = user("a", "a.test");
    impatient.limits.timeout = Duration::from_millis(300);
    host.start_workload(impatient).await?;
    host.start_workload(user("b", "b.test")).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(
        get(addr, "b.test", "/add?name=kept&delta=5").await?.body,
        "5"
    );
    // One plugin call of 1.5 s, well past the caller's 300 ms.
    let late = get(addr, "a.test", "/add?name=slow:1500&delta=1").await?;
    assert_eq!(late.status, 504, "{}", late.body);
    assert_eq!(host.shared_plugin_restarts("tally"), 0);
    assert_eq!(
        get(addr, "b.test", "/add?name=kept&delta=1").await?.body,
        "6"
    );
    host.shutdown().await;
    Ok(())
}

/// By default a shared plugin has one instance per namespace: a tenant
/// that traps its instance loses its own state, and no other tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trap_restarts_only_the_instance_of_the_callers_namespace() -> anyhow::Result<()> {
    let (host, addr) = host_in(LinkMode::Shared).await?;
    let mut other = WorkloadSpec::single(WorkloadId::new("others", "c"), guest("tally_user"));
    other.http.host = Some("c.test".into());
    host.start_workload(other).await?;
    assert_eq!(
        get(addr, "c.test", "/add?name=kept&delta=5").await?.body,
        "5"
    );
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=7").await?.body,
        "7"
    );
    assert_eq!(get(addr, "a.test", "/crash").await?.status, 500);
    assert_eq!(host.shared_plugin_restarts("tally"), 1);
    assert_eq!(
        get(addr, "c.test", "/add?name=kept&delta=1").await?.body,
        "6"
    );
    // The crashing tenant's own instance started afresh.
    assert_eq!(
        get(addr, "a.test", "/add?name=kept&delta=1").await?.body,
        "1"
    );
    host.shutdown().await;
    Ok(())
}

/// Whether the plugin `wasm` is linked for a synchronous Store.
fn runs_sync(engine: &KeelEngine, wasm: &[u8]) -> anyhow::Result<bool> {
    let component = Component::new(engine.engine(), wasm)?;
    let broker = Broker::Bus(Bus::new());
    let plugin = SharedPlugin::new(engine, "p", &component, &PluginGrants::default(), &broker)?;
    Ok(plugin.runs_sync())
}

#[test]
fn only_plugins_that_can_never_wait_run_in_a_synchronous_store() -> anyhow::Result<()> {
    let engine = KeelEngine::new(keel_tests::test_engine())?;
    let builtin = |name: &str| {
        builtin(name)
            .map(|(_, wasm)| wasm.to_vec())
            .ok_or_else(|| anyhow::anyhow!("no built-in `{name}`"))
    };
    let fixture = |name: &str| std::fs::read(guest(name));
    // Computing only: identity, stdio, clocks, random.
    for name in ["keyvalue-memory", "config", "logging"] {
        assert!(runs_sync(&engine, &builtin(name)?)?, "{name}");
    }
    assert!(runs_sync(&engine, &fixture("tally_plugin")?)?);
    // Waiting on NATS or the in-process bus, on outgoing HTTP, or on streams
    // a workload passes in.
    for name in ["keyvalue-nats", "messaging", "blobstore-memory"] {
        assert!(!runs_sync(&engine, &builtin(name)?)?, "{name}");
    }
    for name in ["fetch_plugin", "stream_plugin"] {
        assert!(!runs_sync(&engine, &fixture(name)?)?, "{name}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handles_are_released_by_drops_moves_ends_and_traps() -> anyhow::Result<()> {
    let (host, addr) = host_in(LinkMode::Shared).await?;
    for round in 0..200 {
        // open/add/drop; a borrow and a move in one call; a handle still held
        // when the workload traps.
        assert_eq!(
            get(addr, "a.test", &format!("/add?name=r{round}&delta=1"))
                .await?
                .status,
            200
        );
        assert_eq!(
            get(addr, "b.test", &format!("/merge?target=t&source=s{round}"))
                .await?
                .status,
            200
        );
        assert_eq!(get(addr, "a.test", "/snapshot?name=x").await?.status, 200);
        assert_eq!(
            get(addr, "b.test", &format!("/open-and-trap?name=h{round}"))
                .await?
                .status,
            500
        );
    }
    // The workload-side proxies of finished instances are released lazily;
    // the plugin's count must reach zero.
    let mut live = String::new();
    for _ in 0..50 {
        live = get(addr, "a.test", "/live").await?.body;
        if live == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(live, "0", "the plugin still holds handles nobody can reach");
    host.shutdown().await;
    Ok(())
}
