//! What a workload's guests may reach: HTTP routes and outgoing HTTP,
//! sockets, and host folders.

use super::Location;
use std::path::PathBuf;

/// HTTP settings of a workload.
#[derive(Debug, Clone)]
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
    /// unique local, multicast, unspecified: see
    /// [`crate::policy::addresses`]). On by default; entries naming the
    /// host itself (`db.internal`, `127.0.0.1:9000`) are never refused.
    pub block_private: bool,
}

impl HttpSpec {
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
#[derive(Debug, Clone, Default)]
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

/// A host folder mounted into the guest.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    /// The folder on the host, resolved against the manifest's folder.
    pub host: PathBuf,
    /// Where the guest sees it (e.g. `/data`).
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}
