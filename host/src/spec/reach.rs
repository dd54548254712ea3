//! What a workload's guests may reach: HTTP routes and outgoing HTTP,
//! sockets, and host folders.

use super::Location;
use std::path::PathBuf;

/// HTTP settings of a workload.
///
/// ```
/// use keel::spec::HttpSpec;
/// let http = HttpSpec::default()
///     .with_host("api.shop.local")
///     .with_alias("api.shop.example")
///     .with_outgoing("api.example.com")
///     .with_outgoing("*.internal:8443");
/// assert_eq!(http.names().count(), 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpSpec {
    /// The Host header (without port) routed to this workload. Without one,
    /// the workload receives every request only while it is the host's only
    /// HTTP workload without a host name (the development default).
    pub host: Option<String>,
    /// More Host headers routed to this workload, besides `host` (which
    /// they need).
    pub aliases: Vec<String>,
    /// Whether other workloads that say so too may serve the same host
    /// names, requests going to each running one in turn: replicas of one
    /// service on one host. Off, a host name belongs to one workload.
    pub shared: bool,
    /// Where the manifest declared `host`, for error messages.
    pub host_origin: Option<Location>,
    /// Outgoing HTTP allowlist: `host`, `host:port`, or `*.domain[:port]`.
    /// Empty means outgoing HTTP is denied.
    pub outgoing: Vec<String>,
    /// Whether a host name granted only by a `*.domain` entry is refused when
    /// it resolves to an internal address (loopback, private, link-local,
    /// unique local, multicast, unspecified). On by default; entries naming the
    /// host itself (`db.internal`, `127.0.0.1:9000`) are never refused.
    pub block_private: bool,
}

impl HttpSpec {
    /// Routes requests whose Host header (without port) is `host` here.
    pub fn with_host(mut self, host: impl Into<String>) -> HttpSpec {
        self.host = Some(host.into());
        self
    }

    /// Routes one more Host header here, besides the one of
    /// [`HttpSpec::with_host`] (which it needs).
    pub fn with_alias(mut self, alias: impl Into<String>) -> HttpSpec {
        self.aliases.push(alias.into());
        self
    }

    /// Whether other workloads that say so too may serve the same host
    /// names (replicas).
    pub fn with_shared(mut self, shared: bool) -> HttpSpec {
        self.shared = shared;
        self
    }

    /// Allows outgoing HTTP to `pattern`: `host`, `host:port`, or
    /// `*.domain[:port]`.
    pub fn with_outgoing(mut self, pattern: impl Into<String>) -> HttpSpec {
        self.outgoing.push(pattern.into());
        self
    }

    /// Whether host names granted by a `*.domain` pattern may not resolve
    /// to internal addresses (on by default).
    pub fn with_block_private(mut self, block: bool) -> HttpSpec {
        self.block_private = block;
        self
    }

    /// Every Host header routed to the workload: `host`, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.host.iter().chain(&self.aliases)
    }
}

impl Default for HttpSpec {
    /// No route, no outgoing HTTP, internal addresses blocked for pattern
    /// grants.
    fn default() -> HttpSpec {
        HttpSpec {
            host: None,
            aliases: Vec::new(),
            shared: false,
            host_origin: None,
            outgoing: Vec::new(),
            block_private: true,
        }
    }
}

/// Socket settings of a workload: denied unless listed.
///
/// ```
/// use keel::spec::SocketsSpec;
/// let sockets = SocketsSpec::default()
///     .with_allow("127.0.0.1:6379")
///     .with_name_lookup(true);
/// assert!(sockets.listen.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SocketsSpec {
    /// `ip:port` or `ip:*` patterns of remote addresses the guest may
    /// connect or send to, over TCP and UDP. Empty means none.
    pub allow: Vec<String>,
    /// Local addresses the guest may bind and listen on (a server inside the
    /// guest). Empty, the default, means it may not listen at all.
    pub listen: Vec<String>,
    /// Whether the guest may resolve host names.
    pub name_lookup: bool,
}

impl SocketsSpec {
    /// Allows connecting or sending to `pattern` (`ip:port` or `ip:*`).
    pub fn with_allow(mut self, pattern: impl Into<String>) -> SocketsSpec {
        self.allow.push(pattern.into());
        self
    }

    /// Allows binding and listening on the local address `pattern`.
    pub fn with_listen(mut self, pattern: impl Into<String>) -> SocketsSpec {
        self.listen.push(pattern.into());
        self
    }

    /// Whether the guest may resolve host names.
    pub fn with_name_lookup(mut self, on: bool) -> SocketsSpec {
        self.name_lookup = on;
        self
    }
}

/// A host folder mounted into the guest.
///
/// ```
/// use keel::spec::VolumeSpec;
/// let data = VolumeSpec::new("/srv/data", "/data").with_read_only(true);
/// assert!(data.read_only);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VolumeSpec {
    /// The folder on the host, resolved against the manifest's folder.
    pub host: PathBuf,
    /// Where the guest sees it (e.g. `/data`).
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

impl VolumeSpec {
    /// Host folder `host` seen by the guest at `guest` (an absolute path),
    /// writable.
    pub fn new(host: impl Into<PathBuf>, guest: impl Into<String>) -> VolumeSpec {
        VolumeSpec {
            host: host.into(),
            guest: guest.into(),
            read_only: false,
        }
    }

    /// Whether the guest may only read.
    pub fn with_read_only(mut self, read_only: bool) -> VolumeSpec {
        self.read_only = read_only;
        self
    }
}
