//! Deny by default: an import nothing serves is linked to an implementation
//! that refuses. Where the function's error type has an `access-denied` case
//! (as `wasi:keyvalue`, `wasi:blobstore` and friends do) the call returns it;
//! otherwise the call traps with a message naming the interface.

use anyhow::{Result, bail};
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, ResourceType, Val};

/// The case name keel answers with where an error type offers it.
pub const ACCESS_DENIED: &str = "access-denied";

/// Distinct ids for the placeholder resource types of denied interfaces.
static NEXT_DENIED_RESOURCE: AtomicU32 = AtomicU32::new(0x6b65_0000);

/// Links a deny implementation for import `name` of `component`. `why` ends
/// up in the trap message.
pub fn link_denied<T: 'static>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
    name: &str,
    why: &str,
) -> Result<()> {
    let component_type = component.component_type();
    let Some(import) = component_type.get_import(engine, name) else {
        bail!("the component has no import `{name}`");
    };
    match import.ty {
        ComponentItem::ComponentInstance(instance) => {
            let mut scope = linker.instance(name)?;
            let members: Vec<(String, ComponentItem)> = instance
                .exports(engine)
                .map(|(member, e)| (member.to_string(), e.ty))
                .collect();
            // Resources first: functions mentioning them are checked against them.
            for (member, item) in &members {
                if let ComponentItem::Resource(_) = item {
                    let id = NEXT_DENIED_RESOURCE.fetch_add(1, Ordering::Relaxed);
                    scope.resource(member, ResourceType::host_dynamic(id), |_, _| Ok(()))?;
                }
            }
            for (member, item) in members {
                if let ComponentItem::ComponentFunc(func) = item {
                    let refusal = Refusal::for_func(&func, format!("{name}#{member}"), why);
                    scope.func_new(&member, move |_, _, _, results| refusal.answer(results))?;
                }
            }
        }
        ComponentItem::ComponentFunc(func) => {
            let refusal = Refusal::for_func(&func, name.to_string(), why);
            linker
                .root()
                .func_new(name, move |_, _, _, results| refusal.answer(results))?;
        }
        other => bail!("import `{name}` is a {other:?}, which keel cannot deny"),
    }
    Ok(())
}

/// What a denied function does when called.
struct Refusal {
    error_value: Option<Val>,
    message: String,
}

impl Refusal {
    fn for_func(func: &ComponentFunc, label: String, why: &str) -> Refusal {
        Refusal {
            error_value: access_denied_value(func),
            message: format!("keel denied `{label}`: {why}"),
        }
    }

    fn answer(&self, results: &mut [Val]) -> wasmtime::Result<()> {
        match (&self.error_value, results.first_mut()) {
            (Some(value), Some(slot)) => {
                *slot = value.clone();
                Ok(())
            }
            _ => Err(wasmtime::format_err!("{}", self.message)),
        }
    }
}

/// `Err(access-denied)` when the function returns `result<_, E>` and `E` is
/// a variant or enum with an `access-denied` case without payload.
fn access_denied_value(func: &ComponentFunc) -> Option<Val> {
    let mut results = func.results();
    let (Some(wasmtime::component::types::Type::Result(result)), None) =
        (results.next(), results.next())
    else {
        return None;
    };
    let error = match result.err()? {
        wasmtime::component::types::Type::Variant(variant) => variant
            .cases()
            .any(|case| case.name == ACCESS_DENIED && case.ty.is_none())
            .then(|| Val::Variant(ACCESS_DENIED.to_string(), None)),
        wasmtime::component::types::Type::Enum(enumeration) => enumeration
            .names()
            .any(|n| n == ACCESS_DENIED)
            .then(|| Val::Enum(ACCESS_DENIED.to_string())),
        _ => None,
    }?;
    Some(Val::Result(Err(Some(Box::new(error)))))
}
