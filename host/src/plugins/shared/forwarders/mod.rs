//! How a workload's calls reach a shared plugin: host functions in the
//! workload's Store that forward each call into the plugin's Store. The
//! [`generic`] forwarder serves any interface through dynamic values; the
//! [`typed`] ones serve the interfaces keel knows with static types, which
//! is cheaper. Resources the plugin hands out live in the workload as
//! [`proxy`] resources, and `wasi:io` streams move between the two Stores
//! ([`streams`]).

pub mod generic;
pub mod proxy;
pub mod streams;
pub mod typed;

use crate::store::InvocationState;
use anyhow::Result;
use typed::{SharedBinding, TypedForwarders};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// Links the imports `bindings` of `component` to the shared plugins
/// serving them: a typed forwarder where one fits, the generic one
/// otherwise. Returns the typed forwarders (for the component's Stores)
/// and the imports the generic forwarder carries.
pub fn link_all(
    linker: &mut Linker<InvocationState>,
    engine: &Engine,
    component: &Component,
    bindings: Vec<SharedBinding>,
) -> Result<(TypedForwarders, Vec<String>)> {
    let (typed, generic) = typed::link_typed(linker, bindings)?;
    let imports = generic.iter().map(|(b, _)| b.import.clone()).collect();
    let mut proxy_types = generic::ProxyTypes::default();
    for (binding, plugin) in generic {
        generic::link_shared(
            linker,
            engine,
            component,
            &binding.import,
            &binding.export,
            plugin,
            &mut proxy_types,
        )?;
    }
    Ok((typed, imports))
}
