//! The host side of the protocol on NATS: requests on
//! `runtime.host.<id>.>`, each served on a task of its own (a slow pull
//! delays neither heartbeats nor other requests), and a heartbeat on
//! `runtime.operator.heartbeat.<id>` at start and every interval.

use super::heartbeat::{Beats, Figures, Identity};
use super::messages::{
    HostHeartbeat, WireState, Workload, WorkloadResponse, WorkloadStartRequest,
    WorkloadStatusRequest, WorkloadStopRequest,
};
use super::translate::{self, Settings};
use crate::error::Error;
use crate::host::Host;
use crate::oci::{PullPolicy, PullSettings};
use crate::spec::{ComponentSource, WorkloadId, WorkloadState};
use anyhow::{Context, Result};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A keel [`Host`] serving the operator protocol over its NATS connection.
pub struct FleetHost {
    host: Arc<Host>,
    client: async_nats::Client,
    identity: Identity,
    beats: Beats,
    settings: Settings,
    /// What the host serves, read once: the plugin set's lock may be held
    /// for seconds while a workload links, and a heartbeat must not wait.
    exports: Vec<String>,
    /// By the operator's workload id.
    workloads: Mutex<BTreeMap<String, Entry>>,
}

/// A workload the operator started here.
#[derive(Debug, Default)]
struct Entry {
    /// Its keel id, once translated.
    keel: Option<WorkloadId>,
    /// Its components.
    components: u64,
    /// Its `emptyDir` folders.
    empty_dirs: Vec<PathBuf>,
    /// Whether its start is still under way.
    starting: bool,
    /// Whether a stop came while it was starting: the start undoes itself.
    stop_requested: bool,
}

impl FleetHost {
    /// Serves `host` under `identity` over `client` (the host's own NATS
    /// connection). The host's plugins are all added by now: heartbeats
    /// list their exports as they are at this call.
    pub fn new(
        host: Arc<Host>,
        client: async_nats::Client,
        identity: Identity,
        settings: Settings,
    ) -> FleetHost {
        let mut exports = host.plugin_exports();
        exports.push("wasi:http/incoming-handler@0.2.0".to_string());
        exports.push("wasi:http/outgoing-handler@0.2.0".to_string());
        FleetHost {
            host,
            client,
            identity,
            beats: Beats::default(),
            settings,
            exports,
            workloads: Mutex::new(BTreeMap::new()),
        }
    }

    /// The host's id.
    pub fn id(&self) -> &str {
        &self.identity.id
    }

