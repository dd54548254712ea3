//! Host streams crossing between a workload's Store and a shared plugin's.
//!
//! A `wasi:io` stream is a host object in one Store's resource table, and a
//! guest's handle names an entry in *its* Store's table. Since the object is
//! the host's, moving it between tables is enough:
//!
//! - **results**: [`take_out`] removes each stream a plugin returns from
//!   the plugin's table while the plugin's Store is at hand (leaving a
//!   placeholder), and the forwarder puts it into the workload's table
//!   where the function's declared result type says a resource goes
//!   ([`HostObject::put_in`]);
//! - **parameters**: an owned stream moves into the plugin's table for good
//!   ([`Incoming`]); a borrowed one is lent for the call — the workload's
//!   entry holds a closed stream meanwhile — and comes back after it.
//!
//! Any interface that passes streams works this way in shared mode, the
//! built-in ones and those a platform team invents.

use crate::store::InvocationState;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Resource, ResourceAny, ResourceType, Val};
use wasmtime::{AsContextMut, Engine, StoreContextMut};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

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
            let (object, _) = take(store, handle, Taking::Whole)?;
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

/// A workload's stream on its way into a shared plugin's Store for one call.
pub struct Incoming {
    /// Where it goes in the call's parameters: the parameter's index, then
    /// the index of each nested value (list item, field, payload = 0).
    pub path: Vec<usize>,
    /// The stream.
    pub object: HostObject,
    /// For a borrowed stream, the workload's table entry it returns to.
    pub lent_from: Option<u32>,
}

/// Takes the stream `handle` names out of the workload's table: all of it
/// for an owned handle; for a borrow, lent (a closed stream stands in).
pub fn take_param(
    store: &mut StoreContextMut<'_, InvocationState>,
    handle: &ResourceAny,
    path: Vec<usize>,
) -> wasmtime::Result<Incoming> {
    let owned = handle.owned();
    let how = if owned { Taking::Whole } else { Taking::Lent };
    let (object, rep) = take(store, handle, how)?;
    Ok(Incoming {
        path,
        object,
        lent_from: (!owned).then_some(rep),
    })
}

/// Takes the stream `handle` (in the plugin's Store) back out of its table.
pub fn take_back(
    store: &mut StoreContextMut<'_, InvocationState>,
    handle: ResourceAny,
) -> wasmtime::Result<HostObject> {
    take(store, &handle, Taking::Whole).map(|(object, _)| object)
}

/// How a stream leaves its table.
#[derive(Clone, Copy)]
enum Taking {
    /// The entry goes with it.
    Whole,
    /// The entry stays, holding a closed stream until the stream comes back.
    Lent,
}

/// Takes the host stream `handle` names out of `store`'s table; returns it
/// and the table entry it was in.
fn take(
    store: &mut StoreContextMut<'_, InvocationState>,
    handle: &ResourceAny,
    how: Taking,
) -> wasmtime::Result<(HostObject, u32)> {
    if handle.ty() == ResourceType::host::<DynInputStream>() {
        take_typed::<DynInputStream>(store, handle, how).map(|(s, rep)| (HostObject::Input(s), rep))
    } else {
        take_typed::<DynOutputStream>(store, handle, how)
            .map(|(s, rep)| (HostObject::Output(s), rep))
    }
}

/// The two kinds of host stream, and the closed one of each kind.
trait HostStream: Send + 'static {
    fn closed() -> Self;
}

impl HostStream for DynInputStream {
    fn closed() -> Self {
        Box::new(Closed)
    }
}

impl HostStream for DynOutputStream {
    fn closed() -> Self {
        Box::new(Closed)
    }
}

fn take_typed<T: HostStream>(
    store: &mut StoreContextMut<'_, InvocationState>,
    handle: &ResourceAny,
    how: Taking,
) -> wasmtime::Result<(T, u32)> {
    let stream: Resource<T> = handle.try_into_resource(&mut *store)?;
    let rep = stream.rep();
    let table = store.data_mut().table_mut();
    let object = match how {
        Taking::Whole => table.delete(stream)?,
        Taking::Lent => std::mem::replace(table.get_mut(&stream)?, T::closed()),
    };
    Ok((object, rep))
}

/// The value at `path` in `values` (see [`Incoming::path`]).
pub fn at_path<'a>(values: &'a mut [Val], path: &[usize]) -> Option<&'a mut Val> {
    let (first, rest) = path.split_first()?;
    let mut value = values.get_mut(*first)?;
    for index in rest {
        value = match value {
            Val::List(items) | Val::FixedLengthList(items) | Val::Tuple(items) => {
                items.get_mut(*index)?
            }
            Val::Record(fields) => &mut fields.get_mut(*index)?.1,
            Val::Variant(_, Some(inner))
            | Val::Option(Some(inner))
            | Val::Result(Ok(Some(inner)))
            | Val::Result(Err(Some(inner))) => inner,
            _ => return None,
        };
    }
    Some(value)
}

/// What a workload's table holds while its stream is lent to a plugin.
struct Closed;

impl InputStream for Closed {
    fn read(&mut self, _size: usize) -> StreamResult<bytes::Bytes> {
        Err(StreamError::Closed)
    }
}

impl OutputStream for Closed {
    fn write(&mut self, _bytes: bytes::Bytes) -> StreamResult<()> {
        Err(StreamError::Closed)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Err(StreamError::Closed)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Err(StreamError::Closed)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Closed {
    async fn ready(&mut self) {}
}

impl HostObject {
    /// Gives a lent stream back to the workload's table entry `rep`.
    pub fn return_to(
        self,
        store: &mut StoreContextMut<'_, InvocationState>,
        rep: u32,
    ) -> wasmtime::Result<()> {
        let table = store.data_mut().table_mut();
        match self {
            HostObject::Input(stream) => {
                *table.get_mut(&Resource::<DynInputStream>::new_borrow(rep))? = stream;
            }
            HostObject::Output(stream) => {
                *table.get_mut(&Resource::<DynOutputStream>::new_borrow(rep))? = stream;
            }
        }
        Ok(())
    }

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
