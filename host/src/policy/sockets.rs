//! The socket allowlists: which remote addresses a guest may connect (or
//! send datagrams) to, and separately which local addresses it may bind and
//! listen on. Listening is denied unless granted: a grant to reach a
//! database never lets a guest open a server on the host's interfaces.

use super::loopback::Loopback;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// One allowed address: `ip:port`, `ip:*`, `[v6]:port`, or `*:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPattern {
    ip: Option<IpAddr>,
    port: Option<u16>,
}

impl SocketPattern {
    /// Parses a pattern.
    ///
    /// ```
    /// use keel::testing::policy::sockets::SocketPattern;
    /// let p = SocketPattern::parse("127.0.0.1:*").unwrap();
    /// assert!(p.allows(&"127.0.0.1:6379".parse().unwrap()));
    /// assert!(!p.allows(&"10.0.0.1:6379".parse().unwrap()));
    /// ```
    pub fn parse(text: &str) -> Result<SocketPattern, String> {
        let bad = || {
            format!(
                "`{text}` is not a socket pattern: expected `ip:port`, `ip:*`, `[v6]:port` or `*:port`"
            )
        };
        let (ip, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip = if ip == "*" {
            None
        } else {
            Some(ip.parse().map_err(|_| bad())?)
        };
        let port = if port == "*" {
            None
        } else {
            Some(port.parse().map_err(|_| bad())?)
        };
        Ok(SocketPattern { ip, port })
    }

    /// Whether `addr` matches.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        self.ip.is_none_or(|ip| ip == addr.ip()) && self.port.is_none_or(|port| port == addr.port())
    }
}

/// What a guest does with a socket address (keel's own names for the
/// checks `wasmtime-wasi` asks for, so that this layer needs no Wasmtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketUse {
    /// Binding a TCP socket: explicitly, or implicitly (the wildcard address,
    /// port 0) before a connect or a listen.
    TcpBind,
    /// Putting a TCP socket in listening mode, at its local address.
    TcpListen,
    /// Accepting a client on a listening socket (the client's address).
    TcpAccept,
    /// Connecting a TCP socket to a remote address.
    TcpConnect,
    /// Binding a UDP socket, explicitly or implicitly before a send.
    UdpBind,
    /// Sending a datagram to a remote address.
    UdpSend,
    /// Receiving a datagram from a remote address.
    UdpReceive,
}

/// A guest's socket grants, parsed; both empty denies everything.
#[derive(Debug, Clone, Default)]
pub struct SocketAllowlist {
    /// Remote addresses it may connect or send to.
    connect: Vec<SocketPattern>,
    /// Local addresses it may bind and listen on.
    listen: Vec<SocketPattern>,
    /// The workload's own loopback, when it has a service (see
    /// [`SocketAllowlist::with_loopback`]).
    loopback: Option<LoopbackGrant>,
}

/// What a Store may do on its workload's loopback.
#[derive(Debug, Clone)]
struct LoopbackGrant {
    ports: Arc<Loopback>,
    /// Whether the Store is the service's: it may bind free loopback ports
    /// and listen on those it recorded.
    service: bool,
}

impl SocketAllowlist {
    /// Parses the remote addresses a guest may reach (`connect`) and the
    /// local ones it may listen on (`listen`).
    pub fn parse(connect: &[String], listen: &[String]) -> Result<SocketAllowlist, String> {
        let parse = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| SocketPattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(SocketAllowlist {
            connect: parse(connect)?,
            listen: parse(listen)?,
            loopback: None,
        })
    }

    /// These grants, and connects to the ports the workload's service
    /// listens on as `ports` records them; with `service`, also binding a
    /// free loopback port (port 0 on `127.0.0.1` or `::1`: what a
    /// service's bind is turned into) and listening on a recorded one.
    ///
    /// ```
    /// use keel::testing::policy::loopback::Loopback;
    /// use keel::testing::policy::sockets::{SocketAllowlist, SocketUse};
    /// use std::sync::Arc;
    /// let ports = Arc::new(Loopback::new());
    /// let client = SocketAllowlist::default().with_loopback(ports.clone(), false);
    /// let service_port = "127.0.0.1:41000".parse().unwrap();
    /// assert!(!client.allows(&service_port, SocketUse::TcpConnect));
    /// ports.record("127.0.0.1:8080".parse().unwrap(), service_port);
    /// assert!(client.allows(&service_port, SocketUse::TcpConnect));
    /// assert!(!client.allows(&"127.0.0.1:0".parse().unwrap(), SocketUse::TcpBind));
    /// ```
    pub fn with_loopback(mut self, ports: Arc<Loopback>, service: bool) -> SocketAllowlist {
        self.loopback = Some(LoopbackGrant { ports, service });
        self
    }

    /// Whether any socket use is allowed at all.
    pub fn is_empty(&self) -> bool {
        self.connect.is_empty() && self.listen.is_empty() && self.loopback.is_none()
    }

