//! Turns on the CPU for a workload's CPU-bound invocations, so a workload
//! spinning many invocations cannot fill every worker thread of the host.
//!
//! Every invocation yields to the runtime at each epoch tick (see
//! `crate::workload::invocation`). Yielding alone is not fair: a hundred
//! spinning invocations of one workload sit in the runtime's run queues
//! and a neighbour's request waits behind all of them, a tick each. So at
//! each tick an invocation also gives back its turn and takes the next one
//! from its workload's [`CpuGate`], which hands out at most `max_running`
//! turns at once, first come first served. The invocations waiting for a
//! turn wait outside the run queues; a neighbour's request waits behind at
//! most `max_running` of them per workload.
//!
//! An invocation's first tick is free while its workload has a turn free
//! and nobody waiting (most requests end within it and never meet the
//! gate); otherwise it waits for a turn before it starts, so a stream of
//! new CPU-bound requests cannot run a tick each ahead of the turns. A turn lasts until the holder's next tick, the
//! end of its invocation, or two ticks, whichever comes first: an
//! invocation that took a turn and then waits for I/O (where no tick
//! reaches it) does not keep its workload's turn for the whole wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// A workload's turns on the CPU.
#[derive(Debug)]
pub struct CpuGate {
    turns: Arc<Semaphore>,
    size: u32,
    /// How long a turn lasts at most (two epoch ticks).
    lease: Duration,
    waiting: AtomicU32,
}

impl CpuGate {
    /// A gate handing out `max_running` turns (at least one) at once, for
    /// an engine whose epoch ticks every `tick`.
    pub fn new(max_running: u32, tick: Duration) -> Arc<CpuGate> {
        let size = max_running.max(1);
        Arc::new(CpuGate {
            turns: Arc::new(Semaphore::new(size as usize)),
            size,
            lease: tick.saturating_mul(2),
            waiting: AtomicU32::new(0),
        })
    }

    /// Turns held now.
    pub fn running(&self) -> u32 {
        self.size
            .saturating_sub(u32::try_from(self.turns.available_permits()).unwrap_or(u32::MAX))
    }

    /// Invocations waiting for a turn now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }
}

/// The turn one invocation holds, if any. Clones share it; dropping the
/// last gives the turn back.
#[derive(Debug, Clone)]
pub struct CpuTurn {
    inner: Arc<TurnInner>,
}

#[derive(Debug)]
struct TurnInner {
    gate: Arc<CpuGate>,
    held: Arc<Mutex<Held>>,
}

/// A turn and the number telling it apart from the holder's earlier ones
/// (so that a lease's end drops only the turn it was started for).
#[derive(Debug, Default)]
struct Held {
    generation: u64,
    permit: Option<OwnedSemaphorePermit>,
    /// Granted after a wait at a tick and not yet used: the tick right
    /// after the wait runs on it.
    fresh: bool,
}

/// A wait for a turn.
pub type TurnWait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl CpuTurn {
    /// An invocation's place at `gate`, holding no turn yet.
    pub fn new(gate: Arc<CpuGate>) -> CpuTurn {
        CpuTurn {
            inner: Arc::new(TurnInner {
                gate,
                held: Arc::new(Mutex::new(Held::default())),
            }),
        }
    }

    /// Before the invocation starts: when its workload's turns are all
    /// taken or others wait for one, the wait for a turn (until `deadline`
    /// at most), which the invocation then starts on. `None` when a turn is
    /// free and nobody waits: the first tick is free, and a request shorter
    /// than a tick never meets the gate.
    pub fn before_start(&self, deadline: Instant) -> Option<TurnWait> {
        let gate = &self.inner.gate;
        if gate.waiting() == 0 && gate.turns.available_permits() > 0 {
            return None;
        }
        let generation = self.give_back();
        Some(self.wait(generation, deadline, false))
    }

    /// At an epoch tick: gives back the turn held and takes the next one,
    /// now if one is free, else by yielding to the runtime until one is (or
    /// until `deadline`). After a wait the callback runs again at once
    /// (deadline 0 ticks away): it then ends an invocation whose deadline
    /// passed meanwhile, or lets it run a tick on the turn it was granted.
    pub fn next(&self, deadline: Instant) -> UpdateDeadline {
        {
            let mut held = lock(&self.inner.held);
            if held.fresh && held.permit.is_some() {
                held.fresh = false;
                return UpdateDeadline::Continue(1);
            }
        }
        let generation = self.give_back();
        let gate = &self.inner.gate;
        if let Ok(permit) = gate.turns.clone().try_acquire_owned() {
            hold(&self.inner.held, gate, generation, permit, false);
            return UpdateDeadline::Yield(1);
        }
        UpdateDeadline::YieldCustom(0, self.wait(generation, deadline, true))
    }

    /// Gives back the turn held (if any); returns the number of the next.
    fn give_back(&self) -> u64 {
        let mut held = lock(&self.inner.held);
        held.fresh = false;
        held.permit = None;
        held.generation = held.generation.wrapping_add(1);
        held.generation
    }

    /// Waits (until `deadline` at most) for turn `generation`.
    fn wait(&self, generation: u64, deadline: Instant, fresh: bool) -> TurnWait {
        let gate = self.inner.gate.clone();
        let held = self.inner.held.clone();
        // Counted from now until the wait ends or is dropped (a Store or a
        // call dropped mid-wait): the count never outlives the wait.
        let waiter = Waiter::new(gate.clone());
        Box::pin(async move {
            let turn = gate.turns.clone().acquire_owned();
            let acquired = tokio::time::timeout_at(deadline.into(), turn).await;
            drop(waiter);
            if let Ok(Ok(permit)) = acquired {
                hold(&held, &gate, generation, permit, fresh);
            }
        })
    }
}

