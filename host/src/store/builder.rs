//! The one Store builder: what every guest Store is made of, for a
//! workload's invocation and a shared plugin's instance alike, and the
//! linker every guest Store gets.

use super::limits::GuestLimiter;
use super::state::InvocationState;
use super::stdio::{GuestLog, LogLabels, OutputRate, Stream};
use crate::budget::MemoryBudget;
use crate::core_api::CoreCtx;
use crate::core_api::broker::Broker;
use crate::core_api::identity::WorkloadIdentity;
use crate::outgoing::OutgoingHooks;
use crate::policy::grants::SubjectGrants;
use crate::policy::sockets::SocketAllowlist;
use crate::spec::VolumeSpec;
use anyhow::{Context, Result};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime_wasi::{FsPerms, WasiCtx};

/// What a guest's Store is made of, for a workload's invocation and a
/// shared plugin's instance alike: the one place that wires WASI (stdio,
/// environment, volumes, sockets), outgoing HTTP, the memory limiter and
/// the `keel:core` state. Each caller then sets its own deadline policy.
pub struct GuestStore<'a> {
    /// Who runs, in its log lines: the workload (`ns/name`) or
    /// `plugin:<name>`, and the component.
    pub labels: LogLabels,
    /// How much the guest may log.
    pub output: Arc<OutputRate>,
    /// Its environment variables.
    pub env: &'a [(String, String)],
    /// Host folders it sees.
    pub volumes: &'a [VolumeSpec],
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
    pub fn build(self, engine: &wasmtime::Engine) -> Result<Store<InvocationState>> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(self.env)
            .stdout(GuestLog::new(
                self.labels.clone(),
                Stream::Stdout,
                self.output.clone(),
            ))
            .stderr(GuestLog::new(self.labels, Stream::Stderr, self.output))
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
        let limiter = GuestLimiter::new(self.memory, self.memory_budget);
        let core = CoreCtx {
            identity: self.identity,
            broker: self.broker,
            subjects: self.subjects,
            memory: limiter.memory().clone(),
        };
        let state = InvocationState::new(wasi.build(), self.outgoing, limiter, core);
        let mut store = Store::new(engine, state);
        store.limiter(|state| state.limiter());
        Ok(store)
    }
}

/// A linker with what every guest Store gets: WASI P2, `wasi:http`, and the
/// `keel:core` plugin interfaces (a workload's own imports of `keel:core` are
/// refused before linking, so only its composed plugins reach them).
pub fn core_linker(
    engine: &wasmtime::Engine,
) -> Result<wasmtime::component::Linker<InvocationState>> {
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    crate::core_api::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Lets the guest of `wasi` use the sockets `allow` grants, and nothing
/// else (no sockets at all when it grants none).
pub fn grant_sockets(wasi: &mut wasmtime_wasi::WasiCtxBuilder, allow: &Arc<SocketAllowlist>) {
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
