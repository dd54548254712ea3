//! Naming a plugin's core modules, so that a trap inside a composed plugin
//! can be told from one in the workload it is composed into.
//!
//! Once composed, a plugin is just more core modules inside the workload's
//! component, and a stripped build names none of them: a trap's frames read
//! `<unknown>!<wasm function 193>` whichever side trapped. Before
//! composing, every core module of the plugin gets the module name
//! `keel-plugin:<name>` in its `name` section (its function names, when it
//! has any, are kept). Wasmtime reports that name for each frame
//! (`FrameInfo::module().name()`), so the host attributes the trap, and its
//! backtrace shows it too. A module that already carries such a name (a
//! plugin composed beneath a layer) keeps it: the deepest plugin is named.

use anyhow::{Result, bail};

/// How every name this module writes begins.
pub const PREFIX: &str = "keel-plugin:";

/// The 8-byte preamble of a component and of a core module.
const PREAMBLE: usize = 8;

/// Section ids.
const CUSTOM: u8 = 0;
const CORE_MODULE: u8 = 1;
const COMPONENT: u8 = 4;

/// The `name` section's module-name subsection.
const MODULE_NAME: u8 = 0;

/// The name a module of plugin `plugin` gets.
pub fn module_name(plugin: &str) -> String {
    format!("{PREFIX}{plugin}")
}

/// The plugin a module name set by [`name_modules`] names.
///
/// Only a name a plugin can have (letters, digits, `-` and `_`, at most
/// 64 bytes) counts: the name comes from the component, which anyone may
/// write, and ends up in log lines.
///
/// ```
/// assert_eq!(keel_compose::module_names::plugin_of("keel-plugin:tally"), Some("tally"));
/// assert_eq!(keel_compose::module_names::plugin_of("wit-component:shim"), None);
/// assert_eq!(keel_compose::module_names::plugin_of("keel-plugin:a\nforged line"), None);
/// assert_eq!(keel_compose::module_names::plugin_of(&format!("keel-plugin:{}", "x".repeat(65))), None);
/// ```
pub fn plugin_of(module_name: &str) -> Option<&str> {
    module_name.strip_prefix(PREFIX).filter(|name| {
        !name.is_empty()
            && name.len() <= MAX_PLUGIN_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The longest plugin name [`plugin_of`] reads from a module name.
const MAX_PLUGIN_NAME: usize = 64;

/// `component` with every core module in it (nested components included)
/// named after plugin `plugin`, except modules already named by an earlier
/// call.
pub fn name_modules(component: &[u8], plugin: &str) -> Result<Vec<u8>> {
    let name = module_name(plugin);
    rewrite_component(component, &name)
}

fn rewrite_component(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let (preamble, sections) = split_preamble(bytes)?;
    let mut out = preamble.to_vec();
    for section in Sections::new(sections) {
        let (id, payload) = section?;
        match id {
            CORE_MODULE => push_section(&mut out, id, &rewrite_module(payload, name)?),
            COMPONENT => push_section(&mut out, id, &rewrite_component(payload, name)?),
            _ => push_section(&mut out, id, payload),
        }
    }
    Ok(out)
}

fn rewrite_module(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let (preamble, sections) = split_preamble(bytes)?;
    let mut out = preamble.to_vec();
    let mut named = false;
    for section in Sections::new(sections) {
        let (id, payload) = section?;
        if id == CUSTOM
            && let Some(subsections) = custom_named(payload, "name")?
        {
            named = true;
            push_section(&mut out, id, &renamed(subsections, name)?);
            continue;
        }
        push_section(&mut out, id, payload);
    }
    if !named {
        push_section(&mut out, CUSTOM, &renamed(&[], name)?);
    }
    Ok(out)
}

/// A `name` custom section's payload whose module name is `name`, keeping
/// the other subsections of `subsections` (the old section's contents)
/// after it, in their order; unchanged when the old module name is
/// already a plugin's.
fn renamed(subsections: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut kept = Vec::new();
    for subsection in Sections::new(subsections) {
        let (id, payload) = subsection?;
        if id == MODULE_NAME {
            let (old, _) = read_name(payload)?;
            if old.starts_with(PREFIX.as_bytes()) {
                return Ok(with_name("name", subsections));
            }
            continue;
        }
        push_section(&mut kept, id, payload);
    }
    let mut module_name = Vec::new();
    push_name(&mut module_name, name.as_bytes());
    let mut contents = Vec::new();
    push_section(&mut contents, MODULE_NAME, &module_name);
    contents.extend_from_slice(&kept);
    Ok(with_name("name", &contents))
}

/// A custom section's payload: its name, then `data`.
fn with_name(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_name(&mut out, name.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of custom section `payload` if it is named `wanted`.
fn custom_named<'a>(payload: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>> {
    let (name, rest) = read_name(payload)?;
    Ok((name == wanted.as_bytes()).then_some(rest))
}

fn split_preamble(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    if bytes.len() < PREAMBLE || &bytes[..4] != b"\0asm" {
        bail!("not a WebAssembly binary");
    }
    Ok(bytes.split_at(PREAMBLE))
}

/// Sections (or subsections): an id byte, a LEB128 size, that many bytes.
struct Sections<'a> {
    rest: &'a [u8],
}

impl<'a> Sections<'a> {
    fn new(bytes: &'a [u8]) -> Sections<'a> {
        Sections { rest: bytes }
    }
}

impl<'a> Iterator for Sections<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&id, rest) = self.rest.split_first()?;
        let section = read_u32(rest).and_then(|(size, rest)| {
            let size = size as usize;
            if rest.len() < size {
                bail!("a section runs past the end of the binary");
            }
            Ok(rest.split_at(size))
        });
        match section {
            Ok((payload, rest)) => {
                self.rest = rest;
                Some(Ok((id, payload)))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn read_u32(bytes: &[u8]) -> Result<(u32, &[u8])> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[i + 1..]));
        }
    }
    bail!("a malformed LEB128 number")
}

fn read_name(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let (len, rest) = read_u32(bytes)?;
    let len = len as usize;
    if rest.len() < len {
        bail!("a name runs past the end of its section");
    }
    Ok(rest.split_at(len))
}

fn push_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    push_u32(out, name.len() as u32);
    out.extend_from_slice(name);
}

