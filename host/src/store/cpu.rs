//! Turns on the CPU for CPU-bound invocations, so a workload spinning many
//! invocations can fill neither every worker thread of the host nor the
//! run queues its neighbours' requests wait in.
//!
//! Every invocation yields to the runtime at each epoch tick (see
//! `crate::workload::invocation`). Yielding alone is not fair: a hundred
//! spinning invocations of one workload sit in the runtime's run queues
//! and a neighbour's request waits behind all of them, a tick each. So an
//! invocation still running at its second tick is CPU-bound, and from then
//! on it runs only on a turn, given back and taken again at each tick:
//!
//! - from its workload's [`CpuGate`], which hands out at most
//!   `max_running` turns at once, first come first served, and
//! - from the host's gate ([`CpuGate::host`]), which hands out at most one
//!   fewer than the runtime's worker threads: however many workloads spin,
//!   one worker thread is left for short requests, and the operating
//!   system wakes it promptly when one arrives.
//!
//! The invocations waiting for a turn wait outside the run queues.
//!
//! The first tick is free: most requests end within their first tick or
//! just across one, and never meet a gate, so a gate costs nothing while
//! nothing spins. A new invocation waits for a turn before it starts only
//! while its workload's gate is contended (every turn held by a CPU-bound
//! invocation, or others waiting), so a stream of new CPU-bound requests
//! cannot run a free tick each ahead of the turns. A turn lasts until the
//! holder's next tick, the end of its invocation, or two ticks, whichever
//! comes first: an invocation that took a turn and then waits for I/O
//! (where no tick reaches it) does not keep its turn for the whole wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// Turns on the CPU: a workload's, or the host's.
#[derive(Debug)]
pub struct CpuGate {
    turns: Arc<Semaphore>,
    size: u32,
    /// How long a turn lasts at most (two epoch ticks).
    lease: Duration,
    /// Invocations waiting for a turn of this gate now.
    waiting: AtomicU32,
    /// Invocations holding a whole turn (this gate's and the host's) now.
    running: AtomicU32,
    /// The host's gate, whose turns a workload's also draw from.
    host: Option<Arc<CpuGate>>,
}

impl CpuGate {
    /// A workload's gate handing out `max_running` turns (at least one) at
    /// once, each also drawn from `host` if given, for an engine whose
    /// epoch ticks every `tick`.
    pub fn new(max_running: u32, tick: Duration, host: Option<Arc<CpuGate>>) -> Arc<CpuGate> {
        let size = max_running.max(1);
        Arc::new(CpuGate {
            turns: Arc::new(Semaphore::new(size as usize)),
            size,
            lease: tick.saturating_mul(2),
            waiting: AtomicU32::new(0),
            running: AtomicU32::new(0),
            host,
        })
    }

    /// The host's gate for a runtime of `workers` worker threads: one
    /// fewer turns than workers (at least one), so CPU-bound invocations
    /// never occupy every worker thread while the runtime has two or more.
    pub fn host(workers: usize) -> Arc<CpuGate> {
        let size = u32::try_from(workers.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .max(1);
        CpuGate::new(size, Duration::MAX, None)
    }

    /// The number of turns it hands out at once.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Invocations holding a turn now (for a workload's gate: holding the
    /// host's turn too).
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Acquire)
    }

    /// Invocations waiting for a turn now (for a workload's gate: for its
    /// own turn or, holding it, for the host's).
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }

    /// Whether a new invocation must wait for a turn before it starts:
    /// every turn is held or someone waits for one.
    fn contended(&self) -> bool {
        self.waiting() > 0 || self.turns.available_permits() == 0
    }

    /// A whole turn now, if the workload's gate and the host's both have
    /// one free (and nobody waits ahead).
    fn try_take(self: &Arc<Self>) -> Option<Turn> {
        let own = self.turns.clone().try_acquire_owned().ok()?;
        let host = match &self.host {
            Some(host) => Some(host.turns.clone().try_acquire_owned().ok()?),
            None => None,
        };
        Some(Turn::new(self.clone(), own, host))
    }

    /// Waits for a whole turn: the workload's first, then the host's.
    async fn take(self: Arc<Self>) -> Option<Turn> {
        let own = self.turns.clone().acquire_owned().await.ok()?;
        let host = match &self.host {
            Some(host) => {
                let _counted = Waiter::new(host.clone());
                Some(host.turns.clone().acquire_owned().await.ok()?)
            }
            None => None,
        };
        Some(Turn::new(self, own, host))
    }
}

/// A turn held: the workload's permit and the host's.
#[derive(Debug)]
struct Turn {
    gate: Arc<CpuGate>,
    _own: OwnedSemaphorePermit,
    _host: Option<OwnedSemaphorePermit>,
}

