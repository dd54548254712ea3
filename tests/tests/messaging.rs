//! Messaging through the built-in consumer plugin and the in-process bus:
//! subjects are scoped by namespace, queue groups spread the load, and a
//! workload reports running only once its subscriptions are live.

use keel_tests::keel::manifest::SubscriptionSpec;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, start_host};

fn pinger(namespace: &str, host: &str) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, "pinger"), guest("pinger"));
    spec.http.host = Some(host.into());
    spec
}

fn ponger(namespace: &str, name: &str, queue: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest("ponger"));
    spec.subscriptions.push(SubscriptionSpec {
        subject: "ping".into(),
        queue: queue.map(str::to_string),
    });
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_group_gives_each_message_to_one_member() -> anyhow::Result<()> {
    // Every ponger that receives a request replies to its inbox; watching
    // the inboxes counts how many members each message reached.
    async fn replies_per_request(queue: Option<&str>) -> anyhow::Result<usize> {
        let host: Host = start_host(None).await?;
        host.start_workload(ponger("q", "first", queue)).await?;
        host.start_workload(ponger("q", "second", queue)).await?;
        let mut replies = host.broker().subscribe("_INBOX.>", None).await?;
        host.start_workload(pinger("q", "q.test")).await?;
        let addr = host.http_addr().expect("ingress");
        for i in 0..6 {
            assert_eq!(
                get(addr, "q.test", &format!("/?msg={i}")).await?.body,
                format!("pong: {i}\n")
            );
        }
        let mut seen = 0;
        let wait = std::time::Duration::from_millis(300);
        while let Ok(Some(_)) = tokio::time::timeout(wait, replies.next()).await {
            seen += 1;
        }
        host.shutdown().await;
        Ok(seen)
    }
    assert_eq!(
        replies_per_request(Some("pongers")).await?,
        6,
        "a queue group: one member per message"
    );
    assert_eq!(
        replies_per_request(None).await?,
        12,
        "no group: every subscriber gets every message"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_a_handler_is_refused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = pinger("x", "x.test");
    spec.subscriptions.push(SubscriptionSpec {
        subject: "ping".into(),
        queue: None,
    });
    let err = host.start_workload(spec).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("none of its components exports wasmcloud:messaging/handler"),
        "{err:#}"
    );
    host.shutdown().await;
    Ok(())
}
