//! A plugin granted JetStream API subjects reaches, through what it asks the
//! server to do, only the subjects it is granted: streams capture, and
//! consumers deliver to, granted subjects only. And each namespace creates
//! a bounded number of streams. Against a real `nats-server -js`, with a
//! third-party plugin speaking raw `keel:core/nats` (`nats_plugin`) and the
//! built-in `keyvalue-nats`.

use keel_tests::keel::spec::{LinkMode, NatsSpec, PluginSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::nats::NatsServer;
use keel_tests::{Answer, get, guest, request, test_engine};
use std::net::SocketAddr;

/// A host on `server` whose namespaces may create `max_streams` streams.
async fn host(server: &NatsServer, max_streams: Option<u32>) -> anyhow::Result<Host> {
    let mut builder = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine())
        .nats(NatsSpec::url(server.url()));
    if let Some(max) = max_streams {
        builder = builder.max_streams_per_namespace(max);
    }
    builder.start().await
}

/// Starts workload `name` of `namespace` running `file`, routed as `<name>.test`.
async fn start(host: &Host, namespace: &str, name: &str, file: &str) -> anyhow::Result<()> {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest(file));
    spec.http.host = Some(format!("{name}.test"));
    host.start_workload(spec).await?;
    Ok(())
}

/// A host running the raw-NATS plugin (shared) with `grants`, and workload
/// `probe.test` of namespace `shop` asking it for requests.
async fn prober(server: &NatsServer, grants: &[&str]) -> anyhow::Result<(Host, SocketAddr)> {
    let host = host(server, None).await?;
    let mut plugin = PluginSpec::new("prober", Some(guest("nats_plugin")), LinkMode::Shared);
    plugin.grants.subjects = grants.iter().map(|s| s.to_string()).collect();
    host.add_plugin(plugin).await?;
    start(&host, "shop", "probe", "nats_user").await?;
    let addr = host.http_addr().expect("ingress");
    Ok((host, addr))
}

/// The plugin's request to `subject` with `body`.
async fn ask(addr: SocketAddr, subject: &str, body: &str) -> anyhow::Result<Answer> {
    let path = format!("/request?subject={}", encode(subject));
    request(addr, "POST", "probe.test", &path, body.to_string()).await
}

/// `subject` percent-encoded for a query.
fn encode(subject: &str) -> String {
    subject
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asserts the plugin's call was refused with `kind`, and the refusal names
/// each of `needles`.
fn refused(answer: &Answer, kind: &str, needles: &[&str]) {
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.body.starts_with(kind), "{answer:?}");
    for needle in needles {
        assert!(answer.body.contains(needle), "{needle} in {answer:?}");
    }
}

