//! The floor of any shared-plugin forwarder on Wasmtime: `wasi:keyvalue`
//! host functions that hand each call straight to `keyvalue-memory` in a
//! synchronous Store of its own, with none of keel's work around it (no
//! proxy table, no plugin lock, no caller identity or deadline, no
//! restart). What a call costs here is what crossing two component
//! boundaries costs; keel's typed forwarder is measured against it to see
//! its own share.
//!
//! Only what the bench calls is forwarded (`open`, `get`, `set`, dropping a
//! bucket); the rest answers an error.

use keel_tests::guest;
use keel_tests::stock::{StockRunner, StockState};
use std::sync::{Arc, Mutex};
use wasmtime::component::{
    Component, ComponentType, Lift, Linker, Lower, Resource, ResourceAny, ResourceTable, TypedFunc,
};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-keyvalue-0.2.0-draft",
        world: "wasi:keyvalue/imports",
        with: { "wasi:keyvalue/store.bucket": super::BareBucket },
    });
}
use bindings::wasi::keyvalue::store::{Error, KeyResponse};
use bindings::wasi::keyvalue::{atomics, batch, store};

/// A workload's bucket handle: the plugin's.
pub struct BareBucket(ResourceAny);

/// `wasi:keyvalue/store.error` as the plugin returns it.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
enum PluginError {
    #[component(name = "no-such-store")]
    NoSuchStore,
    #[component(name = "access-denied")]
    AccessDenied,
    #[component(name = "other")]
    Other(String),
}

impl From<PluginError> for Error {
    fn from(e: PluginError) -> Error {
        match e {
            PluginError::NoSuchStore => Error::NoSuchStore,
            PluginError::AccessDenied => Error::AccessDenied,
            PluginError::Other(text) => Error::Other(text),
        }
    }
}

/// `keel:core/identity.workload-identity`, the one import the plugin needs
/// besides WASI.
#[derive(ComponentType, Lower)]
#[component(record)]
struct WorkloadIdentity {
    namespace: String,
    name: String,
    component: String,
}

/// The plugin's Store data: WASI and nothing else.
struct PluginState {
    table: ResourceTable,
    wasi: WasiCtx,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type Fallible<T> = (Result<T, PluginError>,);

/// The plugin instance and the exports the bench calls.
pub struct Plugin {
    store: Store<PluginState>,
    open: TypedFunc<(String,), Fallible<ResourceAny>>,
    get: TypedFunc<(ResourceAny, String), Fallible<Option<Vec<u8>>>>,
    set: TypedFunc<(ResourceAny, String, Vec<u8>), Fallible<()>>,
}

/// The plugin, shared by every workload instance of the bench.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Plugin>>);

impl Shared {
    /// `keyvalue-memory` instantiated in a synchronous Store.
    pub fn new() -> anyhow::Result<Shared> {
        let mut config = wasmtime::Config::new();
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, guest("keyvalue_memory"))?;
        let mut linker = Linker::<PluginState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        linker
            .instance("keel:core/identity@0.1.0")?
            .func_wrap("caller", |_, (): ()| {
                Ok((WorkloadIdentity {
                    namespace: "bench".into(),
                    name: "user".into(),
                    component: "user".into(),
                },))
            })?;
        let mut store = Store::new(
            &engine,
            PluginState {
                table: ResourceTable::new(),
                wasi: WasiCtx::builder().build(),
            },
        );
        let instance = linker.instantiate(&mut store, &component)?;
        // The plugin's `wasi:keyvalue/store` function `name`.
        let export = |store: &mut Store<PluginState>, name: &str| {
            let interface = instance
                .get_export_index(&mut *store, None, "wasi:keyvalue/store@0.2.0-draft")
                .ok_or_else(|| anyhow::anyhow!("no wasi:keyvalue/store export"))?;
            let index = instance
                .get_export_index(&mut *store, Some(&interface), name)
                .ok_or_else(|| anyhow::anyhow!("no {name} export"))?;
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| anyhow::anyhow!("{name} is not a function"))
        };
        let open = export(&mut store, "open")?.typed(&store)?;
        let get = export(&mut store, "[method]bucket.get")?.typed(&store)?;
        let set = export(&mut store, "[method]bucket.set")?.typed(&store)?;
        Ok(Shared(Arc::new(Mutex::new(Plugin {
            store,
            open,
            get,
            set,
        }))))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Plugin) -> R) -> R {
        let mut plugin = match self.0.lock() {
            Ok(plugin) => plugin,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut plugin)
    }
}

