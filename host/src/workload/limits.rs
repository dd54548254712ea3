//! Per-invocation bounds on guest memory and tables.

use crate::budget::MemoryBudget;
use std::sync::Arc;
use wasmtime::ResourceLimiter;

/// Caps the linear memory of one invocation's Store (summed over every memory
/// of every instance in it, so a composed workload cannot dodge the limit by
/// spreading across components) and remembers when the cap was hit, so the
/// host can say "memory limit" instead of a bare trap.
///
/// The cap is a [`MemoryBudget`] the Store's host pipes draw on too: bytes
/// waiting in a pipe are memory the guest cannot grow into.
#[derive(Debug)]
pub struct GuestLimiter {
    budget: Arc<MemoryBudget>,
    last_grant: usize,
    table_elements_limit: usize,
    hit_memory_limit: bool,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory and host
    /// buffers in total.
    pub fn new(memory_limit: usize) -> GuestLimiter {
        GuestLimiter {
            budget: MemoryBudget::new(memory_limit),
            last_grant: 0,
            table_elements_limit: 1_000_000,
            hit_memory_limit: false,
        }
    }

    /// Whether a growth was refused because of the memory limit.
    pub fn hit_memory_limit(&self) -> bool {
        self.hit_memory_limit
    }

    /// Bytes of linear memory currently granted.
    pub fn memory_used(&self) -> usize {
        self.budget.linear()
    }

    /// The budget linear memory and host buffers share.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
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
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if !self.budget.grow_linear(delta) {
            self.hit_memory_limit = true;
            return Ok(false);
        }
        self.last_grant = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.budget.shrink_linear(self.last_grant);
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
