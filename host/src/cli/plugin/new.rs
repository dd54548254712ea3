//! `keel plugin new NAME --interface WIT`: a plugin crate to start from.
//!
//! The crate needs nothing of keel's: `wit-bindgen`, its WIT under `wit/`
//! (a `local:plugin` world, the interface's package and every dependency
//! flattened into `wit/deps/`, where wit-bindgen and wkg look, `keel:core`
//! included), the metadata in `keel-plugin.toml` embedded by a
//! `link_section` static, and a `src/lib.rs` whose functions fail with a
//! message naming them ([`super::stubs`]). It builds with `cargo build
//! --target wasm32-wasip2` and passes `keel plugin check` as written.

use super::super::wit;
use super::NewArgs;
use super::stubs::Stubs;
use crate::policy::names::validate_name;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use wit_parser::{InterfaceId, PackageName, Resolve, UnresolvedPackageGroup, WorldItem, WorldKey};

/// The wit-bindgen keel's own plugins are built with.
const WIT_BINDGEN: &str = "0.61";

/// Writes the crate and says where.
pub fn run(args: &NewArgs) -> Result<()> {
    validate_name(&args.name).map_err(|m| anyhow::anyhow!("plugin name `{}`: {m}", args.name))?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        bail!("{} exists and is not empty", dir.display());
    }
    let choice = match (&args.world, args.export.as_slice()) {
        (_, [_, ..]) => Choice::Interfaces(&args.export),
        (Some(world), []) => Choice::World(world),
        (None, []) => Choice::Auto,
    };
    let exported = scaffold(&args.name, &args.interface, choice, &dir)?;
    eprintln!(
        "wrote plugin `{}` in {} (exports {}); build it with\n  cd {} && cargo build --target wasm32-wasip2 --release\nthen check target/wasm32-wasip2/release/{}.wasm with `keel plugin check`",
        args.name,
        dir.display(),
        exported.join(", "),
        dir.display(),
        args.name.replace('-', "_")
    );
    Ok(())
}

/// Which interfaces of the package a new plugin exports.
#[derive(Debug, Clone, Copy)]
pub enum Choice<'a> {
    /// These, by name (`store` or `wasi:keyvalue/store`).
    Interfaces(&'a [String]),
    /// Those this world exports (the world is included whole).
    World(&'a str),
    /// Those of the package's only world with exports, or else all of its
    /// interfaces.
    Auto,
}

/// Writes plugin `name`'s crate into `dir` exporting the interfaces
/// `choice` picks from the package at `wit`; returns their names.
pub fn scaffold(name: &str, wit: &Path, choice: Choice<'_>, dir: &Path) -> Result<Vec<String>> {
    let deps = dir.join("wit").join("deps");
    std::fs::create_dir_all(&deps).with_context(|| format!("creating {}", deps.display()))?;
    let main = vendor(wit, &deps)?;
    let mut groups = Vec::new();
    let mut names: Vec<PackageName> = Vec::new();
    for entry in entries(&deps)? {
        let group = parse(&entry)?;
        names.push(group.main.name.clone());
        if entry != main {
            groups.push(group);
        }
    }
    // keel:core (and the wasi:io it uses), unless the WIT brought them.
    for package in [&wit::WASI_IO, &wit::KEEL_CORE] {
        if names.iter().any(|n| n.to_string() == package.id) {
            continue;
        }
        let at = wit::write(package, &deps)?;
        groups.push(parse(&at)?);
    }
    let mut resolve = Resolve::default();
    let package = resolve
        .push_groups(parse(&main)?, groups)
        .map_err(|e| anyhow::anyhow!("resolving {}: {e:#}", wit.display()))?;
    let (world_line, exported) = exports_of(&resolve, package, choice)?;
    let names: Vec<String> = exported
        .iter()
        .filter_map(|id| resolve.id_of(*id))
        .collect();
    std::fs::write(
        dir.join("wit").join("world.wit"),
        format!(
            "// The world this plugin implements; its dependencies are in deps/.\npackage local:plugin;\n\nworld plugin {{\n{world_line}}}\n"
        ),
    )?;
    let stubs = Stubs::new(&resolve, exported).render()?;
    write_crate(name, dir, &names, &stubs)?;
    // What was written must resolve as wit-bindgen will read it.
    Resolve::default()
        .push_dir(dir.join("wit"))
        .with_context(|| format!("the WIT written to {}", dir.join("wit").display()))?;
    Ok(names)
}

/// Copies the WIT at `wit` (a file, or a folder with its `deps/`) into
/// `deps`, flat; returns where its own package went.
fn vendor(wit: &Path, deps: &Path) -> Result<PathBuf> {
    if wit.is_file() {
        let file = wit.file_name().context("the WIT file has no name")?;
        let to = deps.join(file);
        std::fs::copy(wit, &to).with_context(|| format!("copying {}", wit.display()))?;
        return Ok(to);
    }
    let name = wit
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()))
        .context("the WIT folder has no name")?;
    let to = deps.join(&name);
    copy_wit_files(wit, &to)?;
    let theirs = wit.join("deps");
    if theirs.is_dir() {
        for entry in entries(&theirs)? {
            let file = entry.file_name().context("a dependency without a name")?;
            if entry.is_dir() {
                copy_wit_files(&entry, &deps.join(file))?;
            } else {
                std::fs::copy(&entry, deps.join(file))?;
            }
        }
    }
    Ok(to)
}

