//! The generic forwarder: host shims in a workload's linker that carry each
//! call of a shared plugin's interface across to the plugin's Store, with
//! [`Val`]s, so that any interface a platform team invents works in shared
//! mode without generated code.
//!
//! Parameters: a proxy resource becomes the plugin handle it stands for — an
//! owned one moves out of the workload's [`ProxyTable`](super::proxy::ProxyTable),
//! a borrowed one is lent for the call. Results: a plugin handle becomes a
//! new proxy, and a host stream moves into the workload's table
//! ([`streams`]). The walk over results follows the function's declared types,
//! so resources nested in records, lists, options, results and variants are
//! carried too.

use super::proxy::Proxy;
use super::streams::{self, HostObject};
use crate::plugins::shared::PluginView;
use crate::plugins::shared::{PluginCall, SharedPlugin};
use crate::store::Caller;
use crate::store::InvocationState;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{
    Component, ComponentExportIndex, Linker, ResourceDynamic, ResourceType, Val,
};
use wasmtime::{AsContextMut, Engine, StoreContextMut};

/// Payloads of proxy resource types: one per resource of each forwarded
/// interface, unique within the process.
static NEXT_PROXY_TYPE: AtomicU32 = AtomicU32::new(0x6b66_0000);

/// Declared resource type (in the workload's component type) → its proxy
/// type id. One map serves every forwarded interface of a component, so a
/// resource one interface `use`s from another (`wasi:keyvalue/atomics`
/// taking `store.bucket`) is one proxy type in both.
#[derive(Default)]
pub struct ProxyTypes(Vec<(ResourceType, u32)>);

impl ProxyTypes {
    fn id_for(&mut self, declared: ResourceType) -> u32 {
        if let Some((_, id)) = self.0.iter().find(|(d, _)| *d == declared) {
            return *id;
        }
        let id = NEXT_PROXY_TYPE.fetch_add(1, Ordering::Relaxed);
        self.0.push((declared, id));
        id
    }
}

/// Links import `import` of `component` to `export` of `plugin`. Use one
/// `proxy_types` for all the shared imports of a component.
pub fn link_shared(
    linker: &mut Linker<InvocationState>,
    engine: &Engine,
    component: &Component,
    import: &str,
    export: &str,
    plugin: Arc<SharedPlugin>,
    proxy_types: &mut ProxyTypes,
) -> Result<()> {
    let component_type = component.component_type();
    let Some(item) = component_type.get_import(engine, import) else {
        bail!("the component has no import `{import}`");
    };
    let ComponentItem::ComponentInstance(instance) = item.ty else {
        bail!("import `{import}` is not an interface");
    };
    let members: Vec<(String, ComponentItem)> = instance
        .exports(engine)
        .map(|(name, e)| (name.to_string(), e.ty))
        .collect();
    let host_streams = streams::declared_streams(engine, component);
    let mut scope = linker.instance(import)?;
    for (name, item) in &members {
        let ComponentItem::Resource(declared) = item else {
            continue;
        };
        // A `wasi:io` stream the interface `use`s is the host's type, not
        // the plugin's: named here as the host's, its handles move (see
        // `streams`).
        if let Some((_, host)) = host_streams.iter().find(|(d, _)| d == declared) {
            scope.resource(name, *host, |_, _| Ok(()))?;
            continue;
        }
        let id = proxy_types.id_for(*declared);
        scope.resource_async(name, ResourceType::host_dynamic(id), |mut cx, slot| {
            Box::new(async move {
                if let Some(proxy) = cx.data_mut().plugin_state().proxies.take(slot) {
                    proxy.release().await;
                }
                Ok(())
            })
        })?;
    }
    // Results may carry any resource this interface names: its own, or one
    // it uses from an interface imported (and so linked) before it.
    let proxy_types: Arc<Vec<(ResourceType, u32)>> = Arc::new(proxy_types.0.clone());
    let export: Arc<str> = export.into();
    for (name, item) in members {
        let ComponentItem::ComponentFunc(func) = item else {
            continue;
        };
        let result_types: Arc<Vec<Type>> = Arc::new(func.results().collect());
        let function = plugin.export_index(&export, &name)?;
        let plugin = plugin.clone();
        let proxy_types = proxy_types.clone();
        scope.func_new_async(&name, move |mut cx, _ty, params, results| {
            let plugin = plugin.clone();
            let result_types = result_types.clone();
            let proxy_types = proxy_types.clone();
            Box::new(async move {
                let mut outbound = Outbound {
                    plugin: &plugin,
                    generation: None,
                    path: Vec::new(),
                    streams: Vec::new(),
                };
                let mut lent = Vec::new();
                for (i, param) in params.iter().enumerate() {
                    outbound.path.push(i);
                    lent.push(to_plugin(&mut cx, param, &mut outbound)?);
                    outbound.path.pop();
                }
                let (generation, streams) = (outbound.generation, outbound.streams);
                let reply = call(
                    &plugin,
                    cx.data().caller(),
                    function,
                    lent,
                    streams,
                    results.len(),
                    generation,
                )
                .await
                .map_err(wasmtime::Error::from_anyhow)?;
                for (rep, stream) in reply.returned {
                    stream.return_to(&mut cx, rep)?;
                }
                let mut moved: Vec<Option<HostObject>> =
                    reply.moved.into_iter().map(Some).collect();
                let mut carry = Carry {
                    plugin: &plugin,
                    generation: reply.generation,
                    proxy_types: &proxy_types,
                    moved: &mut moved,
                };
                for ((slot, value), ty) in results
                    .iter_mut()
                    .zip(reply.values)
                    .zip(result_types.iter())
                {
                    *slot = to_workload(&mut cx, value, ty, &mut carry)?;
                }
                Ok(())
            })
        })?;
    }
    Ok(())
}

