//! One Store's memory budget: the guest's linear memory and the bytes the
//! host buffers on the guest's behalf (host pipes, see
//! [`crate::core_api::pipe`]) count against one limit.
//!
//! Without the second half, a guest bounded to 128 MiB of linear memory
//! could make the host hold any amount of memory by writing into a pipe
//! nobody reads: the bytes would sit in the host's heap, outside every
//! limit. The Store's [`ResourceLimiter`](wasmtime::ResourceLimiter) and
//! its pipes share one [`MemoryBudget`], so memory the pipes hold is memory
//! the guest cannot grow into, and the other way round.
//!
//! Host buffers never take the last [`LINEAR_RESERVE`] bytes (or a quarter
//! of a small budget): that much is kept for linear memory, so a guest
//! whose write was refused can still grow its heap to handle the error.
//!
//! A pipe may outlive its Store or be written from another Store (a shared
//! plugin's pipe written by a workload), so the budget is shared and
//! thread-safe.

use std::sync::{Arc, Mutex};

/// The part of a budget only linear memory may use (see the module doc).
pub const LINEAR_RESERVE: usize = 1 << 20;

/// The memory one Store may hold: its linear memory plus its host buffers.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Used {
    linear: usize,
    buffered: usize,
}

impl Used {
    fn total(self) -> usize {
        self.linear.saturating_add(self.buffered)
    }
}

/// Host buffers refused for lack of room in a [`MemoryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the memory limit of {limit} bytes is reached ({linear} bytes of linear memory, \
     {buffered} bytes in host buffers); {wanted} more bytes do not fit"
)]
pub struct OverBudget {
    /// The budget's limit.
    pub limit: usize,
    /// Linear memory held when the request was refused.
    pub linear: usize,
    /// Host-buffered bytes held when the request was refused.
    pub buffered: usize,
    /// What was asked for.
    pub wanted: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, nothing used yet.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: Mutex::new(Used::default()),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn with<R>(&self, f: impl FnOnce(&mut Used) -> R) -> R {
        // The counters stay consistent whatever panicked while holding
        // the lock: every update is a single assignment.
        f(&mut self.used.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Bytes of linear memory granted.
    pub fn linear(&self) -> usize {
        self.with(|u| u.linear)
    }

    /// Bytes held in host buffers.
    pub fn buffered(&self) -> usize {
        self.with(|u| u.buffered)
    }

    /// The most host buffers may bring the total to: the limit less what
    /// is kept for linear memory.
    fn buffer_ceiling(&self) -> usize {
        self.limit - LINEAR_RESERVE.min(self.limit / 4)
    }

    /// Bytes host buffers may still take.
    pub fn buffer_room(&self) -> usize {
        self.with(|u| self.buffer_ceiling().saturating_sub(u.total()))
    }

    /// Grants `delta` more bytes of linear memory if they fit.
    pub fn grow_linear(&self, delta: usize) -> bool {
        self.with(|u| {
            let fits = u.total().saturating_add(delta) <= self.limit;
            if fits {
                u.linear += delta;
            }
            fits
        })
    }

    /// Takes back `delta` bytes of linear memory (a growth that failed
    /// after it was granted).
    pub fn shrink_linear(&self, delta: usize) {
        self.with(|u| u.linear = u.linear.saturating_sub(delta));
    }

    /// Reserves `bytes` for a host buffer, or says why not.
    pub fn reserve(&self, bytes: usize) -> Result<(), OverBudget> {
        self.with(|u| {
            if u.total().saturating_add(bytes) > self.buffer_ceiling() {
                return Err(OverBudget {
                    limit: self.limit,
                    linear: u.linear,
                    buffered: u.buffered,
                    wanted: bytes,
                });
            }
            u.buffered += bytes;
            Ok(())
        })
    }

    /// Gives back `bytes` of a host buffer (read out or dropped).
    pub fn release(&self, bytes: usize) {
        self.with(|u| u.buffered = u.buffered.saturating_sub(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_memory_and_buffers_share_the_limit() {
        let budget = MemoryBudget::new(100);
        assert!(budget.grow_linear(40));
        assert_eq!(
            budget.buffer_room(),
            35,
            "a quarter stays for linear memory"
        );
        assert_eq!(budget.reserve(35), Ok(()));
        let refused = budget.reserve(1).unwrap_err();
        assert_eq!(
            (refused.linear, refused.buffered, refused.wanted),
            (40, 35, 1)
        );
        assert!(budget.grow_linear(25), "linear memory may use the reserve");
        assert!(!budget.grow_linear(1), "and no more");
        budget.release(30);
        assert!(budget.grow_linear(30));
        assert_eq!(budget.buffer_room(), 0);
    }

    #[test]
    fn a_large_budget_keeps_a_mebibyte_for_linear_memory() {
        let budget = MemoryBudget::new(64 << 20);
        assert_eq!(budget.buffer_room(), 63 << 20);
    }
}
