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
//! An invocation's first tick is free (most requests end within it and
//! never meet the gate). A turn lasts until the holder's next tick, the
//! end of its invocation, or two ticks, whichever comes first: an
//! invocation that took a turn and then waits for I/O (where no tick
//! reaches it) does not keep its workload's turn for the whole wait.

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

/// The turn one invocation holds, if any. Dropping it gives the turn back.
#[derive(Debug)]
pub struct CpuTurn {
    gate: Arc<CpuGate>,
    held: Arc<Mutex<Held>>,
}

/// A turn and the number telling it apart from the holder's earlier ones
/// (so that a lease's end drops only the turn it was started for).
#[derive(Debug, Default)]
struct Held {
    generation: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl CpuTurn {
    /// An invocation's place at `gate`, holding no turn yet.
    pub fn new(gate: Arc<CpuGate>) -> CpuTurn {
        CpuTurn {
            gate,
            held: Arc::new(Mutex::new(Held::default())),
        }
    }

    /// At an epoch tick: gives back the turn held and takes the next one,
    /// now if one is free, else by yielding to the runtime until one is (or
    /// until `deadline`, after which the next tick ends the invocation).
    pub fn next(&self, deadline: Instant) -> UpdateDeadline {
        let generation = {
            let mut held = lock(&self.held);
            held.permit = None;
            held.generation = held.generation.wrapping_add(1);
            held.generation
        };
        if let Ok(permit) = self.gate.turns.clone().try_acquire_owned() {
            hold(&self.held, &self.gate, generation, permit);
            return UpdateDeadline::Yield(1);
        }
        let gate = self.gate.clone();
        let held = self.held.clone();
        gate.waiting.fetch_add(1, Ordering::AcqRel);
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let turn = gate.turns.clone().acquire_owned();
                let acquired = tokio::time::timeout_at(deadline.into(), turn).await;
                gate.waiting.fetch_sub(1, Ordering::AcqRel);
                if let Ok(Ok(permit)) = acquired {
                    hold(&held, &gate, generation, permit);
                }
            }),
        )
    }
}

impl Drop for CpuTurn {
    fn drop(&mut self) {
        lock(&self.held).permit = None;
    }
}

/// Records `permit` as turn `generation`, and ends it after the gate's
/// lease unless a later tick or the invocation's end gave it back first.
fn hold(held: &Arc<Mutex<Held>>, gate: &CpuGate, generation: u64, permit: OwnedSemaphorePermit) {
    {
        let mut slot = lock(held);
        if slot.generation != generation {
            // A later tick or the invocation's end came first.
            return;
        }
        slot.permit = Some(permit);
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
        let UpdateDeadline::YieldCustom(1, wait) = second.next(deadline) else {
            panic!("the second turn should wait");
        };
        assert_eq!(gate.waiting(), 1);
        let waiter = tokio::spawn(wait);
        // The first invocation ends: its turn passes to the waiting one.
        drop(first);
        waiter.await.expect("the wait ends");
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.running(), 1);
        drop(second);
        assert_eq!(gate.running(), 0);
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
