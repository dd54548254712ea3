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

use crate::budget::MemoryBudget;
use crate::cache::{CacheStats, ComponentCache};
use crate::core_api::broker::{Broker, NatsConnection};
use crate::core_api::bus::{Bus, BusOptions};
use crate::core_api::pending::PendingLimits;
use crate::core_api::stream_cap::StreamCap;
use crate::engine::{EngineOptions, KeelEngine};
use crate::error::Error;
use crate::http::body::{ResponseBody, boxed_request_body};
use crate::http::{Ingress, IngressOptions, Router, handler};
use crate::oci::{OciOptions, Registry};
use crate::outgoing::Resolver;
use crate::plugins::PluginSet;
use crate::services::Services;
use crate::spec::{ByteSize, ComponentSource, NatsSpec, PluginSpec, WorkloadId, WorkloadSpec};
use crate::spec::{WorkloadState, WorkloadStatus};
use crate::workload::Workload;
use anyhow::Result;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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
    /// See [`StreamCap`] for how streams are counted.
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

/// A running host.
///
/// It must run on a multi-thread Tokio runtime: guests run on tasks of
/// their own, compilation on blocking threads, and a synchronous plugin
/// call that finds its plugin busy parks its thread with `block_in_place`.
pub struct Host {
    services: Arc<Services>,
    registry: Registry,
    router: Arc<Router>,
    workloads: Mutex<BTreeMap<WorkloadId, Arc<Workload>>>,
    /// Held while a workload takes an id and while one is removed, so that
    /// a start never meets the plugin instances of a removal half done.
    lifecycle: tokio::sync::Mutex<()>,
    ingress: Mutex<Option<Ingress>>,
    shutdown_timeout: std::time::Duration,
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

    /// HTTP connections open now (`None` without an ingress).
    pub fn http_connections(&self) -> Option<usize> {
        self.lock_ingress().as_ref().map(Ingress::open_connections)
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

    /// Where `oci://` references are pulled from and kept.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Offers a plugin to the workloads started after this call, once its
    /// declaration passes [`PluginSpec::validate`]. A plugin named by an
    /// OCI reference is pulled first.
    pub async fn add_plugin(&self, mut spec: PluginSpec) -> Result<(), Error> {
        spec.validate()?;
        if let Some(source) = &mut spec.source {
            self.pull(source).await?;
        }
        let services = self.services.clone();
        let name = spec.name.clone();
        tokio::task::spawn_blocking(move || services.plugins().add(spec))
            .await
            .map_err(anyhow::Error::from)??;
        tracing::info!(plugin = name, "plugin registered");
        Ok(())
    }

    /// The interfaces the host's plugins export (`ns:pkg/iface@version`),
    /// each once, in name order: what the host can serve its workloads
    /// beyond WASI.
    pub fn plugin_exports(&self) -> Vec<String> {
        let plugins = self.services.plugins();
        let names: std::collections::BTreeSet<String> = plugins
            .iter()
            .flat_map(|p| p.info.exports.iter().map(|e| e.name.clone()))
            .collect();
        names.into_iter().collect()
    }

    /// How many times the shared instances of plugin `name` restarted after
    /// a trap or a call past its time limit (each restart lost the state of
    /// the workloads that instance served).
    pub fn shared_plugin_restarts(&self, name: &str) -> u64 {
        self.services.plugins().shared_restarts(name)
    }

    /// Starts a workload and waits until it runs. The spec is checked first
    /// as strictly as a manifest ([`WorkloadSpec::validate`]). An id that is
    /// starting, running or stopping is refused, and so is an HTTP host
    /// another active workload serves (unless both share host names,
    /// [`HttpSpec::shared`](crate::spec::HttpSpec::shared)); a stopped or failed id is replaced.
    /// A `max_instances` over the host's invocation slots
    /// ([`InstancePool::capacity`](crate::pool::InstancePool::capacity)) is
    /// refused too. Components named by OCI references are pulled first
    /// ([`Host::registry`]); a pull that fails is [`Error::Pull`] and lists
    /// nothing. On any later failure to start the workload stays listed in
    /// state `Error`.
    pub async fn start_workload(&self, mut spec: WorkloadSpec) -> Result<WorkloadId, Error> {
        spec.validate()?;
        for component in &mut spec.components {
            self.pull(&mut component.source).await?;
        }
        spec.limits
            .check_capacity(self.services.engine.pool().capacity())?;
        let id = spec.id.clone();
        let workload = Arc::new(Workload::new(spec));
        {
            let _lifecycle = self.lifecycle.lock().await;
            let mut workloads = self.lock_workloads();
            if let Some(existing) = workloads.get(&id)
                && existing.state().is_active()
            {
                return Err(Error::AlreadyExists {
                    id,
                    state: existing.state(),
                });
            }
            if let Some((host, owner)) = workload.spec().http.names().find_map(|host| {
                let owner = workloads.values().find(|w| {
                    w.id() != &id
                        && w.spec().http.names().any(|h| h == host)
                        && w.state().is_active()
                        && !(w.spec().http.shared && workload.spec().http.shared)
                })?;
                Some((host, owner))
            }) {
                return Err(Error::HostTaken {
                    host: host.clone(),
                    owner: owner.id().clone(),
                });
            }
            workloads.insert(id.clone(), workload.clone());
        }
        self.router.insert(workload.clone());
        workload
            .start(self.services.clone())
            .await
            .map_err(Error::from_start)?;
        let http_host = match (workload.serves_http(), &workload.spec().http.host) {
            (Some(true), Some(host)) => host.as_str(),
            (Some(true), None) => "(default)",
            _ => "(none: it serves no HTTP)",
        };
        tracing::info!(workload = %id, http_host, "workload running");
        Ok(id)
    }

    /// Stops a workload: new invocations get 503, in-flight ones finish.
    pub async fn stop_workload(&self, id: &WorkloadId) -> Result<(), Error> {
        let Some(workload) = self.lock_workloads().get(id).cloned() else {
            return Err(Error::NotFound(id.clone()));
        };
        workload.stop().await;
        tracing::info!(workload = %id, "workload stopped");
        Ok(())
    }

    /// Forgets a stopped or failed workload and frees what it held: its
    /// route, its entry in [`Host::list`], and the instances of its shared
    /// plugins of scope `workload` (their state is gone: a new workload with
    /// the same id starts clean). A workload that is starting, running or
    /// stopping is refused with [`Error::StillActive`]: stop it first.
    pub async fn remove_workload(&self, id: &WorkloadId) -> Result<(), Error> {
        let _lifecycle = self.lifecycle.lock().await;
        let last_of_namespace;
        {
            let mut workloads = self.lock_workloads();
            let Some(workload) = workloads.get(id) else {
                return Err(Error::NotFound(id.clone()));
            };
            let state = workload.state();
            if state.is_active() {
                return Err(Error::StillActive {
                    id: id.clone(),
                    state,
                });
            }
            workloads.remove(id);
            self.router.remove(id);
            // The last workload of its namespace: the namespace's shared
            // instances (and their pool slots and memory) go too.
            last_of_namespace = !workloads.keys().any(|w| w.namespace == id.namespace);
        }
        // The plugin set may be busy linking another workload: wait for it
        // off the async threads.
        let services = self.services.clone();
        let owner = id.clone();
        let released = tokio::task::spawn_blocking(move || {
            let mut plugins = services.plugins();
            let mut released = plugins.release_workload(&owner);
            if last_of_namespace {
                released += plugins.release_namespace(&owner.namespace);
            }
            released
        })
        .await
        .map_err(anyhow::Error::from)?;
        tracing::info!(workload = %id, plugin_instances = released, "workload removed");
        Ok(())
    }

    /// The status of one workload.
    pub fn status(&self, id: &WorkloadId) -> Option<WorkloadStatus> {
        self.lock_workloads().get(id).map(|w| w.status())
    }

    /// The state of workload `id` now and every change from here on, or
    /// `None` if no workload has this id. The channel follows this
    /// workload: it closes (`changed()` fails) once the workload is removed,
    /// or replaced by a new start with its id.
    pub fn watch(&self, id: &WorkloadId) -> Option<watch::Receiver<WorkloadState>> {
        self.lock_workloads().get(id).map(|w| w.watch())
    }

    /// Serves one HTTP request as keel's own listener would: routed by its
    /// Host header, within the workload's limits, answered by a fresh
    /// instance of its component. For mounting keel inside an existing
    /// hyper or axum server; the host needs no listener of its own for it.
    /// Every failure is an HTTP answer (404 for no workload, 503 while it is
    /// not running, 413, 504, …), never an error.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request = request.map(boxed_request_body);
        handler::handle(&self.router, &self.services.engine, request).await
    }

