//! The bounds on a workload's guests: memory, time, instances, request
//! bodies, logging and CPU turns.

use super::ByteSize;
use std::time::Duration;

/// The bounds on a workload's guests.
///
/// ```
/// use keel::spec::{ByteSize, Limits};
/// use std::time::Duration;
/// let limits = Limits::default()
///     .with_memory(ByteSize::mib(64))
///     .with_timeout(Duration::from_secs(5))
///     .with_max_instances(16);
/// assert_eq!(limits.max_instances, 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Linear memory one instance may grow to.
    pub fn with_memory(mut self, memory: ByteSize) -> Limits {
        self.memory = memory;
        self
    }

    /// Linear memory all the workload's instances in flight may hold
    /// together.
    pub fn with_memory_total(mut self, total: ByteSize) -> Limits {
        self.memory_total = Some(total);
        self
    }

    /// Wall-clock time one invocation may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Limits {
        self.timeout = timeout;
        self
    }

    /// Instances in flight at once.
    pub fn with_max_instances(mut self, max: u32) -> Limits {
        self.max_instances = max;
        self
    }

    /// How long a request waits for a free instance slot.
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Limits {
        self.queue_timeout = timeout;
        self
    }

    /// Largest request body accepted.
    pub fn with_max_request_body(mut self, max: ByteSize) -> Limits {
        self.max_request_body = max;
        self
    }

    /// Bytes per second of stdout and stderr the guests may log together.
    pub fn with_log_rate(mut self, rate: ByteSize) -> Limits {
        self.log_rate = rate;
        self
    }

    /// CPU-bound invocations of the workload at once.
    pub fn with_max_running(mut self, max: u32) -> Limits {
        self.max_running = Some(max);
        self
    }

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
