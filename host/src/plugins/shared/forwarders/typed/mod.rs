//! Typed forwarders: for the built-in interfaces keel knows when it is
//! built, host shims whose types `bindgen!` generates for both sides — the
//! workload's imports and the plugin's exports — so a call crosses to the
//! shared plugin without the generic forwarder's walk through
//! [`Val`](wasmtime::component::Val)s.
//!
//! The imports of `wasi:keyvalue`, `wasi:config` and `wasi:logging` are
//! linked as routes (`typed/route.rs`): synchronous host functions when the
//! plugin runs in a synchronous Store, which spares every call Wasmtime's
//! async host-call machinery, async ones otherwise. Messaging and blobstore
//! are still `bindgen!`'s async host traits, whatever Store their plugin
//! runs in: their plugins wait on NATS, or hand out streams.
//!
//! A typed forwarder serves an interface family only where one plugin
//! serves all of the family's imports at the version the forwarder was
//! generated for (they may share resources) and exports every function the
//! forwarder calls; anything else goes to the generic forwarder, as does
//! every plugin declared with `forwarder = "generic"`.
//!
//! | family | interfaces |
//! |---|---|
//! | [`keyvalue`] | `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` |
//! | [`config`] | `wasi:config/store@0.2.0-rc.1` |
//! | [`logging`] | `wasi:logging/logging@0.1.0-draft` |
//! | [`messaging`] | `wasmcloud:messaging/{consumer,types}@0.2.0` |
//! | [`blobstore`] | `wasi:blobstore/{blobstore,container,types}@0.2.0-draft` |

