//! How a fresh Store is made for each request or message of a workload's
//! component: everything worked out once when the workload starts
//! ([`InvocationTemplate`]), then one [`GuestStore`] per invocation with
//! the workload's deadline.

use crate::budget::MemoryBudget;
use crate::core_api::broker::Broker;
use crate::core_api::identity::{WorkloadIdentity, identity_of};
use crate::engine::KeelEngine;
use crate::outgoing::{OutgoingHooks, Resolver};
use crate::plugins::shared::PluginView;
use crate::plugins::shared::forwarders::typed::TypedForwarders;
use crate::policy::authority::OutgoingAllowlist;
use crate::policy::grants::SubjectGrants;
use crate::policy::sockets::SocketAllowlist;
use crate::spec::{ComponentSpec, VolumeSpec, WorkloadSpec};
use crate::store::cpu::{CpuGate, CpuTurn};
use crate::store::stdio::{LogLabels, OutputRate, log_rate};
use crate::store::{GuestStore, InvocationState};
use anyhow::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Store;

/// How long an unbounded run (a service's) may wait for one turn on the
/// CPU: the workload's other invocations never hold a turn that long.
const UNBOUNDED_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// `workload` and `component` for guest log lines, made once.
    labels: LogLabels,
    /// `workload` for outgoing HTTP's log lines, made once.
    workload_label: Arc<str>,
    env: Vec<(String, String)>,
    volumes: Vec<VolumeSpec>,
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
    /// The workload's turns on the CPU, shared by all its Stores.
    cpu: Arc<CpuGate>,
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
        let label = workload.id.to_string();
        Ok(InvocationTemplate {
            labels: LogLabels::new(&label, &component.name),
            workload_label: Arc::from(label.as_str()),
            workload: label,
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
            identity: Arc::new(identity_of(
                &workload.id,
                workload.data_name(),
                &component.name,
            )),
            broker: broker.clone(),
            subjects,
            typed: TypedForwarders::default(),
            output: log_rate(workload.limits.log_rate.0),
            cpu: CpuGate::new(
                workload.limits.max_running(),
                crate::engine::EngineOptions::default().epoch_tick,
                None,
            ),
        })
    }

    /// Stores made from this template log within `output`, a rate the
    /// workload's other components share.
    pub fn with_output(mut self, output: Arc<OutputRate>) -> InvocationTemplate {
        self.output = output;
        self
    }

    /// Stores made from this template take their turns on the CPU from
    /// `cpu`, a gate the workload's other components share.
    pub fn with_cpu(mut self, cpu: Arc<CpuGate>) -> InvocationTemplate {
        self.cpu = cpu;
        self
    }

    /// Stores made from this template reach the ports the workload's
    /// service listens on through `ports`; with `service`, they are the
    /// service's own, binding and listening there (see
    /// [`crate::policy::loopback`]).
    pub fn with_loopback(
        mut self,
        ports: Arc<crate::policy::loopback::Loopback>,
        service: bool,
    ) -> InvocationTemplate {
        self.sockets = Arc::new((*self.sockets).clone().with_loopback(ports, service));
        self
    }

    /// Stores made from this template may grow their linear memory to
    /// `bytes` (a service's own limit, instead of the workload's).
    pub fn with_memory(mut self, bytes: usize) -> InvocationTemplate {
        self.memory = bytes;
        self
    }

    /// The workload's turns on the CPU.
    pub fn cpu(&self) -> &Arc<CpuGate> {
        &self.cpu
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

    /// The memory budget the workload's instances draw from, in flight
    /// and idle.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.memory_budget
    }

    /// Whether the workload's budget (and the host's) has room now for one
    /// more instance at its full memory limit.
    pub fn room_for_an_instance(&self) -> bool {
        self.memory_budget.has_room(self.memory)
    }

    /// The per-invocation time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A fresh Store: WASI from the manifest, memory limit, and the
    /// deadline of one invocation ([`arm`](Self::arm)).
    pub fn new_store(&self, engine: &KeelEngine) -> Result<Store<InvocationState>> {
        let mut store = GuestStore {
            labels: self.labels.clone(),
            output: self.output.clone(),
            env: &self.env,
            volumes: &self.volumes,
            sockets: &self.sockets,
            name_lookup: self.name_lookup,
            outgoing: OutgoingHooks::new(
                self.workload_label.clone(),
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
        if !self.typed.is_empty() {
            store.data_mut().plugin_state().typed = self.typed.clone();
        }
        self.arm(&mut store);
        Ok(store)
    }

    /// Sets the deadline of the invocation about to run in `store` (a
    /// fresh one, or a warm instance's between requests): an epoch
    /// deadline that yields to the runtime every tick (so a spinning guest
    /// never holds a worker thread), takes the next turn on the CPU from
    /// the workload's [`CpuGate`] there, and ends the invocation once its
    /// `timeout` has passed.
    pub fn arm(&self, store: &mut Store<InvocationState>) {
        let deadline = Instant::now() + self.timeout;
        store.data_mut().serve_until(Some(deadline));
        let timeout = self.timeout;
        let turn = CpuTurn::new(self.cpu.clone());
        store.data_mut().set_cpu_turn(Some(turn.clone()));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            if Instant::now() >= deadline {
                cx.data_mut().mark_deadline_hit();
                return Err(wasmtime::Error::new(DeadlineExceeded(timeout)));
            }
            Ok(turn.next(deadline))
        });
    }

    /// Arms `store` for a run with no deadline (a service's): it yields to
    /// the runtime every tick and takes its turns on the CPU from the
    /// workload's [`CpuGate`] like any invocation, but only its memory
    /// limit or a stop ends it.
    pub fn arm_unbounded(&self, store: &mut Store<InvocationState>) {
        store.data_mut().serve_until(None);
        let turn = CpuTurn::new(self.cpu.clone());
        store.data_mut().set_cpu_turn(Some(turn.clone()));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            // A wait for a turn needs some bound: a day, renewed at every
            // tick, is none in practice.
            Ok(turn.next(Instant::now() + UNBOUNDED_WAIT))
        });
    }

    /// Ends the invocation that ran in `store`, which stays alive as a warm
    /// instance: its turn on the CPU goes back to the workload (the
    /// callback holding it is replaced), and a call that would enter it
    /// before [`arm`](Self::arm) is cut at the first tick.
    pub fn disarm(&self, store: &mut Store<InvocationState>) {
        store.data_mut().serve_until(None);
        store.data_mut().set_cpu_turn(None);
        store.epoch_deadline_callback(|_| {
            Err(wasmtime::Error::msg(
                "no invocation is under way in this instance",
            ))
        });
    }

    /// Waits, when the workload's turns on the CPU are all taken, for a
    /// turn to start the invocation armed in `store` on (see
    /// [`CpuTurn::before_start`]); past `deadline`, the invocation ends at
    /// its first check.
    pub async fn wait_for_turn(&self, store: &mut Store<InvocationState>) {
        let Some(deadline) = store.data().deadline() else {
            return;
        };
        let Some(wait) = store
            .data()
            .cpu_turn()
            .and_then(|turn| turn.before_start(deadline))
        else {
            return;
        };
        wait.await;
        if Instant::now() >= deadline {
            store.set_epoch_deadline(0);
        }
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
