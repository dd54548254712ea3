//! Components from a registry, measured against components from a file:
//! a workload's start (to its first 200) from a warm OCI store next to the
//! same start from a `.wasm` file, interleaved; then the cold pull of a
//! 10 MiB component from a loopback registry, as throughput. Real
//! `docker-registry`, the library API, one host.

use anyhow::{Context, Result, ensure};
use keel_tests::keel::oci::{OciOptions, Registry as KeelRegistry};
use keel_tests::keel::spec::ImageRef;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::registry::Registry;
use keel_tests::{get, guest, test_engine};
use std::time::Instant;

const ROUNDS: usize = 21;
const PULLS: usize = 7;
/// The size of the component whose cold pull is measured.
const BIG: usize = 10 << 20;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> Result<()> {
    let registry = Registry::start()?;
    let insecure = registry.insecure();
    let cache = tempfile::tempdir()?;
    let store_dir = cache.path().join("oci");
    let options = |store_dir: Option<std::path::PathBuf>| {
        let mut options = OciOptions::default().with_registry(insecure.clone());
        options.store_dir = store_dir;
        options
    };
    let hello = std::fs::read(guest("hello"))?;
    // One tag per round, all put in the store by a client of their own:
    // the host resolves each for the first time, from the store, as a host
    // restarting with its store does.
    let pusher = KeelRegistry::new(options(Some(store_dir.clone())))?;
    for round in 0..ROUNDS {
        let reference = ImageRef::parse(&registry.reference(&format!("apps/hello:{round}")))?;
        pusher.push(&reference, &hello).await?;
        pusher.resolve(&reference).await?;
    }
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine())
        .cache_dir(cache.path())
        .oci(options(Some(store_dir)))
        .start()
        .await?;
    let addr = host.http_addr().context("ingress")?;
    let file = guest("hello");
    // The first start compiles; the rest find the compiled component.
    start_and_stop(&host, addr, "warm", WorkloadSpec::single(id("warm"), &file)).await?;

    let (mut from_file, mut from_store) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        from_file.push(
            start_and_stop(
                &host,
                addr,
                &format!("f{round}"),
                WorkloadSpec::single(id(&format!("f{round}")), &file),
            )
            .await?,
        );
        let mut spec = WorkloadSpec::single(id(&format!("s{round}")), "unused.wasm");
        spec.components[0].source =
            ImageRef::parse(&registry.reference(&format!("apps/hello:{round}")))?.into();
        from_store.push(start_and_stop(&host, addr, &format!("s{round}"), spec).await?);
    }
    let (file_ms, store_ms) = (median(&mut from_file), median(&mut from_store));
    println!(
        "start to first 200, median of {ROUNDS} interleaved: from a file {file_ms:.2} ms (spread {}), \
         from the OCI store {store_ms:.2} ms (spread {}); store/file {:.2}",
        spread(&from_file),
        spread(&from_store),
        store_ms / file_ms
    );
    host.shutdown().await;

    // Cold pulls: a client without a store, new for every pull.
    let big = padded(&hello, BIG);
    let reference = ImageRef::parse(&registry.reference("apps/big:1"))?;
    pusher.push(&reference, &big).await?;
    let mut rates = Vec::new();
    for _ in 0..PULLS {
        let client = KeelRegistry::new(options(None))?;
        let started = Instant::now();
        let resolved = client.resolve(&reference).await?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(resolved.artifact.bytes.len() == big.len(), "pulled size");
        rates.push(big.len() as f64 / (1 << 20) as f64 / seconds);
    }
    println!(
        "cold pull of a {:.1} MiB component from a loopback registry: median {:.0} MiB/s (spread {}, {PULLS} pulls)",
        big.len() as f64 / (1 << 20) as f64,
        median(&mut rates),
        spread(&rates)
    );
    Ok(())
}

fn id(name: &str) -> WorkloadId {
    WorkloadId::new("bench", name)
}

/// Milliseconds from the start of `spec` to its first 200; then stops it.
async fn start_and_stop(
    host: &Host,
    addr: std::net::SocketAddr,
    name: &str,
    mut spec: WorkloadSpec,
) -> Result<f64> {
    let route = format!("{name}.test");
    spec.http.host = Some(route.clone());
    let started = Instant::now();
    let id = host.start_workload(spec).await?;
    let answer = get(addr, &route, "/").await?;
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    ensure!(answer.status == 200, "{name}: {}", answer.status);
    host.stop_workload(&id).await?;
    Ok(elapsed)
}

/// `component` with a custom section appended, `size` bytes in all: a
/// component as large as a real one with its dependencies, still valid.
fn padded(component: &[u8], size: usize) -> Vec<u8> {
    let name = b"keel-bench-padding";
    let mut out = component.to_vec();
    let payload = size.saturating_sub(out.len() + name.len() + 12);
    let mut section = Vec::with_capacity(payload + name.len() + 1);
    leb128(&mut section, name.len());
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0x2a);
    out.push(0); // custom section id
    leb128(&mut out, section.len());
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{min:.1}–{max:.1}")
}
