//! What workloads of keel hosts share on one NATS server: keyvalue data
//! across hosts, queue subscriptions across replicas, and messaging
//! subjects as wasmCloud hosts write them (or prefixed by namespace, when
//! a host is told so). Real nats-server, real registry, `keel host`
//! processes driven with the operator protocol's messages.

use anyhow::{Context, Result};
use futures::{FutureExt, StreamExt};
use keel_tests::fleet::{
    KeelHost, Operator, assert_error, host_config, http_workload, push_guest, state,
};
use keel_tests::get;
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// A NATS server, a registry with `file` pushed, and a host config for it.
struct Lattice {
    nats: NatsServer,
    _registry: Registry,
    image: String,
    dir: tempfile::TempDir,
    config: String,
}

impl Lattice {
    async fn with(file: &str) -> Result<Lattice> {
        let nats = NatsServer::start()?;
        let registry = Registry::start()?;
        let image = push_guest(&registry, file, &format!("apps/{file}:1")).await?;
        let dir = tempfile::tempdir()?;
        let config = host_config(dir.path(), &registry, "");
        Ok(Lattice {
            nats,
            _registry: registry,
            image,
            dir,
            config,
        })
    }

    fn host(&self, name: &str, extra: &[&str]) -> Result<KeelHost> {
        let mut args = vec!["--config", self.config.as_str()];
        args.extend_from_slice(extra);
        KeelHost::spawn(&self.nats.url(), &self.dir.path().join(name), &args)
    }
}

/// The recorder fixture (it reports each message it gets on `seen`) as a
/// wasmCloud workload subscribed to `subjects`.
fn recorder(namespace: &str, name: &str, image: &str, subjects: &str) -> Value {
    json!({
        "namespace": namespace,
        "name": name,
        "witWorld": {
            "components": [{
                "name": "recorder",
                "image": image,
                "localResources": {"config": {"subscriptions": subjects}}
            }],
            "hostInterfaces": [{
                "namespace": "wasmcloud", "package": "messaging",
                "interfaces": ["consumer", "handler"]
            }]
        }
    })
}

