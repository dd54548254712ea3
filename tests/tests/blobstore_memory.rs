//! The blobstore suite against the built-in in-memory plugin (shared mode,
//! values crossing as host pipe streams), through the typed forwarder (the
//! default) and the generic one.

use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::suite::Target;
use keel_tests::{guest, start_host};

/// Workloads `a.test` and `b.test` on one host.
async fn memory() -> anyhow::Result<Target> {
    Target::start(start_host(None).await?, "blob", "blobstore_user", None).await
}

keel_tests::blobstore_suite!(memory);

/// The same plugin with `forwarder = "generic"`: the suite must not tell
/// the two forwarders apart.
mod generic_forwarder {
    use super::*;
    use keel_tests::keel::spec::{Forwarder, LinkMode, PluginSpec};

    async fn memory_generic() -> anyhow::Result<Target> {
        let host = start_host(None).await?;
        host.add_plugin(
            PluginSpec::new("blobstore-memory", None, LinkMode::Shared)
                .with_forwarder(Forwarder::Generic),
        )
        .await?;
        Target::start(host, "blob", "blobstore_user", None).await
    }

    keel_tests::blobstore_suite!(memory_generic);
}

/// The same plugin composed in: its state lasts one instance, but streams
/// made by its host pipes cross between plugin and workload within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_pipes_work_in_composed_mode_too() -> anyhow::Result<()> {
    use keel_tests::keel::spec::{LinkMode, PluginSpec};
    let host = start_host(None).await?;
    host.add_plugin(PluginSpec::new(
        "blobstore-memory",
        None,
        LinkMode::Composed,
    ))
    .await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("blob", "a"), guest("blobstore_user"));
    spec.http.host = Some("a.test".into());
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    let body: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let answer =
        keel_tests::request(addr, "POST", "a.test", "/round-trip?c=c&o=o", body.clone()).await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body == body, "{} bytes back", answer.body.len());
    host.shutdown().await;
    Ok(())
}

/// A tenant filling the plugin with 9 MiB objects meets its namespace's
/// quota as an error value: nothing traps, the plugin keeps running, and
/// another tenant's objects (on the same instance, with `scope = "host"`)
/// are still there and still writable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_filling_memory_gets_quota_errors_and_others_keep_their_data() -> anyhow::Result<()>
{
    use keel_tests::keel::spec::{LinkMode, PluginSpec, SharedScope};
    use keel_tests::{get, request};
    let host = start_host(None).await?;
    host.add_plugin(
        PluginSpec::new("blobstore-memory", None, LinkMode::Shared).with_scope(SharedScope::Host),
    )
    .await?;
    for (namespace, name) in [("greedy", "a"), ("modest", "b")] {
        let mut spec =
            WorkloadSpec::single(WorkloadId::new(namespace, name), guest("blobstore_user"));
        spec.http.host = Some(format!("{name}.test"));
        host.start_workload(spec).await?;
    }
    let addr = host.http_addr().expect("ingress");
    for who in ["a.test", "b.test"] {
        let made = request(addr, "PUT", who, "/container?c=c", "").await?;
        assert_eq!(made.status, 200, "{}", made.body);
    }
    let kept = request(addr, "PUT", "b.test", "/object?c=c&o=kept", "b's").await?;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let value = vec![b'x'; 9 << 20];
    let mut refused = None;
    for i in 0..28 {
        let path = format!("/object?c=c&o=v{i}");
        let answer = request(addr, "PUT", "a.test", &path, value.clone()).await?;
        if answer.status != 200 {
            refused = Some((i, answer));
            break;
        }
    }
    let (at, answer) = refused.expect("the quota never refused a value");
    // 64 MiB by default: the eighth 9 MiB value is one too many.
    assert_eq!(at, 7);
    assert_eq!(answer.status, 500);
    assert!(
        answer.body.contains("quota exceeded: namespace `greedy`"),
        "{}",
        answer.body
    );
    assert_eq!(host.shared_plugin_restarts("blobstore-memory"), 0);
    let first = get(addr, "a.test", "/has-object?c=c&o=v0").await?;
    assert_eq!(first.body, "true");
    let kept = get(addr, "b.test", "/object?c=c&o=kept").await?;
    assert_eq!((kept.status, kept.body.as_str()), (200, "b's"));
    let more = request(addr, "PUT", "b.test", "/object?c=c&o=more", value).await?;
    assert_eq!(more.status, 200, "{}", more.body);
    // Clearing the container makes room again.
    let cleared = request(addr, "POST", "a.test", "/clear?c=c", "").await?;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let again = request(
        addr,
        "PUT",
        "a.test",
        "/object?c=c&o=v7",
        vec![b'y'; 9 << 20],
    )
    .await?;
    assert_eq!(again.status, 200, "{}", again.body);
    host.shutdown().await;
    Ok(())
}

/// A workload writing into an `outgoing-value` body before `write-data`,
/// so nothing reads the host pipe, is refused at its memory limit: the
/// pipe's bytes are paid from the Store's memory budget instead of growing
/// the host's memory without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipe_nobody_reads_is_refused_at_the_memory_limit() -> anyhow::Result<()> {
    use keel_tests::keel::spec::{ByteSize, LinkMode, PluginSpec};
    let host = start_host(None).await?;
    host.add_plugin(PluginSpec::new(
        "blobstore-memory",
        None,
        LinkMode::Composed,
    ))
    .await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("blob", "a"), guest("blobstore_user"));
    spec.http.host = Some("a.test".into());
    spec.limits.memory = ByteSize::mib(16);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");

    let answer = keel_tests::request(addr, "POST", "a.test", "/flood-body?mib=256", "").await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let written: u64 = answer
        .body
        .strip_prefix("refused after ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not refused: {}", answer.body))?;
    assert!(
        written < 16 << 20,
        "{written} bytes buffered under a 16 MiB limit"
    );
    assert!(
        answer.body.contains("memory limit of 16777216 bytes"),
        "the error names the limit: {}",
        answer.body
    );

    // The refused body is gone with its request: the next one works.
    let body = "x".repeat(100_000);
    let round =
        keel_tests::request(addr, "POST", "a.test", "/round-trip?c=c&o=o", body.clone()).await?;
    assert_eq!((round.status, round.body == body), (200, true));
    host.shutdown().await;
    Ok(())
}
