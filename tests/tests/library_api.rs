//! The library API checks what it is given as strictly as a manifest, and
//! says what is wrong in errors an embedder can match.

use keel_tests::keel::spec::ByteSize;
use keel_tests::keel::{Error, WorkloadId, WorkloadSpec, WorkloadState};
use keel_tests::{get, guest, start_host};

fn hello(namespace: &str, name: &str, http_host: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest("hello"));
    spec.http.host = http_host.map(str::to_string);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_is_checked_like_a_manifest_and_the_field_named() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let refused = |spec: WorkloadSpec| {
        let host = &host;
        async move {
            match host.start_workload(spec).await {
                Err(Error::InvalidSpec(invalid)) => invalid.field,
                other => panic!("expected an invalid spec, got {other:?}"),
            }
        }
    };
    // A dot in a namespace would break the namespacing of its subjects.
    assert_eq!(refused(hello("a.b", "api", None)).await, "id.namespace");
    let mut spec = hello("team-a", "api", None);
    spec.limits.memory = ByteSize(0);
    assert_eq!(refused(spec).await, "limits.memory");
    let mut spec = hello("team-a", "api", None);
    spec.http.outgoing = vec!["a:b:c".to_string()];
    assert_eq!(refused(spec).await, "http.outgoing");
    let mut spec = hello("team-a", "api", None);
    spec.subscriptions
        .push(keel_tests::keel::spec::SubscriptionSpec::new("orders..new"));
    assert_eq!(refused(spec).await, "subscriptions[0].subject");
    assert!(host.list().is_empty(), "nothing refused was started");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_workload_may_not_take_an_http_host_another_serves() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    let first = host
        .start_workload(hello("team-a", "web", Some("shop.test")))
        .await?;
    match host
        .start_workload(hello("team-b", "web", Some("shop.test")))
        .await
    {
        Err(Error::HostTaken { host, owner }) => {
            assert_eq!(host, "shop.test");
            assert_eq!(owner, first);
        }
        other => panic!("expected the host to be refused, got {other:?}"),
    }
    assert_eq!(get(addr, "shop.test", "/").await?.status, 200);
    let second = WorkloadId::new("team-b", "web");
    assert!(
        host.status(&second).is_none(),
        "the refused workload is not listed"
    );

    // An alias counts as much as a host name, both ways.
    let mut aliased = hello("team-c", "web", Some("c.test"));
    aliased.http.aliases = vec!["shop.test".into()];
    assert!(matches!(
        host.start_workload(aliased).await,
        Err(Error::HostTaken { host, .. }) if host == "shop.test"
    ));
    let mut aliased = hello("team-c", "web", Some("c.test"));
    aliased.http.aliases = vec!["www.c.test".into()];
    host.start_workload(aliased).await?;
    assert_eq!(get(addr, "www.c.test", "/").await?.status, 200);
    assert!(matches!(
        host.start_workload(hello("team-d", "web", Some("www.c.test"))).await,
        Err(Error::HostTaken { host, .. }) if host == "www.c.test"
    ));

    // Once the owner has stopped, the host name is free.
    host.stop_workload(&first).await?;
    host.start_workload(hello("team-b", "web", Some("shop.test")))
        .await?;
    assert_eq!(
        host.status(&second).map(|s| s.state),
        Some(WorkloadState::Running)
    );
    assert_eq!(get(addr, "shop.test", "/").await?.status, 200);
    match host.stop_workload(&WorkloadId::new("team-c", "none")).await {
        Err(Error::NotFound(id)) => assert_eq!(id.namespace, "team-c"),
        other => panic!("expected not found, got {other:?}"),
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_failure_says_whether_the_component_or_its_plugins_failed() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    // A component preamble (so the spec passes its checks) over bytes that
    // are no component: it cannot be compiled.
    let mut broken = b"\0asm\x0d\0\x01\0".to_vec();
    broken.extend_from_slice(&[0xff; 32]);
    match host
        .start_workload(WorkloadSpec::from_bytes(
            WorkloadId::new("team-a", "broken"),
            "api",
            broken,
        ))
        .await
    {
        Err(Error::Compile { component, error }) => {
            assert_eq!(component, "api");
            assert!(
                format!("{error:#}").contains("component `api`"),
                "{error:#}"
            );
        }
        other => panic!("expected a compile failure, got {other:?}"),
    }
    // An interface picked for a plugin the host does not have.
    let mut spec = WorkloadSpec::single(WorkloadId::new("team-a", "kv"), guest("keyvalue_user"));
    spec.plugins
        .insert("wasi:keyvalue/store".to_string(), "absent".to_string());
    match host.start_workload(spec).await {
        Err(Error::PluginResolution { component, error }) => {
            assert_eq!(
                component, "kv",
                "a single component takes its workload's name"
            );
            assert!(format!("{error:#}").contains("absent"), "{error:#}");
        }
        other => panic!("expected a plugin resolution failure, got {other:?}"),
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_sharing_a_host_name_each_serve_in_turn() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    let mut a = hello("replicas", "a", Some("svc.test"));
    a.http.shared = true;
    let mut b = WorkloadSpec::single(
        WorkloadId::new("replicas", "b"),
        guest("http_keyvalue_counter"),
    );
    b.http.host = Some("svc.test".into());
    b.http.shared = true;
    let a = host.start_workload(a).await?;
    let b = host.start_workload(b).await?;
    // Each in turn: both answer within a few requests.
    let mut bodies = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let answer = get(addr, "svc.test", "/x").await?;
        assert_eq!(answer.status, 200);
        bodies.insert(answer.body.starts_with("Hello"));
    }
    assert_eq!(bodies.len(), 2, "both replicas answered");
    // One that does not share may not join them.
    assert!(matches!(
        host.start_workload(hello("replicas", "c", Some("svc.test")))
            .await,
        Err(Error::HostTaken { .. })
    ));
    // One stopped, the other takes every request.
    host.stop_workload(&a).await?;
    for _ in 0..3 {
        let answer = get(addr, "svc.test", "/x").await?;
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains("has been visited"), "{}", answer.body);
    }
    host.remove_workload(&a).await?;
    host.stop_workload(&b).await?;
    host.remove_workload(&b).await?;
    assert_eq!(get(addr, "svc.test", "/x").await?.status, 404);
    host.shutdown().await;
    Ok(())
}

