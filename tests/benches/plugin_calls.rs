//! Cost of one call into a plugin interface, by how it is linked: composed
//! into the workload (a fused adapter), implemented natively in the host
//! (the anchor), and a shared plugin behind the generic forwarder.
//!
//! The workload (`tally-user`) times its own loop of calls with the monotonic
//! clock, so HTTP and instantiation stay out of the figures. Two operations:
//! `sum` (a list in, a number out) and `handle` (open a resource, call a
//! method, drop it). Run with `make bench`.

use keel_tests::keel::manifest::{LinkMode, PluginSpec};
use keel_tests::keel::{EngineOptions, Host, WorkloadId, WorkloadSpec};
use keel_tests::stock::{StockRunner, StockState};
use keel_tests::{get, guest};
use std::collections::HashMap;
use wasmtime::component::Resource;

const CALLS: u32 = 20_000;
const ROUNDS: usize = 5;

mod native {
    wasmtime::component::bindgen!({
        path: ["../wit/keel-core", "fixtures/wit/tally-0.2.0"],
        world: "acme:tally/user",
        with: { "acme:tally/counters.counter": super::NativeCounter },
    });
}
use native::acme::tally::counters::{self, Snapshot, TallyError};

/// A counter handle of the native implementation.
pub struct NativeCounter {
    name: String,
}

/// The native implementation's counters.
#[derive(Default)]
struct Counters(HashMap<String, (i64, Vec<i64>)>);

type State = StockState<Counters>;

fn table_error(e: wasmtime::component::ResourceTableError) -> TallyError {
    TallyError::Overflow(e.to_string())
}

impl counters::Host for State {
    fn open(&mut self, name: String) -> Result<Resource<NativeCounter>, TallyError> {
        if name.is_empty() {
            return Err(TallyError::EmptyName);
        }
        self.table()
            .push(NativeCounter { name })
            .map_err(table_error)
    }

    fn merge(
        &mut self,
        target: Resource<NativeCounter>,
        source: Resource<NativeCounter>,
    ) -> Result<Snapshot, TallyError> {
        let source = self.table().delete(source).map_err(table_error)?;
        let moved = self.extra.0.remove(&source.name).map_or(0, |c| c.0);
        let name = self.table().get(&target).map_err(table_error)?.name.clone();
        let entry = self.extra.0.entry(name.clone()).or_default();
        entry.0 += moved;
        entry.1.push(moved);
        Ok(Snapshot {
            name,
            value: entry.0,
            history: entry.1.clone(),
            owner: "native".into(),
        })
    }

    fn sum_all(&mut self, values: Vec<i64>) -> i64 {
        values.iter().sum()
    }

    fn live_handles(&mut self) -> u32 {
        0
    }

    fn crash(&mut self) {}
}

impl counters::HostCounter for State {
    fn add(&mut self, counter: Resource<NativeCounter>, delta: i64) -> Result<i64, TallyError> {
        let name = self
            .table()
            .get(&counter)
            .map_err(table_error)?
            .name
            .clone();
        let entry = self.extra.0.entry(name).or_default();
        entry.0 += delta;
        Ok(entry.0)
    }

    fn snapshot(&mut self, counter: Resource<NativeCounter>) -> Snapshot {
        let name = self
            .table()
            .get(&counter)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (value, history) = self.extra.0.get(&name).cloned().unwrap_or_default();
        Snapshot {
            name,
            value,
            history,
            owner: "native".into(),
        }
    }

    fn drop(&mut self, counter: Resource<NativeCounter>) -> wasmtime::Result<()> {
        self.table().delete(counter)?;
        Ok(())
    }
}

/// The anchor: `tally-user` on plain Wasmtime with `acme:tally/counters`
/// implemented by native host functions.
fn native_runner() -> anyhow::Result<StockRunner<Counters>> {
    StockRunner::new(&guest("tally_user"), |linker| {
        counters::add_to_linker::<State, wasmtime::component::HasSelf<State>>(linker, |s| s)?;
        Ok(())
    })
}

async fn keel_host(mode: LinkMode) -> anyhow::Result<Host> {
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(EngineOptions::default())
        .start()
        .await?;
    host.add_plugin(PluginSpec::new("tally", Some(guest("tally_plugin")), mode))
        .await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("bench", "user"),
        guest("tally_user"),
    ))
    .await?;
    Ok(host)
}

/// Best of `ROUNDS` of the guest-timed loop, in ns per call.
async fn best<F, Fut>(mut run: F) -> anyhow::Result<f64>
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
        best = best.min(ns);
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let native = native_runner()?;
        let composed = keel_host(LinkMode::Composed).await?;
        let shared = keel_host(LinkMode::Shared).await?;
        for op in ["sum", "handle"] {
            let path = format!("/bench?op={op}&n={CALLS}");
            let native_ns = best(|| async { Ok(native.get(&path, Counters::default()).await?.1) }).await?;
            let composed_addr = composed.http_addr().expect("ingress");
            let composed_ns = best(|| async { Ok(get(composed_addr, "x", &path).await?.body) }).await?;
            let shared_addr = shared.http_addr().expect("ingress");
            let shared_ns = best(|| async { Ok(get(shared_addr, "x", &path).await?.body) }).await?;
            println!(
                "plugin call `{op}`: native host {native_ns:.0} ns, composed {composed_ns:.0} ns ({:.2}x native), \
                 shared generic forwarder {shared_ns:.0} ns ({:.2}x native)",
                composed_ns / native_ns,
                shared_ns / native_ns
            );
        }
        composed.shutdown().await;
        shared.shutdown().await;
        anyhow::Ok(())
    })
}