impl Turn {
    fn new(
        gate: Arc<CpuGate>,
        own: OwnedSemaphorePermit,
        host: Option<OwnedSemaphorePermit>,
    ) -> Turn {
        gate.running.fetch_add(1, Ordering::AcqRel);
        if let Some(host_gate) = &gate.host {
            host_gate.running.fetch_add(1, Ordering::AcqRel);
        }
        Turn {
            gate,
            _own: own,
            _host: host,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.gate.running.fetch_sub(1, Ordering::AcqRel);
        if let Some(host_gate) = &self.gate.host {
            host_gate.running.fetch_sub(1, Ordering::AcqRel);
        }
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
    turn: Option<Turn>,
    /// Granted after a wait at a tick and not yet used: the tick right
    /// after the wait runs on it.
    fresh: bool,
    /// Ticks the invocation has reached.
    ticks: u32,
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

    /// Before the invocation starts: while its workload's gate is
    /// contended, the wait for a turn (until `deadline` at most), which the
    /// invocation then starts on. `None` otherwise: the invocation starts
    /// at once, its first tick free.
    pub fn before_start(&self, deadline: Instant) -> Option<TurnWait> {
        if !self.inner.gate.contended() {
            return None;
        }
        let generation = self.give_back();
        Some(self.wait(generation, deadline, false))
    }

    /// At an epoch tick: the first tick of an invocation started without a
    /// turn is free. From then on, gives back the turn held and takes the
    /// next one, now if one is free, else by yielding to the runtime until
    /// one is (or until `deadline`). After a wait the callback runs again
    /// at once (deadline 0 ticks away): it then ends an invocation whose
    /// deadline passed meanwhile, or lets it run a tick on the turn it was
    /// granted.
    pub fn next(&self, deadline: Instant) -> UpdateDeadline {
        {
            let mut held = lock(&self.inner.held);
            if held.fresh && held.turn.is_some() {
                held.fresh = false;
                return UpdateDeadline::Continue(1);
            }
            held.ticks = held.ticks.saturating_add(1);
            if held.ticks == 1 && held.turn.is_none() {
                return UpdateDeadline::Yield(1);
            }
        }
        let generation = self.give_back();
        let gate = &self.inner.gate;
        if let Some(turn) = gate.try_take() {
            hold(&self.inner.held, gate, generation, turn, false);
            return UpdateDeadline::Yield(1);
        }
        UpdateDeadline::YieldCustom(0, self.wait(generation, deadline, true))
    }

    /// Gives back the turn held (if any); returns the number of the next.
    fn give_back(&self) -> u64 {
        let mut held = lock(&self.inner.held);
        held.fresh = false;
        held.turn = None;
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
            let acquired = tokio::time::timeout_at(deadline.into(), gate.clone().take()).await;
            drop(waiter);
            if let Ok(Some(turn)) = acquired {
                hold(&held, &gate, generation, turn, fresh);
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
        held.turn = None;
    }
}

/// Records `turn` as turn `generation` (`fresh`: granted after a wait),
/// and ends it after the gate's lease unless a later tick or the
/// invocation's end gave it back first.
fn hold(held: &Arc<Mutex<Held>>, gate: &CpuGate, generation: u64, turn: Turn, fresh: bool) {
    {
        let mut slot = lock(held);
        if slot.generation != generation {
            // A later tick or the invocation's end came first.
            return;
        }
        slot.turn = Some(turn);
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
            slot.turn = None;
        }
    });
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn far() -> Instant {
        Instant::now() + LONG
    }

    /// Ticks `turn` past its free first tick: it holds a turn now.
    fn cpu_bound(turn: &CpuTurn) {
        assert!(matches!(turn.next(far()), UpdateDeadline::Yield(1)));
        assert!(matches!(turn.next(far()), UpdateDeadline::Yield(1)));
    }

    #[tokio::test]
    async fn the_first_tick_is_free_and_costs_new_invocations_nothing() {
        let gate = CpuGate::new(1, LONG, None);
        let first = CpuTurn::new(gate.clone());
        assert!(first.before_start(far()).is_none(), "a free gate: no wait");
        // Its first tick takes no turn: another invocation of the workload
        // starts at once, however many cross a tick.
        assert!(matches!(first.next(far()), UpdateDeadline::Yield(1)));
        assert_eq!(gate.running(), 0);
        let second = CpuTurn::new(gate.clone());
        assert!(second.before_start(far()).is_none());
        assert!(matches!(second.next(far()), UpdateDeadline::Yield(1)));
        assert_eq!(gate.running(), 0);
        // Its second tick makes it CPU-bound: it takes the turn.
        assert!(matches!(first.next(far()), UpdateDeadline::Yield(1)));
        assert_eq!(gate.running(), 1);
    }

    #[tokio::test]
    async fn turns_are_bounded_and_given_back() {
        let gate = CpuGate::new(1, LONG, None);
        let first = CpuTurn::new(gate.clone());
        cpu_bound(&first);
        assert_eq!(gate.running(), 1);
        let second = CpuTurn::new(gate.clone());
        assert!(matches!(second.next(far()), UpdateDeadline::Yield(1)));
        let UpdateDeadline::YieldCustom(0, wait) = second.next(far()) else {
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
        assert!(matches!(second.next(far()), UpdateDeadline::Continue(1)));
        assert_eq!(gate.running(), 1);
        drop(second);
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn a_start_waits_only_while_a_cpu_bound_invocation_holds_the_turns() {
        let gate = CpuGate::new(1, LONG, None);
        let first = CpuTurn::new(gate.clone());
        cpu_bound(&first);
        let second = CpuTurn::new(gate.clone());
        let wait = second.before_start(far()).expect("the turn is taken");
        assert_eq!(gate.waiting(), 1);
        let waiter = tokio::spawn(wait);
        drop(first);
        waiter.await.expect("the wait ends");
        // It starts on its turn, with no free tick: it gives the turn back
        // and takes it again at its first tick.
        assert_eq!(gate.running(), 1);
        assert!(matches!(second.next(far()), UpdateDeadline::Yield(1)));
        assert_eq!(gate.running(), 1);
        drop(second);
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn a_wait_dropped_before_it_ends_is_no_longer_counted() {
        let gate = CpuGate::new(1, LONG, None);
        let first = CpuTurn::new(gate.clone());
        cpu_bound(&first);
        let second = CpuTurn::new(gate.clone());
        let wait = second.before_start(far()).expect("the turn is taken");
        assert_eq!(gate.waiting(), 1);
        // The call waiting for its turn is dropped (its Store went away).
        drop(wait);
        assert_eq!(gate.waiting(), 0, "a dropped wait must not stay counted");
        drop(first);
        assert!(
            CpuTurn::new(gate.clone()).before_start(far()).is_none(),
            "with nobody waiting, a start is free again"
        );
    }

    #[tokio::test]
    async fn a_turn_ends_with_its_lease() {
        let gate = CpuGate::new(1, Duration::from_millis(10), None);
        let turn = CpuTurn::new(gate.clone());
        cpu_bound(&turn);
        assert_eq!(gate.running(), 1);
        // The holder never ticks again (as if waiting for I/O): its lease
        // ends and the turn is free for another.
        let turns = gate.turns.clone();
        let permit = tokio::time::timeout(Duration::from_secs(30), turns.acquire_owned()).await;
        assert!(matches!(permit, Ok(Ok(_))), "the lease should end");
        assert_eq!(gate.running(), 0);
        drop(turn);
    }

    #[tokio::test]
    async fn the_host_gate_bounds_cpu_bound_invocations_across_workloads() {
        // Two worker threads: one CPU-bound invocation at a time, host-wide.
        let host = CpuGate::host(2);
        assert_eq!(host.size(), 1);
        let one = CpuGate::new(1, LONG, Some(host.clone()));
        let two = CpuGate::new(1, LONG, Some(host.clone()));
        let spinning = CpuTurn::new(one.clone());
        cpu_bound(&spinning);
        assert_eq!((one.running(), host.running()), (1, 1));
        // The other workload's own turn is free, the host's is not.
        let other = CpuTurn::new(two.clone());
        assert!(matches!(other.next(far()), UpdateDeadline::Yield(1)));
        let UpdateDeadline::YieldCustom(0, wait) = other.next(far()) else {
            panic!("the host's turn is taken: the other workload waits");
        };
        let waiter = tokio::spawn(wait);
        // Counted as waiting, in its workload and in the host.
        let counted = async {
            while two.waiting() != 1 || host.waiting() != 1 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(LONG, counted)
            .await
            .expect("the wait is counted");
        assert_eq!((two.running(), host.running()), (0, 1));
        drop(spinning);
        waiter.await.expect("the wait ends");
        assert_eq!((one.running(), two.running(), host.running()), (0, 1, 1));
        assert_eq!(host.waiting(), 0);
        drop(other);
        assert_eq!(host.running(), 0);
    }

    #[test]
    fn the_host_gate_keeps_one_worker_free() {
        assert_eq!(CpuGate::host(1).size(), 1);
        assert_eq!(CpuGate::host(2).size(), 1);
        assert_eq!(CpuGate::host(8).size(), 7);
    }
}
