//! Plugin layers: `keyvalue-audit` over a backend it wraps, in shared,
//! composed and mixed modes, recording exactly the calls made (observed in
//! the host log, where its `wasi:logging` records go); the keyvalue suite
//! through the layer; cycles and missing links refused with the chain
//! printed; `keel inspect` showing the chain.

use futures::StreamExt as _;
use keel_tests::keel::spec::{LinkMode, PluginSpec, Wraps};
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::keyvalue_suite::Target;
use keel_tests::nats::NatsServer;
use keel_tests::{KeelProcess, get, guest, request, start_host, write_file};
use std::time::Duration;

/// The audit layer, declared in `mode`, wrapping `backend`.
fn audit(mode: LinkMode, backend: &str) -> PluginSpec {
    audit_named("keyvalue-audit", mode, backend)
}

/// The audit component under `name`, wrapping `backend`.
fn audit_named(name: &str, mode: LinkMode, backend: &str) -> PluginSpec {
    PluginSpec::new(name, Some(guest("keyvalue_audit")), mode).with_wraps(Wraps::plugin(backend))
}

/// A manifest: `plugins` (TOML), then workload `shop/cart` running the
/// `keyvalue-user` fixture.
fn manifest(dir: &std::path::Path, plugins: &str) -> std::path::PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            r#"{plugins}
[[workload]]
namespace = "shop"
name = "cart"
[[workload.component]]
name = "api"
path = {user:?}
"#,
            user = guest("keyvalue_user")
        ),
    )
}

/// `[[plugin]]` of the audit layer in `mode`, wrapping `backend`.
fn audit_toml(mode: &str, backend: &str) -> String {
    format!(
        r#"
[[plugin]]
name = "keyvalue-audit"
path = {path:?}
mode = "{mode}"
wraps = "{backend}"
"#,
        path = guest("keyvalue_audit")
    )
}

/// The messages of the audit records in keel's log so far, in order.
fn audit_records(keel: &KeelProcess) -> Vec<String> {
    keel.log()
        .iter()
        .filter(|line| line.contains("context=\"keyvalue-audit\""))
        .filter_map(|line| {
            let message = line.split_once("keel::guest: ")?.1;
            Some(message.split_once(" workload=")?.0.to_string())
        })
        .collect()
}

/// Makes a known run of calls through workload `shop/cart` at `addr` (its
/// only HTTP workload), checking each answer; returns the records the audit
/// layer must have written for them, in order.
async fn drive(addr: std::net::SocketAddr) -> anyhow::Result<Vec<String>> {
    let call = |method: &'static str, path: &'static str, body: &'static str| async move {
        request(addr, method, "localhost", path, body).await
    };
    let set = call("PUT", "/set?bucket=cart&key=apple", "3").await?;
    anyhow::ensure!(set.status == 200, "{set:?}");
    let got = call("GET", "/get?bucket=cart&key=apple", "").await?;
    anyhow::ensure!((got.status, got.body.as_str()) == (200, "3"), "{got:?}");
    let absent = call("GET", "/get?bucket=cart&key=pear", "").await?;
    anyhow::ensure!(absent.status == 404, "{absent:?}");
    let bumped = call("POST", "/increment?bucket=cart&key=n&delta=2", "").await?;
    anyhow::ensure!(bumped.body == "2", "{bumped:?}");
    let many = call("POST", "/set-many?bucket=cart", "a=1\nb=2").await?;
    anyhow::ensure!(many.status == 200, "{many:?}");
    let read = call("GET", "/get-many?bucket=cart&keys=a,b", "").await?;
    anyhow::ensure!(read.body == "a=1\nb=2", "{read:?}");
    let gone = call("POST", "/delete-many?bucket=cart&keys=a", "").await?;
    anyhow::ensure!(gone.status == 200, "{gone:?}");
    let exists = call("GET", "/exists?bucket=cart&key=b", "").await?;
    anyhow::ensure!(exists.body == "true", "{exists:?}");
    let deleted = call("DELETE", "/delete?bucket=cart&key=b", "").await?;
    anyhow::ensure!(deleted.status == 200, "{deleted:?}");
    let op = |op: &str, key: Option<&str>| {
        let key = key.map(|k| format!(" key=\"{k}\"")).unwrap_or_default();
        format!("caller=shop/cart op={op} bucket=\"cart\"{key} outcome=ok")
    };
    let open = || op("open", None);
    Ok(vec![
        open(),
        op("set", Some("apple")),
        open(),
        op("get", Some("apple")),
        open(),
        op("get", Some("pear")),
        open(),
        op("increment", Some("n")),
        open(),
        op("set-many", Some("a,b")),
        open(),
        op("get-many", Some("a,b")),
        open(),
        op("delete-many", Some("a")),
        open(),
        op("exists", Some("b")),
        open(),
        op("delete", Some("b")),
    ])
}

