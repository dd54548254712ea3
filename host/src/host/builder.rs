//! [`HostBuilder`]: what a [`Host`] is made of, and starting it.

use super::Host;
use super::nats::connect;
use crate::budget::MemoryBudget;
use crate::cache::ComponentCache;
use crate::core_api::broker::{Broker, NatsConnection};
use crate::core_api::bus::{Bus, BusOptions};
use crate::core_api::pending::PendingLimits;
use crate::core_api::stream_cap::StreamCap;
use crate::engine::{EngineOptions, KeelEngine};
use crate::http::{Ingress, IngressOptions, Router};
use crate::oci::{OciOptions, Registry};
use crate::outgoing::Resolver;
use crate::plugins::PluginSet;
use crate::services::Services;
use crate::spec::{ByteSize, NatsSpec};
use crate::store::cpu::CpuGate;
use anyhow::Result;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Configures and starts a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    http_listen: Option<SocketAddr>,
    ingress: IngressOptions,
    cache_dir: Option<PathBuf>,
    engine: EngineOptions,
    builtin_plugins: bool,
    nats: Option<NatsSpec>,
    memory_budget: Option<ByteSize>,
    pending: PendingLimits,
    resolver: Resolver,
    max_streams_per_namespace: Option<u32>,
    oci: OciOptions,
}

impl Default for HostBuilder {
    fn default() -> HostBuilder {
        HostBuilder {
            http_listen: None,
            ingress: IngressOptions::default(),
            cache_dir: None,
            engine: EngineOptions::default(),
            builtin_plugins: true,
            nats: None,
            memory_budget: None,
            pending: PendingLimits::default(),
            resolver: Resolver::system(),
            max_streams_per_namespace: None,
            oci: OciOptions::default(),
        }
    }
}

impl HostBuilder {
    /// Serve HTTP on `addr` (port 0 picks a free port). Without it the host
    /// runs no HTTP ingress.
    pub fn http_listen(mut self, addr: SocketAddr) -> HostBuilder {
        self.http_listen = Some(addr);
        self
    }

    /// Bounds of the HTTP ingress: connections at once, header, idle and
    /// write timeouts, and how long shutdown waits for open connections.
    pub fn ingress_options(mut self, options: IngressOptions) -> HostBuilder {
        self.ingress = options;
        self
    }

    /// Keep compiled components in `dir`. Without it every start compiles.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> HostBuilder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Engine settings (pooling, concurrency support, epoch tick).
    pub fn engine_options(mut self, options: EngineOptions) -> HostBuilder {
        self.engine = options;
        self
    }

    /// Whether keel's built-in plugins (in-memory key-value, …) serve
    /// workloads whose imports no declared plugin serves. On by default;
    /// off, such imports are denied.
    pub fn builtin_plugins(mut self, on: bool) -> HostBuilder {
        self.builtin_plugins = on;
        self
    }

    /// The linear memory all workload instances of the host may hold at
    /// once (each workload also has its own budget, `limits.memory_total`).
    /// Default: three quarters of the machine's memory.
    pub fn memory_budget(mut self, budget: ByteSize) -> HostBuilder {
        self.memory_budget = Some(budget);
        self
    }

    /// Carry messaging over this NATS server instead of the in-process bus.
    pub fn nats(mut self, nats: NatsSpec) -> HostBuilder {
        self.nats = Some(nats);
        self
    }

    /// How much each subscription may hold unread before messages to it are
    /// dropped (NATS's defaults: 65,536 messages, 64 MiB). On the in-process
    /// bus both bounds hold; on NATS the client bounds each subscription in
    /// messages only.
    pub fn pending_limits(mut self, limits: PendingLimits) -> HostBuilder {
        self.pending = limits;
        self
    }

    /// Resolve the host names of guests' outgoing HTTP requests with
    /// `resolver` instead of the system's (the allowlist still checks every
    /// address it answers).
    pub fn resolver(mut self, resolver: Resolver) -> HostBuilder {
        self.resolver = resolver;
        self
    }

    /// How many JetStream streams (buckets) the plugins acting for one
    /// namespace may create through `keel:core/nats`; overrides the NATS
    /// spec's `max_streams_per_namespace` (default
    /// [`DEFAULT_MAX_STREAMS_PER_NAMESPACE`](crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE)).
    /// The streams of the built-in plugins are counted across restarts
    /// (read from the server), others from their creation on.
    pub fn max_streams_per_namespace(mut self, max: u32) -> HostBuilder {
        self.max_streams_per_namespace = Some(max);
        self
    }

    /// How `oci://` references are pulled: the store folder (default:
    /// `oci/` in the cache folder, when there is one), the pull policy,
    /// offline, per-registry settings and the size bound.
    pub fn oci(mut self, options: OciOptions) -> HostBuilder {
        self.oci = options;
        self
    }

    /// Builds the engine, connects to NATS if configured, and binds the ingress.
    pub async fn start(mut self) -> Result<Host> {
        if self.oci.store_dir.is_none() {
            self.oci.store_dir = self.cache_dir.as_ref().map(|dir| dir.join("oci"));
        }
        let registry = Registry::new(self.oci.clone())?;
        let engine = Arc::new(KeelEngine::new(self.engine)?);
        let plugins = if self.builtin_plugins {
            PluginSet::with_builtins(self.nats.is_some())?
        } else {
            PluginSet::default()
        };
        let router = Arc::new(Router::default());
        let shutdown_timeout = self.ingress.shutdown_timeout;
        let ingress = match self.http_listen {
            Some(addr) => {
                Some(Ingress::bind(addr, router.clone(), engine.clone(), self.ingress).await?)
            }
            None => None,
        };
        let services = Arc::new(Services {
            engine,
            cache: ComponentCache::new(self.cache_dir)?,
            plugins: Mutex::new(plugins),
            broker: match &self.nats {
                Some(nats) => Broker::Nats(NatsConnection::new(
                    connect(nats, self.pending).await?,
                    StreamCap::new(
                        self.max_streams_per_namespace
                            .unwrap_or(nats.max_streams_per_namespace),
                    ),
                    nats.subjects,
                )),
                None => Broker::Bus(Bus::with_options(BusOptions {
                    pending: self.pending,
                })),
            },
            memory_budget: MemoryBudget::new(
                self.memory_budget
                    .map_or_else(default_memory_budget, |b| b.as_usize()),
                None,
            ),
            resolver: self.resolver,
            // One worker thread is always left for short requests.
            cpu: CpuGate::host(
                tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers()),
            ),
        });
        Ok(Host {
            services,
            registry,
            router,
            workloads: Mutex::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            ingress: Mutex::new(ingress),
            shutdown_timeout,
        })
    }
}

/// Three quarters of the machine's memory (`MemTotal` in `/proc/meminfo`),
/// or no bound where that cannot be read.
fn default_memory_budget() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        });
    match total_kib {
        Some(kib) => usize::try_from(kib.saturating_mul(1024) / 4 * 3).unwrap_or(usize::MAX),
        None => usize::MAX,
    }
}
