//! Deny by default: an import nothing serves is linked to an implementation
//! that refuses. Where the function's error type has an `access-denied` case
//! (as `wasi:keyvalue`, `wasi:blobstore` and friends do) the call returns it;
//! otherwise the call traps with a message naming the interface.

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, ResourceType, Val};

/// The case name keel answers with where an error type offers it.
pub const ACCESS_DENIED: &str = "access-denied";

/// An import to deny and why (the reason ends up in trap messages).
#[derive(Debug, Clone)]
pub struct Denial {
    /// The import's name.
    pub import: String,
    /// Why nothing serves it.
    pub why: String,
}

impl Denial {
    /// The denial of `unbound`, saying why nothing serves it.
    pub fn of(unbound: &keel_compose::Unbound) -> Denial {
        Denial {
            import: unbound.import.clone(),
            why: match unbound.near_misses.as_slice() {
                [] => "no plugin exports it and the host does not serve it".to_string(),
                misses => format!("no plugin fits ({})", misses.join("; ")),
            },
        }
    }
}

/// The placeholder type of every resource of a denied interface: no
/// denied function ever creates one, so one type serves them all (and a
/// resource two denied interfaces share, as `wasi:keyvalue/atomics` shares
/// `store.bucket`, stays one type).
struct DeniedResource;

/// Links deny implementations for `denials`, imports of `component`. Call it
/// after everything that does serve imports is in `linker`. A denied
/// interface's resource that aliases one of a host-served `wasi:io`
/// interface (a `use wasi:io/streams.{input-stream}`) is linked as the
/// host's type, so the alias still type-checks.
pub fn link_denied<T: 'static>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
    denials: &[Denial],
) -> Result<()> {
    let declared = component.component_type();
    let host_resources = host_resource_aliases(engine, &declared, denials);
    for denial in denials {
        let name = denial.import.as_str();
        let Some(import) = declared.get_import(engine, name) else {
            bail!("the component has no import `{name}`");
        };
        match import.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut scope = linker.instance(name)?;
                let members: Vec<(String, ComponentItem)> = instance
                    .exports(engine)
                    .map(|(member, item)| (member.to_string(), item.ty))
                    .collect();
                // Resources first: functions mentioning them are checked against them.
                for (member, item) in &members {
                    if let ComponentItem::Resource(resource) = item {
                        let ty = host_resources
                            .iter()
                            .find(|(declared, _)| declared == resource)
                            .map_or_else(ResourceType::host::<DeniedResource>, |(_, host)| *host);
                        scope.resource(member, ty, |_, _| Ok(()))?;
                    }
                }
                for (member, item) in members {
                    if let ComponentItem::ComponentFunc(func) = item {
                        let refusal =
                            Refusal::for_func(&func, format!("{name}#{member}"), &denial.why);
                        scope.func_new(&member, move |_, _, _, results| refusal.answer(results))?;
                    }
                }
            }
            ComponentItem::ComponentFunc(func) => {
                let refusal = Refusal::for_func(&func, name.to_string(), &denial.why);
                linker
                    .root()
                    .func_new(name, move |_, _, _, results| refusal.answer(results))?;
            }
            other => bail!("import `{name}` is a {other:?}, which keel cannot deny"),
        }
    }
    Ok(())
}

/// The `wasi:io` resources the host serves, by the type `component`
/// declares for them: a denied interface that `use`s one must be linked with
/// the host's type.
fn host_resource_aliases(
    engine: &Engine,
    declared: &wasmtime::component::types::Component,
    denials: &[Denial],
) -> Vec<(ResourceType, ResourceType)> {
    let host_type = |interface: &str, resource: &str| match (interface, resource) {
        ("wasi:io/streams", "input-stream") => {
            Some(ResourceType::host::<wasmtime_wasi::p2::DynInputStream>())
        }
        ("wasi:io/streams", "output-stream") => {
            Some(ResourceType::host::<wasmtime_wasi::p2::DynOutputStream>())
        }
        ("wasi:io/poll", "pollable") => {
            Some(ResourceType::host::<wasmtime_wasi::p2::DynPollable>())
        }
        ("wasi:io/error", "error") => Some(ResourceType::host::<wasmtime_wasi::p2::IoError>()),
        _ => None,
    };
    let mut aliases = Vec::new();
    for (name, import) in declared.imports(engine) {
        if denials.iter().any(|d| d.import == name) {
            continue;
        }
        let Some(interface) = keel_compose::InterfaceName::parse(name) else {
            continue;
        };
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        for (member, item) in instance.exports(engine) {
            if let (ComponentItem::Resource(resource), Some(host)) =
                (item.ty, host_type(&interface.unversioned(), member))
            {
                aliases.push((resource, host));
            }
        }
    }
    aliases
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
