//! One invocation's world: the Store data a guest instance runs with (WASI
//! context, HTTP context, resource table, limits) and how a fresh Store is
//! made for each request or message.

use super::limits::GuestLimiter;
use super::stdio::{GuestLog, OutputRate, Stream};
use crate::budget::{MemoryBudget, StoreMemory};
use crate::core_api::broker::Broker;
use crate::engine::KeelEngine;
use crate::http::outgoing::OutgoingHooks;
use crate::http::resolve::Resolver;
use crate::manifest::{ComponentSpec, WorkloadSpec};
use crate::plugins::identity::bindings::keel::core::messaging as messaging_api;
use crate::plugins::identity::{
    Caller, WorkloadIdentity, bindings::keel::core::identity as identity_api, identity_of,
};
use crate::plugins::shared::in_flight::InFlight;
use crate::plugins::shared::proxy::ProxyTable;
use crate::plugins::shared::typed::TypedForwarders;
use crate::policy::authority::OutgoingAllowlist;
use crate::policy::grants::SubjectGrants;
use crate::policy::sockets::SocketAllowlist;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of one invocation's [`Store`].
///
/// Shared plugins run on the same type: a plugin call is an invocation too,
/// with the calling workload as its identity (set per call) and the plugin's
/// own grants in its WASI and HTTP contexts.
pub struct InvocationState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingHooks,
    limiter: GuestLimiter,
    deadline_hit: bool,
    /// When the invocation must end; for a shared plugin, the deadline of
    /// the call it is serving.
    deadline: Option<Instant>,
    identity: Arc<WorkloadIdentity>,
    broker: Broker,
    subjects: Arc<SubjectGrants>,
    /// Shared-plugin resources this instance holds.
    pub(crate) proxies: ProxyTable,
    /// The typed forwarders of the component's shared plugins.
    pub(crate) typed: TypedForwarders,
    /// Set while a call of this invocation runs in an async shared plugin.
    in_flight: InFlight,
}

impl InvocationState {
    /// State for a guest with WASI context `wasi`, outgoing HTTP `hooks`,
    /// memory bounded by `limiter`, acting as `identity`, reaching `broker`
    /// and, through `keel:core/nats`, the `subjects` granted. Built by
    /// [`GuestStore::build`].
    fn new(
        wasi: WasiCtx,
        hooks: OutgoingHooks,
        limiter: GuestLimiter,
        identity: Arc<WorkloadIdentity>,
        broker: Broker,
        subjects: Arc<SubjectGrants>,
    ) -> Self {
        InvocationState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            limiter,
            deadline_hit: false,
            deadline: None,
            identity,
            broker,
            subjects,
            proxies: ProxyTable::default(),
            typed: TypedForwarders::default(),
            in_flight: InFlight::default(),
        }
    }

    /// Serves `caller` from now on (a shared plugin, per call): acts as its
    /// identity. The plugin sets its own deadline per call
    /// ([`serve_until`](Self::serve_until)), not the caller's.
    pub fn serve(&mut self, caller: Caller<'_>) {
        if !Arc::ptr_eq(&self.identity, caller.identity) {
            self.identity = caller.identity.clone();
        }
    }

    /// This invocation as the caller of a shared plugin.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            identity: &self.identity,
            deadline: self.deadline,
            in_flight: Some(&self.in_flight),
        }
    }

    /// The marker of a call of this invocation under way in an async shared
    /// plugin: what ends the invocation at its deadline uses it (see
    /// [`InFlight::until`]).
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Ends by `deadline` from now on (`None`: no deadline of its own).
    pub fn serve_until(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// When the invocation must end, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The memory limiter, for `Store::limiter`.
    pub fn limiter(&mut self) -> &mut GuestLimiter {
        &mut self.limiter
    }

    /// Whether the invocation ran past its deadline.
    pub fn deadline_hit(&self) -> bool {
        self.deadline_hit
    }

    /// The workload and component this invocation runs for.
    pub fn identity(&self) -> &Arc<WorkloadIdentity> {
        &self.identity
    }

    /// The host's message broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The NATS subjects granted to the plugins this Store runs.
    pub fn subjects(&self) -> &SubjectGrants {
        &self.subjects
    }

    /// The Store's resource table.
    pub fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Bytes of linear memory the guest holds.
    pub fn memory_used(&self) -> usize {
        self.limiter.memory_used()
    }

    /// Whether the guest asked for more memory than its limit.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.hit_memory_limit()
    }

    /// Whether the guest's growth was refused because its workload's (or
    /// the host's) memory budget was spent by invocations running at once.
    pub fn memory_budget_hit(&self) -> bool {
        self.limiter.hit_budget()
    }

    /// The memory the guest's linear memory and its host pipes share.
    pub fn store_memory(&self) -> &Arc<StoreMemory> {
        self.limiter.memory()
    }
}

