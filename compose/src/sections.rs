//! Custom sections of a component and of every module and component nested
//! in it: a plugin's metadata (`keel-plugin`) is written by its language's
//! linker into its core module, and wit-component keeps it there.

use anyhow::{Context, Result};
use wasmparser::{Parser, Payload};

/// The contents of every custom section named `name`, outermost first, in
/// the order they appear (nested modules and components included).
pub fn custom_sections(bytes: &[u8], name: &str) -> Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::CustomSection(section) = payload.context("reading the Wasm binary")?
            && section.name() == name
        {
            found.push(section.data().to_vec());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one custom section, by hand.
    fn module_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![u8::try_from(name.len()).unwrap()];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.push(0);
        module.push(u8::try_from(body.len()).unwrap());
        module.extend(body);
        module
    }

    #[test]
    fn finds_sections_by_name() {
        let module = module_with("keel-plugin", b"name = \"x\"");
        assert_eq!(
            custom_sections(&module, "keel-plugin").unwrap(),
            vec![b"name = \"x\"".to_vec()]
        );
        assert!(custom_sections(&module, "other").unwrap().is_empty());
        assert!(custom_sections(b"not wasm", "keel-plugin").is_err());
    }
}
