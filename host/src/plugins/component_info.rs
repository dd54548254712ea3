//! A compiled component's imports and exports, read from the types Wasmtime
//! keeps with it: what [`ComponentInfo::read`] finds in the component's
//! bytes, without validating and decoding them again. A host starting from
//! its compile cache plans a component's imports from these.

use keel_compose::{ComponentInfo, InterfaceName, Item};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The imports and exports of `component`, as [`ComponentInfo::read`] gives
/// them for the bytes it was compiled from.
pub fn of_component(engine: &Engine, component: &Component) -> ComponentInfo {
    let ty = component.component_type();
    ComponentInfo {
        imports: ty
            .imports(engine)
            .map(|(name, e)| item(engine, name, e.ty))
            .collect(),
        exports: ty
            .exports(engine)
            .map(|(name, e)| item(engine, name, e.ty))
            .collect(),
    }
}

fn item(engine: &Engine, name: &str, ty: ComponentItem) -> Item {
    let mut functions = Vec::new();
    let mut resources = Vec::new();
    if let ComponentItem::ComponentInstance(instance) = &ty {
        for (member, e) in instance.exports(engine) {
            match e.ty {
                ComponentItem::ComponentFunc(_) => functions.push(member.to_string()),
                ComponentItem::Resource(_) => resources.push(member.to_string()),
                _ => {}
            }
        }
    }
    let kind = match ty {
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => "function",
        ComponentItem::Type(_) | ComponentItem::Resource(_) => "type",
        ComponentItem::Component(_) => "component",
        ComponentItem::Module(_) => "module",
    };
    Item {
        name: name.to_string(),
        interface: InterfaceName::parse(name),
        functions,
        resources,
        kind,
    }
}
