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
//! the built-in `keyvalue-memory`, also at other value sizes for composed
//! mode. For `get`, a bare forwarder ([`bare_forwarder`]) gives the floor
//! of any shared-mode forwarder on Wasmtime, so that the typed forwarder's
//! own cost shows. Last, `config-user`'s `get` of a short value on
//! `wasi:config`, served by the built-in `config`, composed and shared
//! (no native anchor: keel has no native `wasi:config`). Run with
//! `make bench`.

mod bare_forwarder;
mod native_keyvalue;
mod native_tally;

use keel_tests::get;
use keel_tests::keel::spec::{Forwarder, LinkMode, PluginSpec};
use keel_tests::keel::{EngineOptions, Host, WorkloadId, WorkloadSpec};
use keel_tests::stock::StockRunner;
use std::net::SocketAddr;
use std::pin::Pin;

const CALLS: u32 = 20_000;
const ROUNDS: usize = 25;

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

/// One measurement: ns per call.
type Probe<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<f64>> + 'a>> + 'a>;

/// The best of `ROUNDS` of each probe, taken in turn round by round so that
/// drift on a shared machine hits every variant alike.
async fn interleaved(probes: &[Probe<'_>]) -> anyhow::Result<Vec<f64>> {
    let mut best = vec![f64::MAX; probes.len()];
    for _ in 0..ROUNDS {
        for (probe, best) in probes.iter().zip(best.iter_mut()) {
            *best = best.min(probe().await?);
        }
    }
    Ok(best)
}

/// `text` (nanoseconds for `calls` calls) per call.
fn per_call(text: &str, calls: u32) -> anyhow::Result<f64> {
    let ns: f64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("not a number: {text}"))?;
    Ok(ns / f64::from(calls))
}

/// A probe of `path` on a keel host, whose answer is the time of `calls` calls.
fn on_keel<'a>(addr: SocketAddr, path: String, calls: u32) -> Probe<'a> {
    Box::new(move || {
        let path = path.clone();
        Box::pin(async move { per_call(&get(addr, "x", &path).await?.body, calls) })
    })
}

/// A probe of `path` on `keyvalue-user` on plain Wasmtime, each request's
/// Store given `extra()`.
fn on_stock<'a, E: Send + 'static>(
    runner: &'a StockRunner<E>,
    path: String,
    extra: impl Fn() -> E + 'a,
) -> Probe<'a> {
    let extra = std::rc::Rc::new(extra);
    Box::new(move || {
        let (path, extra) = (path.clone(), extra.clone());
        Box::pin(async move {
            let (status, body) = runner.get(&path, extra()).await?;
            anyhow::ensure!(status == 200, "{status}: {body}");
            per_call(&body, CALLS)
        })
    })
}

async fn tally() -> anyhow::Result<()> {
    let native = native_tally::runner()?;
    let plugin = |mode| PluginSpec::new("tally", Some(keel_tests::guest("tally_plugin")), mode);
    let (composed, composed_addr) = keel_host(plugin(LinkMode::Composed), "tally_user").await?;
    let (shared, shared_addr) = keel_host(plugin(LinkMode::Shared), "tally_user").await?;
    for op in ["sum", "handle"] {
        let path = format!("/bench?op={op}&n={CALLS}");
        let (runner, at) = (&native, &path);
        let native_probe: Probe<'_> = Box::new(move || {
            Box::pin(async move {
                let (_, body) = runner.get(at, native_tally::Counters::default()).await?;
                per_call(&body, 1)
            })
        });
        let [native_ns, composed_ns, shared_ns] = interleaved(&[
            native_probe,
            on_keel(composed_addr, path.clone(), 1),
            on_keel(shared_addr, path.clone(), 1),
        ])
        .await?[..] else {
            unreachable!("three probes, three figures")
        };
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
    let bare = bare_forwarder::runner()?;
    let shared_plugin = bare_forwarder::Shared::new()?;
    let plugin =
        |mode, forwarder| PluginSpec::new("keyvalue-memory", None, mode).with_forwarder(forwarder);
    let user = "keyvalue_user";
    let (composed, composed_addr) =
        keel_host(plugin(LinkMode::Composed, Forwarder::Typed), user).await?;
    let (typed, typed_addr) = keel_host(plugin(LinkMode::Shared, Forwarder::Typed), user).await?;
    let (generic, generic_addr) =
        keel_host(plugin(LinkMode::Shared, Forwarder::Generic), user).await?;
    let path = format!("/time-gets?bucket=bench&key=k&n={CALLS}&fill=128");
    let [native_ns, composed_ns, typed_ns, generic_ns, bare_ns] = interleaved(&[
        on_stock(&native, path.clone(), native_keyvalue::Buckets::default),
        on_keel(composed_addr, path.clone(), CALLS),
        on_keel(typed_addr, path.clone(), CALLS),
        on_keel(generic_addr, path.clone(), CALLS),
        on_stock(&bare, path.clone(), || shared_plugin.clone()),
    ])
    .await?[..] else {
        unreachable!("five probes, five figures")
    };
    println!(
        "keyvalue `get` (128 bytes): native host {native_ns:.0} ns, composed {composed_ns:.0} ns ({:.2}x native), \
         shared typed forwarder {typed_ns:.0} ns ({:.2}x native, goal <= 3), \
         shared generic forwarder {generic_ns:.0} ns ({:.2}x native); \
         bare forwarder, the floor on Wasmtime {bare_ns:.0} ns ({:.2}x native)",
        composed_ns / native_ns,
        typed_ns / native_ns,
        generic_ns / native_ns,
        bare_ns / native_ns
    );
    // Composing's cost by value size: Wasmtime's fused adapter copies a
    // `list<u8>` from the plugin's memory to the workload's one element at a
    // time, where a host function lowers a slice with one copy.
    for fill in [0, 4096] {
        let path = format!("/time-gets?bucket=bench&key=k&n={CALLS}&fill={fill}");
        let [native_ns, composed_ns, typed_ns] = interleaved(&[
            on_stock(&native, path.clone(), native_keyvalue::Buckets::default),
            on_keel(composed_addr, path.clone(), CALLS),
            on_keel(typed_addr, path, CALLS),
        ])
        .await?[..] else {
            unreachable!("three probes, three figures")
        };
        println!(
            "keyvalue `get` ({fill} bytes): native host {native_ns:.0} ns, composed {composed_ns:.0} ns ({:.2}x native), \
             shared typed forwarder {typed_ns:.0} ns ({:.2}x native)",
            composed_ns / native_ns,
            typed_ns / native_ns
        );
    }
    for host in [composed, typed, generic] {
        host.shutdown().await;
    }
    Ok(())
}

async fn config() -> anyhow::Result<()> {
    let plugin = |mode| PluginSpec::new("config", None, mode).with_config("greeting", "Hej");
    let (composed, composed_addr) = keel_host(plugin(LinkMode::Composed), "config_user").await?;
    let (shared, shared_addr) = keel_host(plugin(LinkMode::Shared), "config_user").await?;
    let path = format!("/time-get?key=greeting&n={CALLS}");
    let [composed_ns, shared_ns] = interleaved(&[
        on_keel(composed_addr, path.clone(), CALLS),
        on_keel(shared_addr, path, CALLS),
    ])
    .await?[..] else {
        unreachable!("two probes, two figures")
    };
    println!(
        "config `get`: composed {composed_ns:.0} ns, shared typed forwarder {shared_ns:.0} ns ({:.2}x composed)",
        shared_ns / composed_ns
    );
    composed.shutdown().await;
    shared.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        keyvalue().await?;
        tally().await?;
        config().await
    })
}
