//! Host streams crossing from a shared plugin's Store to a workload's.
//!
//! A `wasi:io` stream a plugin returns (one end of a [`keel:core/pipe`](crate::core_api::pipe),
//! say) is a host object in the plugin Store's resource table; the
//! workload's handle must name an entry in *its* table. Since the object is
//! the host's, moving it is enough: [`take_out`] removes it from the
//! plugin's table while the plugin's Store is at hand (leaving a
//! placeholder), and the forwarder puts it into the workload's table where
//! the function's declared result type says a resource goes
//! ([`HostObject::put_in`]). Any interface that returns streams works this
//! way, the built-in ones and those a platform team invents.

use crate::workload::InvocationState;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Resource, ResourceAny, ResourceType, Val};
use wasmtime::{AsContextMut, Engine, StoreContextMut};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

/// A host object moved out of one Store's table.
pub enum HostObject {
    /// A `wasi:io/streams` input stream.
    Input(DynInputStream),
    /// A `wasi:io/streams` output stream.
    Output(DynOutputStream),
}

/// The stream types of the `wasi:io/streams` `component` imports, as
/// declared in its type, each with the host's resource type.
pub fn declared_streams(
    engine: &Engine,
    component: &Component,
) -> Vec<(ResourceType, ResourceType)> {
    let mut found = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("wasi:io/streams@") {
            continue;
        }
        for (member, item) in instance.exports(engine) {
            let ComponentItem::Resource(declared) = item.ty else {
                continue;
            };
            match member {
                "input-stream" => found.push((declared, ResourceType::host::<DynInputStream>())),
                "output-stream" => found.push((declared, ResourceType::host::<DynOutputStream>())),
                _ => {}
            }
        }
    }
    found
}

/// Whether `handle` is a host stream (rather than a plugin's own resource).
pub fn is_host_stream(handle: &ResourceAny) -> bool {
    let ty = handle.ty();
    ty == ResourceType::host::<DynInputStream>() || ty == ResourceType::host::<DynOutputStream>()
}

/// Moves every host stream in `values` out of `store`'s table, replacing it
/// with `Val::U32(i)`, `i` its index in the returned list.
pub fn take_out(
    mut store: impl AsContextMut<Data = InvocationState>,
    values: &mut [Val],
) -> wasmtime::Result<Vec<HostObject>> {
    let mut moved = Vec::new();
    for value in values {
        take_from(&mut store.as_context_mut(), value, &mut moved)?;
    }
    Ok(moved)
}

fn take_from(
    store: &mut StoreContextMut<'_, InvocationState>,
    value: &mut Val,
    moved: &mut Vec<HostObject>,
) -> wasmtime::Result<()> {
    match value {
        Val::Resource(handle) if is_host_stream(handle) => {
            let object = if handle.ty() == ResourceType::host::<DynInputStream>() {
                let stream: Resource<DynInputStream> = handle.try_into_resource(&mut *store)?;
                HostObject::Input(store.data_mut().table_mut().delete(stream)?)
            } else {
                let stream: Resource<DynOutputStream> = handle.try_into_resource(&mut *store)?;
                HostObject::Output(store.data_mut().table_mut().delete(stream)?)
            };
            *value = Val::U32(u32::try_from(moved.len())?);
            moved.push(object);
        }
        Val::List(items) | Val::FixedLengthList(items) | Val::Tuple(items) => {
            for item in items {
                take_from(store, item, moved)?;
            }
        }
        Val::Record(fields) => {
            for (_, field) in fields {
                take_from(store, field, moved)?;
            }
        }
        Val::Variant(_, Some(inner))
        | Val::Option(Some(inner))
        | Val::Result(Ok(Some(inner)))
        | Val::Result(Err(Some(inner))) => take_from(store, inner, moved)?,
        _ => {}
    }
    Ok(())
}

impl HostObject {
    /// Puts the object into `store`'s table: the workload's handle to it.
    pub fn put_in(
        self,
        store: &mut StoreContextMut<'_, InvocationState>,
    ) -> wasmtime::Result<ResourceAny> {
        match self {
            HostObject::Input(stream) => {
                let handle = store.data_mut().table_mut().push(stream)?;
                handle.try_into_resource_any(&mut *store)
            }
            HostObject::Output(stream) => {
                let handle = store.data_mut().table_mut().push(stream)?;
                handle.try_into_resource_any(&mut *store)
            }
        }
    }
}