/// Declares the typed functions of a family that a plugin exports: a
/// struct `$indices` of where they are in the plugin, found once per plugin
/// after `$check` (the `…Indices::new` of a `bindgen!` plugin side, which
/// type-checks every function of the family) accepted it, and a struct
/// `$funcs` of the functions of one instance, each with its parameters and
/// result as Rust types (the `bindgen!` side's for records and variants).
///
/// Calls go through [`wasmtime::component::TypedFunc`] rather than the
/// `bindgen!` side's methods because a `TypedFunc` can be called both ways:
/// synchronously in a synchronous plugin Store, with `call_async` in an
/// async one.
macro_rules! typed_exports {
    (
        $(#[$doc:meta])*
        $indices:ident, $funcs:ident, check: $check:path;
        $( $field:ident: $interface:expr, $name:literal, ($($param:ty),*) -> ($($result:ty),*); )*
    ) => {
        $(#[$doc])*
        pub struct $indices {
            $( $field: wasmtime::component::ComponentExportIndex, )*
        }

        /// The family's functions in one plugin instance.
        pub struct $funcs {
            $( $field: wasmtime::component::TypedFunc<($($param,)*), ($($result,)*)>, )*
        }

        impl $crate::plugins::shared::forwarders::typed::Exports for $indices {
            type Loaded = $funcs;

            fn find(plugin: &$crate::plugins::shared::SharedPlugin) -> Option<Self> {
                $check(&plugin.pre).ok()?;
                Some($indices {
                    $( $field: plugin.export_index($interface, $name).ok()?, )*
                })
            }

            fn load(
                &self,
                store: &mut wasmtime::Store<$crate::store::InvocationState>,
                instance: &wasmtime::component::Instance,
            ) -> wasmtime::Result<$funcs> {
                Ok($funcs {
                    $( $field: instance.get_typed_func(&mut *store, &self.$field)?, )*
                })
            }
        }
    };
}

pub mod blobstore;
pub mod config;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
mod route;

use super::proxy::{Proxy, ProxyTable};
use crate::plugins::shared::{PluginCall, SharedPlugin};
use crate::store::Caller;
use crate::store::InvocationState;
use anyhow::Result;
use keel_compose::Binding;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{
    ComponentNamedList, Instance, Lift, Linker, Lower, ResourceAny, TypedFunc,
};

/// The typed functions a family's plugin exports (declared with
/// `typed_exports!`).
pub trait Exports: Send + Sync + 'static {
    /// The bindings of one instance.
    type Loaded: Send + Sync + 'static;

    /// Finds the family's exports in a prepared plugin; `None` if it lacks
    /// any of them.
    fn find(plugin: &SharedPlugin) -> Option<Self>
    where
        Self: Sized;

    /// The bindings of `instance`, type-checked.
    fn load(
        &self,
        store: &mut Store<InvocationState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self::Loaded>;
}

/// What the parameters of a typed call can be.
pub(crate) trait CallParams: ComponentNamedList + Lower + Send + Sync + 'static {}
impl<P: ComponentNamedList + Lower + Send + Sync + 'static> CallParams for P {}

/// What the results of a typed call can be.
pub(crate) trait CallResults: ComponentNamedList + Lift + Send + Sync + 'static {}
impl<R: ComponentNamedList + Lift + Send + Sync + 'static> CallResults for R {}

/// A plugin function whose one result is a `result<T, E>`: the shape of
/// nearly every function the typed forwarders call.
pub(crate) type Fallible<P, T, E> = TypedFunc<P, (Result<T, E>,)>;

/// A shared plugin reached through the typed bindings `E` of its exports.
pub struct TypedPlugin<E: Exports> {
    plugin: Arc<SharedPlugin>,
    exports: Arc<E>,
}

impl<E: Exports> TypedPlugin<E> {
    /// The plugin, if it exports the whole family.
    fn new(plugin: &Arc<SharedPlugin>) -> Option<Self> {
        Some(TypedPlugin {
            exports: Arc::new(E::find(plugin)?),
            plugin: plugin.clone(),
        })
    }

    /// The plugin served.
    pub fn plugin(&self) -> &Arc<SharedPlugin> {
        &self.plugin
    }

    /// Calls the function `pick` chooses with `params` for `caller`, with
    /// handles of instance `generation` (see [`SharedPlugin::begin`]).
    /// Returns what it returned and the generation it ran in, or why the
    /// plugin could not answer (it failed, and restarts on the next call; or
    /// a handle outlived its instance).
    pub(crate) async fn call<P: CallParams, R: CallResults>(
        &self,
        caller: Caller<'_>,
        generation: Option<u64>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
        params: P,
    ) -> Result<(R, u64), String> {
        self.call_then(caller, generation, pick, params, |_, results| results)
            .await
    }

    /// [`call`](Self::call), with `then` making what is returned of the
    /// results while the plugin's Store is at hand (to move a host stream
    /// out of its table, say).
    pub(crate) async fn call_then<P: CallParams, R: CallResults, T>(
        &self,
        caller: Caller<'_>,
        generation: Option<u64>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
        params: P,
        then: impl FnOnce(&mut Store<InvocationState>, R) -> T + Send,
    ) -> Result<(T, u64), String> {
        // What may wait is boxed, so that the common case — a synchronous
        // plugin nobody else is calling — runs without an await in a small
        // future.
        if !self.plugin.sync {
            return Box::pin(self.call_async(caller, generation, pick, params, then)).await;
        }
        let begun = match self.plugin.begin_sync(caller, generation) {
            Some(begun) => begun,
            None => Box::pin(self.plugin.begin(caller, generation)).await,
        };
        self.run_sync(begun, pick, params, then)
    }

    /// [`call`](Self::call) for a synchronous host function, into a plugin
    /// in a synchronous Store: waits on this thread if another call holds
    /// the plugin (see [`sync_wait`](crate::plugins::shared::sync_wait)).
    pub(crate) fn call_sync<P: CallParams, R: CallResults>(
        &self,
        caller: Caller<'_>,
        generation: Option<u64>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
        params: P,
    ) -> Result<(R, u64), String> {
        let begun = match self.plugin.begin_sync(caller, generation) {
            Some(begun) => begun,
            None => self.plugin.begin_blocking(caller, generation),
        };
        self.run_sync(begun, pick, params, |_, results| results)
    }

    /// Runs the call `begun` in a synchronous Store: the function `pick`
    /// chooses, with `params`, and `then` on its results.
    fn run_sync<P: CallParams, R: CallResults, T>(
        &self,
        begun: Result<PluginCall<'_>>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
        params: P,
        then: impl FnOnce(&mut Store<InvocationState>, R) -> T,
    ) -> Result<(T, u64), String> {
        let (mut call, func) = self.pick(begun.map_err(failed)?, pick)?;
        let store = &mut call.running.store;
        let result = func
            .call(&mut *store, params)
            .map(|results| then(store, results));
        call.finish(result).map_err(failed)
    }

    /// [`call_then`](Self::call_then) into an async Store.
    async fn call_async<P: CallParams, R: CallResults, T>(
        &self,
        caller: Caller<'_>,
        generation: Option<u64>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
        params: P,
        then: impl FnOnce(&mut Store<InvocationState>, R) -> T + Send,
    ) -> Result<(T, u64), String> {
        let call = self
            .plugin
            .begin(caller, generation)
            .await
            .map_err(failed)?;
        let (mut call, func) = self.pick(call, pick)?;
        let deadline = call.deadline();
        let store = &mut call.running.store;
        let result = PluginCall::bounded(deadline, func.call_async(&mut *store, params)).await;
        let result = result.map(|results| then(store, results));
        call.finish(result).map_err(failed)
    }

    /// The function `pick` chooses among the running instance's exports
    /// (loaded on the instance's first call). If they are not what was
    /// expected, ends `call` (the plugin is sound) and says why.
    fn pick<'p, P, R>(
        &self,
        mut call: PluginCall<'p>,
        pick: fn(&E::Loaded) -> TypedFunc<P, R>,
    ) -> Result<(PluginCall<'p>, TypedFunc<P, R>), String> {
        let exports = &self.exports;
        let loaded = call
            .running
            .typed(|store, instance| exports.load(store, instance))
            .map(pick);
        match loaded {
            Ok(func) => Ok((call, func)),
            Err(e) => {
                let refused = format!("{e:#}");
                call.finish(Ok(())).map_err(failed)?;
                Err(refused)
            }
        }
    }
}

/// How a failed call reads in the interface's error string: a bounded
/// summary, not the plugin's whole backtrace.
fn failed(e: anyhow::Error) -> String {
    crate::trap::summary_anyhow(&e)
}

/// The typed forwarders a component's Stores use, one per interface family
/// (cloned into every Store; the host traits find their plugin here).
#[derive(Clone, Default)]
pub struct TypedForwarders {
    pub(crate) keyvalue: Option<Arc<keyvalue::KeyvalueForwarder>>,
    pub(crate) config: Option<Arc<config::ConfigForwarder>>,
    pub(crate) logging: Option<Arc<logging::LoggingForwarder>>,
    pub(crate) messaging: Option<Arc<messaging::MessagingForwarder>>,
    pub(crate) blobstore: Option<Arc<blobstore::BlobstoreForwarder>>,
}

impl std::fmt::Debug for TypedForwarders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |plugin: &SharedPlugin| plugin.name().to_string();
        f.debug_struct("TypedForwarders")
            .field(
                "keyvalue",
                &self.keyvalue.as_ref().map(|t| name(t.plugin())),
            )
            .field("config", &self.config.as_ref().map(|t| name(t.plugin())))
            .field("logging", &self.logging.as_ref().map(|t| name(t.plugin())))
            .field(
                "messaging",
                &self.messaging.as_ref().map(|t| name(t.plugin())),
            )
            .field(
                "blobstore",
                &self.blobstore.as_ref().map(|t| name(t.plugin())),
            )
            .finish()
    }
}

