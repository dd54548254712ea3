//! Messaging through the built-in consumer plugin and the in-process bus:
//! subjects (reply inboxes included) are scoped by namespace, queue groups
//! spread the load, and a workload reports running only once its
//! subscriptions are live.

use keel_tests::keel::spec::SubscriptionSpec;
use keel_tests::keel::testing::Broker;
use keel_tests::keel::testing::Message;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::recorder::{nothing_but_the_marker, recorder};
use keel_tests::{get, guest, start_host};
use std::time::Duration;

fn pinger(namespace: &str, host: &str) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, "pinger"), guest("pinger"));
    spec.http.host = Some(host.into());
    spec
}

fn ponger(namespace: &str, name: &str, queue: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest("ponger"));
    let mut subscription = SubscriptionSpec::new("ping");
    subscription.queue = queue.map(str::to_string);
    spec.subscriptions.push(subscription);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subjects_are_scoped_by_namespace() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(ponger("blue", "ponger", None)).await?;
    host.start_workload(pinger("blue", "blue.test")).await?;
    host.start_workload(pinger("green", "green.test")).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "blue.test", "/?msg=hi").await?.body, "pong: hi\n");
    let other = get(addr, "green.test", "/?msg=hi").await?;
    assert_eq!(
        (other.status, other.body.as_str()),
        (502, "no responders\n"),
        "green must not reach blue's ponger"
    );
    host.shutdown().await;
    Ok(())
}

/// What a `team-b` workload subscribed to every subject it can name receives
/// while `team-a` runs a request/reply exchange: nothing but team-b's own
/// marker, which it sees once per subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_namespace_never_sees_request_reply_traffic() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(ponger("team-a", "ponger", None))
        .await?;
    host.start_workload(pinger("team-a", "a.test")).await?;
    let wildcards = ["_INBOX.>", ">", "*.>"];
    host.start_workload(recorder("team-b", &wildcards)).await?;
    host.start_workload(pinger("team-b", "b.test")).await?;
    let mut reports = host.broker().subscribe("team-b.seen", None).await?;
    let addr = host.http_addr().expect("ingress");

    let exchange = get(addr, "a.test", "/?msg=team-a-secret").await?;
    assert_eq!(
        exchange.body, "pong: team-a-secret\n",
        "team-a gets its reply"
    );
    nothing_but_the_marker(addr, "b.test", &mut reports, wildcards.len()).await?;
    host.shutdown().await;
    Ok(())
}

/// A workload's reply inbox is its own: a request's reply reaches the
/// requester, and the handler sees the inbox without the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_sees_the_reply_inbox_without_the_namespace() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(recorder("team-a", &["ask"])).await?;
    host.start_workload(pinger("team-a", "a.test")).await?;
    let mut reports = host.broker().subscribe("team-a.seen", None).await?;
    let addr = host.http_addr().expect("ingress");
    // The recorder does not answer: the request times out, but the report
    // shows what the handler was given.
    let asked = get(addr, "a.test", "/?subject=ask&msg=q").await?;
    assert_eq!(asked.status, 502, "{}", asked.body);
    let report = reports.next().await.expect("a report");
    let report = String::from_utf8_lossy(&report.body).into_owned();
    let fields: Vec<&str> = report.split(' ').collect();
    assert_eq!(fields.len(), 3, "{report}");
    assert_eq!((fields[0], fields[2]), ("ask", "q"), "{report}");
    assert!(
        fields[1].starts_with("_INBOX.") && fields[1].len() == "_INBOX.".len() + 22,
        "the reply inbox as the handler sees it: {report}"
    );
    host.shutdown().await;
    Ok(())
}

/// A subject the broker would refuse reaches neither the bus nor NATS: the
/// guest gets an error saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_or_malformed_subject_is_refused_to_the_guest() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.start_workload(pinger("x", "x.test")).await?;
    let addr = host.http_addr().expect("ingress");
    let long = "s".repeat(2_000);
    let published = get(addr, "x.test", &format!("/publish?subject={long}&msg=m")).await?;
    assert_eq!(published.status, 502, "{published:?}");
    assert!(
        published.body.contains("2002 bytes long, more than 1024"),
        "{}",
        published.body
    );
    let asked = get(addr, "x.test", "/?subject=a..b&msg=m").await?;
    assert_eq!(asked.status, 502, "{asked:?}");
    assert!(asked.body.contains("empty token"), "{}", asked.body);
    host.shutdown().await;
    Ok(())
}

/// Namespaces that would reach outside their own subjects are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_must_be_a_plain_name() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    for namespace in ["_INBOX", "$JS", "team.a", "Team", ""] {
        let err = host
            .start_workload(ponger(namespace, "ponger", None))
            .await
            .expect_err(namespace);
        assert!(
            format!("{err:#}").contains("is not a valid name"),
            "{namespace}: {err:#}"
        );
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_group_gives_each_message_to_one_member() -> anyhow::Result<()> {
    // Six requests on `ping` to two pongers: the bus says how many
    // subscriptions each one reached, and every ponger that got one answers
    // it, so all the replies that will ever come can be awaited.
    async fn deliveries_and_replies(queue: Option<&str>) -> anyhow::Result<(usize, Vec<String>)> {
        let host: Host = start_host(None).await?;
        host.start_workload(ponger("q", "first", queue)).await?;
        host.start_workload(ponger("q", "second", queue)).await?;
        let Broker::Bus(bus) = host.broker() else {
            anyhow::bail!("a host without NATS uses the bus");
        };
        let mut replies = host.broker().subscribe("q.replies", None).await?;
        let mut delivered = 0;
        for i in 0..6 {
            delivered += bus.publish(Message {
                subject: "q.ping".into(),
                body: i.to_string().into_bytes(),
                reply_to: Some("q.replies".into()),
            })?;
        }
        let mut answers = Vec::new();
        while answers.len() < delivered {
            let reply = tokio::time::timeout(Duration::from_secs(30), replies.next())
                .await
                .map_err(|_| anyhow::anyhow!("{delivered} replies expected, got {answers:?}"))?
                .ok_or_else(|| anyhow::anyhow!("the reply subscription ended"))?;
            answers.push(String::from_utf8_lossy(&reply.body).into_owned());
        }
        answers.sort();
        host.shutdown().await;
        Ok((delivered, answers))
    }
    let each = |times: usize| -> Vec<String> {
        let mut all: Vec<String> = (0..6)
            .flat_map(|i| std::iter::repeat_n(format!("pong: {i}"), times))
            .collect();
        all.sort();
        all
    };
    assert_eq!(
        deliveries_and_replies(Some("pongers")).await?,
        (6, each(1)),
        "a queue group: one member per message"
    );
    assert_eq!(
        deliveries_and_replies(None).await?,
        (12, each(2)),
        "no group: every subscriber gets every message"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_a_handler_is_refused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = pinger("x", "x.test");
    spec.subscriptions.push(SubscriptionSpec::new("ping"));
    let err = host.start_workload(spec).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("none of its components exports wasmcloud:messaging/handler"),
        "{err:#}"
    );
    host.shutdown().await;
    Ok(())
}
