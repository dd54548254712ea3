//! The lock around a shared plugin's running instance: fair like Tokio's
//! mutex, cheaper when nobody waits.
//!
//! Tokio's mutex hands the lock to the longest waiter, so a workload calling
//! in a tight loop cannot take it straight back and starve other workloads'
//! calls until their deadlines. But it pays for that on every release, which
//! takes the semaphore's waiter list lock even when the list is empty. With
//! this lock instead, a shared typed keyvalue `get` (about 1 µs) took 64 ns
//! less (README, "Performance").
//!
//! [`FairLock`] keeps the hand-over and skips that cost when nobody waits.
//! One atomic word holds a `LOCKED` bit and the number of waiters. Taking a
//! free lock nobody waits for is one compare-and-swap, and releasing a lock
//! nobody waits for is another. A caller that finds the lock held counts
//! itself as a waiter and queues on a Tokio semaphore (first come, first
//! served). A release that sees a waiter hands the lock over: it adds one
//! permit and leaves `LOCKED` set, so a newcomer cannot slip in between.
//!
//! A waiter that gives up (its future is dropped: its caller hit a
//! deadline) uncounts itself. If a hand-over was already under way, the
//! permit stays in the semaphore with `LOCKED` set and no holder. The next
//! caller takes that permit at once, so the lock is never lost: at most one
//! permit exists, and only while `LOCKED` is set.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// The lock is held, or being handed over.
const LOCKED: usize = 1;
/// One waiter, in the count above `LOCKED`.
const WAITER: usize = 2;

/// An async mutex that hands the lock to its longest waiter, with an
/// uncontended path of one atomic operation each way.
pub struct FairLock<T> {
    /// `LOCKED`, plus `WAITER` for each caller waiting.
    state: AtomicUsize,
    /// Where waiters queue; a permit is the lock handed over.
    queue: Semaphore,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `FairGuard`, and at most one
// guard exists at a time (see the module's comment), so sharing the lock
// between threads moves `T` between them but never shares it.
unsafe impl<T: Send> Send for FairLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for FairLock<T> {}

impl<T> FairLock<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> FairLock<T> {
        FairLock {
            state: AtomicUsize::new(0),
            queue: Semaphore::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The lock, if it is free and nobody waits for it.
    pub fn try_lock(&self) -> Option<FairGuard<'_, T>> {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| FairGuard::new(self))
    }

    /// How many callers wait for the lock now (a snapshot).
    #[cfg(test)]
    pub fn waiters(&self) -> usize {
        self.state.load(Ordering::Relaxed) / WAITER
    }

    /// The lock, after every caller that waited for it before this one.
    pub async fn lock(&self) -> FairGuard<'_, T> {
        match self.try_lock() {
            Some(guard) => guard,
            None => self.wait().await,
        }
    }

    async fn wait(&self) -> FairGuard<'_, T> {
        // From here on, a release hands the lock over instead of freeing
        // it; dropped (given up, or taken), this uncounts the waiter.
        let _waiting = Waiting::count(self);
        loop {
            if let Some(guard) = self.take_if_free() {
                return guard;
            }
            match self.queue.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    return FairGuard::new(self);
                }
                // Only a closed semaphore fails, and nothing closes it;
                // were it closed, the lock is taken once free.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    /// The lock if it is free: released before this caller counted itself
    /// as a waiter, so nobody's hand-over is under way.
    fn take_if_free(&self) -> Option<FairGuard<'_, T>> {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(FairGuard::new(self)),
                Err(now) => state = now,
            }
        }
        None
    }

    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Someone waits: hand over, `LOCKED` stays set.
            self.queue.add_permits(1);
        }
    }
}

/// Counts a caller among the waiters while it lives.
struct Waiting<'l> {
    state: &'l AtomicUsize,
}

impl<'l> Waiting<'l> {
    fn count<T>(lock: &'l FairLock<T>) -> Waiting<'l> {
        lock.state.fetch_add(WAITER, Ordering::Relaxed);
        Waiting { state: &lock.state }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.state.fetch_sub(WAITER, Ordering::Relaxed);
    }
}

/// The lock, held; released when dropped.
pub struct FairGuard<'l, T> {
    lock: &'l FairLock<T>,
    /// A guard gives `&mut T`: it is `Send` and `Sync` only as that is.
    _value: PhantomData<&'l mut T>,
}