/// Runs `drive` against `keel` and checks that the audit records are
/// exactly the calls made, nothing more.
fn records_exactly_the_calls(keel: &mut KeelProcess) -> anyhow::Result<()> {
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(120))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let expected = runtime.block_on(drive(addr))?;
    // The last call's record is the signal that every record is in.
    let last = expected.last().cloned().unwrap_or_default();
    keel.wait_for_log_line(
        "the last audit record",
        |l| l.contains(&last) && l.contains("context=\"keyvalue-audit\""),
        Duration::from_secs(30),
    )?;
    assert_eq!(audit_records(keel), expected);
    Ok(())
}

/// A shared audit layer over the shared in-memory store: every call made is
/// recorded once, with the workload as caller.
#[test]
fn audit_over_shared_memory_records_exactly_the_calls_made() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        "[[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\n{}",
        audit_toml("shared", "keyvalue-memory")
    );
    let app = manifest(dir.path(), &plugins);
    let mut keel = KeelProcess::spawn(&app, &dir.path().join("cache"), &[])?;
    records_exactly_the_calls(&mut keel)
}

/// A composed audit layer over the composed JetStream store: the records
/// are exact, and the values are really in the JetStream bucket.
#[test]
fn audit_over_composed_nats_records_exactly_the_calls_made() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let app = manifest(dir.path(), &audit_toml("composed", "keyvalue-nats"));
    let mut keel = KeelProcess::spawn(&app, &dir.path().join("cache"), &["--nats", &server.url()])?;
    records_exactly_the_calls(&mut keel)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let kv = async_nats::jetstream::new(client)
            .get_key_value("shop-cart-cart")
            .await?;
        assert_eq!(kv.get("apple").await?.expect("apple").as_ref(), b"3");
        assert_eq!(kv.get("n").await?.expect("n").as_ref(), b"2");
        let keys: Vec<String> = kv
            .keys()
            .await?
            .filter_map(|k| async { k.ok() })
            .collect()
            .await;
        assert!(!keys.contains(&"b".to_string()), "{keys:?}");
        anyhow::Ok(())
    })?;
    Ok(())
}

/// Mixed: a composed audit layer over the shared in-memory store. The
/// layer is composed into the workload and the composed component's
/// remaining keyvalue imports go to the shared store.
#[test]
fn a_composed_layer_over_a_shared_store_works() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        "[[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\n{}",
        audit_toml("composed", "keyvalue-memory")
    );
    let app = manifest(dir.path(), &plugins);
    let mut keel = KeelProcess::spawn(&app, &dir.path().join("cache"), &[])?;
    let line = keel.wait_for_log_line(
        "the store import beneath the layer",
        |l| l.contains("import served by plugin") && l.contains("beneath=\"keyvalue-audit\""),
        Duration::from_secs(120),
    )?;
    assert!(
        line.contains("plugin=\"keyvalue-memory\"") && line.contains("mode=\"shared\""),
        "{line}"
    );
    records_exactly_the_calls(&mut keel)
}

/// The keyvalue suite, through a shared audit layer over the in-memory
/// store: the layer changes nothing a workload sees (and the backend keeps
/// the workloads apart, so it sees each original caller).
mod suite_through_shared_layer {
    use super::*;

    async fn audited() -> anyhow::Result<Target> {
        let host = start_host(None).await?;
        host.add_plugin(audit(LinkMode::Shared, "keyvalue-memory"))
            .await?;
        Target::start(host, "kv", "keyvalue_user", None).await
    }

    keel_tests::keyvalue_suite!(audited);
}

/// The keyvalue suite through a composed audit layer over the shared
/// in-memory store.
mod suite_through_composed_layer {
    use super::*;

    async fn audited() -> anyhow::Result<Target> {
        let host = start_host(None).await?;
        host.add_plugin(audit(LinkMode::Composed, "keyvalue-memory"))
            .await?;
        Target::start(host, "kv", "keyvalue_user", None).await
    }

    keel_tests::keyvalue_suite!(audited);
}