fn copy_wit_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in entries(from)? {
        if entry.is_file() && entry.extension().is_some_and(|e| e == "wit") {
            let file = entry.file_name().context("a file without a name")?;
            std::fs::copy(&entry, to.join(file))
                .with_context(|| format!("copying {}", entry.display()))?;
        }
    }
    Ok(())
}

/// The entries of folder `dir`, sorted.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "wit"))
        .collect();
    out.sort();
    Ok(out)
}

fn parse(path: &Path) -> Result<UnresolvedPackageGroup> {
    if path.is_dir() {
        UnresolvedPackageGroup::parse_dir(path)
    } else {
        let mut map = wit_parser::SourceMap::default();
        map.push_file(path)?;
        map.parse().map_err(|(map, e)| {
            let rendered = e.render(&map);
            anyhow::Error::from(e).context(rendered)
        })
    }
    .with_context(|| format!("parsing {}", path.display()))
}

/// The world body (`include …;` or `export …;` lines) and the interfaces
/// the plugin exports: those of world `world`, or of the package's only
/// world that exports any, or else every interface of the package.
fn exports_of(
    resolve: &Resolve,
    package: wit_parser::PackageId,
    choice: Choice<'_>,
) -> Result<(String, Vec<InterfaceId>)> {
    let pkg = &resolve.packages[package];
    let world = match choice {
        Choice::Interfaces(names) => {
            let mut interfaces = Vec::new();
            for wanted in names {
                let short = wanted
                    .rsplit_once('/')
                    .map_or(wanted.as_str(), |(_, i)| i)
                    .split('@')
                    .next()
                    .unwrap_or_default();
                let id = pkg.interfaces.get(short).with_context(|| {
                    let known: Vec<&str> = pkg.interfaces.keys().map(String::as_str).collect();
                    format!(
                        "package {} has no interface `{wanted}` (it has {})",
                        pkg.name,
                        known.join(", ")
                    )
                })?;
                interfaces.push(*id);
            }
            return Ok((export_lines(resolve, &interfaces), interfaces));
        }
        Choice::World(world) => Some(world),
        Choice::Auto => None,
    };
    let exporting: Vec<(&String, &wit_parser::WorldId)> = pkg
        .worlds
        .iter()
        .filter(|(_, id)| !resolve.worlds[**id].exports.is_empty())
        .collect();
    let chosen = match world {
        Some(wanted) => Some(
            *pkg.worlds
                .get(wanted)
                .with_context(|| format!("package {} has no world `{wanted}`", pkg.name))?,
        ),
        None => match exporting.as_slice() {
            [(_, only)] => Some(**only),
            _ => None,
        },
    };
    if let Some(id) = chosen {
        let w = &resolve.worlds[id];
        let mut interfaces = Vec::new();
        for (key, item) in &w.exports {
            match (key, item) {
                (WorldKey::Interface(id), WorldItem::Interface { .. }) => interfaces.push(*id),
                _ => bail!(
                    "world `{}` exports `{}`, which is not a named interface: a plugin exports interfaces",
                    w.name,
                    resolve.name_world_key(key)
                ),
            }
        }
        let line = format!("    include {};\n", resolve.id_of_name(package, &w.name));
        return Ok((line, interfaces));
    }
    let interfaces: Vec<InterfaceId> = pkg.interfaces.values().copied().collect();
    if interfaces.is_empty() {
        bail!("package {} has no interface to export", pkg.name);
    }
    Ok((export_lines(resolve, &interfaces), interfaces))
}