async fn next_text(subscriber: &mut async_nats::Subscriber) -> Result<String> {
    let message = tokio::time::timeout(Duration::from_secs(60), subscriber.next())
        .await
        .context("nothing within 60 s")?
        .context("the subscription ended")?;
    Ok(String::from_utf8_lossy(&message.payload).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_on_two_hosts_answers_the_same_counter() -> Result<()> {
    let lattice = Lattice::with("http_keyvalue_counter").await?;
    let operator = Operator::connect(&lattice.nats.url()).await?;
    let hosts = [lattice.host("a", &[])?, lattice.host("b", &[])?];
    let workload = http_workload("shop", "counter", &lattice.image, "counter.local");
    for (i, host) in hosts.iter().enumerate() {
        let started = operator
            .start(&host.id, &format!("uid-{i}"), workload.clone())
            .await?;
        assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
    }
    let mut answers = Vec::new();
    for host in hosts.iter().chain(hosts.iter()) {
        answers.push(get(host.http, "counter.local", "/apples").await?.body);
    }
    assert_eq!(
        answers,
        (1..=4)
            .map(|n| format!("/apples has been visited {n} times\n"))
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_message_reaches_one_replica_of_a_workload() -> Result<()> {
    let lattice = Lattice::with("recorder").await?;
    let operator = Operator::connect(&lattice.nats.url()).await?;
    let mut seen = operator.client().subscribe("seen").await?;
    operator.client().flush().await?;
    let hosts = [lattice.host("a", &[])?, lattice.host("b", &[])?];
    for (i, host) in hosts.iter().enumerate() {
        let workload = recorder("jobs", "worker", &lattice.image, "tasks.leet");
        let started = operator
            .start(&host.id, &format!("uid-{i}"), workload)
            .await?;
        assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
    }
    const MESSAGES: usize = 40;
    for n in 0..MESSAGES {
        operator
            .client()
            .publish("tasks.leet", n.to_string().into())
            .await?;
    }
    let mut reports = Vec::new();
    while reports.len() < MESSAGES {
        reports.push(next_text(&mut seen).await?);
    }
    // Stopping waits for every handler to finish; a handler's report goes
    // out on its host's connection before the stop's reply does, so once
    // both replies are in, every report is too.
    for (i, host) in hosts.iter().enumerate() {
        let stopped = operator.stop(&host.id, &format!("uid-{i}")).await?;
        assert_eq!(state(&stopped), "WORKLOAD_STATE_STOPPING");
    }
    while let Some(Some(message)) = seen.next().now_or_never() {
        reports.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    let unique: BTreeSet<&String> = reports.iter().collect();
    assert_eq!(
        reports.len(),
        MESSAGES,
        "some message reached both replicas: {reports:?}"
    );
    assert_eq!(unique.len(), MESSAGES);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn subjects_as_written_meet_wasmcloud_and_namespaced_ones_stay_apart() -> Result<()> {
    let lattice = Lattice::with("recorder").await?;
    let operator = Operator::connect(&lattice.nats.url()).await?;
    let client = operator.client();
    let mut plain = client.subscribe("seen").await?;
    let mut prefixed = client.subscribe("team-a.seen").await?;
    client.flush().await?;
    let open = lattice.host("open", &[])?;
    let scoped = lattice.host("scoped", &["--subjects", "namespace"])?;
    for (host, name) in [(&open, "open"), (&scoped, "scoped")] {
        let workload = recorder("team-a", name, &lattice.image, "tasks.leet");
        let started = operator.start(&host.id, name, workload).await?;
        assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
    }
    // A wasmCloud workload publishes `tasks.leet` as written: the host
    // mapping subjects as written hears it.
    client
        .publish("tasks.leet", "from-wasmcloud".into())
        .await?;
    assert_eq!(next_text(&mut plain).await?, "tasks.leet - from-wasmcloud");
    // The namespaced host hears only `team-a.tasks.leet`, and reports in
    // its namespace.
    client
        .publish("team-a.tasks.leet", "namespaced".into())
        .await?;
    assert_eq!(next_text(&mut prefixed).await?, "tasks.leet - namespaced");
    // Had either host heard the other's message, its report would have come
    // first on these subjects: each saw exactly its own.
    client.publish("tasks.leet", "second".into()).await?;
    assert_eq!(next_text(&mut plain).await?, "tasks.leet - second");

    // As written, the host protocol's subjects are no workload's.
    let snoop = recorder("team-a", "snoop", &lattice.image, "runtime.>");
    let refused = operator.start(&open.id, "snoop", snoop).await?;
    assert_error(&refused, &["reserved"]);
    Ok(())
}

/// A replica of set `set` as the operator starts it: named `<set>-<suffix>`
/// and annotated with the set's template hash.
fn replica(namespace: &str, set: &str, suffix: &str, image: &str, host: &str) -> Value {
    let mut workload = http_workload(namespace, &format!("{set}-{suffix}"), image, host);
    workload["annotations"] =
        json!({"runtime.wasmcloud.dev/workload-replica-set-generation": "5f7d9c8b"});
    workload
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_of_a_set_share_data_and_other_sets_and_namespaces_do_not() -> Result<()> {
    let lattice = Lattice::with("http_keyvalue_counter").await?;
    let operator = Operator::connect(&lattice.nats.url()).await?;
    let hosts = [lattice.host("a", &[])?, lattice.host("b", &[])?];
    let image = &lattice.image;
    let starts = [
        (
            0,
            "uid-a1",
            replica("shop", "counter", "x7bq2", image, "counter.local"),
        ),
        (
            1,
            "uid-a2",
            replica("shop", "counter", "b4k9z", image, "counter.local"),
        ),
        (
            0,
            "uid-b1",
            replica("shop", "tally", "x7bq2", image, "tally.local"),
        ),
        (
            1,
            "uid-c1",
            replica("team-b", "counter", "x7bq2", image, "counter.team-b"),
        ),
    ];
    for (host, uid, workload) in starts {
        let started = operator.start(&hosts[host].id, uid, workload).await?;
        assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
    }
    let visits = |n: u32| format!("/apples has been visited {n} times\n");
    // The two replicas of `counter`, on two hosts, count together.
    for (n, host) in [&hosts[0], &hosts[1], &hosts[0]].into_iter().enumerate() {
        let answer = get(host.http, "counter.local", "/apples").await?.body;
        assert_eq!(answer, visits(n as u32 + 1));
    }
    // Another set of the namespace, and a set of the same name in another
    // namespace, each start from nothing.
    assert_eq!(
        get(hosts[0].http, "tally.local", "/apples").await?.body,
        visits(1)
    );
    assert_eq!(
        get(hosts[1].http, "counter.team-b", "/apples").await?.body,
        visits(1)
    );
    assert_eq!(
        get(hosts[1].http, "counter.local", "/apples").await?.body,
        visits(4)
    );
    // A workload naming the set's data outright (the way to keep data
    // across a deployment's rollouts, whose sets are named anew) sees it.
    let mut named = http_workload("shop", "dashboard", image, "dashboard.local");
    named["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .context("a list")?
        .push(json!({"namespace": "wasi", "package": "keyvalue",
                     "interfaces": ["store", "atomics"], "config": {"data-name": "counter"}}));
    let started = operator.start(&hosts[1].id, "uid-d1", named).await?;
    assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
    assert_eq!(
        get(hosts[1].http, "dashboard.local", "/apples").await?.body,
        visits(5)
    );
    Ok(())
}