/// Starts `shop/cart` on a host with `plugins` declared; the error it fails
/// with.
async fn refused_with(plugins: Vec<PluginSpec>) -> anyhow::Result<String> {
    let host = start_host(None).await?;
    for plugin in plugins {
        host.add_plugin(plugin).await?;
    }
    let spec = WorkloadSpec::single(WorkloadId::new("shop", "cart"), guest("keyvalue_user"));
    let started = host.start_workload(spec).await;
    host.shutdown().await;
    match started {
        Ok(_) => anyhow::bail!("the workload started"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

/// Two layers wrapping each other: refused, the cycle printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_layers_is_refused_with_the_chain() -> anyhow::Result<()> {
    let error = refused_with(vec![
        audit_named("keyvalue-audit", LinkMode::Shared, "keyvalue-quota"),
        audit_named("keyvalue-quota", LinkMode::Shared, "keyvalue-audit"),
    ])
    .await?;
    assert!(
        error.contains(
            "plugin layers form a cycle: keyvalue-audit → keyvalue-quota → keyvalue-audit"
        ),
        "{error}"
    );
    Ok(())
}

/// A layer wrapping a plugin that is not declared, directly or further
/// down: refused, the chain printed to the missing link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_link_is_refused_with_the_chain() -> anyhow::Result<()> {
    let error = refused_with(vec![audit(LinkMode::Shared, "keyvalue-quota")]).await?;
    assert!(
        error.contains(
            "missing link in the plugin chain keyvalue-audit → keyvalue-quota (missing): \
             no plugin `keyvalue-quota` is declared"
        ),
        "{error}"
    );
    let error = refused_with(vec![
        audit_named("keyvalue-audit", LinkMode::Composed, "keyvalue-quota"),
        audit_named("keyvalue-quota", LinkMode::Shared, "keyvalue-store"),
    ])
    .await?;
    assert!(
        error.contains("keyvalue-audit → keyvalue-quota → keyvalue-store (missing)"),
        "{error}"
    );
    Ok(())
}

/// `keel inspect` shows, per import, the chain it goes down, and every link.
#[test]
fn inspect_shows_the_chain() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        "[[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\n{}",
        audit_toml("composed", "keyvalue-memory")
    );
    let app = manifest(dir.path(), &plugins);
    let user = guest("keyvalue_user");
    let (code, out, err) = keel_tests::keel_output(&[
        "inspect",
        user.to_str().expect("utf-8 path"),
        "--manifest",
        app.to_str().expect("utf-8 path"),
    ])?;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(
            "wasi:keyvalue/store@0.2.0-draft (instance, 6 functions, 1 resources) -> plugin \
             `keyvalue-audit` (composed, its export `wasi:keyvalue/store@0.2.0-draft`), a layer: \
             keyvalue-audit (composed) → keyvalue-memory (shared)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "keyvalue-audit imports wasi:logging/logging@0.1.0-draft -> plugin `logging` (composed"
        ),
        "{out}"
    );
    Ok(())
}

/// A workload picking the wrapped store itself in `[workload.plugins]`
/// bypasses the layer (the manifest's say); without a pick, the layer is
/// the one fitting plugin, not a second beside the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_is_the_default_and_a_pick_reaches_beneath_it() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    host.add_plugin(PluginSpec::new("keyvalue-memory", None, LinkMode::Shared))
        .await?;
    host.add_plugin(audit(LinkMode::Shared, "keyvalue-memory"))
        .await?;
    let mut direct =
        WorkloadSpec::single(WorkloadId::new("shop", "direct"), guest("keyvalue_user"));
    direct.http.host = Some("direct.test".to_string());
    direct
        .plugins
        .insert("wasi:keyvalue/store".into(), "keyvalue-memory".into());
    direct
        .plugins
        .insert("wasi:keyvalue/atomics".into(), "keyvalue-memory".into());
    direct
        .plugins
        .insert("wasi:keyvalue/batch".into(), "keyvalue-memory".into());
    host.start_workload(direct).await?;
    let mut audited = WorkloadSpec::single(WorkloadId::new("shop", "cart"), guest("keyvalue_user"));
    audited.http.host = Some("cart.test".to_string());
    host.start_workload(audited).await?;
    let addr = host.http_addr().expect("ingress");
    for who in ["direct.test", "cart.test"] {
        let set = request(addr, "PUT", who, "/set?bucket=b&key=k", who).await?;
        assert_eq!(set.status, 200, "{set:?}");
        let got = get(addr, who, "/get?bucket=b&key=k").await?;
        assert_eq!(got.body, who);
    }
    host.shutdown().await;
    Ok(())
}

/// `[plugin.wraps]` picks per interface. A shared layer's wrapped logging
/// served by `logging-nats` composed into it would act under the layer's
/// grants (its NATS subjects): refused, saying so.
#[test]
fn a_plugin_composed_beneath_a_shared_layer_never_gets_its_grants() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        r#"
[[plugin]]
name = "keyvalue-memory"
mode = "shared"

[[plugin]]
name = "logging-nats"