/// `export ns:pkg/iface@v;` lines for a world's body.
fn export_lines(resolve: &Resolve, interfaces: &[InterfaceId]) -> String {
    interfaces
        .iter()
        .filter_map(|id| resolve.id_of(*id))
        .map(|name| format!("    export {name};\n"))
        .collect()
}

fn write_crate(name: &str, dir: &Path, interfaces: &[String], stubs: &str) -> Result<()> {
    let write = |path: &str, text: String| {
        let at = dir.join(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&at, text).with_context(|| format!("writing {}", at.display()))
    };
    write(
        "Cargo.toml",
        format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen = "{WIT_BINDGEN}"

[profile.release]
opt-level = "s"
strip = true

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#
        ),
    )?;
    let listed: Vec<String> = interfaces.iter().map(|i| format!("    {i:?},\n")).collect();
    write(
        "keel-plugin.toml",
        format!(
            r#"# What this plugin says about itself. src/lib.rs embeds this file as the
# component's `keel-plugin` custom section; keel reads it (keel plugin check,
# keel run). Unknown fields are refused.
name = "{name}"
version = "0.1.0"
description = "{name}: a keel plugin"
# The interfaces it serves: each must be one of its exports.
interfaces = [
{}]
# The link mode it is meant for: "composed" (a fresh instance per request)
# or "shared" (one long-lived instance; for plugins that keep state).
mode = "composed"
keeps_state = false

# The grants it needs; the manifest's [plugin.grants] decides.
[asks]
subjects = []       # NATS subject patterns (keel:core/nats)
sockets = []        # addresses, as "10.0.0.5:6379"
outgoing_http = []  # hosts, as "api.example.com"

# A configuration key it reads, one table each:
# [[config]]
# key = "url"
# description = "where the backend listens"
# default = "redis://127.0.0.1:6379"
"#,
            listed.concat()
        ),
    )?;
    write(
        "src/lib.rs",
        format!(
            r#"//! `{name}`: a keel plugin. Every function below fails with a message
//! naming it until it is written.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`; check the result
//! with `keel plugin check target/wasm32-wasip2/release/{file}.wasm`.

wit_bindgen::generate!({{
    world: "local:plugin/plugin",
    path: "wit",
    generate_all,
}});

// The plugin's metadata (`keel-plugin.toml`), as the custom section keel
// reads: any static in a `keel-plugin` link section does.
#[used]
#[unsafe(link_section = "keel-plugin")]
static KEEL_PLUGIN: [u8; include_bytes!("../keel-plugin.toml").len()] =
    *include_bytes!("../keel-plugin.toml");

/// The type every exported interface is implemented for.
pub struct Plugin;

/// Traps with `message`: what a function not written yet does when its
/// result has no error that could carry the message.
#[allow(dead_code)]
fn not_implemented(message: &str) -> ! {{
    panic!("{{message}}")
}}

{stubs}export!(Plugin);
"#,
            file = name.replace('-', "_")
        ),
    )?;
    write(
        "README.md",
        format!(
            "# {name}\n\nA keel plugin. Build it with `cargo build --target wasm32-wasip2 --release`,\ncheck it with `keel plugin check target/wasm32-wasip2/release/{}.wasm`.\nIts metadata is `keel-plugin.toml`; its WIT (with every dependency) is under `wit/`.\n",
            name.replace('-', "_")
        ),
    )?;
    Ok(())
}
