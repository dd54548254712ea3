//! The keyvalue suite against the built-in JetStream KV plugin
//! (`keyvalue-nats`, composed, speaking JetStream over `keel:core/nats`) on
//! a real `nats-server -js`; interop with the `async-nats` KV client; and
//! the plugin's subject grants.

use keel_tests::keyvalue_suite::Target;
use keel_tests::nats::NatsServer;
use keel_tests::{builtin_plugin, get, request, run_example};

/// Workloads `a.test` and `b.test` (namespace `kv`) on a fresh server.
async fn nats() -> anyhow::Result<Target> {
    Target::on_nats("kv", "keyvalue_user", None).await
}

keel_tests::keyvalue_suite!(nats);

/// Workloads `a.test` and `b.test` with `keyvalue-nats` configured so.
async fn nats_with(config: &[(&str, &str)], grants: &[&str]) -> anyhow::Result<Target> {
    let plugin = builtin_plugin("keyvalue-nats", config, grants);
    Target::on_nats("kv", "keyvalue_user", Some(plugin)).await
}

async fn jetstream(target: &Target) -> anyhow::Result<async_nats::jetstream::Context> {
    let server = target.nats.as_ref().expect("a NATS target");
    let client = async_nats::connect(server.url()).await?;
    Ok(async_nats::jetstream::new(client))
}

/// What keel writes, the async-nats KV client reads, under the documented
/// bucket name; and the other way round, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buckets_interoperate_with_the_async_nats_client() -> anyhow::Result<()> {
    let t = nats().await?;
    let value: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let put = request(
        t.addr,
        "PUT",
        "a.test",
        "/set?bucket=shared&key=from.keel",
        value.clone(),
    )
    .await?;
    assert_eq!(put.status, 200, "{put:?}");
    request(
        t.addr,
        "PUT",
        "a.test",
        "/set?bucket=shared&key=ключ",
        "unicode",
    )
    .await?;
    request(
        t.addr,
        "POST",
        "a.test",
        "/increment?bucket=shared&key=hits&delta=41",
        "",
    )
    .await?;

    let js = jetstream(&t).await?;
    let kv = js.get_key_value("kv-a-shared").await?;
    let read = kv.get("from.keel").await?.expect("the value keel wrote");
    assert_eq!(read.as_ref(), value.as_slice());
    assert_eq!(kv.get("hits").await?.expect("counter").as_ref(), b"41");
    // Not a valid NATS key: `=` and its UTF-8 in unpadded URL-safe base64.
    let encoded = "=0LrQu9GO0Yc";
    assert_eq!(
        kv.get(encoded).await?.expect("encoded key").as_ref(),
        b"unicode"
    );

    let written = "\u{0}written by the client\u{7f}é";
    kv.put("from.client", written.into()).await?;
    kv.put("counted", "9".into()).await?;
    let got = get(t.addr, "a.test", "/get?bucket=shared&key=from.client").await?;
    assert_eq!((got.status, got.body.as_str()), (200, written));
    let bumped = request(
        t.addr,
        "POST",
        "a.test",
        "/increment?bucket=shared&key=counted&delta=1",
        "",
    )
    .await?;
    assert_eq!(bumped.body, "10");
    kv.delete("from.client").await?;
    assert_eq!(
        get(t.addr, "a.test", "/get?bucket=shared&key=from.client")
            .await?
            .status,
        404
    );
    let listed = get(t.addr, "a.test", "/list-all?bucket=shared").await?.body;
    for key in ["from.keel", "ключ", "hits", "counted"] {
        assert!(
            listed.lines().any(|l| l == key),
            "{key} missing from {listed:?}"
        );
    }
    assert!(!listed.lines().any(|l| l == "from.client"), "{listed:?}");
    t.host.shutdown().await;
    Ok(())
}

/// With `create = "false"` a missing bucket is `no-such-store`; one that
/// exists opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_creation_a_missing_bucket_is_no_such_store() -> anyhow::Result<()> {
    let t = nats_with(&[("create", "false")], &[]).await?;
    let refused = get(t.addr, "a.test", "/get?bucket=absent&key=k").await?;
    assert!(refused.body.contains("NoSuchStore"), "{refused:?}");
    // Made by hand with the JetStream API, as an operator would.
    let server = t.nats.as_ref().expect("NATS");
    let client = async_nats::connect(server.url()).await?;
    let config = serde_json::json!({
        "name": "KV_kv-a-present", "subjects": ["$KV.kv-a-present.>"],
        "max_msgs_per_subject": 1, "discard": "new", "storage": "memory",
        "allow_rollup_hdrs": true, "deny_delete": true, "allow_direct": true,
    });
    let created = client
        .request(
            "$JS.API.STREAM.CREATE.KV_kv-a-present",
            config.to_string().into(),
        )
        .await?;
    assert!(
        !String::from_utf8_lossy(&created.payload).contains("\"error\""),
        "{created:?}"
    );
    let put = request(t.addr, "PUT", "a.test", "/set?bucket=present&key=k", "v").await?;
    assert_eq!(put.status, 200, "{put:?}");
    t.host.shutdown().await;
    Ok(())
}

