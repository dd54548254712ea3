//! Cost of one call into a plugin interface, by how it is linked: composed
//! into the workload (a fused adapter), implemented natively in the host
//! (the anchor), and a shared plugin behind the typed forwarder (for the
//! built-in interfaces) or the generic one (any interface).
//!
//! Each workload times its own loop of calls with the monotonic clock, so
//! HTTP and instantiation stay out of the figures. Operations: `tally-user`'s
//! `sum` (a list in, a number out) and `handle` (open a resource, call a
//! method, drop it) on the custom `acme:tally/counters`, and
//! `keyvalue-user`'s `get` of a 128-byte value on `wasi:keyvalue`, served by
//! the built-in `keyvalue-memory`. Run with `make bench`.

mod native_keyvalue;
mod native_tally;

use keel_tests::get;
use keel_tests::keel::manifest::{Forwarder, LinkMode, PluginSpec};
use keel_tests::keel::{EngineOptions, Host, WorkloadId, WorkloadSpec};
use std::net::SocketAddr;

const CALLS: u32 = 20_000;
const ROUNDS: usize = 5;

/// A host serving the built guest `workload` with `plugin`.
async fn keel_host(plugin: PluginSpec, workload: &str) -> anyhow::Result<(Host, SocketAddr)> {
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(EngineOptions::default())
        .start()
        .await?;
    host.add_plugin(plugin).await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("bench", "user"),
        keel_tests::guest(workload),
    ))
    .await?;
    let addr = host
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("the host has no ingress"))?;
    Ok((host, addr))
}

/// Best of `ROUNDS` of a guest-timed loop of `calls` calls whose total (or,
/// with `calls` = 1, per-call) nanoseconds `run` answers; in ns per call.
async fn best<F, Fut>(calls: u32, mut run: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let text = run().await?;
        let ns: f64 = text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("not a number: {text}"))?;
        best = best.min(ns / f64::from(calls));
    }
    Ok(best)
}

/// Per-call ns of `path` on a keel host.
async fn on_keel(addr: SocketAddr, path: &str, calls: u32) -> anyhow::Result<f64> {
    best(calls, || async { Ok(get(addr, "x", path).await?.body) }).await
}

async fn tally() -> anyhow::Result<()> {
    let native = native_tally::runner()?;
    let plugin = |mode| PluginSpec::new("tally", Some(keel_tests::guest("tally_plugin")), mode);
    let (composed, composed_addr) = keel_host(plugin(LinkMode::Composed), "tally_user").await?;
    let (shared, shared_addr) = keel_host(plugin(LinkMode::Shared), "tally_user").await?;
    for op in ["sum", "handle"] {
        let path = format!("/bench?op={op}&n={CALLS}");
        let native_ns = best(1, || async {
            Ok(native
                .get(&path, native_tally::Counters::default())
                .await?
                .1)
        })
        .await?;
        let composed_ns = on_keel(composed_addr, &path, 1).await?;
        let shared_ns = on_keel(shared_addr, &path, 1).await?;
        println!(
            "tally `{op}`: native host {native_ns:.0} ns, composed {composed_ns:.0} ns ({:.2}x native), \
             shared generic forwarder {shared_ns:.0} ns ({:.2}x native)",
            composed_ns / native_ns,
            shared_ns / native_ns
        );
    }
    composed.shutdown().await;
    shared.shutdown().await;
    Ok(())
}

async fn keyvalue() -> anyhow::Result<()> {
    let native = native_keyvalue::runner()?;
    let plugin = |mode, forwarder| PluginSpec {
        forwarder,
        ..PluginSpec::new("keyvalue-memory", None, mode)
    };
    let user = "keyvalue_user";
    let (composed, composed_addr) =
        keel_host(plugin(LinkMode::Composed, Forwarder::Typed), user).await?;
    let (typed, typed_addr) = keel_host(plugin(LinkMode::Shared, Forwarder::Typed), user).await?;
    let (generic, generic_addr) =
        keel_host(plugin(LinkMode::Shared, Forwarder::Generic), user).await?;
    let path = format!("/time-gets?bucket=bench&key=k&n={CALLS}&fill=128");
    let native_ns = best(CALLS, || async {
        let (status, body) = native
            .get(&path, native_keyvalue::Buckets::default())
            .await?;
        anyhow::ensure!(status == 200, "{status}: {body}");
        Ok(body)
    })
    .await?;
    let composed_ns = on_keel(composed_addr, &path, CALLS).await?;
    let typed_ns = on_keel(typed_addr, &path, CALLS).await?;
    let generic_ns = on_keel(generic_addr, &path, CALLS).await?;
    println!(
        "keyvalue `get` (128 bytes): native host {native_ns:.0} ns, composed {composed_ns:.0} ns ({:.2}x native), \
         shared typed forwarder {typed_ns:.0} ns ({:.2}x native, goal <= 3), \
         shared generic forwarder {generic_ns:.0} ns ({:.2}x native)",
        composed_ns / native_ns,
        typed_ns / native_ns,
        generic_ns / native_ns
    );
    for host in [composed, typed, generic] {
        host.shutdown().await;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        keyvalue().await?;
        tally().await
    })
}