    /// Whether `addr` may be used for `usage`.
    ///
    /// The implicit bind before a connect or a send (the unspecified address,
    /// port 0) is allowed whenever some remote address is, since the connect
    /// or send is checked itself; any other bind, and every listen, must be
    /// covered by the listen grants.
    ///
    /// ```
    /// use keel::testing::policy::sockets::{SocketAllowlist, SocketUse};
    /// let db = SocketAllowlist::parse(&["127.0.0.1:5432".into()], &[]).unwrap();
    /// assert!(db.allows(&"127.0.0.1:5432".parse().unwrap(), SocketUse::TcpConnect));
    /// assert!(db.allows(&"0.0.0.0:0".parse().unwrap(), SocketUse::TcpBind));
    /// assert!(!db.allows(&"0.0.0.0:0".parse().unwrap(), SocketUse::TcpListen));
    /// ```
    pub fn allows(&self, addr: &SocketAddr, usage: SocketUse) -> bool {
        let remote = || self.connect.iter().any(|p| p.allows(addr));
        let local = || self.listen.iter().any(|p| p.allows(addr));
        let implicit = addr.ip().is_unspecified() && addr.port() == 0;
        let lb = self.loopback.as_ref();
        let service = lb.is_some_and(|lb| lb.service);
        let own_port = || lb.is_some_and(|lb| lb.ports.serves(addr));
        match usage {
            SocketUse::TcpConnect => remote() || own_port(),
            SocketUse::UdpSend => remote(),
            SocketUse::TcpBind => {
                let free_loopback = addr.ip().is_loopback() && addr.port() == 0;
                (implicit && (!self.connect.is_empty() || lb.is_some()))
                    || (service && free_loopback)
                    || local()
            }
            SocketUse::UdpBind => (implicit && !self.connect.is_empty()) || local(),
            SocketUse::TcpListen => (service && own_port()) || local(),
            // Only a socket that was allowed to listen accepts clients.
            SocketUse::TcpAccept => service || !self.listen.is_empty(),
            // Datagrams from the peers it may talk to, or to a socket it
            // was allowed to bind for serving.
            SocketUse::UdpReceive => remote() || !self.listen.is_empty(),
        }
    }
}

/// Whether a plugin's config key names a socket address the plugin
/// connects to: `address`, or a key ending in `_address` or `.address`
/// (`redis_address`, `primary.address`). keel checks such addresses
/// against the plugin's grants before it starts anything (see
/// [`SocketAllowlist::ungranted_config_address`]), so a plugin pointed at
/// an address it may not reach is refused at start, not at its first call.
///
/// ```
/// use keel::testing::policy::sockets::is_address_key;
/// assert!(is_address_key("address") && is_address_key("redis_address"));
/// assert!(!is_address_key("addresses") && !is_address_key("ip"));
/// ```
pub fn is_address_key(key: &str) -> bool {
    key == "address" || key.ends_with("_address") || key.ends_with(".address")
}

impl SocketAllowlist {
    /// The first pair of a plugin's `config` whose key names a socket
    /// address ([`is_address_key`]), written as `ip:port` (`[v6]:port`),
    /// that these grants do not let it connect to. A host name cannot be
    /// checked before it is resolved: the connect is checked then.
    ///
    /// ```
    /// use keel::testing::policy::sockets::SocketAllowlist;
    /// let grants = SocketAllowlist::parse(&["127.0.0.1:6379".into()], &[]).unwrap();
    /// let config = [("address".to_string(), "127.0.0.1:6380".to_string())];
    /// let refused = grants.ungranted_config_address(config.iter().map(|(k, v)| (k, v)));
    /// assert_eq!(refused, Some(("address", "127.0.0.1:6380")));
    /// ```
    pub fn ungranted_config_address<'a>(
        &self,
        config: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Option<(&'a str, &'a str)> {
        config
            .into_iter()
            .filter(|(key, _)| is_address_key(key))
            .find(|(_, value)| {
                value
                    .trim()
                    .parse::<SocketAddr>()
                    .is_ok_and(|addr| !self.allows(&addr, SocketUse::TcpConnect))
            })
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

#[cfg(test)]
mod config_address_tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_address_keys_holding_ip_addresses_are_checked() {
        let grants = SocketAllowlist::parse(&["127.0.0.1:*".into(), "[::1]:7000".into()], &[])
            .expect("grants");
        let check = |pairs: &[(&str, &str)]| {
            let pairs = config(pairs);
            grants
                .ungranted_config_address(pairs.iter().map(|(k, v)| (k, v)))
                .map(|(k, v)| format!("{k}={v}"))
        };
        assert_eq!(check(&[("address", "127.0.0.1:1")]), None);
        assert_eq!(check(&[("address", "[::1]:7000")]), None);
        assert_eq!(
            check(&[("a.address", "[::1]:7001")]).as_deref(),
            Some("a.address=[::1]:7001")
        );
        assert_eq!(
            check(&[("prefix", "x"), ("redis_address", "10.0.0.5:6379")]).as_deref(),
            Some("redis_address=10.0.0.5:6379")
        );
        // Not checked: other keys, host names, values that are no address.
        assert_eq!(check(&[("upstream", "10.0.0.5:6379")]), None);
        assert_eq!(check(&[("address", "redis.internal:6379")]), None);
        assert_eq!(check(&[("from_address", "ops@example.com")]), None);
    }
}