/// Whether a typed forwarder serves `interface` (`ns:pkg/iface@version`,
/// exactly the version keel was built with).
pub fn serves(interface: &str) -> bool {
    [
        &keyvalue::INTERFACES[..],
        &config::INTERFACES[..],
        &logging::INTERFACES[..],
        &messaging::INTERFACES[..],
        &blobstore::INTERFACES[..],
    ]
    .iter()
    .any(|family| family.contains(&interface))
}

/// A workload import bound to the shared plugin that serves it.
pub type SharedBinding = (Binding, Arc<SharedPlugin>);

/// Links into `linker` the shared `bindings` a typed forwarder can serve.
/// Returns the forwarders, for the component's Stores, and the bindings
/// left for the generic forwarder.
pub fn link_typed(
    linker: &mut Linker<InvocationState>,
    mut bindings: Vec<SharedBinding>,
) -> Result<(TypedForwarders, Vec<SharedBinding>)> {
    // Messaging and blobstore, not written as routes, link async host
    // functions whatever Store their plugin runs in.
    let typed = TypedForwarders {
        keyvalue: take_family(linker, &mut bindings, &keyvalue::INTERFACES, keyvalue::link)?,
        config: take_family(linker, &mut bindings, &config::INTERFACES, config::link)?,
        logging: take_family(linker, &mut bindings, &logging::INTERFACES, logging::link)?,
        messaging: take_family(linker, &mut bindings, &messaging::INTERFACES, |l, i, _| {
            messaging::link(l, i)
        })?,
        blobstore: take_family(linker, &mut bindings, &blobstore::INTERFACES, |l, i, _| {
            blobstore::link(l, i)
        })?,
    };
    Ok((typed, bindings))
}

