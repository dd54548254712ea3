//! Bounds on guest memory and tables: per invocation (one Store), and
//! across all the invocations of a workload or of a host ([`MemoryBudget`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::ResourceLimiter;

/// Linear memory shared by many Stores: every instance of one workload in
/// flight at once, or every instance of a host. A Store reserves what its
/// guest grows into and gives it back when it is dropped, so a workload
/// whose concurrent requests together reach its budget fails *its own*
/// growth, never its neighbours'.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// A wider budget this one also draws from (a workload's, the host's).
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

/// Caps the linear memory of one invocation's Store (summed over every memory
/// of every instance in it, so a composed workload cannot dodge the limit by
/// spreading across components) and remembers when the cap was hit, so the
/// host can say "memory limit" instead of a bare trap.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_limit: usize,
    memory_used: usize,
    last_grant: usize,
    table_elements_limit: usize,
    hit_memory_limit: bool,
    budget: Option<Arc<MemoryBudget>>,
    hit_budget: bool,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory in total.
    pub fn new(memory_limit: usize) -> GuestLimiter {
        GuestLimiter {
            memory_limit,
            memory_used: 0,
            last_grant: 0,
            table_elements_limit: 1_000_000,
            hit_memory_limit: false,
            budget: None,
            hit_budget: false,
        }
    }

    /// Growth must also fit in `budget`, shared with other Stores.
    pub fn with_budget(mut self, budget: Option<Arc<MemoryBudget>>) -> GuestLimiter {
        self.budget = budget;
        self
    }

    /// Whether a growth was refused because a shared budget (the
    /// workload's or the host's) was spent, not this Store's own limit.
    pub fn hit_budget(&self) -> bool {
        self.hit_budget
    }

    /// Whether a growth was refused because of the memory limit.
    pub fn hit_memory_limit(&self) -> bool {
        self.hit_memory_limit
    }

    /// Bytes of linear memory currently granted.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(delta);
        if total > self.memory_limit || maximum.is_some_and(|max| desired > max) {
            self.hit_memory_limit |= total > self.memory_limit;
            return Ok(false);
        }
        if let Some(budget) = &self.budget
            && !budget.try_reserve(delta)
        {
            self.hit_budget = true;
            return Ok(false);
        }
        self.memory_used = total;
        self.last_grant = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_used = self.memory_used.saturating_sub(self.last_grant);
        if let Some(budget) = &self.budget {
            budget.release(self.last_grant);
        }
        self.last_grant = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements_limit && maximum.is_none_or(|max| desired <= max))
    }
}

impl Drop for GuestLimiter {
    fn drop(&mut self) {
        // The Store is gone, and its memories with it.
        if let Some(budget) = &self.budget {
            budget.release(self.memory_used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_share_a_budget_and_give_it_back_when_dropped() {
        let host = MemoryBudget::new(300, None);
        let workload = MemoryBudget::new(200, Some(host.clone()));
        let mut a = GuestLimiter::new(150).with_budget(Some(workload.clone()));
        let mut b = GuestLimiter::new(150).with_budget(Some(workload.clone()));
        assert!(a.memory_growing(0, 150, None).unwrap());
        assert!(
            !b.memory_growing(0, 100, None).unwrap(),
            "over the workload's budget"
        );
        assert!(b.hit_budget() && !b.hit_memory_limit());
        assert!(b.memory_growing(0, 50, None).unwrap());
        assert_eq!((workload.used(), host.used()), (200, 200));
        // Another workload of the host may use what is left of the host's.
        let other = MemoryBudget::new(200, Some(host.clone()));
        let mut c = GuestLimiter::new(150).with_budget(Some(other.clone()));
        assert!(
            !c.memory_growing(0, 150, None).unwrap(),
            "over the host's budget"
        );
        assert_eq!(
            other.used(),
            0,
            "a refused growth reserves nothing anywhere"
        );
        assert!(c.memory_growing(0, 100, None).unwrap());
        drop(a);
        drop(b);
        assert_eq!((workload.used(), host.used()), (0, 100));
        drop(c);
        assert_eq!(host.used(), 0);
    }
}