    /// Answers requests and publishes heartbeats every `interval` until
    /// `shutdown` completes. Requests are subscribed to before the first
    /// heartbeat goes out, so an operator that saw it can ask at once.
    pub async fn serve(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let subject = format!("runtime.host.{}.>", self.identity.id);
        let mut requests = self
            .client
            .subscribe(subject.clone())
            .await
            .with_context(|| format!("subscribing to {subject}"))?;
        tracing::info!(
            host_id = self.identity.id,
            friendly_name = self.identity.friendly_name,
            "serving the wasmCloud host protocol on {subject}"
        );
        self.publish_heartbeat().await;
        let start = tokio::time::Instant::now() + interval;
        let mut ticks = tokio::time::interval_at(start, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                message = requests.next() => {
                    let Some(message) = message else {
                        anyhow::bail!("the subscription to {subject} ended");
                    };
                    let me = self.clone();
                    tokio::spawn(async move { me.handle(message).await });
                }
                _ = ticks.tick() => {
                    let me = self.clone();
                    tokio::spawn(async move { me.publish_heartbeat().await });
                }
                () = &mut shutdown => break,
            }
        }
        // No new requests; the caller shuts the host down.
        let _ = requests.unsubscribe().await;
        Ok(())
    }

    /// Removes the `emptyDir` folders of every workload (after the host
    /// has stopped them).
    pub fn remove_scratch(&self) {
        let entries = std::mem::take(&mut *self.lock());
        for entry in entries.values() {
            remove_dirs(&entry.empty_dirs);
        }
        // The host's own folder, once empty.
        let _ = std::fs::remove_dir(&self.settings.scratch_dir);
    }

    /// The heartbeat now.
    pub fn heartbeat(&self) -> HostHeartbeat {
        let (workloads, components) = {
            let entries = self.lock();
            let running = entries.values().filter(|e| !e.starting);
            running.fold((0, 0), |(w, c), e| (w + 1, c + e.components))
        };
        let figures = Figures {
            workloads,
            components,
            exports: self.exports.clone(),
            http_port: self.host.http_addr().map_or(0, |a| a.port()),
        };
        self.beats.beat(&self.identity, figures)
    }

    async fn publish_heartbeat(&self) {
        let subject = format!("runtime.operator.heartbeat.{}", self.identity.id);
        let beat = self.heartbeat();
        match serde_json::to_vec(&beat) {
            Ok(body) => {
                if let Err(e) = self.client.publish(subject, body.into()).await {
                    tracing::warn!("publishing the heartbeat: {e}");
                }
            }
            Err(e) => tracing::warn!("encoding the heartbeat: {e}"),
        }
    }

    /// Serves one request and replies; a request without a reply subject
    /// or of an unknown command gets nothing, as wasmCloud hosts do.
    async fn handle(&self, message: async_nats::Message) {
        let command = message.subject.splitn(4, '.').nth(3).unwrap_or_default();
        let Some(reply) = message.reply.clone() else {
            tracing::warn!(command, "a host request without a reply subject: ignored");
            return;
        };
        let body = match command {
            "heartbeat" => serde_json::to_vec(&self.heartbeat()),
            "workload.start" => serde_json::to_vec(&self.start(&message.payload).await),
            "workload.status" => serde_json::to_vec(&self.status(&message.payload)),
            "workload.stop" => serde_json::to_vec(&self.stop(&message.payload).await),
            other => {
                tracing::warn!(command = other, "unknown host request: not answered");
                return;
            }
        };
        match body {
            Ok(body) => {
                if let Err(e) = self.client.publish(reply, body.into()).await {
                    tracing::warn!(command, "replying: {e}");
                }
            }
            Err(e) => tracing::warn!(command, "encoding the reply: {e}"),
        }
    }

    /// `workload.start`: replies once the workload runs or has failed.
    async fn start(&self, payload: &[u8]) -> WorkloadResponse {
        let request: WorkloadStartRequest = match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(e) => return undecodable(payload, "WorkloadStartRequest", &e),
        };
        let uid = request.workload_id;
        let Some(workload) = request.workload.filter(|_| !uid.is_empty()) else {
            return error(&uid, "workloadId and workload are required");
        };
        {
            let mut entries = self.lock();
            if entries.contains_key(&uid) {
                // wasmCloud's answer: the operator retries starts after a
                // transport error, and the running workload stays.
                let message = format!(
                    "Workload ID [{uid}] already exists (the existing workload must be stopped \
                     to reuse the ID)"
                );
                tracing::warn!(workload_id = uid, "{message}");
                return error(&uid, message);
            }
            entries.insert(
                uid.clone(),
                Entry {
                    starting: true,
                    ..Entry::default()
                },
            );
        }
        tracing::info!(
            workload_id = uid,
            namespace = workload.namespace,
            name = workload.name,
            "starting workload"
        );
        let outcome = self.start_reserved(&uid, &workload).await;
        let failure = {
            let mut entries = self.lock();
            let entry = entries.get_mut(&uid);
            let stop_requested = entry.as_ref().is_some_and(|e| e.stop_requested);
            match outcome {
                Ok(()) if !stop_requested => {
                    if let Some(entry) = entry {
                        entry.starting = false;
                    }
                    None
                }
                Ok(()) => Some("stopped while it was starting".to_string()),
                Err(message) => Some(message),
            }
        };
        let Some(message) = failure else {
            tracing::info!(workload_id = uid, "workload running");
            return WorkloadResponse::new(&uid, WireState::Running, "Workload is running");
        };
        tracing::error!(
            workload_id = uid,
            reason = message,
            "failed to start workload"
        );
        // The id stays reserved until what the start left is gone, and the
        // reply waits for it too: a retry finds nothing of this attempt.
        let (keel, empty_dirs) = self
            .lock()
            .get(&uid)
            .map(|e| (e.keel.clone(), e.empty_dirs.clone()))
            .unwrap_or_default();
        self.undo(keel.as_ref(), &empty_dirs).await;
        self.lock().remove(&uid);
        error(&uid, message)
    }

    /// Translates, pulls and starts the workload reserved under `uid`,
    /// recording what must be undone in its entry as it goes.
    async fn start_reserved(&self, uid: &str, workload: &Workload) -> Result<(), String> {
        let translation =
            translate::translate(uid, workload, &self.settings).map_err(|r| r.to_string())?;
        if let Some(entry) = self.lock().get_mut(uid) {
            let service = u64::from(translation.spec.service.is_some());
            entry.components = translation.spec.components.len() as u64 + service;
            entry.empty_dirs = translation.empty_dirs.clone();
        }
        for dir in &translation.empty_dirs {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("creating the emptyDir folder {}: {e}", dir.display()))?;
        }
        let mut spec = translation.spec;
        for (i, (component, pull)) in spec
            .components
            .iter_mut()
            .zip(&translation.pulls)
            .enumerate()
        {
            self.pull(&mut component.source, pull)
                .await
                .map_err(|e| format!("workload.witWorld.components[{i}].image: {e}"))?;
        }
        if let (Some(service), Some(pull)) = (&mut spec.service, &translation.service_pull) {
            self.pull(&mut service.component.source, pull)
                .await
                .map_err(|e| format!("workload.service.image: {e}"))?;
        }
        // From here on the keel id may be this workload's: what `undo`
        // stops and removes. Not before: another operator id may hold it.
        if let Some(entry) = self.lock().get_mut(uid) {
            entry.keel = Some(spec.id.clone());
        }
        match self.host.start_workload(spec).await {
            Ok(_) => Ok(()),
            // Refused before it took the id: nothing of it is listed, and
            // the id may be another workload's.
            Err(
                e @ (Error::AlreadyExists { .. } | Error::HostTaken { .. } | Error::InvalidSpec(_)),
            ) => {
                if let Some(entry) = self.lock().get_mut(uid) {
                    entry.keel = None;
                }
                Err(e.to_string())
            }
            // Listed in state error: `undo` removes it.
            Err(e) => Err(format!("{e:#}")),
        }
    }

    /// Pulls the component `source` names, when it is an OCI reference,
    /// under the workload's `pull` settings.
    async fn pull(&self, source: &mut ComponentSource, pull: &PullSettings) -> anyhow::Result<()> {
        let ComponentSource::Oci(oci) = source else {
            return Ok(());
        };
        let registry = self.host.registry();
        // A long-running host under `--pull always` asks the registry at
        // every start, not once for its whole life.
        let mut pull = pull.clone();
        if registry.options().policy == PullPolicy::Always {
            pull.policy.get_or_insert(PullPolicy::Always);
        }
        let resolved = registry.resolve_with(&oci.reference, &pull).await?;
        oci.pulled = Some((resolved.artifact.manifest_digest, resolved.artifact.bytes));
        Ok(())
    }

    /// Frees what a workload that failed to start held: the keel workload
    /// `keel` (stopped and removed) and its `emptyDir` folders.
    async fn undo(&self, keel: Option<&WorkloadId>, empty_dirs: &[PathBuf]) {
        if let Some(id) = keel {
            let _ = self.host.stop_workload(id).await;
            let _ = self.host.remove_workload(id).await;
        }
        remove_dirs(empty_dirs);
    }

    /// `workload.status`.
    fn status(&self, payload: &[u8]) -> WorkloadResponse {
        let request: WorkloadStatusRequest = match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(e) => return undecodable(payload, "WorkloadStatusRequest", &e),
        };
        let uid = request.workload_id;
        let keel = match self.lock().get(&uid) {
            None => {
                return WorkloadResponse::new(
                    &uid,
                    WireState::NotFound,
                    format!("Workload not found: {uid}"),
                );
            }
            Some(entry) if entry.starting => {
                return WorkloadResponse::new(&uid, WireState::Starting, "Workload is starting");
            }
            Some(entry) => entry.keel.clone(),
        };
        let state = keel.and_then(|id| self.host.status(&id)).map(|s| s.state);
        let (state, message) = match state {
            Some(WorkloadState::Starting) => (WireState::Starting, "Workload is starting".into()),
            Some(WorkloadState::Running) => (WireState::Running, "Workload is running".into()),
            Some(WorkloadState::Stopping | WorkloadState::Stopped) => {
                (WireState::Stopping, "Workload is stopping".into())
            }
            Some(WorkloadState::Completed) => {
                (WireState::Completed, "Workload has completed".into())
            }
            Some(WorkloadState::Error(message)) => (WireState::Error, message),
            None => (WireState::NotFound, format!("Workload not found: {uid}")),
        };
        WorkloadResponse::new(&uid, state, message)
    }

    /// `workload.stop`: replies once the workload has stopped (its
    /// in-flight invocations finished) and is forgotten. An unknown id is
    /// NOT_FOUND, not an error.
    async fn stop(&self, payload: &[u8]) -> WorkloadResponse {
        let request: WorkloadStopRequest = match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(e) => return undecodable(payload, "WorkloadStopRequest", &e),
        };
        let uid = request.workload_id;
        let entry = {
            let mut entries = self.lock();
            match entries.get_mut(&uid) {
                None => {
                    return WorkloadResponse::new(&uid, WireState::NotFound, "Workload not found");
                }
                Some(entry) if entry.starting => {
                    entry.stop_requested = true;
                    return WorkloadResponse::new(
                        &uid,
                        WireState::Stopping,
                        "Workload is starting; it stops once its start ends",
                    );
                }
                Some(_) => entries.remove(&uid).unwrap_or_default(),
            }
        };
        tracing::info!(workload_id = uid, "stopping workload");
        if let Some(id) = &entry.keel {
            let _ = self.host.stop_workload(id).await;
            if let Err(e) = self.host.remove_workload(id).await {
                tracing::warn!(workload_id = uid, "removing the stopped workload: {e}");
            }
        }
        remove_dirs(&entry.empty_dirs);
        WorkloadResponse::new(&uid, WireState::Stopping, "Workload stopped successfully")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.workloads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn error(uid: &str, message: impl Into<String>) -> WorkloadResponse {
    WorkloadResponse::new(uid, WireState::Error, message)
}

/// The ERROR reply to a request keel could not read: with its
/// `workloadId` when that much can be read, and serde's reason (which
/// names an unknown field).
fn undecodable(payload: &[u8], kind: &str, e: &serde_json::Error) -> WorkloadResponse {
    let uid = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            let id = v.get("workloadId").or_else(|| v.get("workload_id"))?;
            id.as_str().map(str::to_string)
        })
        .unwrap_or_default();
    tracing::warn!(workload_id = uid, "an invalid {kind}: {e}");
    error(&uid, format!("invalid {kind}: {e}"))
}

/// Removes `emptyDir` folders, and their workload's folder when that is
/// left empty.
fn remove_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = std::fs::remove_dir_all(dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing the emptyDir folder {}: {e}", dir.display());
        }
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
