//! Host-level admission to the engine's instance pool, shared fairly
//! between workloads.
//!
//! The pooling allocator holds `pool_instances` component instances for the
//! whole host. Without admission, a workload with many invocations in
//! flight could take every one, and instantiation would then fail — with a
//! 500 — in a *neighbour*. So every invocation takes a host slot before it
//! instantiates, as well as its workload's own slot, and the host slots are
//! handed out by the share rule of [`share`]: a workload over its fair
//! share waits (and gets 503 at its `queue_timeout`), never its neighbours.
//!
//! The pool's capacity is split in two:
//! - a **reserve** for shared plugin instances (each lives in its own
//!   long-lived Store: one per plugin and namespace by default), a tenth of
//!   the pool rounded up ([`reserve_for`]). Creating a shared instance takes
//!   a reserve slot for as long as the instance may run; once the reserve
//!   is spent, a workload needing a new one fails to start, with an error
//!   saying so.
//! - the rest, the **invocation slots** ([`InstancePool::capacity`]).
//!
//! Both together never exceed the pool, so instantiation never fails for
//! want of a pool slot. The same bounds hold when the engine fell back to
//! on-demand allocation, so behaviour does not depend on the machine's
//! address space.

pub mod share;
pub mod warm;

use share::{Ledger, MemberId, Ticket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The pool slots kept for shared plugin instances out of
/// `pool_instances`: a tenth, rounded up, leaving at least one slot for
/// invocations.
pub fn reserve_for(pool_instances: u32) -> u32 {
    pool_instances
        .div_ceil(10)
        .min(pool_instances.saturating_sub(1))
}

/// Why an invocation got no host slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRefusal {
    /// No slot the share rule lets the workload take came free in time.
    #[error(
        "the host's {capacity} instance slots are in use or kept for other workloads' fair shares \
         (this workload holds {held}; its fair share is {share})"
    )]
    Full {
        /// The host's invocation slots.
        capacity: u32,
        /// Slots the workload held when it gave up.
        held: u32,
        /// Its share at that moment.
        share: u32,
    },
    /// The workload left the pool (it is stopping).
    #[error("the workload is stopping")]
    Left,
}

/// The shared plugins' reserve is spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the host keeps {reserve} of its {pool_instances} pool instances for shared plugin instances, \
     and all are taken: raise the pool's size (`--pool-instances`, `EngineOptions::pool_instances`)"
)]
pub struct ReserveSpent {
    /// Slots kept for shared plugin instances.
    pub reserve: u32,
    /// The pool's size.
    pub pool_instances: u32,
}

/// The host's instance pool: invocation slots shared by the share rule,
/// and the reserve for shared plugin instances.
#[derive(Debug)]
pub struct InstancePool {
    pool_instances: u32,
    reserve: u32,
    shared: AtomicU32,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    ledger: Ledger,
    /// Where to send the slot of each waiting request.
    waiters: HashMap<Ticket, oneshot::Sender<PoolSlot>>,
}

/// Slots granted under the lock, to hand over once it is released (a slot
/// that cannot be delivered is dropped, which takes the lock again).
type Grants = Vec<(oneshot::Sender<PoolSlot>, PoolSlot)>;