type State = StockState<Shared>;

fn plugin_error(e: wasmtime::Error) -> Error {
    Error::Other(format!("{e:#}"))
}

/// The plugin's handle behind a workload's `bucket`.
fn handle(state: &mut State, bucket: &Resource<BareBucket>) -> Result<ResourceAny, Error> {
    state
        .table()
        .get(bucket)
        .map(|bucket| bucket.0)
        .map_err(|e| Error::Other(e.to_string()))
}

impl store::Host for State {
    fn open(&mut self, identifier: String) -> Result<Resource<BareBucket>, Error> {
        let plugin = self
            .extra
            .with(|p| p.open.call(&mut p.store, (identifier,)))
            .map_err(plugin_error)?
            .0?;
        self.table()
            .push(BareBucket(plugin))
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl store::HostBucket for State {
    fn get(&mut self, bucket: Resource<BareBucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let plugin = handle(self, &bucket)?;
        Ok(self
            .extra
            .with(|p| p.get.call(&mut p.store, (plugin, key)))
            .map_err(plugin_error)?
            .0?)
    }

    fn set(
        &mut self,
        bucket: Resource<BareBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let plugin = handle(self, &bucket)?;
        Ok(self
            .extra
            .with(|p| p.set.call(&mut p.store, (plugin, key, value)))
            .map_err(plugin_error)?
            .0?)
    }

    fn delete(&mut self, _: Resource<BareBucket>, _: String) -> Result<(), Error> {
        Err(unforwarded())
    }

    fn exists(&mut self, _: Resource<BareBucket>, _: String) -> Result<bool, Error> {
        Err(unforwarded())
    }

    fn list_keys(&mut self, _: Resource<BareBucket>, _: Option<u64>) -> Result<KeyResponse, Error> {
        Err(unforwarded())
    }

    fn drop(&mut self, bucket: Resource<BareBucket>) -> wasmtime::Result<()> {
        let plugin = self.table().delete(bucket)?.0;
        self.extra.with(|p| plugin.resource_drop(&mut p.store))
    }
}

fn unforwarded() -> Error {
    Error::Other("not forwarded by the bare forwarder".into())
}

impl atomics::Host for State {
    fn increment(&mut self, _: Resource<BareBucket>, _: String, _: u64) -> Result<u64, Error> {
        Err(unforwarded())
    }
}

impl batch::Host for State {
    fn get_many(
        &mut self,
        _: Resource<BareBucket>,
        _: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        Err(unforwarded())
    }

    fn set_many(
        &mut self,
        _: Resource<BareBucket>,
        _: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        Err(unforwarded())
    }

    fn delete_many(&mut self, _: Resource<BareBucket>, _: Vec<String>) -> Result<(), Error> {
        Err(unforwarded())
    }
}

/// `keyvalue-user` on plain Wasmtime with `wasi:keyvalue` forwarded to the
/// shared plugin.
pub fn runner() -> anyhow::Result<StockRunner<Shared>> {
    StockRunner::new(&guest("keyvalue_user"), |linker| {
        type Data = wasmtime::component::HasSelf<State>;
        store::add_to_linker::<State, Data>(linker, |s| s)?;
        atomics::add_to_linker::<State, Data>(linker, |s| s)?;
        batch::add_to_linker::<State, Data>(linker, |s| s)?;
        Ok(())
    })
}
