//! Messaging over a real `nats-server`: workloads on two keel hosts
//! connected to the same server talk to each other, queue groups spread
//! across hosts, a request nobody answers fails cleanly, and no workload
//! reads another namespace's replies or the plugins' JetStream traffic.

use keel_tests::keel::spec::{NatsSpec, SubscriptionSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::nats::{NatsServer, host_on};
use keel_tests::recorder::{nothing_but_the_marker, recorder};
use keel_tests::{get, guest, request};

fn ponger(name: &str, queue: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("shop", name), guest("ponger"));
    let mut subscription = SubscriptionSpec::new("ping");
    subscription.queue = queue.map(str::to_string);
    spec.subscriptions.push(subscription);
    spec
}

fn pinger() -> WorkloadSpec {
    WorkloadSpec::single(WorkloadId::new("shop", "pinger"), guest("pinger"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workloads_on_two_hosts_talk_through_one_server() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let answering = host_on(&nats).await?;
    answering.start_workload(ponger("ponger", None)).await?;
    let asking = host_on(&nats).await?;
    asking.start_workload(pinger()).await?;
    let addr = asking.http_addr().expect("ingress");
    assert_eq!(get(addr, "x", "/?msg=across").await?.body, "pong: across\n");
    let lonely = get(addr, "x", "/?subject=nowhere&msg=x").await?;
    assert_eq!(
        (lonely.status, lonely.body.as_str()),
        (502, "no responders\n")
    );
    asking.shutdown().await;
    answering.shutdown().await;
    Ok(())
}

/// A `team-b` workload subscribed to `_INBOX.>` (where the NATS client and
/// the plugins receive replies) and to `>` sees neither team-a's
/// request/reply exchange nor the key-value value team-a reads through
/// `keyvalue-nats` (a JetStream reply): only team-b's own marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_namespace_never_sees_replies_or_jetstream_traffic() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let host = host_on(&nats).await?;
    let in_team_a = |name: &str, file: &str, http: &str| {
        let mut spec = WorkloadSpec::single(WorkloadId::new("team-a", name), guest(file));
        spec.http.host = Some(http.into());
        spec
    };
    host.start_workload(in_team_a("kv", "keyvalue_user", "kv.test"))
        .await?;
    host.start_workload(in_team_a("pinger", "pinger", "a.test"))
        .await?;
    let mut answering = WorkloadSpec::single(WorkloadId::new("team-a", "ponger"), guest("ponger"));
    answering.subscriptions.push(SubscriptionSpec::new("ping"));
    host.start_workload(answering).await?;
    let wildcards = ["_INBOX.>", ">"];
    host.start_workload(recorder("team-b", &wildcards)).await?;
    let mut team_b_pinger =
        WorkloadSpec::single(WorkloadId::new("team-b", "pinger"), guest("pinger"));
    team_b_pinger.http.host = Some("b.test".into());
    host.start_workload(team_b_pinger).await?;
    let mut reports = host.broker().subscribe("team-b.seen", None).await?;
    let addr = host.http_addr().expect("ingress");

    let secret = "team-a-kv-secret";
    let put = request(addr, "PUT", "kv.test", "/set?bucket=vault&key=k", secret).await?;
    assert_eq!(put.status, 200, "{put:?}");
    let read = get(addr, "kv.test", "/get?bucket=vault&key=k").await?;
    assert_eq!(read.body, secret, "team-a reads its value");
    let exchange = get(addr, "a.test", "/?msg=team-a-ping").await?;
    assert_eq!(
        exchange.body, "pong: team-a-ping\n",
        "team-a gets its reply"
    );
    nothing_but_the_marker(addr, "b.test", &mut reports, wildcards.len()).await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_group_spans_hosts_and_each_message_reaches_one_member() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let first = host_on(&nats).await?;
    first
        .start_workload(ponger("first", Some("pongers")))
        .await?;
    let second = host_on(&nats).await?;
    second
        .start_workload(ponger("second", Some("pongers")))
        .await?;
    let asking = host_on(&nats).await?;
    let mut replies = asking.broker().subscribe("shop._INBOX.>", None).await?;
    asking.start_workload(pinger()).await?;
    let addr = asking.http_addr().expect("ingress");
    for i in 0..8 {
        assert_eq!(
            get(addr, "x", &format!("/?msg={i}")).await?.body,
            format!("pong: {i}\n")
        );
    }
    let mut seen = 0;
    while let Ok(Some(_)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), replies.next()).await
    {
        seen += 1;
    }
    assert_eq!(
        seen, 8,
        "one reply per request: one group member per message"
    );
    for host in [asking, second, first] {
        host.shutdown().await;
    }
    Ok(())
}