impl InstancePool {
    /// The admission of a pool of `pool_instances` component instances.
    pub fn new(pool_instances: u32) -> Arc<InstancePool> {
        let reserve = reserve_for(pool_instances);
        Arc::new(InstancePool {
            pool_instances,
            reserve,
            shared: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                ledger: Ledger::new(pool_instances - reserve),
                waiters: HashMap::new(),
            }),
        })
    }

    /// The pool's size.
    pub fn pool_instances(&self) -> u32 {
        self.pool_instances
    }

    /// Slots kept for shared plugin instances.
    pub fn reserve(&self) -> u32 {
        self.reserve
    }

    /// Invocations the host runs at once: the pool less the reserve. No
    /// workload may declare a larger `max_instances`.
    pub fn capacity(&self) -> u32 {
        self.pool_instances - self.reserve
    }

    /// Invocation slots taken now.
    pub fn in_use(&self) -> u32 {
        self.lock().ledger.used()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.lock().ledger.waiting()
    }

    /// Shared plugin instances holding a reserve slot now.
    pub fn shared_in_use(&self) -> u32 {
        self.shared.load(Ordering::Relaxed)
    }

    /// Registers a running workload allowed `max_instances` invocations at
    /// once; it counts in the shares until the member is dropped.
    pub fn join(self: &Arc<Self>, max_instances: u32) -> PoolMember {
        let id = self.lock().ledger.join(max_instances);
        PoolMember {
            pool: self.clone(),
            id,
        }
    }

    /// Takes a reserve slot for a shared plugin instance, held until the
    /// returned guard is dropped.
    pub fn reserve_shared(self: &Arc<Self>) -> Result<SharedSlot, ReserveSpent> {
        let reserve = self.reserve;
        self.shared
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < reserve).then_some(n + 1)
            })
            .map(|_| SharedSlot { pool: self.clone() })
            .map_err(|_| ReserveSpent {
                reserve,
                pool_instances: self.pool_instances,
            })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The ledger is updated in single steps that cannot panic halfway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves every waiter the rule lets have a slot now.
    fn dispatch(self: &Arc<Self>, inner: &mut Inner) -> Grants {
        let mut grants = Vec::new();
        while let Some((ticket, member)) = inner.ledger.grant_next() {
            match inner.waiters.remove(&ticket) {
                Some(waiter) => grants.push((
                    waiter,
                    PoolSlot {
                        pool: self.clone(),
                        member,
                    },
                )),
                // Every ticket has its sender; should one not, the slot
                // goes straight back.
                None => inner.ledger.release(member),
            }
        }
        grants
    }

    fn release(self: &Arc<Self>, member: MemberId) {
        let grants = {
            let mut inner = self.lock();
            inner.ledger.release(member);
            self.dispatch(&mut inner)
        };
        deliver(grants);
    }
}

/// Hands granted slots to their waiters; a waiter that gave up meanwhile
/// drops its slot, which releases it.
fn deliver(grants: Grants) {
    for (waiter, slot) in grants {
        let _ = waiter.send(slot);
    }
}

/// A running workload's place in the pool.
#[derive(Debug)]
pub struct PoolMember {
    pool: Arc<InstancePool>,
    id: MemberId,
}

impl PoolMember {
    /// Waits until `deadline` for a slot the share rule lets this workload
    /// take. Waiters are served in the rule's order, not by who polls first.
    pub async fn acquire(&self, deadline: tokio::time::Instant) -> Result<PoolSlot, PoolRefusal> {
        let (ticket, mut granted, grants) = {
            let mut inner = self.pool.lock();
            if !inner.ledger.has(self.id) {
                return Err(PoolRefusal::Left);
            }
            if inner.ledger.try_take(self.id) {
                return Ok(PoolSlot {
                    pool: self.pool.clone(),
                    member: self.id,
                });
            }
            let ticket = inner.ledger.enqueue(self.id);
            let (waiter, granted) = oneshot::channel();
            inner.waiters.insert(ticket, waiter);
            let grants = self.pool.dispatch(&mut inner);
            (ticket, granted, grants)
        };
        deliver(grants);
        // Withdraws the request however this future ends (timeout, or the
        // client going away and the request's task being dropped).
        let _waiting = Waiting {
            pool: &self.pool,
            ticket,
        };
        match tokio::time::timeout_at(deadline, &mut granted).await {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) => Err(PoolRefusal::Left),
            Err(_elapsed) => match granted.try_recv() {
                // Granted at the last moment: take it.
                Ok(slot) => Ok(slot),
                Err(_) => {
                    let inner = self.pool.lock();
                    Err(PoolRefusal::Full {
                        capacity: self.pool.capacity(),
                        held: inner.ledger.held(self.id),
                        share: inner.ledger.share(self.id),
                    })
                }
            },
        }
    }

    /// Slots the workload holds now.
    pub fn held(&self) -> u32 {
        self.pool.lock().ledger.held(self.id)
    }

    /// The workload's share now.
    pub fn share(&self) -> u32 {
        self.pool.lock().ledger.share(self.id)
    }

    /// Leaves the pool (the workload is stopping): it no longer counts in
    /// the shares, and its waiting requests end with [`PoolRefusal::Left`].
    /// Slots it holds are given back as its invocations end. Idempotent.
    pub fn leave(&self) {
        let grants = {
            let mut inner = self.pool.lock();
            for ticket in inner.ledger.leave(self.id) {
                // Dropping the sender tells the waiter.
                inner.waiters.remove(&ticket);
            }
            // The shares of those who stay grew.
            self.pool.dispatch(&mut inner)
        };
        deliver(grants);
    }
}