/// The caller: the workload itself for composed plugins (they run in its
/// Store), the calling workload for a shared plugin (set per call).
impl identity_api::Host for InvocationState {
    fn caller(&mut self) -> WorkloadIdentity {
        (*self.identity).clone()
    }
}

/// Plugins publish and request as their caller, in its namespace.
impl messaging_api::Host for InvocationState {
    async fn publish(
        &mut self,
        message: messaging_api::Message,
    ) -> Result<(), messaging_api::Error> {
        crate::core_api::messaging::publish(&self.broker, &self.identity.namespace, message).await
    }

    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<messaging_api::Message, messaging_api::Error> {
        crate::core_api::messaging::request(
            &self.broker,
            &self.identity.namespace,
            subject,
            body,
            timeout_ms,
        )
        .await
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The error an invocation ends with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the invocation ran past its {0:?} deadline")]
pub struct DeadlineExceeded(pub Duration);

/// Everything needed to make a Store for one component of a workload, worked
/// out once when the workload starts.
#[derive(Debug, Clone)]
pub struct InvocationTemplate {
    workload: String,
    component: String,
    env: Vec<(String, String)>,
    volumes: Vec<crate::manifest::VolumeSpec>,
    sockets: Arc<SocketAllowlist>,
    name_lookup: bool,
    outgoing: Arc<OutgoingAllowlist>,
    resolver: Resolver,
    memory: usize,
    memory_budget: Arc<MemoryBudget>,
    timeout: Duration,
    identity: Arc<WorkloadIdentity>,
    broker: Broker,
    subjects: Arc<SubjectGrants>,
    typed: TypedForwarders,
    /// The log rate of the workload's guests, shared by all its Stores.
    output: Arc<OutputRate>,
}

impl InvocationTemplate {
    /// The template for `component` of `workload`, whose composed plugins
    /// are granted `subjects`, and whose instances draw their memory from
    /// the workload's `memory_budget`.
    pub fn new(
        workload: &WorkloadSpec,
        component: &ComponentSpec,
        broker: &Broker,
        subjects: Arc<SubjectGrants>,
        memory_budget: Arc<MemoryBudget>,
    ) -> Result<InvocationTemplate> {
        let outgoing =
            OutgoingAllowlist::parse(&workload.http.outgoing, workload.http.block_private)
                .map_err(anyhow::Error::msg)?;
        Ok(InvocationTemplate {
            workload: workload.id.to_string(),
            component: component.name.clone(),
            env: workload
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            volumes: workload.volumes.clone(),
            sockets: Arc::new(
                SocketAllowlist::parse(&workload.sockets.allow, &workload.sockets.listen)
                    .map_err(anyhow::Error::msg)?,
            ),
            name_lookup: workload.sockets.name_lookup,
            outgoing: Arc::new(outgoing),
            resolver: Resolver::system(),
            memory: workload.limits.memory.as_usize(),
            memory_budget,
            timeout: workload.limits.timeout,
            identity: Arc::new(identity_of(&workload.id, &component.name)),
            broker: broker.clone(),
            subjects,
            typed: TypedForwarders::default(),
            output: super::stdio::log_rate(workload.limits.log_rate.0),
        })
    }

    /// Stores made from this template log within `output`, a rate the
    /// workload's other components share.
    pub fn with_output(mut self, output: Arc<OutputRate>) -> InvocationTemplate {
        self.output = output;
        self
    }

    /// Stores made from this template resolve the hosts of outgoing HTTP
    /// requests with `resolver`.
    pub fn with_resolver(mut self, resolver: Resolver) -> InvocationTemplate {
        self.resolver = resolver;
        self
    }

    /// Stores made from this template carry calls to shared plugins through
    /// `typed` where it has a forwarder.
    pub fn with_typed(mut self, typed: TypedForwarders) -> InvocationTemplate {
        self.typed = typed;
        self
    }

    /// The per-invocation time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A fresh Store: WASI from the manifest, memory limit, and an epoch
    /// deadline that yields to the runtime every tick (so a spinning guest
    /// never holds a worker thread) and ends the invocation once
    /// `timeout` has passed.
    pub fn new_store(&self, engine: &KeelEngine) -> Result<Store<InvocationState>> {
        let mut store = GuestStore {
            label: &self.workload,
            component: &self.component,
            output: self.output.clone(),
            env: &self.env,
            volumes: &self.volumes,
            sockets: &self.sockets,
            name_lookup: self.name_lookup,
            outgoing: OutgoingHooks::new(
                &self.workload,
                self.outgoing.clone(),
                self.resolver.clone(),
            ),
            memory: self.memory,
            memory_budget: Some(self.memory_budget.clone()),
            identity: self.identity.clone(),
            broker: self.broker.clone(),
            subjects: self.subjects.clone(),
        }
        .build(engine.engine())?;
        store.data_mut().typed = self.typed.clone();
        let deadline = Instant::now() + self.timeout;
        store.data_mut().deadline = Some(deadline);
        let timeout = self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            if Instant::now() >= deadline {
                cx.data_mut().deadline_hit = true;
                return Err(wasmtime::Error::new(DeadlineExceeded(timeout)));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(store)
    }

    /// `namespace/name` of the workload, for log lines.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The component's name, for log lines.
    pub fn component(&self) -> &str {
        &self.component
    }
}

/// What a guest's Store is made of, for a workload's invocation and a
/// shared plugin's instance alike: the one place that wires WASI (stdio,
/// environment, volumes, sockets), outgoing HTTP, the memory limiter and
/// the `keel:core` state. Each caller then sets its own deadline policy.
pub(crate) struct GuestStore<'a> {
    /// Who runs, in log lines: the workload (`ns/name`) or `plugin:<name>`.
    pub label: &'a str,
    /// The component, in log lines.
    pub component: &'a str,
    /// How much the guest may log.
    pub output: Arc<OutputRate>,
    /// Its environment variables.
    pub env: &'a [(String, String)],
    /// Host folders it sees.
    pub volumes: &'a [crate::manifest::VolumeSpec],
    /// The sockets it may use.
    pub sockets: &'a Arc<SocketAllowlist>,
    /// Whether it may resolve host names.
    pub name_lookup: bool,
    /// Its outgoing HTTP allowlist.
    pub outgoing: OutgoingHooks,
    /// Linear memory and host buffers it may hold.
    pub memory: usize,
    /// The shared budget its memory is also drawn from, if any.
    pub memory_budget: Option<Arc<MemoryBudget>>,
    /// Whom it acts for.
    pub identity: Arc<WorkloadIdentity>,
    /// Where `keel:core/messaging` goes.
    pub broker: Broker,
    /// The subjects `keel:core/nats` lets it use.
    pub subjects: Arc<SubjectGrants>,
}

impl GuestStore<'_> {
    /// The Store, with its memory limiter installed.
    pub(crate) fn build(self, engine: &wasmtime::Engine) -> Result<Store<InvocationState>> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(self.env)
            .stdout(GuestLog::new(
                self.label,
                self.component,
                Stream::Stdout,
                self.output.clone(),
            ))
            .stderr(GuestLog::new(
                self.label,
                self.component,
                Stream::Stderr,
                self.output,
            ))
            .allow_ip_name_lookup(self.name_lookup);
        for volume in self.volumes {
            let perms = if volume.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&volume.host, &volume.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("opening volume {}", volume.host.display()))?;
        }
        grant_sockets(&mut wasi, self.sockets);
        let state = InvocationState::new(
            wasi.build(),
            self.outgoing,
            GuestLimiter::new(self.memory, self.memory_budget),
            self.identity,
            self.broker,
            self.subjects,
        );
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        Ok(store)
    }
}

