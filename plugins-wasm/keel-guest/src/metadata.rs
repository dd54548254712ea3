//! Plugin metadata: the `keel-plugin` custom section keel reads from a
//! plugin component (`keel plugin check`, `keel plugin list`, `keel run`).
//!
//! The section holds TOML (the format README's "Plugin metadata" and
//! `keel plugin new` describe); a plugin needs no crate of keel's to carry
//! it, this macro only saves writing the static by hand:
//!
//! ```ignore
//! #[used]
//! #[unsafe(link_section = "keel-plugin")]
//! static KEEL_PLUGIN: [u8; include_bytes!("../keel-plugin.toml").len()] =
//!     *include_bytes!("../keel-plugin.toml");
//! ```
//!
//! The linker keeps a custom section it is given, and wit-component keeps
//! the core module's custom sections inside the component it makes, so a
//! plain `cargo build --target wasm32-wasip2` carries the metadata.

/// Embeds `keel-plugin.toml` from the calling crate's folder (next to its
/// `Cargo.toml`) as the plugin's `keel-plugin` custom section.
#[macro_export]
macro_rules! plugin_metadata {
    () => {
        #[used]
        #[unsafe(link_section = "keel-plugin")]
        static KEEL_PLUGIN_METADATA: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/keel-plugin.toml"
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/keel-plugin.toml"));
    };
}
