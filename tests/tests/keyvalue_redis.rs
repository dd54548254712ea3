//! The keyvalue suite against `keyvalue-redis` (shared, RESP2 over
//! `wasi:sockets`) on a real `redis-server`; where its keys live and that
//! namespaces stay apart; a Redis that stops answering or goes away; the
//! socket grant; AUTH, SELECT and the reply cap.

use keel_tests::keel::spec::{LinkMode, PluginGrants, PluginSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::keyvalue_suite::Target;
use keel_tests::redis::{RedisServer, Reply};
use keel_tests::{get, guest, request, run_keel, start_host, write_file};
use std::time::{Duration, Instant};

/// The plugin, pointed at `address`, granted the sockets `granted`, with
/// more `config`.
fn plugin(address: &str, granted: &[&str], config: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(
        "keyvalue-redis",
        Some(guest("keyvalue_redis")),
        LinkMode::Shared,
    );
    spec.config.insert("address".into(), address.into());
    spec.config
        .extend(config.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    spec.grants = granted
        .iter()
        .fold(PluginGrants::default(), |grants, g| grants.with_sockets(*g));
    spec
}

/// Workloads `a.test` and `b.test` (namespace `kv`) on a fresh server,
/// the plugin configured with `config` more.
async fn redis_with(config: &[(&str, &str)]) -> anyhow::Result<Target> {
    let server = RedisServer::start()?;
    let host = start_host(None).await?;
    let address = server.address();
    host.add_plugin(plugin(&address, &[address.as_str()], config))
        .await?;
    let mut target = Target::start(host, "kv", "keyvalue_user", None).await?;
    target.redis = Some(server);
    Ok(target)
}

async fn redis() -> anyhow::Result<Target> {
    redis_with(&[]).await
}

keel_tests::keyvalue_suite!(redis);

fn server(t: &Target) -> &RedisServer {
    t.redis.as_ref().expect("a Redis target")
}

/// Keys are `<prefix><namespace>-<workload>-<bucket>:<key>`: what keel
/// writes other Redis clients read under that name, and the other way
/// round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_live_under_the_documented_prefix() -> anyhow::Result<()> {
    let t = redis_with(&[("prefix", "app/")]).await?;
    let put = request(t.addr, "PUT", "a.test", "/set?bucket=orders&key=o1", "x").await?;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(server(&t).keys()?, ["app/kv-a-orders:o1"]);
    let written = server(&t).command(&["SET", "app/kv-a-orders:o2", "from redis"])?;
    assert_eq!(written, Reply::Status("OK".into()));
    let got = get(t.addr, "a.test", "/get?bucket=orders&key=o2").await?;
    assert_eq!((got.status, got.body.as_str()), (200, "from redis"));
    t.host.shutdown().await;
    Ok(())
}

/// Workload `app` of namespace `one` and workload `app` of namespace
/// `two`, both served by `keyvalue-redis` on one server.
async fn two_namespaces(server: &RedisServer) -> anyhow::Result<Host> {
    let host = start_host(None).await?;
    let address = server.address();
    host.add_plugin(plugin(&address, &[address.as_str()], &[]))
        .await?;
    for namespace in ["one", "two"] {
        let mut spec =
            WorkloadSpec::single(WorkloadId::new(namespace, "app"), guest("keyvalue_user"));
        spec.http.host = Some(format!("{namespace}.test"));
        host.start_workload(spec).await?;
    }
    Ok(host)
}

/// Two namespaces whose workloads and buckets have the same names still
/// reach disjoint keys: neither reads, tests, lists, counts or deletes
/// the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_namespaces_do_not_see_each_others_keys() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let host = two_namespaces(&redis).await?;
    let addr = host.http_addr().expect("ingress");
    let put = request(addr, "PUT", "one.test", "/set?bucket=b&key=secret", "one's").await?;
    assert_eq!(put.status, 200, "{put:?}");
    request(
        addr,
        "POST",
        "one.test",
        "/increment?bucket=b&key=n&delta=5",
        "",
    )
    .await?;

    let got = get(addr, "two.test", "/get?bucket=b&key=secret").await?;
    assert_eq!((got.status, got.body.as_str()), (404, "absent"));
    assert_eq!(
        get(addr, "two.test", "/exists?bucket=b&key=secret")
            .await?
            .body,
        "false"
    );
    let listed = get(addr, "two.test", "/list-all?bucket=b").await?;
    assert_eq!(listed.body, "pages=1 keys=0\n", "{listed:?}");
    let many = get(addr, "two.test", "/get-many?bucket=b&keys=secret,n").await?;
    assert_eq!(many.body, "secret absent\nn absent");
    let counted = request(
        addr,
        "POST",
        "two.test",
        "/increment?bucket=b&key=n&delta=1",
        "",
    )
    .await?;
    assert_eq!(counted.body, "1", "two's counter starts from its own 0");
    request(
        addr,
        "POST",
        "two.test",
        "/delete-many?bucket=b&keys=secret,n",
        "",
    )
    .await?;
    request(
        addr,
        "DELETE",
        "two.test",
        "/delete?bucket=b&key=secret",
        "",
    )
    .await?;

    let kept = get(addr, "one.test", "/get-many?bucket=b&keys=secret,n").await?;
    assert_eq!(kept.body, "secret=one's\nn=5");
    assert_eq!(redis.keys()?, ["keel:one-app-b:n", "keel:one-app-b:secret"]);
    host.shutdown().await;
    Ok(())
}

