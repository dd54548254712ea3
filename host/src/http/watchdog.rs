//! The clock of one connection: it watches what the connection does (bytes
//! read, writes stuck, requests in flight) and says when the connection has
//! overrun one of its timeouts, so the ingress can close it.
//!
//! hyper's own `header_read_timeout` is not used: its timer starts as soon as
//! a connection waits for a request, so on a kept-alive connection it is
//! also the idle timeout, and the two could not be set apart. Here a request
//! head is timed from its first byte, idle time from the end of the last
//! response, and neither is extended by bytes trickling in.

use super::options::IngressOptions;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which timeout a connection overran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Its request head did not arrive in time.
    HeaderRead,
    /// It waited too long for its next request.
    Idle,
    /// A response write made no progress (the client does not read).
    Write,
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expiry::HeaderRead => "the request head did not arrive within the header read timeout",
            Expiry::Idle => "the connection stayed idle past the idle timeout",
            Expiry::Write => "the client stopped reading the response (write timeout)",
        })
    }
}

/// The timeouts a watchdog enforces.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header_read: Duration,
    idle: Duration,
    write: Duration,
}

/// What one connection is doing, shared by its socket, its requests and its
/// watchdog.
pub struct Activity {
    state: Mutex<State>,
    /// Woken when a deadline may have moved earlier.
    changed: Notify,
    timeouts: Timeouts,
}

#[derive(Debug)]
struct State {
    /// Requests handed to the handler whose response has not ended.
    in_flight: u32,
    /// When the request head being read began (no request in flight).
    head_since: Option<Instant>,
    /// When the connection became idle (no request in flight, no byte of
    /// the next one yet).
    idle_since: Option<Instant>,
    /// Since when a write has been waiting for the client to read.
    write_blocked_since: Option<Instant>,
}

impl Activity {
    /// A fresh connection: its first request head is timed from now.
    pub fn new(options: &IngressOptions) -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State {
                in_flight: 0,
                head_since: Some(Instant::now()),
                idle_since: None,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
            timeouts: Timeouts {
                header_read: options.header_read_timeout,
                idle: options.idle_timeout,
                write: options.write_timeout,
            },
        })
    }

    /// Marks a request handed to the handler; the returned guard marks its
    /// end when dropped (with the response body, or with the handler when
    /// the connection goes away first).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.head_since = None;
        state.idle_since = None;
        InFlight {
            activity: self.clone(),
        }
    }

    /// Resolves when the connection has overrun a timeout, saying which.
    pub async fn expired(&self) -> Expiry {
        loop {
            let Some((deadline, expiry)) = self.next_deadline() else {
                self.changed.notified().await;
                continue;
            };
            if deadline <= Instant::now() {
                return expiry;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.changed.notified() => {}
            }
        }
    }

    /// The earliest deadline now running, and what overrunning it means.
    fn next_deadline(&self) -> Option<(Instant, Expiry)> {
        let state = self.lock();
        let t = self.timeouts;
        // A timeout too long to add to an instant (an embedder's
        // `Duration::MAX`) never expires.
        let after = |since: Instant, timeout: Duration| since.checked_add(timeout);
        let reading = if state.in_flight > 0 {
            None
        } else if let Some(since) = state.head_since {
            after(since, t.header_read).map(|at| (at, Expiry::HeaderRead))
        } else {
            state
                .idle_since
                .and_then(|since| after(since, t.idle).map(|at| (at, Expiry::Idle)))
        };
        let writing = state
            .write_blocked_since
            .and_then(|since| after(since, t.write).map(|at| (at, Expiry::Write)));
        match (reading, writing) {
            (Some(r), Some(w)) => Some(if w.0 < r.0 { w } else { r }),
            (r, w) => r.or(w),
        }
    }

    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_since.is_none() {
            // The first byte of the next request: from here its head is timed.
            state.head_since = Some(Instant::now());
            state.idle_since = None;
            drop(state);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self) {
        let mut state = self.lock();
        if state.write_blocked_since.is_none() {
            state.write_blocked_since = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn write_progressed(&self) {
        self.lock().write_blocked_since = None;
    }

    fn request_ended(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request in flight on a connection; dropping it ends the request.
pub struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.request_ended();
    }
}

/// A connection's socket, reporting reads and stuck writes to its
/// [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }

    fn after_write<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match &poll {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(_) => self.activity.write_progressed(),
        }
        poll
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.after_write(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.after_write(poll)
    }
}

/// A response body that keeps its request in flight until it is dropped
/// (hyper drops it once it has sent the last frame, or gives up).
pub struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    /// `inner`, ending `in_flight` when dropped.
    pub fn new(inner: B, in_flight: InFlight) -> Tracked<B> {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, small timeouts: the assertions are lower bounds (from an
    // instant taken before the clock under test starts) and which timeout
    // fired, never an upper bound on how long it took.
    fn options() -> IngressOptions {
        IngressOptions {
            header_read_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(400),
            write_timeout: Duration::from_millis(100),
            ..IngressOptions::default()
        }
    }

    #[tokio::test]
    async fn a_fresh_connection_must_send_its_head_in_time() {
        let started = Instant::now();
        let activity = Activity::new(&options());
        assert_eq!(activity.expired().await, Expiry::HeaderRead);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn idle_time_counts_from_the_last_response() {
        let activity = Activity::new(&options());
        let idle_from = Instant::now();
        drop(activity.request_started());
        assert_eq!(activity.expired().await, Expiry::Idle);
        assert!(idle_from.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn the_first_byte_of_a_request_starts_its_head_clock() {
        let activity = Activity::new(&options());
        drop(activity.request_started());
        let head_from = Instant::now();
        activity.bytes_read();
        // More bytes trickling in do not extend it.
        activity.bytes_read();
        assert_eq!(activity.expired().await, Expiry::HeaderRead);
        assert!(head_from.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_request_in_flight_is_not_timed_but_a_stuck_write_is() {
        let activity = Activity::new(&options());
        let request = activity.request_started();
        let blocked_from = Instant::now();
        activity.write_blocked();
        assert_eq!(activity.expired().await, Expiry::Write);
        assert!(blocked_from.elapsed() >= Duration::from_millis(100));
        activity.write_progressed();
        // Longer than every timeout: a request in flight is the guest's to bound.
        let waited = tokio::time::timeout(Duration::from_secs(1), activity.expired()).await;
        assert!(waited.is_err(), "a request in flight expired: {waited:?}");
        drop(request);
        assert_eq!(activity.expired().await, Expiry::Idle);
    }
}