/// A subscription whose subject nats-server would refuse (longer than a
/// protocol line) fails the workload's start with a clear error, instead of
/// reaching the server, which would close the shared connection on every
/// reconnect; the host keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_nats_would_refuse_fails_the_start() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let host = host_on(&nats).await?;
    let mut spec = ponger("huge", None);
    spec.subscriptions[0].subject = "x".repeat(10_000);
    let err = host.start_workload(spec).await.expect_err("refused");
    let err = format!("{err:#}");
    assert!(err.contains("10005 bytes long, more than 1024"), "{err}");
    assert!(err.len() < 500, "the subject is shortened: {err}");
    assert!(
        host.status(&WorkloadId::new("shop", "huge")).is_none(),
        "refused before it was started"
    );
    host.start_workload(ponger("ponger", None)).await?;
    host.start_workload(pinger()).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "x", "/?msg=still").await?.body, "pong: still\n");
    if let keel_tests::keel::testing::Broker::Nats(client) = host.broker() {
        let connects = client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(connects, 1, "the shared connection was never lost");
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Host::builder()
        .nats(NatsSpec::url(format!("nats://127.0.0.1:{port}")))
        .start()
        .await;
    let err = started.err().expect("no server there");
    assert!(
        format!("{err:#}").contains("connecting to NATS at nats://127.0.0.1:"),
        "{err:#}"
    );
    Ok(())
}

#[test]
fn the_ping_pong_example_runs_unchanged_over_nats() -> anyhow::Result<()> {
    use keel_tests::{KeelProcess, repo_root};
    use std::time::Duration;
    let nats = NatsServer::start()?;
    let cache = tempfile::tempdir()?;
    let manifest = repo_root().join("examples/messaging-ping-pong/app.toml");
    let mut keel = KeelProcess::spawn(&manifest, cache.path(), &["--nats", &nats.url()])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("messaging goes through NATS", Duration::from_secs(30))?;
    keel.wait_for_log(
        "workload running workload=examples/ponger",
        Duration::from_secs(60),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    assert_eq!(
        runtime.block_on(get(addr, "localhost", "/?msg=nats"))?.body,
        "pong: nats\n"
    );
    // A handler that fails: logged with the subject it came from.
    let published = runtime.block_on(get(addr, "localhost", "/publish?subject=ping&msg=fail"))?;
    assert_eq!(published.status, 200);
    let failure = keel.wait_for_log("message handler failed", Duration::from_secs(10))?;
    assert!(
        failure.contains("subject=\"ping\"") && failure.contains("asked to fail"),
        "{failure}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_fails_requests_cleanly_and_the_host_reconnects_by_itself() -> anyhow::Result<()>
{
    use std::time::{Duration, Instant};
    let mut nats = NatsServer::start()?;
    let host = host_on(&nats).await?;
    host.start_workload(ponger("ponger", None)).await?;
    host.start_workload({
        let mut spec = pinger();
        spec.http.host = Some("ask.test".into());
        spec
    })
    .await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(
        get(addr, "ask.test", "/?msg=before").await?.body,
        "pong: before\n"
    );

    nats.stop();
    let asked = Instant::now();
    let during = get(addr, "ask.test", "/?msg=during").await?;
    assert_eq!(during.status, 502, "{}", during.body);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the request hung past its 2 s timeout"
    );

    nats.restart()?;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = get(addr, "ask.test", "/?msg=after").await?;
        if answer.status == 200 {
            assert_eq!(answer.body, "pong: after\n");
            break;
        }
        assert!(
            Instant::now() < until,
            "no reconnect within 20 s: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_comma_separated_server_list_connects() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    // A cluster's URLs as README writes them: several, comma-separated,
    // with white space after the commas.
    let servers = format!("{}, {}", nats.url(), nats.url());
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(keel_tests::test_engine())
        .nats(NatsSpec::url(servers))
        .start()
        .await?;
    host.start_workload(ponger("ponger", None)).await?;
    host.start_workload(pinger()).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "x", "/?msg=listed").await?.body, "pong: listed\n");
    host.shutdown().await;
    Ok(())
}
