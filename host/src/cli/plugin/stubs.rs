//! The `src/lib.rs` of a new plugin: for each exported interface, an
//! implementation of the trait wit-bindgen generates for it, in which
//! every function fails with a message naming it — an error value where
//! the function's error type can carry one (`string`, or a variant case
//! holding a string), a trap with that message otherwise.
//!
//! The Rust names follow wit-bindgen's (0.61) rules: modules
//! `exports::<ns>::<pkg>::<iface>` in snake case, types in upper camel
//! case, a trait `Guest` per interface and `Guest<Resource>` per resource,
//! borrowed exported resources as `<Resource>Borrow<'_>`.

use anyhow::{Result, bail};
use std::fmt::Write as _;
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, Resolve, Type, TypeDefKind, TypeId, TypeOwner,
};

/// Rust's reserved words, which wit-bindgen suffixes with `_`.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Error cases a stub prefers for its message, when its error type has one.
const GENERAL_CASES: &[&str] = &[
    "other",
    "unimplemented",
    "not-implemented",
    "internal",
    "error",
];

/// `sum-all` → `sum_all` (reserved words get a `_`).
pub fn snake(name: &str) -> String {
    let out = name.replace('-', "_");
    if KEYWORDS.contains(&out.as_str()) {
        format!("{out}_")
    } else {
        out
    }
}

/// `tally-error` → `TallyError`.
pub fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// Renders Rust for the interfaces a plugin exports.
pub struct Stubs<'a> {
    resolve: &'a Resolve,
    exported: Vec<InterfaceId>,
}

impl<'a> Stubs<'a> {
    /// Stubs for the `exported` interfaces of `resolve`.
    pub fn new(resolve: &'a Resolve, exported: Vec<InterfaceId>) -> Stubs<'a> {
        Stubs { resolve, exported }
    }

    /// The module path of interface `id` as wit-bindgen generates it.
    fn module(&self, id: InterfaceId) -> Result<String> {
        let interface = &self.resolve.interfaces[id];
        let (Some(name), Some(package)) = (&interface.name, interface.package) else {
            bail!("an anonymous interface cannot be exported by name");
        };
        let package = &self.resolve.packages[package].name;
        let prefix = if self.exported.contains(&id) {
            "crate::exports::"
        } else {
            "crate::"
        };
        Ok(format!(
            "{prefix}{}::{}::{}",
            snake(&package.namespace),
            snake(&package.name),
            snake(name)
        ))
    }

    /// The path of named type `id`.
    fn named(&self, id: TypeId, name: &str) -> Result<String> {
        match self.resolve.types[id].owner {
            TypeOwner::Interface(owner) => Ok(format!("{}::{}", self.module(owner)?, camel(name))),
            _ => bail!("type `{name}` does not belong to an interface"),
        }
    }

    /// The Rust type of `ty`, as a parameter (`param`) or a result.
    fn ty(&self, ty: &Type, param: bool) -> Result<String> {
        Ok(match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "i8".into(),
            Type::S16 => "i16".into(),
            Type::S32 => "i32".into(),
            Type::S64 => "i64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "String".into(),
            Type::ErrorContext => bail!("`error-context` is not supported by the scaffold"),
            Type::Id(id) => self.type_id(*id, param)?,
        })
    }

    fn type_id(&self, id: TypeId, param: bool) -> Result<String> {
        let def = &self.resolve.types[id];
        if let (Some(name), false) = (&def.name, matches!(def.kind, TypeDefKind::Handle(_))) {
            return self.named(id, name);
        }
        Ok(match &def.kind {
            TypeDefKind::Handle(Handle::Own(resource)) => self.resource(*resource, "")?,
            TypeDefKind::Handle(Handle::Borrow(resource)) => {
                let owner = match self.resolve.types[*resource].owner {
                    TypeOwner::Interface(owner) => Some(owner),
                    _ => None,
                };
                if param && owner.is_some_and(|o| self.exported.contains(&o)) {
                    format!("{}<'_>", self.resource(*resource, "Borrow")?)
                } else {
                    format!("&{}", self.resource(*resource, "")?)
                }
            }
            TypeDefKind::Option(inner) => format!("Option<{}>", self.ty(inner, param)?),
            TypeDefKind::Result(result) => format!(
                "Result<{}, {}>",
                self.maybe(result.ok.as_ref(), param)?,
                self.maybe(result.err.as_ref(), param)?
            ),
            TypeDefKind::List(inner) => format!("Vec<{}>", self.ty(inner, param)?),
            TypeDefKind::Tuple(tuple) => {
                let types: Vec<String> = tuple
                    .types
                    .iter()
                    .map(|t| self.ty(t, param))
                    .collect::<Result<_>>()?;
                format!("({},)", types.join(", "))
            }
            TypeDefKind::Type(inner) => self.ty(inner, param)?,
            other => bail!(
                "a `{}` in a signature is not supported by the scaffold",
                other.as_str()
            ),
        })
    }

    fn maybe(&self, ty: Option<&Type>, param: bool) -> Result<String> {
        ty.map_or(Ok("()".to_string()), |t| self.ty(t, param))
    }

