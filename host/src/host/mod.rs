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

mod builder;
mod nats;

pub use builder::HostBuilder;

use crate::cache::CacheStats;
use crate::core_api::broker::Broker;
use crate::engine::KeelEngine;
use crate::error::Error;
use crate::http::body::{ResponseBody, boxed_request_body};
use crate::http::{Ingress, Router, handler};
use crate::oci::Registry;
use crate::services::Services;
use crate::spec::{ComponentSource, PluginSpec, WorkloadId, WorkloadSpec};
use crate::spec::{WorkloadState, WorkloadStatus};
use crate::workload::Workload;
use anyhow::Result;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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

    /// The engine shared by all workloads (for keel's own tests).
    #[doc(hidden)]
    pub fn engine(&self) -> &KeelEngine {
        &self.services.engine
    }

    /// The host's turns on the CPU: how many CPU-bound invocations run at
    /// once host-wide, and how many wait (for keel's own tests).
    #[doc(hidden)]
    pub fn cpu(&self) -> &crate::store::cpu::CpuGate {
        &self.services.cpu
    }

    /// Where `keel:core/messaging` goes: the in-process bus, or NATS (for
    /// keel's own tests).
    #[doc(hidden)]
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
        let mut plugins = self.services.plugins();
        if let Err(e) = plugins.load_builtins() {
            tracing::warn!(error = format!("{e:#}"), "reading the built-in plugins");
        }
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
    /// (`pool_instances` of [`EngineOptions`](crate::EngineOptions), less the
    /// shared plugins' reserve) is
    /// refused too. Components named by OCI references are pulled first
    /// ([`Host::registry`]); a pull that fails is [`Error::Pull`] and lists
    /// nothing. On any later failure to start the workload stays listed in
    /// state `Error`.
    pub async fn start_workload(&self, mut spec: WorkloadSpec) -> Result<WorkloadId, Error> {
        spec.validate()?;
        for component in &mut spec.components {
            self.pull(&mut component.source).await?;
        }
        if let Some(service) = &mut spec.service {
            self.pull(&mut service.component.source).await?;
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
        Ok(self.registry.fill(source).await?)
    }

    fn lock_workloads(&self) -> std::sync::MutexGuard<'_, BTreeMap<WorkloadId, Arc<Workload>>> {
        self.workloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_ingress(&self) -> std::sync::MutexGuard<'_, Option<Ingress>> {
        self.ingress.lock().unwrap_or_else(|p| p.into_inner())
    }
}
