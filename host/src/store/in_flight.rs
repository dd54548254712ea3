//! How an invocation's deadline meets a call under way in a shared plugin.
//!
//! A plugin call into an async Store runs on its caller's task. Dropping
//! that task's future half-way through the call (what a plain
//! `tokio::time::timeout` does at the caller's deadline) would leave the
//! plugin's Store mid-call, unusable: its instance, and the state of every
//! workload it serves, would be lost because one caller ran out of time.
//!
//! So a caller's deadline is checked *between* plugin calls. Each
//! invocation has an [`InFlight`] marker, set while one of its calls holds
//! an async plugin's instance; [`InFlight::until`] ends the invocation at
//! its deadline, except that a call under way then is first let finish. The
//! wait this adds is bounded by the plugin's own per-call time limit
//! (`call_timeout`), past which the plugin call ends anyway. A plugin in a
//! synchronous Store runs on its caller's thread and needs no marker: its
//! call cannot be dropped half-way, and the caller's deadline strikes in
//! the caller's own code after the call returns.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

/// Whether an invocation has a call under way in an async shared plugin.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicBool>);

/// The invocation ran past its deadline (with no plugin call under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the invocation ran past its deadline")]
pub struct DeadlinePassed;

impl InFlight {
    /// Whether a plugin call is under way.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks a plugin call under way until the guard is dropped.
    pub(crate) fn enter(&self) -> InFlightGuard {
        self.0.store(true, Ordering::Release);
        InFlightGuard(self.clone())
    }

    /// Runs `call` until `deadline`; at the deadline, a plugin call under
    /// way (see the module documentation) is let finish before `call` is
    /// dropped. `call` must be the only user of this marker.
    pub async fn until<F: Future>(
        &self,
        deadline: tokio::time::Instant,
        call: F,
    ) -> Result<F::Output, DeadlinePassed> {
        let mut call = pin!(call);
        if let Ok(done) = tokio::time::timeout_at(deadline, call.as_mut()).await {
            return Ok(done);
        }
        // The marker changes only while `call` is polled, so checking it
        // after each poll is enough: no wake-up is missed.
        std::future::poll_fn(|cx| {
            if !self.is_set() {
                return Poll::Ready(Err(DeadlinePassed));
            }
            match call.as_mut().poll(cx) {
                Poll::Ready(done) => Poll::Ready(Ok(done)),
                Poll::Pending if self.is_set() => Poll::Pending,
                Poll::Pending => Poll::Ready(Err(DeadlinePassed)),
            }
        })
        .await
    }
}

/// Clears its [`InFlight`] marker when dropped.
pub(crate) struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        (self.0).0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_call_without_a_plugin_call_under_way_ends_at_the_deadline() {
        let marker = InFlight::default();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
        let ended = marker.until(deadline, std::future::pending::<()>()).await;
        assert_eq!(ended, Err(DeadlinePassed));
    }

    #[tokio::test]
    async fn a_plugin_call_under_way_at_the_deadline_finishes_first() {
        let marker = InFlight::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (entered, inside) = tokio::sync::oneshot::channel::<()>();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
        let call = {
            let marker = marker.clone();
            async move {
                let guard = marker.enter();
                let _ = entered.send(());
                // The plugin call ends when the test says so, past the deadline.
                let _ = released.await;
                drop(guard);
                // Back in the caller's own code: it would run on forever.
                std::future::pending::<()>().await;
                "unreachable"
            }
        };
        let run = tokio::spawn({
            let marker = marker.clone();
            async move { marker.until(deadline, call).await }
        });
        inside.await.expect("the call started");
        tokio::time::sleep_until(deadline + Duration::from_millis(20)).await;
        assert!(marker.is_set(), "the call was dropped mid-way");
        assert!(!run.is_finished());
        release.send(()).expect("the call still waits");
        assert_eq!(run.await.expect("joined"), Err(DeadlinePassed));
        assert!(!marker.is_set());
    }
}
