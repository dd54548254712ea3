//! A workload's own loopback: the ports its service listens on, as the
//! workload's components see them.
//!
//! The host's `127.0.0.1:8080` can belong to one listener only, yet every
//! workload's service may ask for it. So a service never gets the port it
//! asks for: its bind to a loopback (or unspecified) address is turned
//! into a bind to a free port the host's kernel picks on the same loopback
//! address, and the pair is recorded here. A connect from the workload's
//! own Stores to `127.0.0.1:8080` (or `[::1]:8080`) is then turned into a
//! connect to that port, and the socket checks grant exactly the recorded
//! ports: another workload's service, or a loopback service of the host
//! itself, stays out of reach unless the workload's own `sockets.allow`
//! names it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

/// The ports a workload's service listens on: the address it asked for →
/// the host address it got. One per workload, shared by all its Stores.
#[derive(Debug, Default)]
pub struct Loopback {
    ports: Mutex<BTreeMap<SocketAddr, SocketAddr>>,
}

impl Loopback {
    /// An empty loopback: no service is listening yet.
    pub fn new() -> Loopback {
        Loopback::default()
    }

    /// The loopback address a service's bind to `addr` stands for, when it
    /// is a loopback or unspecified address (`0.0.0.0:8080` means
    /// `127.0.0.1:8080` here: the service's listeners are the workload's
    /// only), or `None` for any other address.
    ///
    /// ```
    /// use keel::testing::policy::loopback::Loopback;
    /// let asked = Loopback::requested(&"0.0.0.0:8080".parse().unwrap());
    /// assert_eq!(asked, Some("127.0.0.1:8080".parse().unwrap()));
    /// assert_eq!(Loopback::requested(&"10.0.0.1:80".parse().unwrap()), None);
    /// ```
    pub fn requested(addr: &SocketAddr) -> Option<SocketAddr> {
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() || ip.is_unspecified() => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, addr.port()))
    }

    /// Where a service's bind to `addr` really goes: the same loopback
    /// address, port 0 (the kernel picks a free one). `None`: `addr` is no
    /// loopback address, and the bind is checked as it is.
    pub fn bind_address(addr: &SocketAddr) -> Option<SocketAddr> {
        Loopback::requested(addr).map(|asked| SocketAddr::new(asked.ip(), 0))
    }

    /// Records that the service asked for `asked` and listens at `got`.
    /// A port asked for again (a restarted service) takes the new address.
    pub fn record(&self, asked: SocketAddr, got: SocketAddr) {
        if let Some(asked) = Loopback::requested(&asked)
            && asked.port() != 0
        {
            self.lock().insert(asked, got);
        }
    }

    /// Forgets every port: the service's instance has ended, its
    /// listeners with it.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Where a connect to `addr` goes: the service's port when `addr` is a
    /// loopback address the service listens on (as it asked for it), else
    /// `addr` unchanged.
    ///
    /// ```
    /// use keel::testing::policy::loopback::Loopback;
    /// let lb = Loopback::new();
    /// lb.record("127.0.0.1:8080".parse().unwrap(), "127.0.0.1:41234".parse().unwrap());
    /// let to = |a: &str| lb.connect_address(a.parse().unwrap()).to_string();
    /// assert_eq!(to("127.0.0.1:8080"), "127.0.0.1:41234");
    /// assert_eq!(to("127.0.0.1:8081"), "127.0.0.1:8081");
    /// ```
    pub fn connect_address(&self, addr: SocketAddr) -> SocketAddr {
        let is_loopback = addr.ip().is_loopback();
        match self.lock().get(&addr) {
            Some(got) if is_loopback => *got,
            _ => addr,
        }
    }

    /// Whether `addr` is one of the addresses the service listens at (what
    /// a rewritten connect reaches, or what the service's own listen is).
    pub fn serves(&self, addr: &SocketAddr) -> bool {
        self.lock().values().any(|got| got == addr)
    }

    /// The addresses the service asked for and those it got, for logs and
    /// tests.
    pub fn ports(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.lock().iter().map(|(a, g)| (*a, *g)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SocketAddr, SocketAddr>> {
        // The map holds plain addresses: one left by a panicking holder is
        // still consistent.
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn only_recorded_loopback_ports_are_rewritten_and_served() {
        let lb = Loopback::new();
        lb.record(addr("0.0.0.0:8080"), addr("127.0.0.1:40000"));
        lb.record(addr("[::]:8080"), addr("[::1]:40001"));
        lb.record(addr("127.0.0.1:0"), addr("127.0.0.1:40002"));
        assert_eq!(
            lb.connect_address(addr("127.0.0.1:8080")),
            addr("127.0.0.1:40000")
        );
        assert_eq!(lb.connect_address(addr("[::1]:8080")), addr("[::1]:40001"));
        // Not a loopback address, or a port the service never asked for.
        assert_eq!(
            lb.connect_address(addr("10.0.0.1:8080")),
            addr("10.0.0.1:8080")
        );
        assert_eq!(lb.connect_address(addr("127.0.0.1:9")), addr("127.0.0.1:9"));
        assert!(lb.serves(&addr("127.0.0.1:40000")));
        // A port-0 bind is never recorded: nobody can ask for it.
        assert!(!lb.serves(&addr("127.0.0.1:40002")));
        lb.clear();
        assert!(!lb.serves(&addr("127.0.0.1:40000")));
        assert_eq!(
            lb.connect_address(addr("127.0.0.1:8080")),
            addr("127.0.0.1:8080")
        );
    }

    #[test]
    fn binds_go_to_a_free_port_of_the_same_loopback() {
        assert_eq!(
            Loopback::bind_address(&addr("127.0.0.1:8080")),
            Some(addr("127.0.0.1:0"))
        );
        assert_eq!(
            Loopback::bind_address(&addr("[::]:8080")),
            Some(addr("[::1]:0"))
        );
        assert_eq!(Loopback::bind_address(&addr("192.168.1.2:8080")), None);
    }
}
