//! The host's room for warm instances kept idle between requests.
//!
//! An idle warm instance holds no invocation slot (it runs nothing, and
//! must not count in its workload's fair share of them), yet it holds a
//! place in the engine's pooling allocator. The allocator is made larger by
//! `warm_instances` places for them, and this ledger hands those places
//! out: an instance is kept only while one is free, otherwise it is
//! discarded as if reuse were off. So live instances never exceed the pool:
//! invocations in flight (each under a slot of [`super::InstancePool`]),
//! shared plugin instances (the reserve), and idle warm ones (here).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Places for idle warm instances, host-wide.
#[derive(Debug)]
pub struct WarmLedger {
    capacity: u32,
    kept: AtomicU32,
}

impl WarmLedger {
    /// Room for `capacity` idle warm instances.
    pub fn new(capacity: u32) -> Arc<WarmLedger> {
        Arc::new(WarmLedger {
            capacity,
            kept: AtomicU32::new(0),
        })
    }

    /// Idle warm instances the host may keep.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Idle warm instances kept now.
    pub fn kept(&self) -> u32 {
        self.kept.load(Ordering::Acquire)
    }

    /// A place for one idle instance, held until the returned token is
    /// dropped; `None` when every place is taken.
    pub fn try_keep(self: &Arc<Self>) -> Option<WarmPlace> {
        self.kept
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |kept| {
                (kept < self.capacity).then_some(kept + 1)
            })
            .ok()
            .map(|_| WarmPlace {
                ledger: self.clone(),
            })
    }
}

/// One idle warm instance's place in the pool; given back when dropped.
#[derive(Debug)]
pub struct WarmPlace {
    ledger: Arc<WarmLedger>,
}

impl Drop for WarmPlace {
    fn drop(&mut self) {
        self.ledger.kept.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let ledger = WarmLedger::new(2);
        let a = ledger.try_keep().expect("a place");
        let _b = ledger.try_keep().expect("a second place");
        assert!(ledger.try_keep().is_none());
        assert_eq!(ledger.kept(), 2);
        drop(a);
        assert_eq!(ledger.kept(), 1);
        assert!(ledger.try_keep().is_some());
    }
}
