//! `config-nats`: `wasi:config` values from a JetStream KV bucket named in
//! the manifest, the manifest's values as defaults, on a real
//! `nats-server -js`; values written by another NATS client are seen by the
//! next request.

use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::nats::{NatsServer, host_on};
use keel_tests::{builtin_plugin, get, guest};

fn config_nats(pairs: &[(&str, &str)]) -> keel_tests::keel::spec::PluginSpec {
    builtin_plugin("config-nats", pairs, &[])
}

/// A KV bucket made with the JetStream API, as an operator would.
async fn create_bucket(client: &async_nats::Client, bucket: &str) -> anyhow::Result<()> {
    let config = serde_json::json!({
        "name": format!("KV_{bucket}"), "subjects": [format!("$KV.{bucket}.>")],
        "max_msgs_per_subject": 1, "discard": "new", "storage": "memory",
        "allow_rollup_hdrs": true, "deny_delete": true, "allow_direct": true,
    });
    let reply = client
        .request(
            format!("$JS.API.STREAM.CREATE.KV_{bucket}"),
            config.to_string().into(),
        )
        .await?;
    let reply = String::from_utf8_lossy(&reply.payload).into_owned();
    anyhow::ensure!(!reply.contains("\"error\""), "{reply}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_come_from_the_bucket_over_manifest_defaults() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let host = host_on(&server).await?;
    host.add_plugin(config_nats(&[
        ("config-nats.bucket", "{namespace}-settings"),
        ("colour", "red"),
    ]))
    .await?;
    for (namespace, name) in [("tenant", "a"), ("other", "b")] {
        let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest("config_user"));
        spec.http.host = Some(format!("{name}.test"));
        spec.components[0].config = [("greeting".to_string(), "manifest".to_string())].into();
        host.start_workload(spec).await?;
    }
    let addr = host.http_addr().expect("ingress");

    let missing = get(addr, "a.test", "/get?key=greeting").await?;
    assert!(
        missing.status == 500 && missing.body.contains("`tenant-settings` does not exist"),
        "{missing:?}"
    );

    let client = async_nats::connect(server.url()).await?;
    create_bucket(&client, "tenant-settings").await?;
    create_bucket(&client, "other-settings").await?;
    assert_eq!(
        get(addr, "a.test", "/get?key=greeting").await?.body,
        "manifest"
    );
    assert_eq!(
        get(addr, "a.test", "/all").await?.body,
        "colour=red\ngreeting=manifest",
        "the plugin's own setting is not a value"
    );

    let kv = async_nats::jetstream::new(client.clone())
        .get_key_value("tenant-settings")
        .await?;
    kv.put("greeting", "from nats".into()).await?;
    kv.put("db.url", "postgres://db".into()).await?;
    assert_eq!(
        get(addr, "a.test", "/get?key=greeting").await?.body,
        "from nats"
    );
    assert_eq!(
        get(addr, "a.test", "/all").await?.body,
        "colour=red\ndb.url=postgres://db\ngreeting=from nats"
    );
    assert_eq!(
        get(addr, "b.test", "/get?key=greeting").await?.body,
        "manifest",
        "namespace `other` reads its own bucket"
    );

    kv.delete("greeting").await?;
    assert_eq!(
        get(addr, "a.test", "/get?key=greeting").await?.body,
        "manifest",
        "a key deleted from the bucket shows its default again"
    );
    kv.put("binary", vec![0xff, 0xfe].into()).await?;
    let binary = get(addr, "a.test", "/get?key=binary").await?;
    assert!(
        binary.status == 500 && binary.body.contains("not UTF-8"),
        "{binary:?}"
    );
    host.shutdown().await;
    Ok(())
}

/// The bucket setting becomes the plugin's grant, so it may hold no
/// wildcard or other subject syntax; and it is required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_name_that_would_widen_the_grant_is_refused() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let host = host_on(&server).await?;
    for (bucket, why) in [
        (Some("*"), "is not a KV bucket name"),
        (Some("a.>"), "is not a KV bucket name"),
        (None, "needs `config-nats.bucket`"),
    ] {
        let pairs: Vec<(&str, &str)> = bucket
            .map(|b| ("config-nats.bucket", b))
            .into_iter()
            .collect();
        let refused = host.add_plugin(config_nats(&pairs)).await;
        let message = format!("{:#}", refused.expect_err("refused"));
        assert!(message.contains(why), "{bucket:?}: {message}");
    }
    host.shutdown().await;
    Ok(())
}