async fn jetstream(server: &NatsServer) -> anyhow::Result<async_nats::jetstream::Context> {
    Ok(async_nats::jetstream::new(
        async_nats::connect(server.url()).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_capture_only_subjects_the_plugin_is_granted() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let (host, addr) = prober(
        &server,
        &[
            "$JS.API.STREAM.CREATE.*",
            "$JS.API.STREAM.UPDATE.*",
            "$JS.API.STREAM.INFO.mine*",
            "app.{namespace}.>",
        ],
    )
    .await?;
    let create = |name: &str| format!("$JS.API.STREAM.CREATE.{name}");

    let everything = ask(addr, &create("all"), r#"{"name":"all","subjects":[">"]}"#).await?;
    refused(&everything, "not-granted", &["`subjects[0]`", "`>`"]);
    let tenant = r#"{"name":"kv","subjects":["$KV.bank-web-default.>"]}"#;
    refused(
        &ask(addr, &create("kv"), tenant).await?,
        "not-granted",
        &["`subjects[0]`", "$KV.bank-web-default.>"],
    );
    // Without subjects the server would capture the stream's name.
    refused(
        &ask(addr, &create("orders"), r#"{"name":"orders"}"#).await?,
        "not-granted",
        &["field `name`", "`orders`"],
    );
    // The server reads `SUBJECTS` as `subjects`; so does the check.
    refused(
        &ask(addr, &create("loud"), r#"{"name":"loud","SUBJECTS":[">"]}"#).await?,
        "not-granted",
        &["`subjects[0]`"],
    );
    refused(
        &ask(addr, &create("bad"), "subjects: >").await?,
        "invalid",
        &["not JSON"],
    );
    let js = jetstream(&server).await?;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "secret".into(),
        subjects: vec!["secret.>".into()],
        ..Default::default()
    })
    .await?;
    let copy = r#"{"name":"mine2","mirror":{"name":"secret"}}"#;
    refused(
        &ask(addr, &create("mine2"), copy).await?,
        "not-granted",
        &["`mirror.name`", "`secret`"],
    );

    let mine = ask(
        addr,
        &create("mine"),
        r#"{"name":"mine","subjects":["app.shop.>"],"storage":"memory"}"#,
    )
    .await?;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert!(
        mine.body.contains(r#""name":"mine""#) && !mine.body.contains(r#""error""#),
        "{mine:?}"
    );
    let widened = r#"{"name":"mine","subjects":["app.shop.>","secret.>"],"storage":"memory"}"#;
    refused(
        &ask(addr, "$JS.API.STREAM.UPDATE.mine", widened).await?,
        "not-granted",
        &["`subjects[1]`", "secret.>"],
    );
    // A create sent as a publish would go uncounted.
    let published = request(
        addr,
        "POST",
        "probe.test",
        &format!("/publish?subject={}", encode(&create("mine3"))),
        r#"{"name":"mine3","subjects":["app.shop.x"]}"#,
    )
    .await?;
    refused(&published, "invalid", &["request"]);

    let mut names: Vec<String> = Vec::new();
    let mut listed = js.stream_names();
    while let Some(name) = futures::StreamExt::next(&mut listed).await {
        names.push(name?);
    }
    names.sort();
    assert_eq!(names, ["mine", "secret"]);
    let info = js.get_stream("mine").await?.info().await?.config.clone();
    assert_eq!(info.subjects, ["app.shop.>"], "the update was not applied");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_consumers_deliver_only_to_granted_subjects() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream(&server).await?;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "orders".into(),
        subjects: vec!["app.shop.orders.>".into()],
        ..Default::default()
    })
    .await?;
    let (host, addr) = prober(
        &server,
        &[
            "$JS.API.CONSUMER.CREATE.orders",
            "$JS.API.CONSUMER.DURABLE.CREATE.orders.*",
            "app.{namespace}.>",
        ],
    )
    .await?;
    // An ephemeral push consumer, or durable `d`.
    let push = |deliver: &str, durable: bool| {
        let name = if durable {
            r#""durable_name":"d","#
        } else {
            ""
        };
        format!(
            r#"{{"stream_name":"orders","config":{{{name}"deliver_subject":"{deliver}","ack_policy":"explicit"}}}}"#
        )
    };
    let out = ask(
        addr,
        "$JS.API.CONSUMER.CREATE.orders",
        &push("bank.inbox", false),
    )
    .await?;
    refused(
        &out,
        "not-granted",
        &["`config.deliver_subject`", "`bank.inbox`"],
    );
    let durable = ask(
        addr,
        "$JS.API.CONSUMER.DURABLE.CREATE.orders.d",
        &push("bank.inbox", true),
    )
    .await?;
    refused(&durable, "not-granted", &["`config.deliver_subject`"]);
    let other_stream = r#"{"stream_name":"KV_bank-web-default","config":{}}"#;
    refused(
        &ask(addr, "$JS.API.CONSUMER.CREATE.orders", other_stream).await?,
        "invalid",
        &["stream_name"],
    );
    let mut stream = js.get_stream("orders").await?;
    assert_eq!(stream.info().await?.state.consumer_count, 0);

    let own = ask(
        addr,
        "$JS.API.CONSUMER.DURABLE.CREATE.orders.d",
        &push("app.shop.inbox", true),
    )
    .await?;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(!own.body.contains(r#""error""#), "{own:?}");
    assert_eq!(stream.info().await?.state.consumer_count, 1);
    host.shutdown().await;
    Ok(())
}

/// `PUT` a key into `bucket` of workload `who`.
async fn put(addr: SocketAddr, who: &str, bucket: &str) -> anyhow::Result<Answer> {
    request(
        addr,
        "PUT",
        &format!("{who}.test"),
        &format!("/set?bucket={bucket}&key=k"),
        "v",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_creates_at_most_its_cap_of_buckets() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let first = host(&server, Some(3)).await?;
    start(&first, "t1", "one", "keyvalue_user").await?;
    start(&first, "t2", "two", "keyvalue_user").await?;
    let addr = first.http_addr().expect("ingress");
    for bucket in ["b1", "b2", "b3"] {
        let answer = put(addr, "one", bucket).await?;
        assert_eq!(answer.status, 200, "{bucket}: {answer:?}");
    }
    let fourth = put(addr, "one", "b4").await?;
    assert_eq!(fourth.status, 500, "{fourth:?}");
    assert!(
        fourth.body.starts_with("Error::Other")
            && fourth.body.contains("namespace `t1` already has 3")
            && fourth.body.contains("max_streams_per_namespace = 3"),
        "{fourth:?}"
    );
    // Buckets it has stay usable; another namespace has a cap of its own.
    assert_eq!(put(addr, "one", "b1").await?.status, 200);
    assert_eq!(put(addr, "two", "b1").await?.status, 200);
    assert_eq!(
        get(addr, "two.test", "/get?bucket=b1&key=k").await?.body,
        "v"
    );
    first.shutdown().await;

    // A host started later counts the buckets the server holds.
    let second = host(&server, Some(3)).await?;
    start(&second, "t1", "one", "keyvalue_user").await?;
    let addr = second.http_addr().expect("ingress");
    let fifth = put(addr, "one", "b5").await?;
    assert_eq!(fifth.status, 500, "{fifth:?}");
    assert!(fifth.body.contains("already has 3"), "{fifth:?}");
    assert_eq!(put(addr, "one", "b2").await?.status, 200);
    second.shutdown().await;
    Ok(())
}
