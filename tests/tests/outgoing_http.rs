//! Outgoing HTTP reaches only addresses keel checked: a host name granted by
//! a `*.domain` pattern may not resolve to an internal address (DNS
//! rebinding around a name grant), unless the allowlist turns the block off;
//! an entry naming the host itself is allowed as written. Names resolve
//! through a resolver given to the host (fixed answers, no DNS), so the
//! tests are deterministic; the upstream is a real HTTP server on loopback.

use keel_tests::keel::Lookup;
use keel_tests::keel::Resolver;
use keel_tests::keel::spec::{LinkMode, PluginGrants, PluginSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, http_upstream, test_engine};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fixed answers for names under `rebind.test`, counting the lookups.
/// `mixed.rebind.test` answers a public and a loopback address; every other
/// name under it answers loopback. The system resolver knows none of these
/// names, so a request that succeeds connected to this resolver's answer.
#[derive(Clone, Default)]
struct Answers {
    lookups: Arc<AtomicUsize>,
}

impl Answers {
    fn resolver(&self) -> Resolver {
        let lookups = self.lookups.clone();
        Resolver::from_fn(move |host: &str| -> Lookup {
            lookups.fetch_add(1, Ordering::SeqCst);
            let loopback = IpAddr::from([127, 0, 0, 1]);
            let answer = match host {
                "mixed.rebind.test" => Ok(vec![IpAddr::from([93, 184, 216, 34]), loopback]),
                h if h.ends_with(".rebind.test") => Ok(vec![loopback]),
                h => Err(std::io::Error::other(format!("no answer for {h}"))),
            };
            Box::pin(async move { answer })
        })
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

async fn host_resolving_with(answers: &Answers) -> anyhow::Result<Host> {
    Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine())
        .resolver(answers.resolver())
        .start()
        .await
}

fn fetcher(name: &str, outgoing: Vec<String>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("out", name), guest("http_behaviours"));
    spec.http.host = Some(format!("{name}.test"));
    spec.http.outgoing = outgoing;
    spec
}

async fn fetch(host: &Host, workload: &str, url: &str) -> anyhow::Result<(u16, String)> {
    let addr = host.http_addr().expect("ingress");
    let answer = get(
        addr,
        &format!("{workload}.test"),
        &format!("/fetch?url={url}"),
    )
    .await?;
    Ok((answer.status, answer.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pattern_grant_that_resolves_to_loopback_is_refused_by_default() -> anyhow::Result<()> {
    let upstream = http_upstream("upstream").await?;
    let port = upstream.port();
    let answers = Answers::default();
    let host = host_resolving_with(&answers).await?;
    host.start_workload(fetcher("guarded", vec![format!("*.rebind.test:{port}")]))
        .await?;
    let (status, body) =
        fetch(&host, "guarded", &format!("http://api.rebind.test:{port}/")).await?;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    assert_eq!(answers.lookups(), 1, "the name was resolved once, by keel");

    // One internal address among public ones refuses the request too: a
    // connection must not be steered to it by the order of the answer.
    let (status, body) = fetch(
        &host,
        "guarded",
        &format!("http://mixed.rebind.test:{port}/"),
    )
    .await?;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_block_private_off_a_pattern_grant_reaches_the_checked_address() -> anyhow::Result<()>
{
    let upstream = http_upstream("upstream").await?;
    let port = upstream.port();
    let answers = Answers::default();
    let host = host_resolving_with(&answers).await?;
    let mut spec = fetcher("open", vec![format!("*.rebind.test:{port}")]);
    spec.http.block_private = false;
    host.start_workload(spec).await?;
    let (status, body) = fetch(&host, "open", &format!("http://api.rebind.test:{port}/")).await?;
    assert_eq!((status, body.as_str()), (200, "200 upstream"));
    // Only keel's resolver knows the name: the connection went to its
    // answer, resolved once, not to a second resolution.
    assert_eq!(answers.lookups(), 1);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_grants_to_internal_hosts_are_allowed_as_written() -> anyhow::Result<()> {
    let upstream = http_upstream("upstream").await?;
    let port = upstream.port();
    let answers = Answers::default();
    let host = host_resolving_with(&answers).await?;
    // Blocking is on; the pattern alone would refuse `db.rebind.test`, but
    // the user also named it exactly, as they did the loopback address.
    host.start_workload(fetcher(
        "exact",
        vec![
            format!("*.rebind.test:{port}"),
            format!("db.rebind.test:{port}"),
            upstream.to_string(),
        ],
    ))
    .await?;
    for url in [
        format!("http://{upstream}/"),
        format!("http://db.rebind.test:{port}/"),
    ] {
        let (status, body) = fetch(&host, "exact", &url).await?;
        assert_eq!((status, body.as_str()), (200, "200 upstream"), "{url}");
    }
    let (status, body) = fetch(&host, "exact", &format!("http://api.rebind.test:{port}/")).await?;
    assert_eq!(status, 502, "only the exact name is allowed: {body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    host.shutdown().await;
    Ok(())
}

/// A shared plugin fetching for a workload; the workload itself may reach
/// nothing, so whatever passes passed on the plugin's own grants.
async fn plugin_fetch(grants: PluginGrants, url: &str) -> anyhow::Result<(u16, String)> {
    let answers = Answers::default();
    let host = host_resolving_with(&answers).await?;
    host.add_plugin(
        PluginSpec::new("fetcher", Some(guest("fetch_plugin")), LinkMode::Shared)
            .with_grants(grants),
    )
    .await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("out", "user"),
        guest("fetch_user"),
    ))
    .await?;
    let answer = get(
        host.http_addr().expect("ingress"),
        "x",
        &format!("/?url={url}"),
    )
    .await?;
    host.shutdown().await;
    Ok((answer.status, answer.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_plugins_pattern_grant_is_guarded_the_same_way() -> anyhow::Result<()> {
    let upstream: SocketAddr = http_upstream("upstream").await?;
    let port = upstream.port();
    let url = format!("http://api.rebind.test:{port}/");
    let grants = PluginGrants::default().with_outgoing_http(format!("*.rebind.test:{port}"));
    let (status, body) = plugin_fetch(grants.clone(), &url).await?;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    let open = grants.with_outgoing_block_private(false);
    let (status, body) = plugin_fetch(open, &url).await?;
    assert_eq!((status, body.as_str()), (200, "200 upstream"));
    Ok(())
}
