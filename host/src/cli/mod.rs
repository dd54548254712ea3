//! The `keel` command line: argument parsing and wiring only; everything it
//! does is library code.

mod fleet;
pub mod plugin;
mod report;
mod serve;
pub mod wit;

pub use fleet::HostArgs;
pub use serve::ServeArgs;

use crate::host::Host;
use crate::http::IngressOptions;
use crate::logging::{self, LogFormat};
use crate::manifest::Manifest;
use crate::oci::{OciOptions, Registry};
use crate::spec::{ComponentSource, ImageRef, RegistrySpec};
use crate::spec::{WorkloadId, parse_duration};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long the process waits, after `run` returns, for blocking work it can
/// no longer use (a component still compiling when a signal came).
const EXIT_GRACE: Duration = Duration::from_millis(500);

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
    /// Push a component to an OCI registry as a Wasm artifact and print the
    /// reference pinned to its digest.
    Push(PushArgs),
    /// Plugins: list the built-ins, check a plugin, start a new one.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Join a fleet: serve wasmCloud's host protocol on NATS and run what
    /// its operator starts, until SIGINT or SIGTERM.
    Host(HostArgs),
    /// WIT: write the packages keel serves, to build against them.
    #[command(subcommand)]
    Wit(wit::WitCommand),
}

/// Arguments of `keel push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// Where to push it: `oci://REGISTRY/REPOSITORY:TAG`.
    #[arg(value_parser = ImageRef::parse)]
    pub reference: ImageRef,
    /// Speak plain HTTP to the registry (one on loopback or a trusted network).
    #[arg(long)]
    pub insecure: bool,
    /// A Docker-config-format file (`{"auths": …}`) with this registry's
    /// credentials [default: the Docker configuration, if it has an entry].
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// The environment variable holding the user name.
    #[arg(
        long,
        value_name = "VAR",
        requires = "password_env",
        conflicts_with = "credentials"
    )]
    pub username_env: Option<String>,
    /// The environment variable holding the password or token.
    #[arg(long, value_name = "VAR", requires = "username_env")]
    pub password_env: Option<String>,
}

/// Arguments of `keel inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component: a `.wasm` file or an `oci://` reference.
    pub component: String,
    /// Match imports against this manifest's plugins (and its picks, when
    /// one of its workloads uses this component). Its `[[registry]]`
    /// settings apply to the references it and the command line name.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// How references are resolved.
    #[command(flatten)]
    pub pull: PullArgs,
}

/// Arguments of `keel compose`.
#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// The manifest (its components and plugins may be `oci://` references).
    pub manifest: PathBuf,
    /// Where to write the composed component.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Which workload (`namespace/name` or `name`); needed when the manifest has several.
    #[arg(long)]
    pub workload: Option<String>,
    /// Write the component even when a composed plugin leaves it importing
    /// `keel:core`: keel refuses such a workload and no other runtime
    /// serves `keel:core`, so it is only good for inspection.
    #[arg(long)]
    pub allow_keel_core: bool,
    /// How references are resolved.
    #[command(flatten)]
    pub pull: PullArgs,
}

/// How `keel inspect` and `keel compose` resolve `oci://` references: as
/// `keel run` does (the OCI store in the cache folder first, then the
/// registry), so what they report is what `keel run` would run.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The folder holding the OCI store (`oci/` in it) [default:
    /// $XDG_CACHE_HOME/keel or ~/.cache/keel].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Reach no registry: every reference must already be in the OCI store.
    #[arg(long)]
    pub offline: bool,
    /// Speak plain HTTP to the registry of the component named on the
    /// command line (one on loopback or a trusted network).
    #[arg(long)]
    pub insecure: bool,
}