[[plugin]]
name = "keyvalue-audit"
path = {path:?}
mode = "shared"
[plugin.wraps]
"wasi:keyvalue/store" = "keyvalue-memory"
"wasi:keyvalue/atomics" = "keyvalue-memory"
"wasi:keyvalue/batch" = "keyvalue-memory"
"wasi:logging/logging" = "logging-nats"
"#,
        path = guest("keyvalue_audit")
    );
    let app = manifest(dir.path(), &plugins);
    let cache = dir.path().join("cache");
    let (status, log) = keel_tests::run_keel(&[
        "run",
        app.to_str().unwrap_or_default(),
        "--listen",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().unwrap_or_default(),
    ])?;
    assert_eq!(status, Some(1), "{log}");
    assert!(
        log.contains(
            "plugin `logging-nats` imports keel:core/nats and is composed beneath the shared \
             layer `keyvalue-audit`, where it would act under `keyvalue-audit`'s grants"
        ),
        "{log}"
    );
    Ok(())
}

/// A shared layer over shared plugins: each runs in its own Store with its
/// own grants, and the calls keep their original caller all the way down.
/// Here the audit layer's records go to `logging-nats`, shared: published
/// under the subject of the workload that made the keyvalue call, not of
/// the layer.
#[test]
fn a_shared_layer_passes_the_original_caller_down() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        r#"
[[plugin]]
name = "keyvalue-memory"
mode = "shared"

[[plugin]]
name = "logging-nats"
mode = "shared"

[[plugin]]
name = "keyvalue-audit"
path = {path:?}
mode = "shared"
[plugin.wraps]
"wasi:keyvalue/store" = "keyvalue-memory"
"wasi:keyvalue/atomics" = "keyvalue-memory"
"wasi:keyvalue/batch" = "keyvalue-memory"
"wasi:logging/logging" = "logging-nats"
"#,
        path = guest("keyvalue_audit")
    );
    let app = manifest(dir.path(), &plugins);
    let mut keel = KeelProcess::spawn(&app, &dir.path().join("cache"), &["--nats", &server.url()])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(120))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (expected, records) = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let mut subscriber = client.subscribe("keel.logs.>").await?;
        client.flush().await?;
        let expected = drive(addr).await?;
        let mut records = Vec::new();
        while records.len() < expected.len() {
            let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("subscription ended"))?;
            let record: serde_json::Value = serde_json::from_slice(&message.payload)?;
            records.push((message.subject.to_string(), record));
        }
        anyhow::Ok((expected, records))
    })?;
    for ((subject, record), message) in records.iter().zip(&expected) {
        assert_eq!(subject, "keel.logs.shop.cart");
        assert_eq!(record["namespace"], "shop");
        assert_eq!(record["workload"], "cart");
        assert_eq!(record["component"], "api");
        assert_eq!(record["context"], "keyvalue-audit");
        assert_eq!(record["message"], message.as_str());
    }
    Ok(())
}

/// A shared layer serving a whole namespace over a store kept per
/// workload would carry several workloads' calls into one workload's
/// instance: refused, with the scope to give the layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_layer_wider_than_the_store_beneath_is_refused() -> anyhow::Result<()> {
    use keel_tests::keel::spec::SharedScope;
    let error = refused_with(vec![
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
            .with_scope(SharedScope::Workload),
        audit(LinkMode::Shared, "keyvalue-memory"),
    ])
    .await?;
    assert!(
        error.contains(
            "shared layer `keyvalue-audit` (scope = \"namespace\") cannot wrap `keyvalue-memory` \
             (scope = \"workload\")"
        ),
        "{error}"
    );
    assert!(
        error.contains("give `keyvalue-audit` scope = \"workload\""),
        "{error}"
    );
    Ok(())
}

/// A call the backend refuses is recorded with the backend's error, and
/// the workload gets that error unchanged.
#[test]
fn a_refused_call_is_recorded_with_the_backends_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = format!(
        r#"
[[plugin]]
name = "keyvalue-memory"
mode = "shared"
config = {{ max_keys_per_namespace = "1" }}
{}"#,
        audit_toml("shared", "keyvalue-memory")
    );
    let app = manifest(dir.path(), &plugins);
    let mut keel = KeelProcess::spawn(&app, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(120))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let refused = runtime.block_on(request(
        addr,
        "PUT",
        "localhost",
        "/set?bucket=cart&key=apple",
        "3",
    ))?;
    assert_eq!(refused.status, 500, "{refused:?}");
    let text = refused
        .body
        .strip_prefix("Error::Other(\"")
        .and_then(|b| b.strip_suffix("\")"))
        .unwrap_or_else(|| panic!("not the backend's error: {}", refused.body));
    assert!(text.starts_with("quota exceeded"), "{text}");
    let last = format!(
        "caller=shop/cart op=set bucket=\"cart\" key=\"apple\" outcome=error(other: {text})"
    );
    keel.wait_for_log_line(
        "the refused call's record",
        |l| l.contains(&last),
        Duration::from_secs(30),
    )?;
    assert_eq!(
        audit_records(&keel),
        vec![
            "caller=shop/cart op=open bucket=\"cart\" outcome=ok".to_string(),
            last
        ]
    );
    Ok(())
}
