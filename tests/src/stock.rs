//! Running a `wasi:http` component on plain Wasmtime, with no keel code in
//! the way: the anchor for benchmarks, and the proof that what `keel compose`
//! writes runs on any component runtime.

use anyhow::{Context, Result};
use http_body_util::BodyExt;
use std::path::Path;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Store data with WASI and `wasi:http`, plus `extra` for whatever else a
/// caller links.
pub struct StockState<E> {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoHooks,
    /// The caller's own state.
    pub extra: E,
}

/// `wasi:http` hooks with the default behaviour.
#[derive(Default)]
pub struct NoHooks;
impl wasmtime_wasi_http::WasiHttpHooks for NoHooks {}

impl<E: Send> WasiView for StockState<E> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<E: Send> WasiHttpView for StockState<E> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl<E> StockState<E> {
    /// The resource table, for host implementations of extra interfaces.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// A component linked with stock WASI and `wasi:http` (and whatever `link`
/// adds), ready to serve requests one instance each.
pub struct StockRunner<E: 'static> {
    engine: Engine,
    pre: ProxyPre<StockState<E>>,
}

impl<E: Send + 'static> StockRunner<E> {
    /// Compiles and links `component`.
    pub fn new(
        component: &Path,
        link: impl FnOnce(&mut Linker<StockState<E>>) -> Result<()>,
    ) -> Result<Self> {
        let mut config = Config::new();
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, component)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        link(&mut linker)?;
        let pre = ProxyPre::new(
            linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .context("linking on stock Wasmtime")?,
        )?;
        Ok(StockRunner { engine, pre })
    }

    /// `GET path` on a fresh instance; returns the status and body.
    pub async fn get(&self, path: &str, extra: E) -> Result<(u16, String)> {
        let state = StockState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            hooks: NoHooks,
            extra,
        };
        let mut store = Store::new(&self.engine, state);
        let request = http::Request::builder()
            .uri(format!("http://stock{path}"))
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
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
