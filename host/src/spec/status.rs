//! Where a workload is in its life, as `status` and `list` report it.

use crate::spec::WorkloadId;
use std::fmt;
use std::net::SocketAddr;

/// The life of a workload: `Starting` → `Running` → `Stopping` → `Stopped`,
/// or `Error` when starting failed (or its service failed past its
/// restarts), or `Completed` when its service finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadState {
    /// Components are being loaded and linked; requests get 503.
    Starting,
    /// Serving.
    Running,
    /// No new invocations; in-flight ones are finishing. Requests get 503.
    Stopping,
    /// Every invocation has finished. Requests get 503.
    Stopped,
    /// Its service returned successfully from `wasi:cli/run` (or exited
    /// 0): the workload is done. Requests get 503.
    Completed,
    /// Starting failed, or its service failed more often than it may be
    /// restarted; the message says why.
    Error(String),
}

impl WorkloadState {
    /// Whether the workload still holds its id (a new start with the same id
    /// is refused): starting, running or stopping.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            WorkloadState::Starting | WorkloadState::Running | WorkloadState::Stopping
        )
    }
}

impl fmt::Display for WorkloadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadState::Starting => f.write_str("starting"),
            WorkloadState::Running => f.write_str("running"),
            WorkloadState::Stopping => f.write_str("stopping"),
            WorkloadState::Stopped => f.write_str("stopped"),
            WorkloadState::Completed => f.write_str("completed"),
            WorkloadState::Error(message) => write!(f, "error: {message}"),
        }
    }
}

/// A snapshot of one workload for `status` and `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStatus {
    /// Namespace and name.
    pub id: WorkloadId,
    /// Its state when the snapshot was taken.
    pub state: WorkloadState,
    /// The Host header routed to it, if any.
    pub http_host: Option<String>,
    /// Invocations in flight.
    pub in_flight: u32,
    /// Whether one of its components serves HTTP: `None` until it has been
    /// linked (while starting, or when it failed before that).
    pub serves_http: Option<bool>,
    /// Warm instances of its HTTP component idle now (0 unless the
    /// component opted in to reuse).
    pub warm_idle: u32,
    /// Its invocations holding a turn on the CPU now (see
    /// `limits.max_running`).
    pub cpu_running: u32,
    /// Its invocations waiting for a turn on the CPU now.
    pub cpu_waiting: u32,
    /// The loopback addresses its service listens on now: each as the
    /// service asked for it (what the workload's components connect to)
    /// and the host address it got.
    pub service_ports: Vec<(SocketAddr, SocketAddr)>,
    /// Bytes of its memory budget (`limits.memory_total`) its instances
    /// hold now, in flight and idle warm ones alike (0 for a workload
    /// without an HTTP component).
    pub memory_used: u64,
}
