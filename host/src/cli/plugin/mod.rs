//! `keel plugin`: what a platform team needs to ship a plugin as a file —
//! the built-ins and their metadata ([`list`]), a check of a plugin before
//! it is deployed ([`check`]), and a new plugin crate to start from
//! ([`new`]).

pub mod check;
pub mod list;
pub mod new;
mod stubs;

use std::path::PathBuf;

/// `keel plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Print the built-in plugins this binary carries, with their metadata.
    List,
    /// Check a plugin component before deploying it: imports keel cannot
    /// serve, its metadata against its exports, the modes it can be
    /// linked in. Exits 1 on any problem.
    Check(CheckArgs),
    /// Write a new plugin crate exporting the interfaces of a WIT package,
    /// each function stubbed to fail with a clear message.
    New(NewArgs),
}

/// Arguments of `keel plugin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The plugin: a `.wasm` file, or `oci://REGISTRY/REPOSITORY:TAG`.
    pub plugin: String,
    /// Speak plain HTTP to the plugin's registry (one on loopback or a
    /// trusted network); the manifest's `[[registry]]` entries apply too.
    #[arg(long)]
    pub insecure: bool,
    /// Count the plugins this manifest declares among those that may serve
    /// the plugin's imports (besides the built-ins).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
}

/// Arguments of `keel plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name (lower-case letters, digits and `-`).
    pub name: String,
    /// A WIT file or folder (with its `deps/`) holding the interfaces to
    /// export: those `--export` names, or those of its world `--world`, or
    /// of its only world with exports, or else every interface of the
    /// package.
    #[arg(long, value_name = "WIT")]
    pub interface: PathBuf,
    /// The world of that package whose exports the plugin serves.
    #[arg(long, conflicts_with = "export")]
    pub world: Option<String>,
    /// An interface of that package to export (`store`, or
    /// `wasi:keyvalue/store`); repeat for several. Overrides the worlds.
    #[arg(long, value_name = "INTERFACE")]
    pub export: Vec<String>,
    /// Where to write the crate [default: a folder named after the plugin].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs a `keel plugin` subcommand.
pub fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::List => {
            print!("{}", list::report()?);
            Ok(())
        }
        PluginCommand::Check(args) => check::run(&args),
        PluginCommand::New(args) => new::run(&args),
    }
}
