//! The bounds of the HTTP ingress: how many connections it holds, how long
//! a connection may stay idle, take over its request head, or leave a
//! response unread, and how long shutdown waits for open connections.

use std::time::Duration;

/// Connections served at once when the file-descriptor limit allows it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Fewest connections the derived default ever allows.
const MIN_DEFAULT_CONNECTIONS: usize = 16;

/// How the ingress bounds its connections. The defaults suit a server;
/// README's "Limits and guarantees" says what a client sees at each bound.
///
/// ```
/// use keel::IngressOptions;
/// use std::time::Duration;
/// let options = IngressOptions::default()
///     .with_max_connections(64)
///     .with_idle_timeout(Duration::from_secs(5));
/// assert_eq!(options.max_connections, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressOptions {
    /// Connections open at once. A connection over it is answered `503`
    /// with `Connection: close` and closed, without reading its request.
    pub max_connections: usize,
    /// How long a request head (request line and headers) may take, counted
    /// from the connection's start or, on a kept-alive connection, from the
    /// request's first byte. Bytes trickling in do not extend it.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long writing a response may make no progress (the client stopped
    /// reading) before the connection is closed.
    pub write_timeout: Duration,
    /// How long shutdown waits for open connections to finish their
    /// requests before it closes them (and, in [`Host`](crate::Host), for
    /// workloads to finish their invocations).
    pub shutdown_timeout: Duration,
}

impl Default for IngressOptions {
    fn default() -> IngressOptions {
        IngressOptions {
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl IngressOptions {
    /// Connections open at once.
    pub fn with_max_connections(mut self, max: usize) -> IngressOptions {
        self.max_connections = max;
        self
    }

    /// How long a request head may take.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> IngressOptions {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a kept-alive connection may wait for its next request.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> IngressOptions {
        self.idle_timeout = timeout;
        self
    }

    /// How long writing a response may make no progress.
    pub fn with_write_timeout(mut self, timeout: Duration) -> IngressOptions {
        self.write_timeout = timeout;
        self
    }

    /// How long shutdown waits for open connections and invocations.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> IngressOptions {
        self.shutdown_timeout = timeout;
        self
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or half the process's file-descriptor limit
/// when that is lower: every connection holds a descriptor, and the rest of
/// the host (NATS, the component cache, guests' files and sockets) needs
/// some too.
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(limit) => (limit / 2).clamp(MIN_DEFAULT_CONNECTIONS, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The soft `RLIMIT_NOFILE` of this process, if it has a finite one.
fn open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on
    // this stack frame for the whole call.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_leaves_descriptors_for_the_rest_of_the_host() {
        let max = default_max_connections();
        assert!((MIN_DEFAULT_CONNECTIONS..=DEFAULT_MAX_CONNECTIONS).contains(&max));
        if let Some(limit) = open_files_limit() {
            assert!(
                max <= (limit / 2).max(MIN_DEFAULT_CONNECTIONS),
                "{max} of {limit}"
            );
        }
    }
}
