//! Reading what a component imports and exports, without an engine.

use crate::names::InterfaceName;
use anyhow::{Context, Result};
use wac_types::{ItemKind, Package, Type, Types};

/// A component's imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// What it needs, in declaration order.
    pub imports: Vec<Item>,
    /// What it provides, in declaration order.
    pub exports: Vec<Item>,
}

/// One import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The name as written in the component (`wasi:http/types@0.2.6`, `run`).
    pub name: String,
    /// The parsed interface name, when it is one.
    pub interface: Option<InterfaceName>,
    /// Its functions (`open`, `[method]bucket.get`, …), for instances.
    pub functions: Vec<String>,
    /// Its resource types, for instances.
    pub resources: Vec<String>,
    /// `instance`, `function`, `type`, `component`, `module` or `value`.
    pub kind: &'static str,
}

impl ComponentInfo {
    /// Reads a component's imports and exports.
    pub fn read(bytes: &[u8]) -> Result<ComponentInfo> {
        let mut types = Types::default();
        let package = Package::from_bytes("keel:inspected", None, bytes.to_vec(), &mut types)
            .context("reading the component's types")?;
        let world = &types[package.ty()];
        Ok(ComponentInfo {
            imports: world
                .imports
                .iter()
                .map(|(name, kind)| item(&types, name, *kind))
                .collect(),
            exports: world
                .exports
                .iter()
                .map(|(name, kind)| item(&types, name, *kind))
                .collect(),
        })
    }

    /// The export named `name`, if any.
    pub fn export(&self, name: &str) -> Option<&Item> {
        self.exports.iter().find(|e| e.name == name)
    }
}

fn item(types: &Types, name: &str, kind: ItemKind) -> Item {
    let mut functions = Vec::new();
    let mut resources = Vec::new();
    if let ItemKind::Instance(id) = kind {
        for (member, member_kind) in &types[id].exports {
            match member_kind {
                ItemKind::Func(_) => functions.push(member.clone()),
                ItemKind::Type(Type::Resource(_)) => resources.push(member.clone()),
                _ => {}
            }
        }
    }
    let kind_name = match kind {
        ItemKind::Instance(_) => "instance",
        ItemKind::Func(_) => "function",
        ItemKind::Type(_) => "type",
        ItemKind::Component(_) => "component",
        ItemKind::Module(_) => "module",
        ItemKind::Value(_) => "value",
    };
    Item {
        name: name.to_string(),
        interface: InterfaceName::parse(name),
        functions,
        resources,
        kind: kind_name,
    }
}
