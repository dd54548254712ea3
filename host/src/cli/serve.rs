//! What `keel run` and `keel host` share: the flags of a serving host and
//! how they make a [`HostBuilder`].

use crate::engine::EngineOptions;
use crate::host::{Host, HostBuilder};
use crate::http::IngressOptions;
use crate::oci::{OciOptions, PullPolicy};
use crate::spec::{ByteSize, NatsSpec, RegistrySpec, parse_duration};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The flags of a serving host, common to `keel run` and `keel host`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for compiled components and the OCI store [default:
    /// $XDG_CACHE_HOME/keel or ~/.cache/keel].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile every component at every start.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Do not offer keel's built-in plugins: imports no declared plugin
    /// serves are denied.
    #[arg(long)]
    pub no_builtin_plugins: bool,
    /// Component instances the host's pool holds at once. A tenth (rounded
    /// up) is kept for shared plugin instances; the rest bounds the
    /// invocations running at once, shared fairly between workloads.
    #[arg(long, value_name = "N", default_value_t = EngineOptions::default().pool_instances)]
    pub pool_instances: u32,
    /// Bytes of each pooled linear memory and table reset in place when an
    /// instance is freed, so the next one finds them resident (0: all
    /// handed back to the kernel).
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = ByteSize::parse)]
    pub pool_keep_resident: ByteSize,
    /// How often the epoch advances: the granularity of deadlines, and the
    /// slice a CPU-bound invocation runs before it yields and takes its
    /// next turn on the CPU. Shorter slices let a neighbour's requests in
    /// sooner next to a spinning workload, at some cost in throughput
    /// (README, "Performance"). At least 1ms.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_duration)]
    pub epoch_tick: Duration,
    /// On SIGINT or SIGTERM, how long in-flight requests may take to finish
    /// before their connections are closed. A second signal exits at once.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// When to fetch `oci://` components from their registry:
    /// `if-not-present` uses the OCI store when it has them, `always` asks
    /// the registry (following moved tags), `never` uses the store only.
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent)]
    pub pull: PullPolicy,
    /// Reach no registry at all: every `oci://` component must already be
    /// in the OCI store.
    #[arg(long, conflicts_with = "pull")]
    pub offline: bool,
    /// The largest component pulled from a registry.
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = ByteSize::parse)]
    pub max_pull_size: ByteSize,
}

impl ServeArgs {
    /// A host builder with these flags, the ingress bounds `ingress` (whose
    /// shutdown timeout these flags set) and `registries` to pull from.
    pub fn host_builder(
        &self,
        ingress: IngressOptions,
        registries: Vec<RegistrySpec>,
    ) -> HostBuilder {
        let cache_dir = self.cache_dir.clone().or_else(crate::cache::default_dir);
        let mut builder = Host::builder()
            .http_listen(self.listen)
            .ingress_options(IngressOptions {
                shutdown_timeout: self.shutdown_timeout,
                ..ingress
            })
            .engine_options(EngineOptions {
                pool_instances: self.pool_instances,
                keep_resident: self.pool_keep_resident.as_usize(),
                epoch_tick: self.epoch_tick.max(Duration::from_millis(1)),
                ..EngineOptions::default()
            })
            .builtin_plugins(!self.no_builtin_plugins)
            // The OCI store lives beside the compiled components, and is
            // kept even with --no-cache: it is what lets a host start with
            // its registry down.
            .oci(OciOptions {
                store_dir: cache_dir.as_ref().map(|dir| dir.join("oci")),
                policy: self.pull,
                offline: self.offline,
                registries,
                max_layer_size: self.max_pull_size.0,
            });
        if !self.no_cache
            && let Some(dir) = cache_dir
        {
            builder = builder.cache_dir(dir);
        }
        builder
    }
}

/// The NATS connection of a configuration (`configured`) with its URL
/// replaced by `--nats`, when given.
pub fn nats_with_url(url: Option<&String>, configured: Option<NatsSpec>) -> Option<NatsSpec> {
    match (url, configured) {
        (Some(url), Some(spec)) => Some(NatsSpec {
            url: url.clone(),
            ..spec
        }),
        (Some(url), None) => Some(NatsSpec::url(url.clone())),
        (None, spec) => spec,
    }
}