/// The typed forwarder of the family `interfaces`, its imports linked with
/// `link` (told whether the plugin runs in a synchronous Store), if it can
/// serve them all (see [`claim`]).
fn take_family<E: Exports>(
    linker: &mut Linker<InvocationState>,
    bindings: &mut Vec<SharedBinding>,
    interfaces: &[&str],
    link: fn(&mut Linker<InvocationState>, &[String], bool) -> Result<()>,
) -> Result<Option<Arc<TypedPlugin<E>>>> {
    let Some((forwarder, imports)) = claim::<E>(bindings, interfaces) else {
        return Ok(None);
    };
    link(linker, &imports, forwarder.plugin().runs_sync())?;
    Ok(Some(Arc::new(forwarder)))
}

/// Takes out of `bindings` those of the family `interfaces` if a typed
/// forwarder can serve them all, with that forwarder; leaves `bindings` as
/// they were otherwise.
fn claim<E: Exports>(
    bindings: &mut Vec<SharedBinding>,
    interfaces: &[&str],
) -> Option<(TypedPlugin<E>, Vec<String>)> {
    let family: Vec<&SharedBinding> = bindings
        .iter()
        .filter(|(binding, _)| interfaces.contains(&binding.import.as_str()))
        .collect();
    let (_, plugin) = family.first()?;
    let one_plugin = family.iter().all(|(binding, serving)| {
        binding.export == binding.import && Arc::ptr_eq(serving, plugin) && serving.typed
    });
    if !one_plugin {
        return None;
    }
    let forwarder = TypedPlugin::new(plugin)?;
    let imports: Vec<String> = family.iter().map(|(b, _)| b.import.clone()).collect();
    bindings.retain(|(binding, _)| !imports.contains(&binding.import));
    Some((forwarder, imports))
}

/// The plugin's handle behind the workload's proxy in `slot`, lent for one
/// call, with the plugin instance it belongs to.
pub(crate) fn lent(
    proxies: &ProxyTable,
    plugin: &Arc<SharedPlugin>,
    slot: u32,
) -> Result<(ResourceAny, u64), String> {
    let proxy = proxies
        .get(slot)
        .ok_or_else(|| format!("unknown handle {slot}"))?;
    same_plugin(proxy, plugin)?;
    Ok((proxy.handle, proxy.generation))
}

/// The plugin's handle behind the workload's proxy in `slot`, taken out of
/// the workload's table (an owned handle moving into the plugin).
pub(crate) fn moved(
    proxies: &mut ProxyTable,
    plugin: &Arc<SharedPlugin>,
    slot: u32,
) -> Result<(ResourceAny, u64), String> {
    lent(proxies, plugin, slot)?;
    let proxy = proxies
        .take(slot)
        .ok_or_else(|| format!("unknown handle {slot}"))?;
    Ok((proxy.handle, proxy.generation))
}

/// Gives the workload `handle`, of `plugin`'s instance `generation`: the
/// slot of its proxy.
pub(crate) fn held(
    proxies: &mut ProxyTable,
    plugin: &Arc<SharedPlugin>,
    generation: u64,
    handle: ResourceAny,
) -> u32 {
    proxies.insert(Proxy {
        plugin: plugin.clone(),
        generation,
        handle,
    })
}

fn same_plugin(proxy: &Proxy, plugin: &Arc<SharedPlugin>) -> Result<(), String> {
    if Arc::ptr_eq(&proxy.plugin, plugin) {
        return Ok(());
    }
    Err(format!(
        "a handle of plugin `{}` was passed to plugin `{}`",
        proxy.plugin.name(),
        plugin.name()
    ))
}

/// Links each of `imports` with `link`, naming the import in errors.
fn link_each(imports: &[String], mut link: impl FnMut(&str) -> wasmtime::Result<()>) -> Result<()> {
    for import in imports {
        link(import).map_err(|e| {
            anyhow::Error::from(e).context(format!("linking the typed forwarder of `{import}`"))
        })?;
    }
    Ok(())
}

impl TypedForwarders {
    /// No forwarders.
    pub const NONE: TypedForwarders = TypedForwarders {
        keyvalue: None,
        config: None,
        logging: None,
        messaging: None,
        blobstore: None,
    };

    /// Whether no interface family has a typed forwarder.
    pub fn is_empty(&self) -> bool {
        self.keyvalue.is_none()
            && self.config.is_none()
            && self.logging.is_none()
            && self.messaging.is_none()
            && self.blobstore.is_none()
    }
}