/// A linker with what every guest Store gets: WASI P2, `wasi:http`, and the
/// `keel:core` plugin interfaces (a workload's own imports of `keel:core` are
/// refused before linking, so only its composed plugins reach them).
pub fn core_linker(
    engine: &wasmtime::Engine,
) -> Result<wasmtime::component::Linker<InvocationState>> {
    use crate::plugins::identity::bindings::keel::core::{identity, messaging, nats, pipe};
    type Data = wasmtime::component::HasSelf<InvocationState>;
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    identity::add_to_linker::<InvocationState, Data>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/identity")?;
    messaging::add_to_linker::<InvocationState, Data>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/messaging")?;
    nats::add_to_linker::<InvocationState, Data>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/nats")?;
    pipe::add_to_linker::<InvocationState, Data>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/pipe")?;
    Ok(linker)
}

/// Lets the guest of `wasi` use the sockets `allow` grants, and nothing
/// else (no sockets at all when it grants none).
pub(crate) fn grant_sockets(
    wasi: &mut wasmtime_wasi::WasiCtxBuilder,
    allow: &Arc<SocketAllowlist>,
) {
    use crate::policy::sockets::SocketUse;
    use wasmtime_wasi::sockets::SocketAddrUse;
    if allow.is_empty() {
        return;
    }
    let allow = allow.clone();
    wasi.allow_tcp(true)
        .allow_udp(true)
        .socket_addr_check(move |addr, usage| {
            let usage = match usage {
                SocketAddrUse::TcpBind => SocketUse::TcpBind,
                SocketAddrUse::TcpListen => SocketUse::TcpListen,
                SocketAddrUse::TcpAccept => SocketUse::TcpAccept,
                SocketAddrUse::TcpConnect => SocketUse::TcpConnect,
                SocketAddrUse::UdpBind => SocketUse::UdpBind,
                SocketAddrUse::UdpSend => SocketUse::UdpSend,
                SocketAddrUse::UdpReceive => SocketUse::UdpReceive,
            };
            let ok = allow.allows(&addr, usage);
            Box::pin(async move { ok })
        });
}