    fn resource(&self, id: TypeId, suffix: &str) -> Result<String> {
        let name = self.resolve.types[id].name.as_deref().unwrap_or("resource");
        Ok(format!("{}{suffix}", self.named(id, name)?))
    }

    /// The body of a stub: an error value if its result can carry one,
    /// else a trap with `message`.
    fn body(&self, result: Option<&Type>, message: &str) -> String {
        let trap = format!("not_implemented({message:?})");
        let Some(Type::Id(id)) = result else {
            return trap;
        };
        let TypeDefKind::Result(result) = &self.resolve.types[*id].kind else {
            return trap;
        };
        match &result.err {
            Some(Type::String) => format!("Err({message:?}.to_string())"),
            Some(Type::Id(err)) => {
                let def = &self.resolve.types[*err];
                let (TypeDefKind::Variant(variant), Some(name)) = (&def.kind, &def.name) else {
                    return trap;
                };
                // A case named for failures in general, else any holding a string.
                let carries = |c: &&wit_parser::Case| c.ty == Some(Type::String);
                let case = variant
                    .cases
                    .iter()
                    .filter(carries)
                    .find(|c| GENERAL_CASES.contains(&c.name.as_str()))
                    .or_else(|| variant.cases.iter().find(carries));
                match (case, self.named(*err, name)) {
                    (Some(case), Ok(path)) => {
                        format!(
                            "Err({path}::{}({message:?}.to_string()))",
                            camel(&case.name)
                        )
                    }
                    _ => trap,
                }
            }
            _ => trap,
        }
    }

    /// One function's stub (`self_param`: the method's receiver, if any).
    fn function(&self, out: &mut String, interface: &str, function: &Function) -> Result<()> {
        let mut params = Vec::new();
        let mut skip = 0;
        match function.kind {
            FunctionKind::Method(_) => {
                params.push("&self".to_string());
                skip = 1;
            }
            FunctionKind::Freestanding | FunctionKind::Static(_) | FunctionKind::Constructor(_) => {
            }
            _ => bail!(
                "`{}`: async functions are not supported by the scaffold",
                function.name
            ),
        }
        for param in function.params.iter().skip(skip) {
            params.push(format!(
                "_{}: {}",
                snake(&param.name),
                self.ty(&param.ty, true)?
            ));
        }
        let message = format!(
            "{interface}: `{}` is not implemented yet",
            function
                .name
                .replace("[method]", "")
                .replace("[static]", "")
        );
        let (ret, body) = match function.kind {
            FunctionKind::Constructor(_) => (
                " -> Self".to_string(),
                format!("not_implemented({message:?})"),
            ),
            _ => (
                function
                    .result
                    .as_ref()
                    .map(|r| self.ty(r, false).map(|t| format!(" -> {t}")))
                    .transpose()?
                    .unwrap_or_default(),
                self.body(function.result.as_ref(), &message),
            ),
        };
        let name = match function.kind {
            FunctionKind::Constructor(_) => "new".to_string(),
            _ => snake(function.item_name()),
        };
        let _ = writeln!(
            out,
            "    fn {name}({}){ret} {{\n        {body}\n    }}\n",
            params.join(", ")
        );
        Ok(())
    }

    /// The Rust of every exported interface: a module each, implementing
    /// its traits for `crate::Plugin` and a struct per resource.
    pub fn render(&self) -> Result<String> {
        let mut out = String::new();
        for &id in &self.exported {
            let interface = &self.resolve.interfaces[id];
            let full = self.resolve.id_of(id).unwrap_or_default();
            let module = self.module(id)?;
            let local = snake(interface.name.as_deref().unwrap_or("interface"));
            let _ = writeln!(out, "/// `{full}`.\nmod {local} {{");
            let _ = writeln!(
                out,
                "#[allow(unused_imports)]\nuse super::not_implemented;\n"
            );
            let resources: Vec<(&String, TypeId)> = interface
                .types
                .iter()
                .filter(|(_, t)| matches!(self.resolve.types[**t].kind, TypeDefKind::Resource))
                .map(|(name, t)| (name, *t))
                .collect();
            let _ = writeln!(out, "impl {module}::Guest for crate::Plugin {{");
            for (name, _) in &resources {
                let _ = writeln!(out, "    type {} = {};\n", camel(name), camel(name));
            }
            for function in interface.functions.values() {
                if matches!(function.kind, FunctionKind::Freestanding) {
                    self.function(&mut out, &full, function)?;
                }
            }
            out.push_str("}\n");
            for (name, resource) in &resources {
                let _ = writeln!(
                    out,
                    "\n/// A `{name}`.\npub struct {};\n\nimpl {module}::Guest{} for {} {{",
                    camel(name),
                    camel(name),
                    camel(name)
                );
                for function in interface.functions.values() {
                    let owner = match function.kind {
                        FunctionKind::Method(r)
                        | FunctionKind::Static(r)
                        | FunctionKind::Constructor(r) => Some(r),
                        _ => None,
                    };
                    if owner == Some(*resource) {
                        self.function(&mut out, &full, function)?;
                    }
                }
                out.push_str("}\n");
            }
            out.push_str("}\n\n");
        }
        Ok(out)
    }
}
