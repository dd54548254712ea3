//! keel as a library inside another program: components and plugins given
//! as bytes, workloads removed and their state freed, state changes watched,
//! and requests served through `Host::handle` without keel's listener.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use keel_tests::keel::spec::{LinkMode, PluginSpec, SharedScope};
use keel_tests::keel::{Error, Host, WorkloadId, WorkloadSpec, WorkloadState};
use keel_tests::{get, guest, request, start_host, test_engine};
use std::time::Duration;

/// A bound on waits for a state change: generous, never reached when keel
/// works.
const PATIENCE: Duration = Duration::from_secs(30);

fn bytes_of(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(guest(name))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_and_a_plugin_start_from_bytes() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    host.add_plugin(PluginSpec::from_bytes(
        "tally",
        bytes_of("tally_plugin")?,
        LinkMode::Shared,
    ))
    .await?;
    let mut user = WorkloadSpec::from_bytes(
        WorkloadId::new("tenants", "a"),
        "user",
        bytes_of("tally_user")?,
    );
    user.http.host = Some("a.test".into());
    host.start_workload(user).await?;
    let answer = get(addr, "a.test", "/sum?values=1,2,3").await?;
    assert_eq!((answer.status, answer.body.as_str()), (200, "6"));

    // Bytes are checked like a file: a core module is not a component.
    let module = b"\0asm\x01\0\0\0".to_vec();
    match host
        .start_workload(WorkloadSpec::from_bytes(
            WorkloadId::new("tenants", "b"),
            "b",
            module.clone(),
        ))
        .await
    {
        Err(Error::InvalidSpec(invalid)) => {
            assert_eq!(invalid.field, "components[0].source");
            assert!(invalid.message.contains("core WebAssembly module"));
        }
        other => panic!("expected an invalid spec, got {other:?}"),
    }
    match host
        .add_plugin(PluginSpec::from_bytes("junk", module, LinkMode::Shared))
        .await
    {
        Err(Error::InvalidSpec(invalid)) => assert_eq!(invalid.field, "source"),
        other => panic!("expected an invalid plugin spec, got {other:?}"),
    }
    host.shutdown().await;
    Ok(())
}

/// A workload with its own instance of the in-memory key-value plugin.
fn kv_user() -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new("kv", "a"), guest("keyvalue_user"));
    spec.http.host = Some("a.test".into());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_workload_leaves_nothing_behind_for_the_next_with_its_id() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    host.add_plugin(
        PluginSpec::new("keyvalue-memory", None, LinkMode::Shared)
            .with_scope(SharedScope::Workload),
    )
    .await?;
    let id = host.start_workload(kv_user()).await?;
    let put = request(addr, "PUT", "a.test", "/set?bucket=b&key=k", "kept").await?;
    assert_eq!(put.status, 200, "{}", put.body);

    // An active workload is not removed.
    match host.remove_workload(&id).await {
        Err(Error::StillActive { id: refused, state }) => {
            assert_eq!((refused, state), (id.clone(), WorkloadState::Running));
        }
        other => panic!("expected StillActive, got {other:?}"),
    }
    assert_eq!(
        get(addr, "a.test", "/get?bucket=b&key=k").await?.body,
        "kept"
    );

    // Stopped and started again, the workload keeps its plugin instance...
    host.stop_workload(&id).await?;
    host.start_workload(kv_user()).await?;
    assert_eq!(
        get(addr, "a.test", "/get?bucket=b&key=k").await?.body,
        "kept"
    );

    // ...removed, it is gone, and so is its plugin instance with the data.
    host.stop_workload(&id).await?;
    host.remove_workload(&id).await?;
    assert_eq!(host.status(&id), None);
    assert!(host.list().is_empty());
    assert_eq!(get(addr, "a.test", "/").await?.status, 404, "route freed");
    assert!(matches!(
        host.remove_workload(&id).await,
        Err(Error::NotFound(_))
    ));
    host.start_workload(kv_user()).await?;
    let answer = get(addr, "a.test", "/get?bucket=b&key=k").await?;
    assert_eq!(answer.status, 404, "{}", answer.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_workload_sees_it_stop_and_go() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let id = host
        .start_workload(WorkloadSpec::single(
            WorkloadId::new("demo", "hello"),
            guest("hello"),
        ))
        .await?;
    let mut states = host.watch(&id).expect("a started workload is watched");
    assert_eq!(*states.borrow_and_update(), WorkloadState::Running);
    host.stop_workload(&id).await?;
    // Stopping may be overtaken by Stopped before the watcher looks.
    let stopped = tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == WorkloadState::Stopped))
        .await?
        .map(|s| s.clone())?;
    assert_eq!(stopped, WorkloadState::Stopped);
    host.remove_workload(&id).await?;
    assert!(
        tokio::time::timeout(PATIENCE, states.changed())
            .await?
            .is_err(),
        "the channel closes once the workload is removed"
    );
    assert!(host.watch(&id).is_none());

    // A failed start is watched in its final state.
    let broken = WorkloadId::new("demo", "broken");
    let mut spec = WorkloadSpec::single(broken.clone(), guest("hello"));
    spec.subscriptions
        .push(keel_tests::keel::spec::SubscriptionSpec::new("orders"));
    assert!(host.start_workload(spec).await.is_err());
    let state = host.watch(&broken).expect("listed").borrow().clone();
    assert!(matches!(state, WorkloadState::Error(_)), "{state:?}");
    host.shutdown().await;
    Ok(())
}

