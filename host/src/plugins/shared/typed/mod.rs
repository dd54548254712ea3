//! Typed forwarders: for the built-in interfaces keel knows when it is
//! built, host shims generated with `bindgen!` on both sides — the
//! workload's imports as host traits, the plugin's exports as typed
//! functions — so a call crosses to the shared plugin without the generic
//! forwarder's walk through [`Val`](wasmtime::component::Val)s.
//!
//! A typed forwarder serves an interface family only where the plugin
//! exports the whole family at the version it was generated for and one
//! plugin serves all of the family's imports (they share resources);
//! anything else goes to the generic forwarder, as does every plugin
//! declared with `forwarder = "generic"`.

pub mod keyvalue;

use super::SharedPlugin;
use crate::workload::InvocationState;
use anyhow::Result;
use keel_compose::Binding;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The typed forwarders a component's Stores use, one per interface family
/// (cloned into every Store; the host traits find their plugin here).
#[derive(Clone, Default)]
pub struct TypedForwarders {
    pub(crate) keyvalue: Option<Arc<keyvalue::KeyvalueForwarder>>,
}

impl std::fmt::Debug for TypedForwarders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedForwarders")
            .field("keyvalue", &self.keyvalue.as_ref().map(|k| k.plugin.name()))
            .finish()
    }
}

/// A workload import bound to the shared plugin that serves it.
pub type SharedBinding = (Binding, Arc<SharedPlugin>);

/// Links into `linker` the shared `bindings` a typed forwarder can serve.
/// Returns the forwarders, for the component's Stores, and the bindings
/// left for the generic forwarder.
pub fn link_typed(
    linker: &mut Linker<InvocationState>,
    bindings: Vec<SharedBinding>,
) -> Result<(TypedForwarders, Vec<SharedBinding>)> {
    let mut typed = TypedForwarders::default();
    let (family, rest): (Vec<_>, Vec<_>) = bindings
        .into_iter()
        .partition(|(binding, _)| keyvalue::INTERFACES.contains(&binding.import.as_str()));
    let Some((_, plugin)) = family.first() else {
        return Ok((typed, rest));
    };
    let one_plugin = family.iter().all(|(binding, serving)| {
        binding.export == binding.import && Arc::ptr_eq(serving, plugin) && serving.typed
    });
    match one_plugin
        .then(|| keyvalue::KeyvalueForwarder::new(plugin.clone()))
        .flatten()
    {
        Some(forwarder) => {
            let imports: Vec<&str> = family.iter().map(|(b, _)| b.import.as_str()).collect();
            keyvalue::KeyvalueForwarder::link(linker, &imports)?;
            typed.keyvalue = Some(Arc::new(forwarder));
            Ok((typed, rest))
        }
        None => Ok((typed, family.into_iter().chain(rest).collect())),
    }
}