fn push_section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    push_u32(out, payload.len() as u32);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module holding only a `name` section with `subsections`.
    fn module(subsections: Option<&[u8]>) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        if let Some(data) = subsections {
            push_section(&mut out, CUSTOM, &with_name("name", data));
        }
        out
    }

    fn component_of(module: &[u8]) -> Vec<u8> {
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        push_section(&mut out, CORE_MODULE, module);
        out
    }

    /// The module name of the first core module of `component`.
    fn first_module_name(component: &[u8]) -> Option<String> {
        let (_, sections) = split_preamble(component).ok()?;
        let (_, module) = Sections::new(sections).find_map(|s| s.ok().filter(|s| s.0 == 1))?;
        let (_, sections) = split_preamble(module).ok()?;
        for (id, payload) in Sections::new(sections).flatten() {
            if id != CUSTOM {
                continue;
            }
            if let Ok(Some(data)) = custom_named(payload, "name") {
                for (sub, payload) in Sections::new(data).flatten() {
                    if sub == MODULE_NAME {
                        let (name, _) = read_name(payload).ok()?;
                        return Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
        }
        None
    }

    #[test]
    fn an_unnamed_module_gets_the_plugins_name() {
        let named = name_modules(&component_of(&module(None)), "tally").unwrap();
        assert_eq!(
            first_module_name(&named).as_deref(),
            Some("keel-plugin:tally")
        );
    }

    #[test]
    fn a_name_is_replaced_and_function_names_kept() {
        let mut subsections = Vec::new();
        let mut old = Vec::new();
        push_name(&mut old, b"tally_plugin");
        push_section(&mut subsections, MODULE_NAME, &old);
        push_section(&mut subsections, 1, b"\x01\x00\x01f");
        let named = name_modules(&component_of(&module(Some(&subsections))), "tally").unwrap();
        assert_eq!(
            first_module_name(&named).as_deref(),
            Some("keel-plugin:tally")
        );
        assert!(
            named.windows(4).any(|w| w == b"\x01\x00\x01f"),
            "function names kept"
        );
    }

    #[test]
    fn a_module_named_for_a_plugin_keeps_its_name() {
        let inner = name_modules(&component_of(&module(None)), "backend").unwrap();
        let outer = name_modules(&inner, "layer").unwrap();
        assert_eq!(
            first_module_name(&outer).as_deref(),
            Some("keel-plugin:backend")
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut bytes = component_of(&module(None));
        bytes.truncate(bytes.len() - 2);
        assert!(name_modules(&bytes, "x").is_err());
    }
}
