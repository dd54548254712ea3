//! A workload's service: one long-running component exporting
//! `wasi:cli/run` beside the workload's components, restarted when it
//! fails, whose loopback listeners are the workload's "localhost".

use super::{ByteSize, ComponentSource, ComponentSpec};
use std::time::Duration;

/// The service of a workload (see [`WorkloadSpec::service`]): its
/// `wasi:cli/run` is called once on a task of its own, under the
/// workload's memory budget, epoch preemption and CPU turns, with no
/// per-invocation timeout. Returning `Ok` (or exiting 0) makes the
/// workload `Completed`; a trap or an error starts a new instance, up to
/// [`ServiceSpec::max_restarts`] times, then the workload fails.
///
/// [`WorkloadSpec::service`]: super::WorkloadSpec::service
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// The component: its name (unique among the workload's components),
    /// source and `wasi:config` values, as any component of the workload.
    pub component: ComponentSpec,
    /// New instances started after a failure before the workload fails
    /// (0: the first failure fails the workload).
    pub max_restarts: u32,
    /// Linear memory its instance may grow to; `None`: the workload's
    /// `limits.memory`.
    pub memory: Option<ByteSize>,
}

impl ServiceSpec {
    /// The first wait before a failed service starts again; it doubles
    /// with each restart, up to [`ServiceSpec::RESTART_BACKOFF_MAX`], so a
    /// service failing at once cannot spin a core.
    pub const RESTART_BACKOFF_FIRST: Duration = Duration::from_millis(100);

    /// The longest wait between two starts of a failing service.
    pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);

    /// A service named `name` (within the workload) run from `source`, with
    /// no restarts and the workload's memory limit; fields set afterwards
    /// as needed.
    ///
    /// ```
    /// use keel::spec::{ByteSize, ComponentSource, ServiceSpec};
    /// let service = ServiceSpec::new("db", ComponentSource::Path("db.wasm".into()))
    ///     .with_max_restarts(3)
    ///     .with_memory(ByteSize(64 << 20));
    /// assert_eq!(service.max_restarts, 3);
    /// ```
    pub fn new(name: impl Into<String>, source: ComponentSource) -> ServiceSpec {
        ServiceSpec {
            component: ComponentSpec::new(name, source),
            max_restarts: 0,
            memory: None,
        }
    }

    /// Allows `max_restarts` new instances after failures.
    pub fn with_max_restarts(mut self, max_restarts: u32) -> ServiceSpec {
        self.max_restarts = max_restarts;
        self
    }

    /// Bounds its linear memory at `memory` instead of the workload's limit.
    pub fn with_memory(mut self, memory: ByteSize) -> ServiceSpec {
        self.memory = Some(memory);
        self
    }

    /// The wait before restart number `restart` (1 for the first).
    ///
    /// ```
    /// use keel::spec::ServiceSpec;
    /// use std::time::Duration;
    /// assert_eq!(ServiceSpec::backoff(1), Duration::from_millis(100));
    /// assert_eq!(ServiceSpec::backoff(3), Duration::from_millis(400));
    /// assert_eq!(ServiceSpec::backoff(60), ServiceSpec::RESTART_BACKOFF_MAX);
    /// ```
    pub fn backoff(restart: u32) -> Duration {
        let doublings = restart.saturating_sub(1).min(16);
        ServiceSpec::RESTART_BACKOFF_FIRST
            .saturating_mul(1 << doublings)
            .min(ServiceSpec::RESTART_BACKOFF_MAX)
    }
}
