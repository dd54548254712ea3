//! Component tooling for keel that needs no Wasmtime: telling what a Wasm file
//! is ([`binary`]), reading a component's imports and exports ([`inspect`]),
//! matching them to plugins ([`registry`]) and composing plugins into
//! workloads ([`compose`]), each plugin's modules named after it
//! ([`module_names`]).
//!
//! Everything here works on bytes, so it runs before an engine exists (in
//! `keel inspect`, `keel compose`, manifest validation) and stays independent
//! of the engine's version: wac-graph's wasm-tools and Wasmtime's never meet.

pub mod bake;
pub mod binary;
pub mod compose;
pub mod inspect;
pub mod module_names;
pub mod names;
pub mod registry;
pub mod sections;

pub use binary::{NotAComponent, WasmKind, WasmKindError};
pub use compose::{PluginBytes, compose};
pub use inspect::{ComponentInfo, Item};
pub use names::InterfaceName;
pub use registry::{Binding, Registry, Resolution, ResolveError, Unbound};