impl PullArgs {
    /// A registry client under these flags, with `registries`' settings,
    /// plus plain HTTP for `insecure_host` when `--insecure` was given.
    fn registry(
        &self,
        mut registries: Vec<RegistrySpec>,
        insecure_host: Option<&str>,
    ) -> Result<Registry> {
        if self.insecure
            && let Some(host) = insecure_host
        {
            match registries.iter_mut().find(|r| r.host == host) {
                Some(spec) => spec.insecure = true,
                None => registries.push(RegistrySpec {
                    insecure: true,
                    ..RegistrySpec::new(host)
                }),
            }
        }
        let cache_dir = self.cache_dir.clone().or_else(crate::cache::default_dir);
        Registry::new(OciOptions {
            store_dir: cache_dir.map(|dir| dir.join("oci")),
            offline: self.offline,
            registries,
            ..OciOptions::default()
        })
    }
}

/// Arguments of `keel run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// What `keel host` takes too.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Carry messaging over this NATS server (overrides the manifest's `[nats] url`).
    #[arg(long, value_name = "nats://host:port")]
    pub nats: Option<String>,
    /// HTTP connections served at once; more are answered 503 and closed
    /// [default: 1000, or half the open-files limit when that is lower].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// How long a request's head (request line and headers) may take to arrive.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How long a response may wait for a client that stopped reading it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
}