/// One frame of an embedder's request body, or its own kind of error.
type Chunk = Result<hyper::body::Frame<Bytes>, std::io::Error>;

/// A request body from an embedder's own stream, failing with an error type
/// keel does not know.
fn failing_body() -> StreamBody<futures::stream::Iter<std::vec::IntoIter<Chunk>>> {
    StreamBody::new(futures::stream::iter(vec![
        Ok(hyper::body::Frame::data(Bytes::from_static(b"part"))),
        Err(std::io::Error::other("the client went away")),
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_served_without_a_listener() -> anyhow::Result<()> {
    let host = Host::builder()
        .engine_options(test_engine())
        .start()
        .await?;
    assert_eq!(host.http_addr(), None);
    let mut spec = WorkloadSpec::from_bytes(
        WorkloadId::new("web", "behaviours"),
        "behaviours",
        bytes_of("http_behaviours")?,
    );
    spec.http.host = Some("web.test".into());
    spec.limits.max_request_body = keel_tests::keel::spec::ByteSize(16);
    host.start_workload(spec).await?;
    let call = |host_header: &'static str, path: &'static str, body: &'static str| {
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header(http::header::HOST, host_header)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("a valid request");
        let host = &host;
        async move {
            let response = host.handle(request).await;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }
    };
    assert_eq!(
        call("web.test:8080", "/echo", "ping").await?,
        (200, "ping".to_string())
    );
    assert_eq!(call("other.test", "/echo", "ping").await?.0, 404);
    // The workload's limits hold as they do behind keel's own listener.
    assert_eq!(
        call("web.test", "/echo", "far more than sixteen bytes")
            .await?
            .0,
        413
    );
    // An embedder's body that fails reaches the guest as a failed read.
    let request = http::Request::builder()
        .method("POST")
        .uri("/echo")
        .header(http::header::HOST, "web.test")
        .body(failing_body())?;
    let response = host.handle(request).await;
    assert_eq!(response.status().as_u16(), 400);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_namespaces_last_workload_frees_its_shared_instances() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    // keyvalue-memory in its default scope: one instance per namespace.
    host.add_plugin(PluginSpec::new("keyvalue-memory", None, LinkMode::Shared))
        .await?;
    let id = host.start_workload(kv_user()).await?;
    let put = request(addr, "PUT", "a.test", "/set?bucket=b&key=k", "kept").await?;
    assert_eq!(put.status, 200, "{}", put.body);
    let pool = host.engine().pool();
    assert_eq!(
        pool.shared_in_use(),
        1,
        "the namespace's instance holds a slot"
    );

    host.stop_workload(&id).await?;
    host.remove_workload(&id).await?;
    assert_eq!(
        pool.shared_in_use(),
        0,
        "the last workload of the namespace gave its instance's slot back"
    );
    host.start_workload(kv_user()).await?;
    let answer = get(addr, "a.test", "/get?bucket=b&key=k").await?;
    assert_eq!(answer.status, 404, "a fresh instance: {}", answer.body);
    host.shutdown().await;
    Ok(())
}