/// How long a call may take when Redis does not answer: the plugin's
/// `timeout_ms` of the tests below, and then some, yet under the plugin's
/// `call_timeout` (5 s), past which the instance would be trapped.
const TIMEOUT_MS: &str = "500";
const WITHIN: Duration = Duration::from_secs(4);

/// A Redis frozen mid-run (it accepts connections, answers nothing) costs
/// each call an error once its `timeout_ms` is spent, never a hang or the
/// plugin instance; once it answers again, so does the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_redis_gives_errors_within_the_deadline() -> anyhow::Result<()> {
    let t = redis_with(&[("timeout_ms", TIMEOUT_MS)]).await?;
    t.call("a", "PUT", "/set?bucket=b&key=k", "before").await?;
    server(&t).pause()?;
    for path in [
        "/get?bucket=b&key=k",
        "/list?bucket=b",
        "/exists?bucket=b&key=k",
    ] {
        let began = Instant::now();
        let failed = t.get("a", path).await?;
        let took = began.elapsed();
        assert_eq!(failed.status, 500, "{path}: {failed:?}");
        assert!(
            failed
                .body
                .contains("took longer than the call's 500 ms (`timeout_ms`)"),
            "{path}: {failed:?}"
        );
        assert!(took < WITHIN, "{path} took {took:?}");
    }
    assert_eq!(t.host.shared_plugin_restarts("keyvalue-redis"), 0);
    server(&t).resume()?;
    let got = t.get("a", "/get?bucket=b&key=k").await?;
    assert_eq!((got.status, got.body.as_str()), (200, "before"));
    t.host.shutdown().await;
    Ok(())
}

