//! Engine choices measured: `concurrency_support(false)` (keel's default)
//! against `true`, on the hello example — pooled instantiation alone, and
//! whole HTTP requests over loopback (sequential, and 16 in parallel).
//!
//! Run with `make bench`. Prints one line per measurement and the ratio
//! `on / off` (above 1 means turning concurrency support on is slower).

use keel_tests::guest;
use keel_tests::keel::{EngineOptions, Host, WorkloadId, WorkloadSpec};
use keel_tests::load::{parallel_rps, sequential_latency_us};
use std::time::Duration;

const SEQUENTIAL: usize = 2_000;
const PARALLEL_TASKS: usize = 16;
const PARALLEL_EACH: usize = 250;

struct Figures {
    request_us: f64,
    parallel_rps: f64,
}

async fn measure(concurrency_support: bool) -> anyhow::Result<Figures> {
    let options = EngineOptions::default().with_concurrency_support(concurrency_support);
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(options)
        .start()
        .await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("bench", "hello"),
        guest("hello"),
    ))
    .await?;
    let addr = host.http_addr().expect("ingress");
    sequential_latency_us(addr, "x", "/", 200).await?;
    let request_us = sequential_latency_us(addr, "x", "/", SEQUENTIAL).await?;
    let parallel_rps = parallel_rps(addr, "x", "/", PARALLEL_TASKS, PARALLEL_EACH).await?;
    host.shutdown().await;
    Ok(Figures {
        request_us,
        parallel_rps,
    })
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Alternate the two settings so that drift on a shared machine
        // affects both alike; report the best of three rounds each.
        let mut off = Vec::new();
        let mut on = Vec::new();
        for _ in 0..3 {
            off.push(measure(false).await?);
            on.push(measure(true).await?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let best_latency = |f: &[Figures]| f.iter().map(|f| f.request_us).fold(f64::MAX, f64::min);
        let best_rps = |f: &[Figures]| f.iter().map(|f| f.parallel_rps).fold(0.0, f64::max);
        let (off_us, on_us) = (best_latency(&off), best_latency(&on));
        let (off_rps, on_rps) = (best_rps(&off), best_rps(&on));
        println!("hello over HTTP, sequential: concurrency_support(false) {off_us:.1} µs/request, (true) {on_us:.1} µs/request, on/off = {:.2}", on_us / off_us);
        println!("hello over HTTP, {PARALLEL_TASKS} in parallel: concurrency_support(false) {off_rps:.0} req/s, (true) {on_rps:.0} req/s, off/on = {:.2}", off_rps / on_rps);
        anyhow::Ok(())
    })
}
