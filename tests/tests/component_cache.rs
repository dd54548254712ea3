//! The compiled-component cache: a second start of the same component loads
//! the artifact instead of compiling.

use keel_tests::keel::{CacheStats, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, start_host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_start_skips_compilation() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let spec = || WorkloadSpec::single(WorkloadId::new("cache", "hello"), guest("hello"));

    let first = start_host(Some(cache.path())).await?;
    first.start_workload(spec()).await?;
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            compiled: 1,
            loaded: 0,
            composed: 0
        }
    );
    first.shutdown().await;
    let artifacts = std::fs::read_dir(cache.path())?.count();
    assert_eq!(artifacts, 1, "one artifact written");

    // A new host (new engine) with the same cache folder: no compilation.
    let second = start_host(Some(cache.path())).await?;
    second.start_workload(spec()).await?;
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            compiled: 0,
            loaded: 1,
            composed: 0
        }
    );
    let answer = get(second.http_addr().expect("ingress"), "x", "/").await?;
    assert_eq!(answer.status, 200, "the cached artifact runs");
    second.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_artifact_is_recompiled() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let spec = || WorkloadSpec::single(WorkloadId::new("cache", "hello"), guest("hello"));
    let first = start_host(Some(cache.path())).await?;
    first.start_workload(spec()).await?;
    first.shutdown().await;
    for entry in std::fs::read_dir(cache.path())? {
        std::fs::write(entry?.path(), b"garbage")?;
    }
    let second = start_host(Some(cache.path())).await?;
    second.start_workload(spec()).await?;
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            compiled: 1,
            loaded: 0,
            composed: 0
        }
    );
    assert_eq!(
        get(second.http_addr().expect("ingress"), "x", "/")
            .await?
            .status,
        200
    );
    second.shutdown().await;
    Ok(())
}
