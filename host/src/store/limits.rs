//! Per-invocation bounds on guest memory and tables.

use crate::budget::{MemoryBudget, Refusal, StoreMemory};
use std::sync::Arc;
use wasmtime::ResourceLimiter;

/// Caps the linear memory of one invocation's Store (summed over every memory
/// of every instance in it, so a composed workload cannot dodge the limit by
/// spreading across components) and remembers which cap was hit, so the
/// host can say "memory limit" or "memory budget" instead of a bare trap.
///
/// The cap is a [`StoreMemory`] the Store's host pipes draw on too (bytes
/// waiting in a pipe are memory the guest cannot grow into), which also
/// draws on the workload's shared [`MemoryBudget`].
#[derive(Debug)]
pub struct GuestLimiter {
    memory: Arc<StoreMemory>,
    last_grant: usize,
    table_elements_limit: usize,
    hit_memory_limit: bool,
    hit_budget: bool,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory and host
    /// buffers in total, also drawn from `shared` if given.
    pub fn new(memory_limit: usize, shared: Option<Arc<MemoryBudget>>) -> GuestLimiter {
        GuestLimiter {
            memory: StoreMemory::new(memory_limit, shared),
            last_grant: 0,
            table_elements_limit: 1_000_000,
            hit_memory_limit: false,
            hit_budget: false,
        }
    }

    /// Whether a growth was refused because of the Store's memory limit.
    pub fn hit_memory_limit(&self) -> bool {
        self.hit_memory_limit
    }

    /// Whether a growth was refused because the shared budget (the
    /// workload's or the host's) was spent by other Stores.
    pub fn hit_budget(&self) -> bool {
        self.hit_budget
    }

    /// Bytes of linear memory currently granted.
    pub fn memory_used(&self) -> usize {
        self.memory.linear()
    }

    /// The memory linear memory and host buffers share.
    pub fn memory(&self) -> &Arc<StoreMemory> {
        &self.memory
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
        match self.memory.grow_linear(delta) {
            Ok(()) => {
                self.last_grant = delta;
                Ok(true)
            }
            Err(Refusal::StoreLimit) => {
                self.hit_memory_limit = true;
                Ok(false)
            }
            Err(Refusal::SharedBudget) => {
                self.hit_budget = true;
                Ok(false)
            }
        }
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.shrink_linear(self.last_grant);
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
        // The Store and its memories are gone; pipes it made may live on
        // and keep their buffered bytes.
        let linear = self.memory.linear();
        self.memory.shrink_linear(linear);
    }
}