impl Drop for PoolMember {
    fn drop(&mut self) {
        self.leave();
    }
}

/// A request's withdrawal when it stops waiting.
struct Waiting<'a> {
    pool: &'a Arc<InstancePool>,
    ticket: Ticket,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut inner = self.pool.lock();
        if inner.ledger.cancel(self.ticket) {
            inner.waiters.remove(&self.ticket);
        }
    }
}

/// One invocation slot, given back when dropped.
#[derive(Debug)]
pub struct PoolSlot {
    pool: Arc<InstancePool>,
    member: MemberId,
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        self.pool.release(self.member);
    }
}

/// A reserve slot held by a shared plugin instance, given back when dropped.
#[derive(Debug)]
pub struct SharedSlot {
    pool: Arc<InstancePool>,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        self.pool.shared.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[test]
    fn the_reserve_is_a_tenth_and_leaves_room_to_run() {
        assert_eq!(reserve_for(1000), 100);
        assert_eq!(reserve_for(10), 1);
        assert_eq!(reserve_for(11), 2);
        assert_eq!(reserve_for(1), 0);
        assert_eq!(reserve_for(0), 0);
        assert_eq!(InstancePool::new(120).capacity(), 108);
    }

    #[test]
    fn shared_instances_take_the_reserve_and_give_it_back() {
        let pool = InstancePool::new(20);
        let first = pool.reserve_shared().expect("first");
        let second = pool.reserve_shared().expect("second");
        let spent = pool.reserve_shared().expect_err("spent");
        assert_eq!(spent.reserve, 2);
        drop(first);
        let _third = pool.reserve_shared().expect("given back");
        drop(second);
        assert_eq!(pool.shared_in_use(), 1);
    }

    #[tokio::test]
    async fn a_released_slot_goes_to_the_waiter_under_its_share() {
        let pool = InstancePool::new(5); // 4 invocation slots
        let a = pool.join(4);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(a.acquire(soon()).await.expect("a alone uses the pool"));
        }
        let b = pool.join(4);
        // a is over its new share of 2 and asks first; b asks second.
        let a_asks = tokio::spawn(async move {
            let slot = a.acquire(Instant::now() + Duration::from_secs(30)).await;
            (a, slot)
        });
        wait_until(|| pool.waiting() == 1).await;
        let b_asks = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let slot = b.acquire(Instant::now() + Duration::from_secs(30)).await;
                (b, slot, pool)
            })
        };
        wait_until(|| pool.waiting() == 2).await;
        held.pop();
        let (b, b_slot, _) = b_asks.await.expect("task");
        assert!(b_slot.is_ok());
        assert_eq!(b.held(), 1);
        // a still waits: borrowing would eat b's unused share.
        assert_eq!(pool.waiting(), 1);
        held.pop();
        held.pop();
        let (a, a_slot) = a_asks.await.expect("task");
        assert!(a_slot.is_ok());
        assert_eq!(a.held(), 2);
    }

    #[tokio::test]
    async fn a_wait_ends_at_its_deadline_and_says_why() {
        let pool = InstancePool::new(3); // 2 invocation slots
        let a = pool.join(2);
        let _b = pool.join(2);
        let _one = a.acquire(soon()).await.expect("within share");
        let refused = a
            .acquire(Instant::now() + Duration::from_millis(20))
            .await
            .expect_err("b's share stays free");
        assert_eq!(
            refused,
            PoolRefusal::Full {
                capacity: 2,
                held: 1,
                share: 1
            }
        );
        // The withdrawn request does not linger.
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn a_member_that_leaves_wakes_its_waiters() {
        let pool = InstancePool::new(2); // 1 invocation slot
        let a = Arc::new(pool.join(1));
        let _slot = a.acquire(soon()).await.expect("free");
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.acquire(Instant::now() + Duration::from_secs(30)).await })
        };
        wait_until(|| pool.waiting() == 1).await;
        a.leave();
        assert_eq!(waiter.await.expect("task").unwrap_err(), PoolRefusal::Left);
        assert_eq!(
            a.acquire(soon()).await.unwrap_err(),
            PoolRefusal::Left,
            "no new slot after leaving"
        );
    }

    async fn wait_until(condition: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while !condition() {
            assert!(Instant::now() < until, "condition not reached");
            tokio::task::yield_now().await;
        }
    }
}
