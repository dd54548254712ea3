//! The host: one engine, one component cache, one HTTP ingress, and the
//! workloads it runs. This is keel's library API; the `keel` binary is a thin
//! shell around it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use keel::{Host, WorkloadId, WorkloadSpec};
//! let host = Host::builder().http_listen("127.0.0.1:0".parse()?).start().await?;
//! let id = host
//!     .start_workload(WorkloadSpec::single(WorkloadId::new("demo", "hello"), "hello.wasm"))
//!     .await?;
//! println!("{:?} serving on {:?}", host.status(&id), host.http_addr());
//! host.shutdown().await;
//! # Ok(()) }
//! ```

use crate::cache::{CacheStats, ComponentCache};
use crate::core_api::broker::Broker;
use crate::core_api::bus::{Bus, BusOptions};
use crate::core_api::pending::PendingLimits;
use crate::engine::{EngineOptions, KeelEngine};
use crate::http::{Ingress, Router};
use crate::manifest::{NatsSpec, PluginSpec, WorkloadId, WorkloadSpec};
use crate::plugins::PluginSet;
use crate::services::Services;
use crate::workload::{Workload, WorkloadStatus};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Configures and starts a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    http_listen: Option<SocketAddr>,
    cache_dir: Option<PathBuf>,
    engine: EngineOptions,
    builtin_plugins: bool,
    nats: Option<NatsSpec>,
    pending: PendingLimits,
}

impl Default for HostBuilder {
    fn default() -> HostBuilder {
        HostBuilder {
            http_listen: None,
            cache_dir: None,
            engine: EngineOptions::default(),
            builtin_plugins: true,
            nats: None,
            pending: PendingLimits::default(),
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

    /// Builds the engine, connects to NATS if configured, and binds the ingress.
    pub async fn start(self) -> Result<Host> {
        let engine = Arc::new(KeelEngine::new(self.engine)?);
        let plugins = if self.builtin_plugins {
            PluginSet::with_builtins(self.nats.is_some())?
        } else {
            PluginSet::default()
        };
        let router = Arc::new(Router::default());
        let ingress = match self.http_listen {
            Some(addr) => Some(Ingress::bind(addr, router.clone(), engine.clone()).await?),
            None => None,
        };
        let services = Arc::new(Services {
            engine,
            cache: ComponentCache::new(self.cache_dir),
            plugins: Mutex::new(plugins),
            broker: match &self.nats {
                Some(nats) => Broker::Nats(connect(nats, self.pending).await?),
                None => Broker::Bus(Bus::with_options(BusOptions {
                    pending: self.pending,
                })),
            },
        });
        Ok(Host {
            services,
            router,
            workloads: Mutex::new(BTreeMap::new()),
            ingress: Mutex::new(ingress),
        })
    }
}

/// A running host.
pub struct Host {
    services: Arc<Services>,
    router: Arc<Router>,
    workloads: Mutex<BTreeMap<WorkloadId, Arc<Workload>>>,
    ingress: Mutex<Option<Ingress>>,
}

impl Host {
    /// A builder with the defaults: no ingress, no cache, pooled engine.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Where HTTP is served, if anywhere.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.lock_ingress().as_ref().map(Ingress::local_addr)
    }

    /// The engine shared by all workloads.
    pub fn engine(&self) -> &KeelEngine {
        &self.services.engine
    }

    /// Where `keel:core/messaging` goes: the in-process bus, or NATS.
    pub fn broker(&self) -> &Broker {
        &self.services.broker
    }

    /// What the component cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.services.cache.stats()
    }

    /// Offers a plugin to the workloads started after this call.
    pub async fn add_plugin(&self, spec: PluginSpec) -> Result<()> {
        let services = self.services.clone();
        let name = spec.name.clone();
        tokio::task::spawn_blocking(move || services.plugins().add(spec)).await??;
        tracing::info!(plugin = name, "plugin registered");
        Ok(())
    }