/// What a plugin call returned.
struct Reply {
    /// The results, in the plugin's terms.
    values: Vec<Val>,
    /// The plugin instance they come from.
    generation: u64,
    /// Host streams moved out of the plugin's Store (their places in
    /// `values` hold their indexes here).
    moved: Vec<HostObject>,
    /// Streams the workload lent for the call, with the workload's table
    /// entries they return to.
    returned: Vec<(u32, HostObject)>,
}

/// Calls the function at `function` (see [`SharedPlugin::export_index`])
/// for `caller`, with `params` already in the plugin's terms except for the
/// workload's streams in `incoming`, which go into the plugin's Store first.
/// Returns the results in the plugin's terms (resources are plugin handles,
/// host streams are moved out, see [`streams`]) and the streams that were
/// lent.
async fn call(
    plugin: &SharedPlugin,
    caller: Caller<'_>,
    function: ComponentExportIndex,
    mut params: Vec<Val>,
    incoming: Vec<streams::Incoming>,
    result_count: usize,
    generation_of_params: Option<u64>,
) -> Result<Reply> {
    let mut call = plugin.begin(caller, generation_of_params).await?;
    let deadline = call.deadline();
    let running = &mut call.running;
    let outcome = async {
        // Failing to place a stream leaves the plugin sound: the error goes
        // back inside the result, and nothing restarts.
        let mut lent = Vec::new();
        for stream in incoming {
            let handle = stream.object.put_in(&mut running.store.as_context_mut());
            let placed = handle.map_err(anyhow::Error::from).and_then(|handle| {
                if let Some(rep) = stream.lent_from {
                    lent.push((rep, handle));
                }
                let at = streams::at_path(&mut params, &stream.path)
                    .context("a stream parameter lost its place")?;
                *at = Val::Resource(handle);
                Ok(())
            });
            if let Err(e) = placed {
                return Ok(Err(e));
            }
        }
        let func = match running.func(function) {
            Ok(func) => func,
            Err(e) => return Ok(Err(e)),
        };
        let mut results = vec![Val::Bool(false); result_count];
        if running.sync {
            func.call(&mut running.store, &params, &mut results)?;
        } else {
            // Boxed: a large future that synchronous calls need not carry.
            let called = func.call_async(&mut running.store, &params, &mut results);
            Box::pin(PluginCall::bounded(deadline, called)).await?;
        }
        let mut store = running.store.as_context_mut();
        let mut returned = Vec::new();
        let moved = streams::take_out(&mut store, &mut results).and_then(|moved| {
            for (rep, handle) in lent {
                returned.push((rep, streams::take_back(&mut store, handle)?));
            }
            Ok(moved)
        });
        wasmtime::Result::Ok(
            moved
                .map(|moved| (results, moved, returned))
                .map_err(anyhow::Error::from),
        )
    }
    .await;
    let (reply, generation) = call.finish(outcome)?;
    let (values, moved, returned) = reply?;
    Ok(Reply {
        values,
        generation,
        moved,
        returned,
    })
}