impl<'l, T> FairGuard<'l, T> {
    fn new(lock: &'l FairLock<T>) -> FairGuard<'l, T> {
        FairGuard {
            lock,
            _value: PhantomData,
        }
    }
}

impl<T> Deref for FairGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see the module's comment).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for FairGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one (see the module's comment).
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for FairGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    #[tokio::test]
    async fn a_value_is_locked_and_tried() {
        let lock = FairLock::new(0u32);
        *lock.lock().await += 1;
        let held = lock.try_lock().expect("nobody holds it");
        assert!(lock.try_lock().is_none());
        assert_eq!(*held, 1);
    }

    /// Polls `future` once.
    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn a_held_lock_is_not_taken_twice() {
        let lock = FairLock::new(());
        let held = lock.lock().await;
        assert!(lock.try_lock().is_none());
        let mut waiter = pin!(lock.lock());
        assert!(poll_once(waiter.as_mut()).is_pending());
        drop(held);
        assert!(poll_once(waiter.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn waiters_get_the_lock_in_the_order_they_came_and_newcomers_do_not_cut_in() {
        let lock = FairLock::new(Vec::new());
        let held = lock.lock().await;
        let mut first = pin!(lock.lock());
        let mut second = pin!(lock.lock());
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        drop(held);
        // Released with waiters: the lock was handed over, not freed.
        assert!(lock.try_lock().is_none());
        // `second` is polled first now, but `first` asked first.
        assert!(poll_once(second.as_mut()).is_pending());
        let Poll::Ready(mut guard) = poll_once(first.as_mut()) else {
            panic!("the first waiter did not get the lock")
        };
        guard.push("first");
        drop(guard);
        let Poll::Ready(mut guard) = poll_once(second.as_mut()) else {
            panic!("the second waiter did not get the lock")
        };
        guard.push("second");
        drop(guard);
        let guard = lock.try_lock().expect("free once nobody waits");
        assert_eq!(*guard, ["first", "second"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_before_the_release_leaves_the_fast_path() {
        let lock = FairLock::new(());
        let held = lock.lock().await;
        {
            let mut waiter = pin!(lock.lock());
            assert!(poll_once(waiter.as_mut()).is_pending());
        }
        drop(held);
        assert!(lock.try_lock().is_some());
    }

    #[tokio::test]
    async fn a_lock_handed_to_a_waiter_that_gave_up_goes_to_the_next_caller() {
        let lock = FairLock::new(());
        let held = lock.lock().await;
        {
            let mut waiter = pin!(lock.lock());
            assert!(poll_once(waiter.as_mut()).is_pending());
            // Handed over to the waiter, which then gives up.
            drop(held);
        }
        let taken = tokio::time::timeout(Duration::from_secs(5), lock.lock())
            .await
            .expect("the next caller got the lock");
        drop(taken);
        assert!(
            lock.try_lock().is_some(),
            "back on the fast path once the lost hand-over is taken"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_on_many_threads_never_hold_it_at_once_and_none_is_lost() {
        const TASKS: usize = 8;
        const ROUNDS: usize = 2_000;
        // A counter read and written in two steps, with a yield between:
        // any two holders at once would lose increments.
        let lock = Arc::new(FairLock::new(0usize));
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let lock = lock.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                for round in 0..ROUNDS {
                    // Every seventh call of half the tasks gives up at once.
                    if task % 2 == 0 && round % 7 == 0 {
                        if let Ok(mut guard) =
                            tokio::time::timeout(Duration::ZERO, lock.lock()).await
                        {
                            *guard += 1;
                            done += 1;
                        }
                        continue;
                    }
                    let mut guard = lock.lock().await;
                    let seen = *guard;
                    tokio::task::yield_now().await;
                    *guard = seen + 1;
                    done += 1;
                }
                done
            }));
        }
        let mut done = 0;
        for task in tasks {
            done += task.await.expect("a task panicked");
        }
        assert!(done >= TASKS * ROUNDS / 2);
        let total = tokio::time::timeout(Duration::from_secs(5), lock.lock())
            .await
            .expect("the lock is free at the end");
        assert_eq!(*total, done);
    }
}
