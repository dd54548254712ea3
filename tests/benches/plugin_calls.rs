//! Cost of one call into a plugin interface, by how it is linked: composed
//! into the workload (a fused adapter), implemented natively in the host
//! (the anchor), and a shared plugin behind the generic forwarder.
//!
//! The workload (`tally-user`) times its own loop of calls with the monotonic
//! clock, so HTTP and instantiation stay out of the figures. Two operations:
//! `sum` (a list in, a number out) and `handle` (open a resource, call a
//! method, drop it). Run with `make bench`.

use http_body_util::BodyExt;
use keel_tests::keel::manifest::{LinkMode, PluginSpec};
use keel_tests::keel::{EngineOptions, Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest};
use std::collections::HashMap;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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

/// The native implementation's Store data: WASI, HTTP and the counters.
struct NativeState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoHooks,
    counters: HashMap<String, (i64, Vec<i64>)>,
}

#[derive(Default)]
struct NoHooks;
impl wasmtime_wasi_http::WasiHttpHooks for NoHooks {}

impl WasiView for NativeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for NativeState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl counters::Host for NativeState {
    fn open(&mut self, name: String) -> Result<Resource<NativeCounter>, TallyError> {
        if name.is_empty() {
            return Err(TallyError::EmptyName);
        }
        self.table
            .push(NativeCounter { name })
            .map_err(|e| TallyError::Overflow(e.to_string()))
    }

    fn merge(
        &mut self,
        target: Resource<NativeCounter>,
        source: Resource<NativeCounter>,
    ) -> Result<Snapshot, TallyError> {
        let source = self
            .table
            .delete(source)
            .map_err(|e| TallyError::Overflow(e.to_string()))?;
        let moved = self.counters.remove(&source.name).map_or(0, |c| c.0);
        let name = self
            .table
            .get(&target)
            .map_err(|e| TallyError::Overflow(e.to_string()))?
            .name
            .clone();
        let entry = self.counters.entry(name.clone()).or_default();
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

impl counters::HostCounter for NativeState {
    fn add(&mut self, counter: Resource<NativeCounter>, delta: i64) -> Result<i64, TallyError> {
        let name = self
            .table
            .get(&counter)
            .map_err(|e| TallyError::Overflow(e.to_string()))?
            .name
            .clone();
        let entry = self.counters.entry(name).or_default();
        entry.0 += delta;
        Ok(entry.0)
    }

    fn snapshot(&mut self, counter: Resource<NativeCounter>) -> Snapshot {
        let name = self
            .table
            .get(&counter)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let (value, history) = self.counters.get(&name).cloned().unwrap_or_default();
        Snapshot {
            name,
            value,
            history,
            owner: "native".into(),
        }
    }

    fn drop(&mut self, counter: Resource<NativeCounter>) -> wasmtime::Result<()> {
        self.table.delete(counter)?;
        Ok(())
    }
}

/// The anchor: `tally-user` with `acme:tally/counters` linked to native host
/// functions, in a plain Wasmtime setup configured like keel's engine.
struct NativeRunner {
    engine: Engine,
    pre: ProxyPre<NativeState>,
}

impl NativeRunner {
    fn new() -> anyhow::Result<NativeRunner> {
        let mut config = Config::new();
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let component = wasmtime::component::Component::from_file(&engine, guest("tally_user"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        counters::add_to_linker::<NativeState, wasmtime::component::HasSelf<NativeState>>(
            &mut linker,
            |s| s,
        )?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(NativeRunner { engine, pre })
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let state = NativeState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            hooks: NoHooks,
            counters: HashMap::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let request = http::Request::builder()
            .uri(format!("http://native{path}"))
            .body(
                http_body_util::Empty::<bytes::Bytes>::new()
                    .map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
            )?;
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store.data_mut().http().new_response_outparam(tx)?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, out)
            .await?;
        let response = rx.await?.map_err(|code| anyhow::anyhow!("{code:?}"))?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

async fn keel_host(mode: LinkMode) -> anyhow::Result<Host> {
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(EngineOptions::default())
        .start()
        .await?;
    host.add_plugin(PluginSpec {
        name: "tally".into(),
        path: guest("tally_plugin"),
        mode,
        config: Default::default(),
        origin: None,
    })
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
        let native = NativeRunner::new()?;
        let composed = keel_host(LinkMode::Composed).await?;
        let shared = keel_host(LinkMode::Shared).await?;
        for op in ["sum", "handle"] {
            let path = format!("/bench?op={op}&n={CALLS}");
            let native_ns = best(|| native.get(&path)).await?;
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
