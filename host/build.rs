//! Embeds the built-in plugins (built by `make guests` into
//! `target/guests/`) into the `keel` binary, so a copied binary needs no
//! files beside it. A plugin missing at build time is left out with a
//! warning; the host then runs without it.

use std::fmt::Write as _;
use std::path::PathBuf;

/// (name, file, default mode, the hosts it is a default of)
const BUILTINS: &[(&str, &str, &str, &str)] = &[
    ("config", "config.wasm", "Composed", "Any"),
    ("logging", "logging.wasm", "Composed", "Any"),
    ("messaging", "messaging.wasm", "Composed", "Any"),
    (
        "keyvalue-memory",
        "keyvalue_memory.wasm",
        "Shared",
        "Memory",
    ),
    ("keyvalue-nats", "keyvalue_nats.wasm", "Composed", "Nats"),
    ("blobstore-nats", "blobstore_nats.wasm", "Composed", "Nats"),
    ("config-nats", "config_nats.wasm", "Composed", "Named"),
    ("logging-nats", "logging_nats.wasm", "Composed", "Named"),
    (
        "blobstore-memory",
        "blobstore_memory.wasm",
        "Shared",
        "Memory",
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let guests = std::env::var_os("KEEL_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/guests"));
    println!("cargo:rerun-if-env-changed=KEEL_GUESTS_DIR");
    let mut code = String::from(
        "/// Built-in plugins: (name, default mode, default of, component bytes).\npub static EMBEDDED: &[(&str, LinkMode, DefaultOf, &[u8])] = &[\n",
    );
    for (name, file, mode, default_of) in BUILTINS {
        let path = guests.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_file() {
            let _ = writeln!(
                code,
                "    ({name:?}, LinkMode::{mode}, DefaultOf::{default_of}, include_bytes!({:?})),",
                path.display().to_string()
            );
        } else {
            println!(
                "cargo:warning=built-in plugin `{name}` is missing ({}): run `make guests` first",
                path.display()
            );
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("builtins.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