/// A Redis that goes away is an error at once; one that comes back (here
/// empty: nothing is persisted) is used again, through a new connection,
/// without the workload noticing the old one died.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_redis_is_an_error_and_a_restarted_one_is_used_again() -> anyhow::Result<()> {
    let mut t = redis_with(&[("timeout_ms", TIMEOUT_MS)]).await?;
    t.call("a", "PUT", "/set?bucket=b&key=k", "v1").await?;
    let redis = t.redis.as_mut().expect("Redis");
    redis.stop();
    let began = Instant::now();
    let failed = t.get("a", "/get?bucket=b&key=k").await?;
    assert_eq!(failed.status, 500, "{failed:?}");
    assert!(failed.body.contains("connecting to Redis at"), "{failed:?}");
    assert!(began.elapsed() < WITHIN, "took {:?}", began.elapsed());

    t.redis.as_mut().expect("Redis").restart()?;
    let put = t.call("a", "PUT", "/set?bucket=b&key=k", "v2").await?;
    assert_eq!(put.status, 200, "{put:?}");
    // Restarted under the plugin's open connection: the first command on
    // it finds it dead and goes again on a new one.
    t.redis.as_mut().expect("Redis").restart()?;
    let missing = t.get("a", "/get?bucket=b&key=k").await?;
    assert_eq!((missing.status, missing.body.as_str()), (404, "absent"));
    assert_eq!(t.host.shared_plugin_restarts("keyvalue-redis"), 0);
    t.host.shutdown().await;
    Ok(())
}

/// A manifest pointing the plugin at an address its grants do not list
/// is refused at start, with the file, the line and the grant to add.
#[test]
fn a_manifest_pointing_at_an_ungranted_address_is_refused_at_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = format!(
        "[[workload]]\nnamespace = \"kv\"\nname = \"a\"\n[[workload.component]]\npath = {:?}\n\n\
         [[plugin]]\nname = \"keyvalue-redis\"\npath = {:?}\nmode = \"shared\"\n\
         config = {{ address = \"127.0.0.1:6380\" }}\n\
         [plugin.grants]\nsockets = [\"127.0.0.1:6379\"]\n",
        guest("keyvalue_user"),
        guest("keyvalue_redis"),
    );
    let path = write_file(dir.path(), "app.toml", &manifest);
    let cache = dir.path().join("cache");
    let (code, stderr) = run_keel(&[
        "run",
        path.to_str().expect("utf-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().expect("utf-8 path"),
    ])?;
    assert!(matches!(code, Some(c) if c != 0), "{code:?}: {stderr}");
    assert!(stderr.contains("app.toml:8:"), "{stderr}");
    assert!(
        stderr.contains(
            "`config.address`: plugin `keyvalue-redis` would connect to `127.0.0.1:6380`, which \
             its `[plugin.grants] sockets` does not grant: add \"127.0.0.1:6380\" there"
        ),
        "{stderr}"
    );
    Ok(())
}

/// The library API refuses the same declaration, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_refuses_an_ungranted_address_too() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let refused = host
        .add_plugin(plugin("127.0.0.1:6380", &["127.0.0.1:6379"], &[]))
        .await;
    match refused {
        Err(keel_tests::keel::Error::InvalidSpec(invalid)) => {
            assert_eq!(invalid.field, "config.address");
        }
        other => panic!("expected an invalid plugin spec, got {other:?}"),
    }
    host.shutdown().await;
    Ok(())
}

/// A host name cannot be checked before it is resolved: one resolving to
/// an address the grants do not list is refused the connection by the
/// host's socket allowlist on first use, and the plugin says which
/// address to grant; the server there never sees a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_name_resolving_to_an_ungranted_address_is_refused_on_first_use()
-> anyhow::Result<()> {
    let granted = RedisServer::start()?;
    let other = RedisServer::start()?;
    let port = other
        .address()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let host = start_host(None).await?;
    let mut spec = plugin(
        &format!("localhost:{port}"),
        &[granted.address().as_str()],
        &[],
    );
    spec.grants.name_lookup = true;
    host.add_plugin(spec).await?;
    let mut workload = WorkloadSpec::single(WorkloadId::new("kv", "a"), guest("keyvalue_user"));
    workload.http.host = Some("a.test".into());
    host.start_workload(workload).await?;
    let before = other.connections_received()?;
    let refused = get(
        host.http_addr().expect("ingress"),
        "a.test",
        "/get?bucket=b&key=k",
    )
    .await?;
    assert_eq!(refused.status, 500, "{refused:?}");
    // `localhost` is 127.0.0.1 or ::1: the message names the one tried.
    let named = format!("the Redis address `localhost:{port}` (");
    let advice = format!(":{port}) is not granted to this plugin: list `");
    for part in [
        named.as_str(),
        advice.as_str(),
        "` in the plugin's `[plugin.grants] sockets`",
    ] {
        assert!(refused.body.contains(part), "{part}: {refused:?}");
    }
    assert_eq!(
        other.connections_received()?,
        before + 1,
        "only this check connected"
    );
    host.shutdown().await;
    Ok(())
}

