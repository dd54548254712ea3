//! A plugin reaches the outside world only through its own grants, never
//! through the grants of the workloads it serves.

use keel_tests::keel::spec::{LinkMode, PluginGrants, PluginSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, http_upstream, start_host};
use std::net::SocketAddr;

fn fetcher(mode: LinkMode, grants: PluginGrants) -> PluginSpec {
    PluginSpec::new("fetcher", Some(guest("fetch_plugin")), mode).with_grants(grants)
}

/// The workload may reach `upstream` itself; whether the plugin may is the question.
fn user(upstream: SocketAddr) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("grants", "user"), guest("fetch_user"));
    spec.http.outgoing = vec![upstream.to_string()];
    spec
}

async fn host_with(plugin: PluginSpec) -> anyhow::Result<Host> {
    let host = start_host(None).await?;
    host.add_plugin(plugin).await?;
    Ok(host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_plugin_does_not_inherit_the_workloads_grants() -> anyhow::Result<()> {
    let upstream = http_upstream("upstream").await?;
    let host = host_with(fetcher(LinkMode::Shared, PluginGrants::default())).await?;
    host.start_workload(user(upstream)).await?;
    let denied = get(
        host.http_addr().expect("ingress"),
        "x",
        &format!("/?url=http://{upstream}/"),
    )
    .await?;
    assert_eq!(denied.status, 502, "{}", denied.body);
    assert!(denied.body.contains("HttpRequestDenied"), "{}", denied.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_plugin_reaches_what_it_is_granted_and_nothing_else() -> anyhow::Result<()> {
    let granted = http_upstream("upstream").await?;
    let other = http_upstream("upstream").await?;
    let grants = PluginGrants::default().with_outgoing_http(granted.to_string());
    let host = host_with(fetcher(LinkMode::Shared, grants)).await?;
    let mut spec = user(granted);
    spec.http.outgoing.push(other.to_string());
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    let allowed = get(addr, "x", &format!("/?url=http://{granted}/")).await?;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, "200 upstream")
    );
    let refused = get(addr, "x", &format!("/?url=http://{other}/")).await?;
    assert_eq!(
        refused.status, 502,
        "granted one address, not the workload's list: {}",
        refused.body
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_plugin_that_reaches_outside_is_refused_with_the_reason() -> anyhow::Result<()> {
    let upstream = http_upstream("upstream").await?;
    let host = host_with(fetcher(LinkMode::Composed, PluginGrants::default())).await?;
    let err = host.start_workload(user(upstream)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("plugin `fetcher` imports `wasi:http/outgoing-handler"),
        "{text}"
    );
    assert!(text.contains("mode = \"shared\""), "{text}");
    host.shutdown().await;
    Ok(())
}
