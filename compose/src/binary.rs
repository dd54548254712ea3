//! Telling a component from a core module (or from something that is not Wasm
//! at all) by its 8-byte preamble, so that users get a precise error instead of
//! a parser failure deep inside the engine.

use std::fmt;

/// The kind of a Wasm binary, read from its preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component-model component: what keel runs.
    Component,
    /// A core WebAssembly module: has to be wrapped into a component first.
    CoreModule,
}

/// Why a file is not a Wasm binary keel can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasmKindError {
    /// The file is shorter than a Wasm preamble.
    #[error("the file is {0} bytes long, too short to be WebAssembly")]
    TooShort(usize),
    /// The file does not start with `\0asm`.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    /// The magic is right but the version/layer is one keel does not know.
    #[error("unknown WebAssembly version/layer {version:#06x}/{layer:#06x}")]
    UnknownVersion {
        /// The 16-bit version field.
        version: u16,
        /// The 16-bit layer field (0 = core module, 1 = component).
        layer: u16,
    },
}

const MAGIC: &[u8; 4] = b"\0asm";

impl WasmKind {
    /// Reads the kind from the first 8 bytes of `bytes`.
    ///
    /// ```
    /// use keel_compose::WasmKind;
    /// let core = b"\0asm\x01\0\0\0";
    /// assert_eq!(WasmKind::detect(core), Ok(WasmKind::CoreModule));
    /// assert!(WasmKind::detect(b"hello world").is_err());
    /// ```
    pub fn detect(bytes: &[u8]) -> Result<WasmKind, WasmKindError> {
        if bytes.len() < 8 {
            return Err(if bytes.len() >= 4 && &bytes[..4] != MAGIC {
                WasmKindError::NotWasm
            } else {
                WasmKindError::TooShort(bytes.len())
            });
        }
        if &bytes[..4] != MAGIC {
            return Err(WasmKindError::NotWasm);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
        match (version, layer) {
            (1, 0) => Ok(WasmKind::CoreModule),
            (_, 1) => Ok(WasmKind::Component),
            _ => Err(WasmKindError::UnknownVersion { version, layer }),
        }
    }

    /// Like [`WasmKind::detect`], but turns anything other than a component
    /// into an error that tells the user what to do.
    pub fn expect_component(bytes: &[u8]) -> Result<(), NotAComponent> {
        match WasmKind::detect(bytes) {
            Ok(WasmKind::Component) => Ok(()),
            Ok(WasmKind::CoreModule) => Err(NotAComponent::CoreModule),
            Err(e) => Err(NotAComponent::Invalid(e)),
        }
    }
}

impl fmt::Display for WasmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WasmKind::Component => "component",
            WasmKind::CoreModule => "core module",
        })
    }
}

/// A file that cannot be run as a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAComponent {
    /// A core module where a component was expected.
    #[error(
        "this is a core WebAssembly module, not a component: build it for \
         `wasm32-wasip2`, or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// Not Wasm at all.
    #[error(transparent)]
    Invalid(#[from] WasmKindError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_modules_and_garbage() {
        assert_eq!(
            WasmKind::detect(b"\0asm\x0d\0\x01\0rest"),
            Ok(WasmKind::Component)
        );
        assert_eq!(
            WasmKind::detect(b"\0asm\x01\0\0\0"),
            Ok(WasmKind::CoreModule)
        );
        assert_eq!(WasmKind::detect(b"\0asm"), Err(WasmKindError::TooShort(4)));
        assert_eq!(
            WasmKind::detect(b"[workload]\n"),
            Err(WasmKindError::NotWasm)
        );
        assert_eq!(
            WasmKind::detect(b"\0asm\x02\0\0\0"),
            Err(WasmKindError::UnknownVersion {
                version: 2,
                layer: 0
            })
        );
        assert_eq!(
            WasmKind::expect_component(b"\0asm\x01\0\0\0"),
            Err(NotAComponent::CoreModule)
        );
    }
}