/// It imports `wasi:sockets`, so composed (inside the workload's Store,
/// with the workload's grants) it is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_it_is_refused_because_it_imports_sockets() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = plugin("127.0.0.1:6379", &["127.0.0.1:6379"], &[]);
    spec.mode = LinkMode::Composed;
    host.add_plugin(spec).await?;
    let workload = WorkloadSpec::single(WorkloadId::new("kv", "a"), guest("keyvalue_user"));
    let err = host.start_workload(workload).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("wasi:sockets"), "{text}");
    host.shutdown().await;
    Ok(())
}

/// `password` is sent with AUTH and `db` selected on every connection; a
/// wrong password is an error naming the config key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_and_database_apply_to_every_connection() -> anyhow::Result<()> {
    let redis = RedisServer::start_with_password(Some("s3cret"))?;
    let address = redis.address();
    let host = start_host(None).await?;
    let config = [("password", "s3cret"), ("db", "3")];
    host.add_plugin(plugin(&address, &[address.as_str()], &config))
        .await?;
    let mut target = Target::start(host, "kv", "keyvalue_user", None).await?;
    target.redis = Some(redis);
    let put = target.call("a", "PUT", "/set?bucket=b&key=k", "v").await?;
    assert_eq!(put.status, 200, "{put:?}");
    let Reply::Bulk(Some(keyspace)) = server(&target).command(&["INFO", "keyspace"])? else {
        anyhow::bail!("INFO keyspace is not a bulk string");
    };
    let keyspace = String::from_utf8_lossy(&keyspace);
    assert!(keyspace.contains("db3:keys=1,"), "{keyspace}");
    assert!(!keyspace.contains("db0:"), "{keyspace}");
    target.host.shutdown().await;

    let host = start_host(None).await?;
    host.add_plugin(plugin(
        &address,
        &[address.as_str()],
        &[("password", "wrong")],
    ))
    .await?;
    let wrong = Target::start(host, "kv", "keyvalue_user", None).await?;
    let refused = wrong.get("a", "/get?bucket=b&key=k").await?;
    assert_eq!(refused.status, 500, "{refused:?}");
    assert!(
        refused.body.contains("authenticating (config `password`)"),
        "{refused:?}"
    );
    wrong.host.shutdown().await;
    Ok(())
}

/// A reply over `max_reply_bytes` is an error, not an allocation of what
/// the server announced; the connection it arrived on is dropped and the
/// next call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_over_the_cap_are_refused() -> anyhow::Result<()> {
    let t = redis_with(&[("max_reply_bytes", "1000")]).await?;
    let put = t
        .call("a", "PUT", "/set?bucket=b&key=big", vec![b'x'; 2000])
        .await?;
    assert_eq!(put.status, 200, "{put:?}");
    let refused = t.get("a", "/get?bucket=b&key=big").await?;
    assert_eq!(refused.status, 500, "{refused:?}");
    assert!(
        refused
            .body
            .contains("larger than 1000 bytes (`max_reply_bytes`)"),
        "{refused:?}"
    );
    t.call("a", "PUT", "/set?bucket=b&key=small", "ok").await?;
    assert_eq!(t.get("a", "/get?bucket=b&key=small").await?.body, "ok");
    t.host.shutdown().await;
    Ok(())
}
