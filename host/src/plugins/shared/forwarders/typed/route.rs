//! Linking one workload import to a typed forwarder, the way its plugin
//! can be called: a synchronous host function for a plugin in a
//! synchronous Store, an async one otherwise.
//!
//! Wasmtime's async host functions box a future and block on it on the
//! workload's fiber; for a plugin that answers without waiting that
//! machinery cost more than a third of a forwarded `wasi:keyvalue` `get`
//! (see README, Performance). A synchronous host function cannot suspend
//! its workload, though: when another call holds the plugin it waits on
//! its thread ([`sync_wait`](crate::plugins::shared::sync_wait)), which is
//! sound only because a synchronous plugin's calls never wait inside. So
//! the mode is chosen per plugin when the workload is linked, and an import
//! is written once, as a [`route`]: what the plugin is called with
//! (`prepare`) and what its reply becomes for the workload (`answer`).

use super::{CallParams, CallResults, Exports, TypedForwarders, TypedPlugin};
use crate::core_api::identity::WorkloadIdentity;
use crate::plugins::shared::PluginView;
use crate::plugins::shared::SharedPlugin;
use crate::plugins::shared::forwarders::proxy::ProxyTable;
use crate::store::InvocationState;
use std::sync::Arc;
use wasmtime::StoreContextMut;
use wasmtime::component::{
    ComponentNamedList, Lift, LinkerInstance, Lower, ResourceType, TypedFunc,
};

/// A workload's call as a call of the plugin's function: which one, with
/// what, on handles of which plugin instance.
pub(crate) struct Forward<E: Exports, P, R, K = ()> {
    /// The plugin instance the parameters' handles belong to, if any.
    pub generation: Option<u64>,
    /// The plugin's function.
    pub pick: fn(&E::Loaded) -> TypedFunc<P, R>,
    /// Its parameters.
    pub params: P,
    /// What the answer needs of the call besides the plugin's reply (the
    /// record a failed `log` leaves to the host's log, say).
    pub keep: K,
}

impl<E: Exports, P, R> Forward<E, P, R> {
    /// The call of `pick` with `params`, on no handle.
    pub fn new(pick: fn(&E::Loaded) -> TypedFunc<P, R>, params: P) -> Self {
        Forward {
            generation: None,
            pick,
            params,
            keep: (),
        }
    }
}

/// How a family's forwarder is found in a workload's Store.
pub(crate) type Family<E> = fn(&TypedForwarders) -> Option<&Arc<TypedPlugin<E>>>;

/// What a forwarder's `prepare` sees of the calling Store: the plugin
/// handles it holds and whom it acts for.
#[derive(Clone, Copy)]
pub(crate) struct Seen<'a> {
    /// The shared-plugin handles the Store's instance holds.
    pub proxies: &'a ProxyTable,
    /// The workload the Store runs for.
    pub identity: &'a Arc<WorkloadIdentity>,
}

/// Links function `name` of `instance` to the plugin's function that
/// `prepare` picks: a synchronous host function if `sync` (the plugin runs
/// in a synchronous Store), else an async one.
///
/// `prepare` makes the plugin's call of the workload's parameters `Q`, or
/// answers at once (a handle of another plugin, say); `answer` makes the
/// workload's results `A` of the plugin's reply and what `prepare` kept,
/// holding any handle the plugin returns in the workload's proxy table.
pub(crate) fn route<E, Q, P, R, K, A>(
    instance: &mut LinkerInstance<'_, InvocationState>,
    name: &str,
    sync: bool,
    family: Family<E>,
    prepare: impl Fn(Seen<'_>, &TypedPlugin<E>, Q) -> Result<Forward<E, P, R, K>, A>
    + Send
    + Sync
    + Copy
    + 'static,
    answer: impl Fn(&mut ProxyTable, &Arc<SharedPlugin>, K, Result<(R, u64), String>) -> A
    + Send
    + Sync
    + Copy
    + 'static,
) -> wasmtime::Result<()>
where
    E: Exports,
    Q: ComponentNamedList + Lift + Send + Sync + 'static,
    P: CallParams,
    R: CallResults,
    K: Send + 'static,
    A: ComponentNamedList + Lower + Send + Sync + 'static,
{
    let missing: Arc<str> = format!("no shared plugin serves `{name}` in this Store").into();
    if sync {
        return instance.func_wrap(
            name,
            move |mut cx: StoreContextMut<'_, InvocationState>, params: Q| {
                let (plugin, caller) = cx.data_mut().plugin_and_caller();
                let forwarder =
                    family(&plugin.typed).ok_or_else(|| wasmtime::format_err!("{missing}"))?;
                let seen = Seen {
                    proxies: &plugin.proxies,
                    identity: caller.identity,
                };
                let call = match prepare(seen, forwarder, params) {
                    Ok(call) => call,
                    Err(answered) => return Ok(answered),
                };
                let reply = forwarder.call_sync(caller, call.generation, call.pick, call.params);
                Ok(answer(
                    &mut plugin.proxies,
                    forwarder.plugin(),
                    call.keep,
                    reply,
                ))
            },
        );
    }
    instance.func_wrap_async(
        name,
        move |mut cx: StoreContextMut<'_, InvocationState>, params: Q| {
            let missing = missing.clone();
            Box::new(async move {
                let (plugin, caller) = cx.data_mut().plugin_and_caller();
                let forwarder =
                    family(&plugin.typed).ok_or_else(|| wasmtime::format_err!("{missing}"))?;
                let seen = Seen {
                    proxies: &plugin.proxies,
                    identity: caller.identity,
                };
                let call = match prepare(seen, forwarder, params) {
                    Ok(call) => call,
                    Err(answered) => return Ok(answered),
                };
                let reply = forwarder
                    .call(caller, call.generation, call.pick, call.params)
                    .await;
                Ok(answer(
                    &mut plugin.proxies,
                    forwarder.plugin(),
                    call.keep,
                    reply,
                ))
            })
        },
    )
}

/// Links resource `name` of `instance` as a proxy of the plugin's resource
/// (host type `T`): dropping it releases the plugin's handle, at once if
/// `sync`, else after waiting for the plugin.
pub(crate) fn proxy_resource<T: 'static>(
    instance: &mut LinkerInstance<'_, InvocationState>,
    name: &str,
    sync: bool,
) -> wasmtime::Result<()> {
    let ty = ResourceType::host::<T>();
    if sync {
        return instance.resource(name, ty, |mut cx, slot| {
            if let Some(proxy) = cx.data_mut().plugin_state().proxies.take(slot) {
                proxy.release_sync();
            }
            Ok(())
        });
    }
    instance.resource_async(name, ty, |mut cx, slot| {
        Box::new(async move {
            if let Some(proxy) = cx.data_mut().plugin_state().proxies.take(slot) {
                proxy.release().await;
            }
            Ok(())
        })
    })
}