/// A spec made only with constructors and `with_*` methods (as an embedder
/// outside the crate must: the specs are `#[non_exhaustive]`) carries every
/// setting through to the running workload: its route and alias, its
/// environment, a read-only volume and its limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_made_with_the_builders_runs_as_it_says() -> anyhow::Result<()> {
    use keel_tests::keel::spec::{ComponentSpec, HttpSpec, Limits, VolumeSpec};
    use keel_tests::request;
    let data = tempfile::tempdir()?;
    std::fs::write(data.path().join("motd.txt"), "built")?;
    let spec = WorkloadSpec::new(
        WorkloadId::new("built", "web"),
        ComponentSpec::new("web", guest("http_behaviours")),
    )
    .with_http(
        HttpSpec::default()
            .with_host("built.test")
            .with_alias("alias.test"),
    )
    .with_env("GREETING", "from the builder")
    .with_volume(VolumeSpec::new(data.path(), "/data").with_read_only(true))
    .with_limits(Limits::default().with_max_request_body(ByteSize(16)));
    let host = start_host(None).await?;
    let addr = host.http_addr().expect("ingress");
    host.start_workload(spec).await?;
    let env = get(addr, "alias.test", "/env?name=GREETING").await?;
    assert_eq!((env.status, env.body.as_str()), (200, "from the builder"));
    let read = get(addr, "built.test", "/read?path=/data/motd.txt").await?;
    assert_eq!((read.status, read.body.as_str()), (200, "built"));
    let write = request(addr, "POST", "built.test", "/write?path=/data/x", "x").await?;
    assert_eq!(write.status, 403, "{}", write.body);
    let large = request(
        addr,
        "POST",
        "built.test",
        "/echo",
        "far more than sixteen bytes",
    )
    .await?;
    assert_eq!(large.status, 413);
    host.shutdown().await;
    Ok(())
}