    /// Starts a workload and waits until it runs. An id that is starting,
    /// running or stopping is refused; a stopped or failed one is replaced.
    /// On failure the workload stays listed in state `Error`.
    pub async fn start_workload(&self, spec: WorkloadSpec) -> Result<WorkloadId> {
        let id = spec.id.clone();
        // The namespace prefixes every subject the workload names: one that
        // held a `.`, or started like `_INBOX` or `$JS`, would reach into
        // another namespace or into the subjects plugins use for JetStream.
        crate::manifest::validate_name(&id.namespace)
            .map_err(|e| anyhow::anyhow!("workload `{id}`: namespace {e}"))?;
        let workload = Arc::new(Workload::new(spec));
        {
            let mut workloads = self.lock_workloads();
            if let Some(existing) = workloads.get(&id)
                && existing.state().is_active()
            {
                bail!("workload `{id}` already exists and is {}", existing.state());
            }
            workloads.insert(id.clone(), workload.clone());
        }
        self.router.insert(workload.clone());
        workload.start(self.services.clone()).await?;
        tracing::info!(workload = %id, http_host = workload.spec().http.host.as_deref().unwrap_or("(default)"), "workload running");
        Ok(id)
    }

    /// Stops a workload: new invocations get 503, in-flight ones finish.
    pub async fn stop_workload(&self, id: &WorkloadId) -> Result<()> {
        let Some(workload) = self.lock_workloads().get(id).cloned() else {
            bail!("no workload `{id}`");
        };
        workload.stop().await;
        tracing::info!(workload = %id, "workload stopped");
        Ok(())
    }

    /// The status of one workload.
    pub fn status(&self, id: &WorkloadId) -> Option<WorkloadStatus> {
        self.lock_workloads().get(id).map(|w| w.status())
    }

    /// The status of every workload, ordered by id.
    pub fn list(&self) -> Vec<WorkloadStatus> {
        self.lock_workloads().values().map(|w| w.status()).collect()
    }

    /// Stops accepting HTTP connections, lets in-flight requests finish, and
    /// stops every workload.
    pub async fn shutdown(&self) {
        let ingress = self.lock_ingress().take();
        let workloads: Vec<_> = self.lock_workloads().values().cloned().collect();
        // Stopping the workloads first would turn requests already accepted
        // into 503s; the ingress drains them, then the workloads stop.
        if let Some(ingress) = ingress {
            ingress.shutdown().await;
        }
        for workload in workloads {
            workload.stop().await;
        }
    }

    fn lock_workloads(&self) -> std::sync::MutexGuard<'_, BTreeMap<WorkloadId, Arc<Workload>>> {
        self.workloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_ingress(&self) -> std::sync::MutexGuard<'_, Option<Ingress>> {
        self.ingress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Connects to NATS. The first connection must succeed, so that a wrong URL
/// is reported at start; after that the client reconnects by itself, calls
/// made during an outage fail at their timeout, and the log says what
/// happened.
async fn connect(nats: &NatsSpec, pending: PendingLimits) -> Result<async_nats::Client> {
    use anyhow::Context as _;
    let slow = Arc::new(SlowConsumers::default());
    let mut options = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        // A subscription holds this many unread messages; past it the client
        // drops messages to it and reports a slow consumer.
        .subscription_capacity(pending.max_messages.max(1))
        .event_callback(move |event| {
            let slow = slow.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS disconnected; reconnecting")
                    }
                    async_nats::Event::SlowConsumer(sid) => slow.dropped(sid),
                    other => tracing::warn!("NATS: {other}"),
                }
            }
        });
    if let Some(name) = &nats.name {
        options = options.name(name);
    }
    if let Some(ca) = &nats.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some(credentials) = &nats.credentials {
        options = options
            .credentials_file(credentials)
            .await
            .with_context(|| format!("reading NATS credentials {}", credentials.display()))?;
    }
    let client = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        options.connect(nats.url.as_str()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connecting to NATS at {}: no answer within 10 s", nats.url))?
    .with_context(|| format!("connecting to NATS at {}", nats.url))?;
    tracing::info!(url = nats.url, "messaging goes through NATS");
    Ok(client)
}

/// The NATS client reports every message it drops for a full subscription;
/// this logs the first drop of each subscription and then only at 2, 4, 8,
/// … drops, so a flood does not become a flood of log lines.
#[derive(Default)]
struct SlowConsumers {
    drops: Mutex<BTreeMap<u64, u64>>,
}

impl SlowConsumers {
    fn dropped(&self, sid: u64) {
        let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        let count = drops.entry(sid).or_default();
        *count += 1;
        if count.is_power_of_two() {
            tracing::warn!(
                subscription = sid,
                dropped = *count,
                "NATS slow consumer: a subscription holds as much unread as it may; \
                 messages to it are dropped"
            );
        }
    }
}
