//! The WIT packages keel serves, carried inside the binary, and `keel wit
//! export DIR`, which writes them in the layout wit-bindgen and wkg read.
//!
//! Those tools resolve a world's dependencies from one flat `deps/` folder
//! (`deps/<package>/*.wit`, or `deps/<package>.wit`) and ignore a `deps/`
//! nested inside a dependency, so copying `wit/keel-core` as the repository
//! keeps it (with its `wasi:io` under its own `deps/`) does not resolve.
//! Every package here gets a folder of its own, side by side. `keel plugin
//! new` vendors its plugin's packages from the same table.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One WIT package: its id, the folder it is written to, its files.
#[derive(Debug, Clone, Copy)]
pub struct WitPackage {
    /// `ns:name@version`.
    pub id: &'static str,
    /// The folder under `deps/` (`keel-core`, `wasi-io-0.2.12`).
    pub folder: &'static str,
    /// Its files: name and text.
    pub files: &'static [(&'static str, &'static str)],
}

/// `(file, text)` of `wit/<folder>/<file>` in the repository.
macro_rules! wit_file {
    ($folder:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../../../wit/", $folder, "/", $file)),
        )
    };
}

/// `keel:core` as this host serves it.
pub const KEEL_CORE: WitPackage = WitPackage {
    id: "keel:core@0.1.0",
    folder: "keel-core",
    files: &[
        wit_file!("keel-core", "identity.wit"),
        wit_file!("keel-core", "messaging.wit"),
        wit_file!("keel-core", "nats.wit"),
        wit_file!("keel-core", "pipe.wit"),
    ],
};

/// `wasi:io` at the version the host serves (`keel:core/pipe` uses it).
pub const WASI_IO: WitPackage = WitPackage {
    id: "wasi:io@0.2.12",
    folder: "wasi-io-0.2.12",
    files: &[wit_file!("wasi-0.2.12", "io.wit")],
};

/// Every package keel serves to workloads or plugins: `keel:core`, WASI P2
/// and `wasi:http` as the host serves them, and the interfaces of its
/// plugins at the versions they export (with the `wasi:io` that
/// `wasi:blobstore` names).
pub const SERVED: &[WitPackage] = &[
    KEEL_CORE,
    WASI_IO,
    WitPackage {
        id: "wasi:clocks@0.2.12",
        folder: "wasi-clocks-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "clocks.wit")],
    },
    WitPackage {
        id: "wasi:random@0.2.12",
        folder: "wasi-random-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "random.wit")],
    },
    WitPackage {
        id: "wasi:cli@0.2.12",
        folder: "wasi-cli-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "cli.wit")],
    },
    WitPackage {
        id: "wasi:filesystem@0.2.12",
        folder: "wasi-filesystem-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "filesystem.wit")],
    },
    WitPackage {
        id: "wasi:sockets@0.2.12",
        folder: "wasi-sockets-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "sockets.wit")],
    },
    WitPackage {
        id: "wasi:http@0.2.12",
        folder: "wasi-http-0.2.12",
        files: &[wit_file!("wasi-0.2.12", "http.wit")],
    },
    WitPackage {
        id: "wasi:keyvalue@0.2.0-draft",
        folder: "wasi-keyvalue-0.2.0-draft",
        files: &[
            wit_file!("wasi-keyvalue-0.2.0-draft", "atomic.wit"),
            wit_file!("wasi-keyvalue-0.2.0-draft", "batch.wit"),
            wit_file!("wasi-keyvalue-0.2.0-draft", "store.wit"),
            wit_file!("wasi-keyvalue-0.2.0-draft", "watch.wit"),
            wit_file!("wasi-keyvalue-0.2.0-draft", "world.wit"),
        ],
    },
    WitPackage {
        id: "wasi:blobstore@0.2.0-draft",
        folder: "wasi-blobstore-0.2.0-draft",
        files: &[
            wit_file!("wasi-blobstore-0.2.0-draft", "blobstore.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft", "container.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft", "types.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft", "world.wit"),
        ],
    },
    WitPackage {
        id: "wasi:io@0.2.2",
        folder: "wasi-io-0.2.2",
        files: &[
            wit_file!("wasi-blobstore-0.2.0-draft/deps/io", "error.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft/deps/io", "poll.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft/deps/io", "streams.wit"),
            wit_file!("wasi-blobstore-0.2.0-draft/deps/io", "world.wit"),
        ],
    },
    WitPackage {
        id: "wasi:config@0.2.0-rc.1",
        folder: "wasi-config-0.2.0-rc.1",
        files: &[
            wit_file!("wasi-config-0.2.0-rc.1", "store.wit"),
            wit_file!("wasi-config-0.2.0-rc.1", "world.wit"),
        ],
    },
    WitPackage {
        id: "wasi:logging@0.1.0-draft",
        folder: "wasi-logging-0.1.0-draft",
        files: &[
            wit_file!("wasi-logging-0.1.0-draft", "logging.wit"),
            wit_file!("wasi-logging-0.1.0-draft", "world.wit"),
        ],
    },
    WitPackage {
        id: "wasmcloud:messaging@0.2.0",
        folder: "wasmcloud-messaging-0.2.0",
        files: &[wit_file!("wasmcloud-messaging-0.2.0", "messaging.wit")],
    },
];

/// `keel wit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WitCommand {
    /// Write the WIT packages keel serves (keel:core, WASI P2, wasi:http,
    /// the plugins' interfaces) into DIR, one folder each: use DIR as a
    /// world's `wit/deps/`.
    Export {
        /// The folder to write into (created if missing; keel's package
        /// folders in it are replaced, anything else is left alone).
        dir: PathBuf,
    },
}

/// Runs a `keel wit` subcommand.
pub fn run(command: WitCommand) -> Result<()> {
    match command {
        WitCommand::Export { dir } => {
            for package in SERVED {
                let at = write(package, &dir)?;
                eprintln!("{}: {}", package.id, at.display());
            }
            eprintln!(
                "use {} as the `deps/` folder next to your world's .wit file",
                dir.display()
            );
            Ok(())
        }
    }
}

/// Writes `package` into `deps/<folder>/`, replacing what that folder
/// held, and returns the folder.
pub fn write(package: &WitPackage, deps: &Path) -> Result<PathBuf> {
    let at = deps.join(package.folder);
    if at.is_dir() {
        std::fs::remove_dir_all(&at).with_context(|| format!("replacing {}", at.display()))?;
    }
    std::fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
    for (file, text) in package.files {
        let path = at.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_is_what_its_id_says() {
        for package in SERVED {
            let declared = package
                .files
                .iter()
                .find_map(|(_, text)| {
                    text.lines()
                        .find_map(|l| l.trim().strip_prefix("package "))
                        .map(|rest| rest.trim_end_matches(';').trim().to_string())
                })
                .unwrap_or_default();
            assert_eq!(declared, package.id, "{}", package.folder);
        }
    }

    #[test]
    fn the_export_resolves_as_a_worlds_deps() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("deps");
        for package in SERVED {
            write(package, &deps).unwrap();
        }
        std::fs::write(
            dir.path().join("world.wit"),
            "package local:app;\nworld app {\n  import keel:core/identity@0.1.0;\n  \
             import wasi:blobstore/blobstore@0.2.0-draft;\n  \
             import wasi:keyvalue/store@0.2.0-draft;\n  \
             export wasi:http/incoming-handler@0.2.12;\n}\n",
        )
        .unwrap();
        wit_parser::Resolve::default()
            .push_dir(dir.path())
            .expect("resolves");
    }
}
