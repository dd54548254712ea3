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
    use keel_tests::keel::manifest::{Forwarder, LinkMode, PluginSpec};

    async fn memory_generic() -> anyhow::Result<Target> {
        let host = start_host(None).await?;
        host.add_plugin(PluginSpec {
            forwarder: Forwarder::Generic,
            ..PluginSpec::new("blobstore-memory", None, LinkMode::Shared)
        })
        .await?;
        Target::start(host, "blob", "blobstore_user", None).await
    }

    keel_tests::blobstore_suite!(memory_generic);
}

/// The same plugin composed in: its state lasts one instance, but streams
/// made by its host pipes cross between plugin and workload within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_pipes_work_in_composed_mode_too() -> anyhow::Result<()> {
    use keel_tests::keel::manifest::{LinkMode, PluginSpec};
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

/// A workload writing into an `outgoing-value` body before `write-data`,
/// so nothing reads the host pipe, is refused at its memory limit: the
/// pipe's bytes are paid from the Store's memory budget instead of growing
/// the host's memory without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipe_nobody_reads_is_refused_at_the_memory_limit() -> anyhow::Result<()> {
    use keel_tests::keel::manifest::{ByteSize, LinkMode, PluginSpec};
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
