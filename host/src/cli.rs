//! The `keel` command line: argument parsing and wiring only; everything it
//! does is library code.

use crate::engine::EngineOptions;
use crate::host::Host;
use crate::logging::{self, LogFormat};
use crate::manifest::Manifest;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// keel runs WebAssembly components whose capabilities are components too.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about)]
pub struct Cli {
    /// Log format: `text` for people, `json` for machines. Filter with RUST_LOG.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// keel's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the workloads of a manifest until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Show a component's imports and exports, and what would serve each import.
    Inspect(InspectArgs),
    /// Write a workload composed with its composed-mode plugins as one component.
    Compose(ComposeArgs),
}

/// Arguments of `keel inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// Match imports against this manifest's plugins (and its picks, when
    /// one of its workloads uses this component).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
}

/// Arguments of `keel compose`.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// Where to write the composed component.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Which workload (`namespace/name` or `name`); needed when the manifest has several.
    #[arg(long)]
    pub workload: Option<String>,
}

/// Arguments of `keel run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for compiled components [default: $XDG_CACHE_HOME/keel or ~/.cache/keel].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile every component at every start.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Do not offer keel's built-in plugins: imports no declared plugin
    /// serves are denied.
    #[arg(long)]
    pub no_builtin_plugins: bool,
    /// Carry messaging over this NATS server (overrides the manifest's `[nats] url`).
    #[arg(long, value_name = "nats://host:port")]
    pub nats: Option<String>,
}

/// Parses the arguments, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match logging::init(cli.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("keel")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Inspect(args) => inspect(args),
        Command::Compose(args) => compose(args),
    };
    // What is logged, down to the runtime's last tasks, comes out before
    // the outcome, as it happened.
    drop(runtime);
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `keel run`: load the manifest, start every workload, serve until a
/// signal, then drain and stop.
pub async fn run(args: RunArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let mut builder = Host::builder()
        .http_listen(args.listen)
        .engine_options(EngineOptions::default())
        .builtin_plugins(!args.no_builtin_plugins);
    let nats = match (&args.nats, &manifest.nats) {
        (Some(url), Some(spec)) => Some(crate::manifest::NatsSpec {
            url: url.clone(),
            ..spec.clone()
        }),
        (Some(url), None) => Some(crate::manifest::NatsSpec::url(url.clone())),
        (None, spec) => spec.clone(),
    };
    if let Some(nats) = nats {
        builder = builder.nats(nats);
    }
    if !args.no_cache
        && let Some(dir) = args.cache_dir.clone().or_else(crate::cache::default_dir)
    {
        builder = builder.cache_dir(dir);
    }
    let host = builder.start().await?;
    if let Some(addr) = host.http_addr() {
        tracing::info!("listening on http://{addr}");
    }
    for plugin in manifest.plugins {
        if let Err(e) = host.add_plugin(plugin).await {
            host.shutdown().await;
            return Err(e.into());
        }
    }
    for spec in manifest.workloads {
        let route = spec.http.host.clone();
        let id = match host.start_workload(spec).await {
            Ok(id) => id,
            Err(e) => {
                host.shutdown().await;
                return Err(e.into());
            }
        };
        match route {
            Some(name) => tracing::info!(workload = %id, "route: Host {name} -> {id}"),
            None => {
                tracing::info!(workload = %id, "route: any host -> {id} (the only workload without a host name)")
            }
        }
    }
    shutdown_signal().await?;
    tracing::info!("shutting down: finishing in-flight requests");
    host.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// `keel inspect`: print imports, exports and how each import is served.
pub fn inspect(args: InspectArgs) -> Result<()> {
    let manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    print!(
        "{}",
        crate::plugins::report::inspect(&args.component, manifest.as_ref())?
    );
    Ok(())
}

/// `keel compose`: write one workload composed with its plugins.
pub fn compose(args: ComposeArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let workload = match &args.workload {
        Some(wanted) => manifest
            .workloads
            .iter()
            .find(|w| &w.id.to_string() == wanted || &w.id.name == wanted)
            .with_context(|| format!("the manifest has no workload `{wanted}`"))?,
        None => match manifest.workloads.as_slice() {
            [only] => only,
            _ => anyhow::bail!("the manifest has several workloads: choose one with --workload"),
        },
    };
    let bytes = crate::plugins::report::compose_workload(&manifest, workload)?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(())
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
