//! The socket allowlist: which addresses a guest may connect or bind to.

use std::net::{IpAddr, SocketAddr};

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
    /// use keel::workload::network::SocketPattern;
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

/// A parsed allowlist; empty denies everything.
#[derive(Debug, Clone, Default)]
pub struct SocketAllowlist {
    patterns: Vec<SocketPattern>,
}

impl SocketAllowlist {
    /// Parses every pattern (the manifest loader has already checked them).
    pub fn parse(patterns: &[String]) -> Result<SocketAllowlist, String> {
        let patterns = patterns
            .iter()
            .map(|p| SocketPattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(SocketAllowlist { patterns })
    }

    /// Whether any socket use is allowed at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `addr` is allowed. Binding to the unspecified address with
    /// port 0 (what `connect` does implicitly) is allowed whenever some
    /// address is, since the connect itself is checked.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        (addr.ip().is_unspecified() && addr.port() == 0 && !self.is_empty())
            || self.patterns.iter().any(|p| p.allows(addr))
    }
}
