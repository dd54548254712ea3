//! The built-in plugins, embedded in the binary at build time (see
//! `host/build.rs`), and offered to every workload unless a plugin the
//! manifest declares serves the same interface.

use crate::manifest::LinkMode;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in plugin named `name`: its default mode and bytes.
pub fn builtin(name: &str) -> Option<(LinkMode, &'static [u8])> {
    EMBEDDED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mode, bytes)| (*mode, *bytes))
}

/// The names of the built-in plugins this binary carries.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _, _)| *name)
}