/// A bucket mapped to a raw name is reached only once the manifest grants
/// its subjects: the plugin, granted its own namespace, is refused others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_bucket_needs_its_subjects_granted() -> anyhow::Result<()> {
    let mapped = [("bucket.orders", "ORDERS")];
    let t = nats_with(&mapped, &[]).await?;
    let refused = request(t.addr, "PUT", "a.test", "/set?bucket=orders&key=o1", "x").await?;
    assert!(refused.body.contains("AccessDenied"), "{refused:?}");
    t.host.shutdown().await;

    let grants = [
        "$KV.ORDERS.>",
        "$JS.API.STREAM.*.KV_ORDERS",
        "$JS.API.DIRECT.GET.KV_ORDERS.>",
    ];
    let t = nats_with(&mapped, &grants).await?;
    let put = request(t.addr, "PUT", "a.test", "/set?bucket=orders&key=o1", "x").await?;
    assert_eq!(put.status, 200, "{put:?}");
    let js = jetstream(&t).await?;
    let kv = js.get_key_value("ORDERS").await?;
    assert_eq!(kv.get("o1").await?.expect("o1").as_ref(), b"x");
    let other = request(t.addr, "PUT", "b.test", "/set?bucket=orders&key=o2", "y").await?;
    assert_eq!(
        other.status, 200,
        "the mapping is the plugin's, for every workload: {other:?}"
    );
    t.host.shutdown().await;
    Ok(())
}

/// The server stops during a run of writes and comes back on the same port
/// and store: writes during the outage fail cleanly (a 500, within the
/// plugin's timeout), the host reconnects by itself, and every write that
/// was acknowledged before the stop is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_acknowledged_before_an_outage_survive_it() -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let mut t = nats().await?;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let key = format!("k{i}");
        let put = request(
            t.addr,
            "PUT",
            "a.test",
            &format!("/set?bucket=durable&key={key}"),
            key.clone(),
        )
        .await?;
        assert_eq!(put.status, 200, "{put:?}");
        acknowledged.push(key);
    }

    let server = t.nats.as_mut().expect("NATS");
    server.stop();
    let started = Instant::now();
    let during = request(t.addr, "PUT", "a.test", "/set?bucket=durable&key=lost", "x").await?;
    assert_eq!(during.status, 500, "{during:?}");
    assert!(
        during.body.contains("NATS"),
        "the error says what failed: {}",
        during.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the write hung: {:?}",
        started.elapsed()
    );

    server.restart()?;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let put = request(
            t.addr,
            "PUT",
            "a.test",
            "/set?bucket=durable&key=after",
            "back",
        )
        .await?;
        if put.status == 200 {
            break;
        }
        assert!(Instant::now() < until, "no reconnect within 30 s: {put:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for key in &acknowledged {
        let got = get(t.addr, "a.test", &format!("/get?bucket=durable&key={key}")).await?;
        assert_eq!(
            (got.status, got.body.as_str()),
            (200, key.as_str()),
            "{key} after the outage"
        );
    }
    t.host.shutdown().await;
    Ok(())
}

/// `examples/http-keyvalue-counter` runs unchanged with `--nats`: its
/// keyvalue is then served by `keyvalue-nats`, composed.
#[test]
fn the_counter_example_runs_unchanged_over_nats() -> anyhow::Result<()> {
    use std::time::Duration;
    let server = NatsServer::start()?;
    let (mut keel, addr, _cache) =
        run_example("http-keyvalue-counter", &["--nats", &server.url()])?;
    let served = keel.wait_for_log("import served by plugin", Duration::from_secs(1))?;
    assert!(
        served.contains("plugin=\"keyvalue-nats\"") && served.contains("mode=\"composed\""),
        "{served}"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let visit = |path: &str| {
        runtime
            .block_on(get(addr, "localhost", path))
            .map(|a| a.body)
    };
    assert_eq!(visit("/apples")?, "/apples has been visited 1 times\n");
    assert_eq!(visit("/apples")?, "/apples has been visited 2 times\n");
    assert_eq!(visit("/pears")?, "/pears has been visited 1 times\n");
    Ok(())
}

/// How often the host's shared NATS connection has connected so far.
fn connects(host: &keel_tests::keel::Host) -> u64 {
    use keel_tests::keel::testing::Broker;
    match host.broker() {
        Broker::Nats(client) => client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        Broker::Bus(_) => panic!("a NATS host"),
    }
}

/// A key or bucket name far longer than a NATS protocol line may be is
/// refused to the guest; it never reaches the server, which would close the
/// connection every plugin shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overlong_key_or_bucket_is_refused_and_the_connection_stays() -> anyhow::Result<()> {
    let t = nats().await?;
    let put = request(t.addr, "PUT", "a.test", "/set?bucket=b&key=k", "v").await?;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(connects(&t.host), 1);
    let long = "k".repeat(5_000);
    let key = get(t.addr, "a.test", &format!("/get?bucket=b&key={long}")).await?;
    assert_eq!(key.status, 500, "{key:?}");
    assert!(key.body.contains("not a valid subject"), "{}", key.body);
    let bucket = get(t.addr, "a.test", &format!("/get?bucket={long}&key=k")).await?;
    assert_eq!(bucket.status, 500, "{bucket:?}");
    assert!(
        bucket.body.contains("not a valid subject"),
        "{}",
        bucket.body
    );
    // A round trip after them: had the server closed the connection, this
    // one would go over a new one.
    let read = get(t.addr, "a.test", "/get?bucket=b&key=k").await?;
    assert_eq!((read.status, read.body.as_str()), (200, "v"));
    assert_eq!(connects(&t.host), 1, "the shared connection was never lost");
    t.host.shutdown().await;
    Ok(())
}