impl RunArgs {
    /// The ingress bounds these arguments ask for.
    pub fn ingress_options(&self) -> IngressOptions {
        IngressOptions {
            max_connections: self
                .max_connections
                .unwrap_or_else(crate::http::options::default_max_connections),
            header_read_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            shutdown_timeout: self.serve.shutdown_timeout,
        }
    }
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
    // At least two worker threads, even on one core: CPU-bound invocations
    // run on at most all but one of them (crate::store::cpu), so a short
    // request always finds a thread the operating system wakes promptly.
    // TOKIO_WORKER_THREADS, when set, is Tokio's to read and wins.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads(cores.max(2));
    }
    let runtime = match builder.enable_all().thread_name("keel").build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Inspect(args) => runtime.block_on(inspect(args)),
        Command::Compose(args) => runtime.block_on(compose(args)),
        Command::Push(args) => runtime.block_on(push(args)),
        Command::Host(args) => runtime.block_on(fleet::host(args)),
        Command::Plugin(command) => plugin::run(command),
        Command::Wit(command) => wit::run(command),
    };
    // Dropping the runtime would wait for every blocking task, such as a
    // workload still compiling when a signal ended the start. What is
    // logged, down to the runtime's last tasks, comes out before the
    // outcome, as it happened.
    runtime.shutdown_timeout(EXIT_GRACE);
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
/// signal, then drain and stop. A signal while workloads are starting stops
/// the start and drains what already runs; a second signal while draining
/// exits at once.
pub async fn run(args: RunArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let mut signals = Signals::new()?;
    let mut builder = args
        .serve
        .host_builder(args.ingress_options(), manifest.registries.clone());
    if let Some(nats) = serve::nats_with_url(args.nats.as_ref(), manifest.nats.clone()) {
        builder = builder.nats(nats);
    }
    let host = builder.start().await?;
    if let Some(addr) = host.http_addr() {
        tracing::info!("listening on http://{addr}");
    }
    let started = tokio::select! {
        started = start_all(&host, manifest) => Some(started),
        signal = signals.next() => {
            signal?;
            tracing::info!("shutting down while workloads were starting: finishing in-flight requests");
            None
        }
    };
    match started {
        Some(Err(e)) => {
            host.shutdown().await;
            return Err(e);
        }
        Some(Ok(())) => {
            signals.next().await?;
            tracing::info!("shutting down: finishing in-flight requests");
        }
        None => {}
    }
    tokio::select! {
        () = host.shutdown() => {}
        signal = signals.next() => {
            signal?;
            anyhow::bail!("a second signal: exiting without finishing in-flight requests");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Registers the manifest's plugins and starts its workloads in order,
/// logging each HTTP route as it comes up.
async fn start_all(host: &Host, manifest: Manifest) -> Result<()> {
    for plugin in manifest.plugins {
        host.add_plugin(plugin).await?;
    }
    let mut routes = Routes::default();
    for spec in manifest.workloads {
        let name = spec.http.host.clone();
        let id = host.start_workload(spec).await?;
        if host.status(&id).and_then(|s| s.serves_http) == Some(true) {
            routes.log(id, name.as_deref());
        }
    }
    Ok(())
}

/// What `keel run` has said about routes so far.
#[derive(Default)]
struct Routes {
    /// Running HTTP workloads without a host name.
    hostless: Vec<WorkloadId>,
}

impl Routes {
    /// Logs the route of HTTP workload `id`, now running, routed by Host
    /// `name` or by default.
    fn log(&mut self, id: WorkloadId, name: Option<&str>) {
        if let Some(name) = name {
            tracing::info!(workload = %id, "route: Host {name} -> {id}");
            return;
        }
        self.hostless.push(id.clone());
        match self.hostless.as_slice() {
            [_] => tracing::info!(
                workload = %id,
                "route: any other host -> {id} (the only HTTP workload without a host name)"
            ),
            several => {
                let names: Vec<String> = several.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    workload = %id,
                    "route: none by default: {} serve HTTP without a host name; requests for \
                     other hosts get 404 (give each an `http.host`)",
                    names.join(", ")
                );
            }
        }
    }
}

/// `keel inspect`: print imports, exports and how each import is served.
pub async fn inspect(args: InspectArgs) -> Result<()> {
    let mut manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    let mut component = ComponentSource::parse(&args.component)?;
    let registry = args.pull.registry(
        manifest
            .as_ref()
            .map(|m| m.registries.clone())
            .unwrap_or_default(),
        component.reference().map(|r| r.registry()),
    )?;
    registry.fill(&mut component).await?;
    if let Some(manifest) = &mut manifest {
        report::pull_references(manifest, &registry).await?;
    }
    print!("{}", report::inspect(&component, manifest.as_ref())?);
    Ok(())
}

/// `keel compose`: write one workload composed with its plugins.
pub async fn compose(args: ComposeArgs) -> Result<()> {
    let mut manifest = Manifest::load(&args.manifest)?;
    let registry = args.pull.registry(manifest.registries.clone(), None)?;
    report::pull_references(&mut manifest, &registry).await?;
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
    let (bytes, core) = report::compose_workload(&manifest, workload, args.allow_keel_core)?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    for (import, from) in &core {
        eprintln!(
            "warning: {} imports `{import}` (from plugin {}): `keel run` refuses it as a workload \
             and no other runtime serves keel:core; it runs nowhere",
            args.output.display(),
            from.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(())
}

/// The largest file `keel push` reads.
const MAX_PUSH_SIZE: u64 = 1 << 30;

/// `keel push`: push one component, print the reference pinned to the
/// digest it got (stdout), and what was pushed (stderr).
pub async fn push(args: PushArgs) -> Result<()> {
    let metadata = std::fs::metadata(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    if !metadata.is_file() || metadata.len() > MAX_PUSH_SIZE {
        anyhow::bail!(
            "{} must be a regular file of at most {MAX_PUSH_SIZE} bytes",
            args.component.display()
        );
    }
    let component = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let registry = Registry::new(OciOptions {
        registries: vec![RegistrySpec {
            insecure: args.insecure,
            credentials: args.credentials,
            username_env: args.username_env,
            password_env: args.password_env,
            ..RegistrySpec::new(args.reference.registry())
        }],
        ..OciOptions::default()
    })?;
    let pushed = registry.push(&args.reference, &component).await?;
    eprintln!(
        "pushed {} ({} bytes) as {}",
        args.component.display(),
        component.len(),
        pushed.manifest_digest
    );
    println!("{}", pushed.reference);
    Ok(())
}

/// SIGINT and SIGTERM, listened to from the start, so that a signal during
/// startup is a clean shutdown and not the default (abrupt) exit.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// The next SIGINT or SIGTERM.
    async fn next(&mut self) -> Result<()> {
        tokio::select! {
            received = self.interrupt.recv() => received.context("listening for SIGINT"),
            received = self.terminate.recv() => received.context("listening for SIGTERM"),
        }
    }
}
