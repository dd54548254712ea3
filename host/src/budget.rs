//! Memory budgets: what one Store may hold ([`StoreMemory`]), and what many
//! Stores together may hold ([`MemoryBudget`]: every instance of a workload
//! in flight, or every instance of a host).
//!
//! A Store's guest linear memory and the bytes the host buffers on the
//! guest's behalf (host pipes, see [`crate::core_api::pipe`]) count against
//! one limit. Without the second half, a guest bounded to 128 MiB of linear
//! memory could make the host hold any amount of memory by writing into a
//! pipe nobody reads: the bytes would sit in the host's heap, outside every
//! limit. The Store's [`ResourceLimiter`](wasmtime::ResourceLimiter) and
//! its pipes share one [`StoreMemory`], so memory the pipes hold is memory
//! the guest cannot grow into, and the other way round.
//!
//! Host buffers never take the last [`LINEAR_RESERVE`] bytes (or a quarter
//! of a small limit): that much is kept for linear memory, so a guest whose
//! write was refused can still grow its heap to handle the error.
//!
//! Everything a Store holds is also reserved from its shared budget (the
//! workload's, which draws from the host's), so a workload whose requests in
//! flight together reach its budget fails *its own* growth, never its
//! neighbours'.
//!
//! A pipe may outlive its Store or be written from another Store (a shared
//! plugin's pipe written by a workload), so budgets are shared and
//! thread-safe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The part of a Store's limit only linear memory may use (see the module doc).
pub const LINEAR_RESERVE: usize = 1 << 20;

/// Memory shared by many Stores. A Store reserves what it holds and gives
/// it back when it lets go of it.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// A wider budget this one also draws from (the host's, for a workload's).
    parent: Option<Arc<MemoryBudget>>,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, also drawing from `parent` if given.
    pub fn new(limit: usize, parent: Option<Arc<MemoryBudget>>) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            parent,
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `bytes` more would fit now, here and in every parent.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.used().saturating_add(bytes) <= self.limit
            && self.parent.as_ref().is_none_or(|p| p.has_room(bytes))
    }

    /// Reserves `bytes` here and in every parent, or nothing at all.
    fn try_reserve(&self, bytes: usize) -> bool {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if !reserved {
            return false;
        }
        if let Some(parent) = &self.parent
            && !parent.try_reserve(bytes)
        {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives back `bytes` reserved with [`try_reserve`](Self::try_reserve).
    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(parent) = &self.parent {
            parent.release(bytes);
        }
    }
}

/// The memory one Store may hold: its linear memory plus its host buffers,
/// drawn from a shared [`MemoryBudget`] too when it has one.
#[derive(Debug)]
pub struct StoreMemory {
    limit: usize,
    used: Mutex<Used>,
    shared: Option<Arc<MemoryBudget>>,
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

/// Why memory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The Store's own limit.
    StoreLimit,
    /// The shared budget (the workload's or the host's) is spent by other
    /// Stores.
    SharedBudget,
}

/// Host buffers refused for lack of room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the memory limit of {limit} bytes is reached ({linear} bytes of linear memory, \
     {buffered} bytes in host buffers); {wanted} more bytes do not fit"
)]
pub struct OverBudget {
    /// The Store's limit.
    pub limit: usize,
    /// Linear memory held when the request was refused.
    pub linear: usize,
    /// Host-buffered bytes held when the request was refused.
    pub buffered: usize,
    /// What was asked for.
    pub wanted: usize,
}