/// What turning one call's parameters into the plugin's terms gathers.
struct Outbound<'a> {
    plugin: &'a Arc<SharedPlugin>,
    /// The plugin instance the parameters' handles belong to.
    generation: Option<u64>,
    /// Where the walk is (see [`streams::Incoming::path`]).
    path: Vec<usize>,
    /// Host streams taken out of the workload's table.
    streams: Vec<streams::Incoming>,
}

/// A workload value in the plugin's terms.
fn to_plugin(
    cx: &mut StoreContextMut<'_, InvocationState>,
    value: &Val,
    out: &mut Outbound<'_>,
) -> wasmtime::Result<Val> {
    let plugin = out.plugin;
    let nested = |cx: &mut StoreContextMut<'_, InvocationState>,
                  i: usize,
                  v: &Val,
                  out: &mut Outbound<'_>| {
        out.path.push(i);
        let mapped = to_plugin(cx, v, out);
        out.path.pop();
        mapped
    };
    Ok(match value {
        Val::Resource(any) if streams::is_host_stream(any) => {
            let incoming = streams::take_param(cx, any, out.path.clone())?;
            out.streams.push(incoming);
            // Replaced with the stream's handle in the plugin's Store.
            Val::Bool(false)
        }
        Val::Resource(any) => {
            let proxy_ref = any.try_into_resource_dynamic(&mut *cx)?;
            let slot = proxy_ref.rep();
            let proxies = &mut cx.data_mut().plugin_state().proxies;
            let proxy = if proxy_ref.owned() {
                proxies.take(slot)
            } else {
                proxies.get(slot).cloned()
            };
            let proxy: Proxy =
                proxy.ok_or_else(|| wasmtime::format_err!("unknown handle {slot}"))?;
            if !Arc::ptr_eq(&proxy.plugin, plugin) {
                wasmtime::bail!(
                    "a handle of plugin `{}` was passed to plugin `{}`",
                    proxy.plugin.name(),
                    plugin.name()
                );
            }
            match out.generation {
                Some(g) if g != proxy.generation => {
                    wasmtime::bail!("handles from two lives of plugin `{}`", plugin.name())
                }
                _ => out.generation = Some(proxy.generation),
            }
            Val::Resource(proxy.handle)
        }
        Val::List(items) | Val::FixedLengthList(items) | Val::Tuple(items) => {
            let mapped = items
                .iter()
                .enumerate()
                .map(|(i, v)| nested(cx, i, v, out))
                .collect::<wasmtime::Result<Vec<_>>>()?;
            match value {
                Val::List(_) => Val::List(mapped),
                Val::FixedLengthList(_) => Val::FixedLengthList(mapped),
                _ => Val::Tuple(mapped),
            }
        }
        Val::Record(fields) => Val::Record(
            fields
                .iter()
                .enumerate()
                .map(|(i, (n, v))| Ok((n.clone(), nested(cx, i, v, out)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Val::Variant(case, payload) => Val::Variant(
            case.clone(),
            boxed(payload.as_deref(), |v| nested(cx, 0, v, out))?,
        ),
        Val::Option(inner) => Val::Option(boxed(inner.as_deref(), |v| nested(cx, 0, v, out))?),
        Val::Result(Ok(inner)) => {
            Val::Result(Ok(boxed(inner.as_deref(), |v| nested(cx, 0, v, out))?))
        }
        Val::Result(Err(inner)) => {
            Val::Result(Err(boxed(inner.as_deref(), |v| nested(cx, 0, v, out))?))
        }
        Val::Map(pairs) => {
            if pairs
                .iter()
                .any(|(k, v)| has_resource(k) || has_resource(v))
            {
                wasmtime::bail!("resources inside a map cannot cross to a shared plugin");
            }
            value.clone()
        }
        Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            wasmtime::bail!("component-model async values cannot cross to a shared plugin")
        }
        plain => plain.clone(),
    })
}

/// Whether `value` holds a resource anywhere.
fn has_resource(value: &Val) -> bool {
    match value {
        Val::Resource(_) => true,
        Val::List(items) | Val::FixedLengthList(items) | Val::Tuple(items) => {
            items.iter().any(has_resource)
        }
        Val::Record(fields) => fields.iter().any(|(_, v)| has_resource(v)),
        Val::Variant(_, Some(inner))
        | Val::Option(Some(inner))
        | Val::Result(Ok(Some(inner)))
        | Val::Result(Err(Some(inner))) => has_resource(inner),
        Val::Map(pairs) => pairs
            .iter()
            .any(|(k, v)| has_resource(k) || has_resource(v)),
        _ => false,
    }
}

fn boxed(
    inner: Option<&Val>,
    mut map: impl FnMut(&Val) -> wasmtime::Result<Val>,
) -> wasmtime::Result<Option<Box<Val>>> {
    inner.map(|v| map(v).map(Box::new)).transpose()
}

/// What turning one call's results into the workload's terms needs.
struct Carry<'a> {
    plugin: &'a Arc<SharedPlugin>,
    generation: u64,
    proxy_types: &'a [(ResourceType, u32)],
    /// Host streams the call moved out of the plugin's Store.
    moved: &'a mut [Option<HostObject>],
}

/// A plugin value in the workload's terms, following its declared type `ty`.
fn to_workload(
    cx: &mut StoreContextMut<'_, InvocationState>,
    value: Val,
    ty: &Type,
    carry: &mut Carry<'_>,
) -> wasmtime::Result<Val> {
    let plugin = carry.plugin;
    let mut map = |v: Val, t: &Type| to_workload(cx, v, t, carry);
    Ok(match (value, ty) {
        (Val::U32(index), Type::Own(_)) => {
            let object = usize::try_from(index)
                .ok()
                .and_then(|i| carry.moved.get_mut(i))
                .and_then(Option::take)
                .ok_or_else(|| wasmtime::format_err!("a moved stream went missing"))?;
            Val::Resource(object.put_in(cx)?)
        }
        (Val::Resource(handle), Type::Own(declared)) => {
            let Some((_, id)) = carry.proxy_types.iter().find(|(d, _)| d == declared) else {
                wasmtime::bail!(
                    "plugin `{}` returned a resource of a type its interface does not declare",
                    plugin.name()
                );
            };
            let slot = cx.data_mut().plugin_state().proxies.insert(Proxy {
                plugin: plugin.clone(),
                generation: carry.generation,
                handle,
            });
            Val::Resource(ResourceDynamic::new_own(slot, *id).try_into_resource_any(&mut *cx)?)
        }
        (Val::List(items), Type::List(list)) => {
            let element = list.ty();
            Val::List(
                items
                    .into_iter()
                    .map(|v| map(v, &element))
                    .collect::<wasmtime::Result<_>>()?,
            )
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => {
            let types: Vec<Type> = tuple.types().collect();
            Val::Tuple(
                items
                    .into_iter()
                    .zip(types.iter())
                    .map(|(v, t)| map(v, t))
                    .collect::<wasmtime::Result<_>>()?,
            )
        }
        (Val::Record(fields), Type::Record(record)) => {
            let types: Vec<Type> = record.fields().map(|f| f.ty).collect();
            Val::Record(
                fields
                    .into_iter()
                    .zip(types.iter())
                    .map(|((n, v), t)| Ok((n, map(v, t)?)))
                    .collect::<wasmtime::Result<_>>()?,
            )
        }
        (Val::Variant(case, payload), Type::Variant(variant)) => {
            let case_ty = variant.cases().find(|c| c.name == case).and_then(|c| c.ty);
            Val::Variant(case, map_payload(payload, case_ty.as_ref(), &mut map)?)
        }
        (Val::Option(inner), Type::Option(option)) => {
            Val::Option(map_payload(inner, Some(&option.ty()), &mut map)?)
        }
        (Val::Result(Ok(inner)), Type::Result(result)) => {
            Val::Result(Ok(map_payload(inner, result.ok().as_ref(), &mut map)?))
        }
        (Val::Result(Err(inner)), Type::Result(result)) => {
            Val::Result(Err(map_payload(inner, result.err().as_ref(), &mut map)?))
        }
        (Val::Resource(_), _) => wasmtime::bail!(
            "plugin `{}` returned a resource where none was declared",
            plugin.name()
        ),
        (plain, _) => plain,
    })
}

fn map_payload(
    payload: Option<Box<Val>>,
    ty: Option<&Type>,
    map: &mut impl FnMut(Val, &Type) -> wasmtime::Result<Val>,
) -> wasmtime::Result<Option<Box<Val>>> {
    match (payload, ty) {
        (Some(v), Some(t)) => Ok(Some(Box::new(map(*v, t)?))),
        (Some(v), None) => Ok(Some(v)),
        (None, _) => Ok(None),
    }
}
