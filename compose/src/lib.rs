//! Component tooling for keel that needs no Wasmtime: telling what a Wasm file
//! is, reading a component's imports and exports, matching them to plugins and
//! composing plugins into workloads.
//!
//! Everything here works on bytes, so it can run before an engine exists (in
//! `keel inspect`, in manifest validation) and stays independent of the
//! engine's version.

pub mod binary;

pub use binary::{WasmKind, WasmKindError};
