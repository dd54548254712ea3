//! The bounds on a workload's guests: memory, time, instances, request
//! bodies, logging and CPU turns.

use super::ByteSize;
use std::time::Duration;

/// The bounds on a workload's guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory one instance may grow to.
    pub memory: ByteSize,
    /// Linear memory all the workload's instances in flight may hold
    /// together; past it a growth fails (the request gets 503). `None`:
    /// [`Limits::DEFAULT_MEMORY_TOTAL`], or `memory` if that is larger.
    pub memory_total: Option<ByteSize>,
    /// Wall-clock time one invocation may take, CPU included.
    pub timeout: Duration,
    /// Instances in flight at once; further requests wait for a free slot.
    pub max_instances: u32,
    /// How long a request waits for a free instance slot before it gets 503.
    pub queue_timeout: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub max_request_body: ByteSize,
    /// Bytes per second of stdout and stderr the workload's guests may log
    /// together; what is over it is dropped and reported.
    pub log_rate: ByteSize,
    /// Invocations of the workload that may run guest code at once once
    /// they have used a whole epoch tick (the CPU-bound ones); the others
    /// wait for a turn, so a workload spinning many invocations leaves the
    /// host's other cores to its neighbours. `None`:
    /// [`Limits::default_max_running`].
    pub max_running: Option<u32>,
}

impl Limits {
    /// The memory budget of a workload that sets none.
    pub const DEFAULT_MEMORY_TOTAL: ByteSize = ByteSize::mib(1024);

    /// CPU-bound invocations of one workload at once when it sets none:
    /// half the host's cores, at least one.
    pub fn default_max_running() -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        u32::try_from(cores / 2).unwrap_or(u32::MAX).max(1)
    }

    /// CPU-bound invocations of the workload at once.
    pub fn max_running(&self) -> u32 {
        self.max_running
            .unwrap_or_else(Limits::default_max_running)
            .max(1)
    }

    /// The memory budget across the workload's instances in flight.
    pub fn memory_total(&self) -> ByteSize {
        self.memory_total
            .unwrap_or(Limits::DEFAULT_MEMORY_TOTAL.max(self.memory))
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: ByteSize::mib(128),
            memory_total: None,
            timeout: Duration::from_secs(30),
            max_instances: 100,
            queue_timeout: Duration::from_secs(1),
            max_request_body: ByteSize::mib(10),
            log_rate: ByteSize::mib(1),
            max_running: None,
        }
    }
}