    /// The status of every workload, ordered by id.
    pub fn list(&self) -> Vec<WorkloadStatus> {
        self.lock_workloads().values().map(|w| w.status()).collect()
    }

    /// Stops accepting HTTP connections, lets in-flight requests finish, and
    /// stops every workload, all within the ingress's shutdown timeout: at
    /// that deadline the connections still open are closed, and
    /// invocations still running are left to end at their own deadline.
    pub async fn shutdown(&self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let ingress = self.lock_ingress().take();
        let workloads: Vec<_> = self.lock_workloads().values().cloned().collect();
        // Stopping the workloads first would turn requests already accepted
        // into 503s; the ingress drains them, then the workloads stop.
        if let Some(ingress) = ingress {
            ingress.shutdown().await;
        }
        // A closed connection's invocation, or a message's, may still run.
        let mut stopping = tokio::task::JoinSet::new();
        for workload in workloads {
            stopping.spawn(async move { workload.stop().await });
        }
        let stopped = tokio::time::timeout_at(deadline, async {
            while stopping.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(
                workloads = stopping.len(),
                "workloads with invocations still running at the shutdown deadline: \
                 not waiting for them"
            );
            // They finish stopping in the background.
            stopping.detach_all();
        }
    }

    /// Resolves an `oci://` source to its bytes (from the store or the
    /// registry, once per reference for this host); other sources stay.
    async fn pull(&self, source: &mut ComponentSource) -> Result<(), Error> {
        if let ComponentSource::Oci(oci) = source
            && oci.pulled.is_none()
        {
            let resolved = self.registry.resolve(&oci.reference).await?;
            oci.pulled = Some((resolved.artifact.manifest_digest, resolved.artifact.bytes));
        }
        Ok(())
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
        .subscription_capacity(pending.channel_capacity())
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
    if let Some((cert, key)) = &nats.tls_client {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(credentials) = &nats.credentials {
        options = options
            .credentials_file(credentials)
            .await
            .with_context(|| format!("reading NATS credentials {}", credentials.display()))?;
    }
    let servers = nats.servers().map_err(anyhow::Error::msg)?;
    let client = tokio::time::timeout(std::time::Duration::from_secs(10), options.connect(servers))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to NATS at {}: no answer within 10 s", nats.url))?
        .with_context(|| format!("connecting to NATS at {}", nats.url))?;
    tracing::info!(url = nats.url, "messaging goes through NATS");
    Ok(client)
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