impl StoreMemory {
    /// A Store limit of `limit` bytes, nothing used yet, also drawing from
    /// `shared` if given.
    pub fn new(limit: usize, shared: Option<Arc<MemoryBudget>>) -> Arc<StoreMemory> {
        Arc::new(StoreMemory {
            limit,
            used: Mutex::new(Used::default()),
            shared,
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

    fn shared_reserve(&self, bytes: usize) -> bool {
        self.shared.as_ref().is_none_or(|s| s.try_reserve(bytes))
    }

    fn shared_release(&self, bytes: usize) {
        if let Some(shared) = &self.shared {
            shared.release(bytes);
        }
    }

    /// Grants `delta` more bytes of linear memory if they fit.
    pub fn grow_linear(&self, delta: usize) -> Result<(), Refusal> {
        self.with(|u| {
            if u.total().saturating_add(delta) > self.limit {
                return Err(Refusal::StoreLimit);
            }
            if !self.shared_reserve(delta) {
                return Err(Refusal::SharedBudget);
            }
            u.linear += delta;
            Ok(())
        })
    }

    /// Takes back `delta` bytes of linear memory (a growth that failed
    /// after it was granted, or the Store going away).
    pub fn shrink_linear(&self, delta: usize) {
        self.with(|u| {
            let delta = delta.min(u.linear);
            u.linear -= delta;
            self.shared_release(delta);
        });
    }

    /// Reserves `bytes` for a host buffer, or says why not.
    pub fn reserve(&self, bytes: usize) -> Result<(), OverBudget> {
        self.with(|u| {
            let refused = OverBudget {
                limit: self.limit,
                linear: u.linear,
                buffered: u.buffered,
                wanted: bytes,
            };
            if u.total().saturating_add(bytes) > self.buffer_ceiling()
                || !self.shared_reserve(bytes)
            {
                return Err(refused);
            }
            u.buffered += bytes;
            Ok(())
        })
    }

    /// Gives back `bytes` of a host buffer (read out or dropped).
    pub fn release(&self, bytes: usize) {
        self.with(|u| {
            let bytes = bytes.min(u.buffered);
            u.buffered -= bytes;
            self.shared_release(bytes);
        });
    }
}

impl Drop for StoreMemory {
    fn drop(&mut self) {
        let used = self.with(|u| *u);
        self.shared_release(used.total());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_memory_and_buffers_share_the_limit() {
        let memory = StoreMemory::new(100, None);
        assert!(memory.grow_linear(40).is_ok());
        assert_eq!(
            memory.buffer_room(),
            35,
            "a quarter stays for linear memory"
        );
        assert_eq!(memory.reserve(35), Ok(()));
        let refused = memory.reserve(1).unwrap_err();
        assert_eq!(
            (refused.linear, refused.buffered, refused.wanted),
            (40, 35, 1)
        );
        assert!(
            memory.grow_linear(25).is_ok(),
            "linear memory may use the reserve"
        );
        assert_eq!(
            memory.grow_linear(1),
            Err(Refusal::StoreLimit),
            "and no more"
        );
        memory.release(30);
        assert!(memory.grow_linear(30).is_ok());
        assert_eq!(memory.buffer_room(), 0);
    }

    #[test]
    fn a_large_limit_keeps_a_mebibyte_for_linear_memory() {
        let memory = StoreMemory::new(64 << 20, None);
        assert_eq!(memory.buffer_room(), 63 << 20);
    }

    #[test]
    fn stores_share_a_budget_and_give_it_back_when_dropped() {
        let host = MemoryBudget::new(300, None);
        let workload = MemoryBudget::new(200, Some(host.clone()));
        let a = StoreMemory::new(150, Some(workload.clone()));
        let b = StoreMemory::new(150, Some(workload.clone()));
        assert!(a.grow_linear(150).is_ok());
        assert_eq!(
            b.grow_linear(100),
            Err(Refusal::SharedBudget),
            "over the workload's budget"
        );
        assert!(b.grow_linear(30).is_ok());
        assert!(b.reserve(20).is_ok(), "host buffers draw on it too");
        assert!(b.reserve(1).is_err());
        assert_eq!((workload.used(), host.used()), (200, 200));
        // Another workload of the host may use what is left of the host's.
        let other = MemoryBudget::new(200, Some(host.clone()));
        let c = StoreMemory::new(150, Some(other.clone()));
        assert_eq!(
            c.grow_linear(150),
            Err(Refusal::SharedBudget),
            "over the host's"
        );
        assert_eq!(
            other.used(),
            0,
            "a refused growth reserves nothing anywhere"
        );
        assert!(c.grow_linear(100).is_ok());
        drop(a);
        b.shrink_linear(30);
        assert_eq!((workload.used(), host.used()), (20, 120));
        drop(b);
        assert_eq!((workload.used(), host.used()), (0, 100));
        drop(c);
        assert_eq!(host.used(), 0);
    }
}