/// One invocation counted in its gate's `waiting` for as long as it lives.
struct Waiter(Arc<CpuGate>);

impl Waiter {
    fn new(gate: Arc<CpuGate>) -> Waiter {
        gate.waiting.fetch_add(1, Ordering::AcqRel);
        Waiter(gate)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for TurnInner {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        // A wait still under way keeps nothing it is granted.
        held.generation = held.generation.wrapping_add(1);
        held.permit = None;
    }
}

/// Records `permit` as turn `generation` (`fresh`: granted after a wait),
/// and ends it after the gate's lease unless a later tick or the
/// invocation's end gave it back first.
fn hold(
    held: &Arc<Mutex<Held>>,
    gate: &CpuGate,
    generation: u64,
    permit: OwnedSemaphorePermit,
    fresh: bool,
) {
    {
        let mut slot = lock(held);
        if slot.generation != generation {
            // A later tick or the invocation's end came first.
            return;
        }
        slot.permit = Some(permit);
        slot.fresh = fresh;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let held = held.clone();
    let lease = gate.lease;
    runtime.spawn(async move {
        tokio::time::sleep(lease).await;
        let mut slot = lock(&held);
        if slot.generation == generation {
            slot.permit = None;
        }
    });
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_are_bounded_and_given_back() {
        let gate = CpuGate::new(1, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = CpuTurn::new(gate.clone());
        assert!(matches!(first.next(deadline), UpdateDeadline::Yield(1)));
        assert_eq!(gate.running(), 1);
        let second = CpuTurn::new(gate.clone());
        let UpdateDeadline::YieldCustom(0, wait) = second.next(deadline) else {
            panic!("the second turn should wait");
        };
        assert_eq!(gate.waiting(), 1);
        let waiter = tokio::spawn(wait);
        // The first invocation ends: its turn passes to the waiting one.
        drop(first);
        waiter.await.expect("the wait ends");
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.running(), 1);
        // The tick right after the wait runs on the turn it was granted.
        assert!(matches!(second.next(deadline), UpdateDeadline::Continue(1)));
        assert_eq!(gate.running(), 1);
        drop(second);
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn a_start_waits_only_when_the_turns_are_taken() {
        let gate = CpuGate::new(1, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = CpuTurn::new(gate.clone());
        assert!(
            first.before_start(deadline).is_none(),
            "a free turn: no wait"
        );
        assert!(matches!(first.next(deadline), UpdateDeadline::Yield(1)));
        let second = CpuTurn::new(gate.clone());
        let wait = second.before_start(deadline).expect("the turn is taken");
        assert_eq!(gate.waiting(), 1);
        let waiter = tokio::spawn(wait);
        drop(first);
        waiter.await.expect("the wait ends");
        // It starts on its turn, and gives it back at its first tick.
        assert_eq!(gate.running(), 1);
        assert!(matches!(second.next(deadline), UpdateDeadline::Yield(1)));
        drop(second);
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn a_wait_dropped_before_it_ends_is_no_longer_counted() {
        let gate = CpuGate::new(1, Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = CpuTurn::new(gate.clone());
        assert!(matches!(first.next(deadline), UpdateDeadline::Yield(1)));
        let second = CpuTurn::new(gate.clone());
        let wait = second.before_start(deadline).expect("the turn is taken");
        assert_eq!(gate.waiting(), 1);
        // The call waiting for its turn is dropped (its Store went away).
        drop(wait);
        assert_eq!(gate.waiting(), 0, "a dropped wait must not stay counted");
        drop(first);
        assert!(
            CpuTurn::new(gate.clone()).before_start(deadline).is_none(),
            "with nobody waiting, a start is free again"
        );
    }

    #[tokio::test]
    async fn a_turn_ends_with_its_lease() {
        let gate = CpuGate::new(1, Duration::from_millis(10));
        let turn = CpuTurn::new(gate.clone());
        assert!(matches!(
            turn.next(Instant::now() + Duration::from_secs(60)),
            UpdateDeadline::Yield(1)
        ));
        assert_eq!(gate.running(), 1);
        // The holder never ticks again (as if waiting for I/O): its lease
        // ends and the turn is free for another.
        let turns = gate.turns.clone();
        let permit = tokio::time::timeout(Duration::from_secs(30), turns.acquire_owned()).await;
        assert!(matches!(permit, Ok(Ok(_))), "the lease should end");
        drop(turn);
    }
}
