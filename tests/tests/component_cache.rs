//! The compiled-component cache: a second start of the same component loads
//! the artifact instead of compiling.

use keel_tests::keel::{CacheStats, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, start_host};
use std::path::{Path, PathBuf};

/// The compiled artifacts in cache folder `dir`: its files (the folder also
/// holds `oci/`, the store of pulled artifacts).
fn artifacts(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    Ok(files)
}

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
    assert_eq!(artifacts(cache.path())?.len(), 1, "one artifact written");

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
    for path in artifacts(cache.path())? {
        std::fs::write(path, b"garbage")?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_artifact_is_caught_before_it_is_loaded() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let spec = || WorkloadSpec::single(WorkloadId::new("cache", "hello"), guest("hello"));
    let first = start_host(Some(cache.path())).await?;
    first.start_workload(spec()).await?;
    first.shutdown().await;
    // One flipped byte in the middle of the compiled code: Wasmtime's own
    // header checks still pass, and loading it unchecked runs damaged
    // native code.
    for path in artifacts(cache.path())? {
        let mut bytes = std::fs::read(&path)?;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes)?;
    }
    let second = start_host(Some(cache.path())).await?;
    second.start_workload(spec()).await?;
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            compiled: 1,
            loaded: 0,
            composed: 0
        },
        "the damaged artifact was recompiled, not loaded"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_folder_others_may_write_to_is_refused() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir()?;
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared)?;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777))?;
    let error = match start_host(Some(&shared)).await {
        Err(e) => format!("{e:#}"),
        Ok(_) => panic!("a world-writable cache folder was accepted"),
    };
    assert!(error.contains("may be written by other users"), "{error}");

    // A folder keel creates itself is private.
    let fresh = parent.path().join("fresh");
    let host = start_host(Some(&fresh)).await?;
    let mode = std::fs::metadata(&fresh)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "created private to this user");
    host.shutdown().await;
    Ok(())
}
