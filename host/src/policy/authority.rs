//! Outgoing HTTP allowlist entries: which authorities (host and port) a
//! guest may send requests to.

/// One allowlist entry: `host`, `host:port`, `*.domain` or `*.domain:port`
/// (an IPv6 address in brackets: `[::1]:8080`). Without a port, only the
/// default port of the request's scheme matches (80 for `http`, 443 for
/// `https`): naming a host grants its web server, not every service on it.
/// Host names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl AuthorityPattern {
    /// Parses an allowlist entry.
    ///
    /// ```
    /// use keel::testing::policy::authority::AuthorityPattern;
    /// let p = AuthorityPattern::parse("*.example.com:8443").unwrap();
    /// assert!(p.allows("api.example.com", 8443, 443));
    /// assert!(!p.allows("example.com", 8443, 443));
    /// assert!(!p.allows("api.example.com", 80, 80));
    /// let p = AuthorityPattern::parse("example.com").unwrap();
    /// assert!(p.allows("example.com", 443, 443));
    /// assert!(!p.allows("example.com", 22, 443));
    /// ```
    pub fn parse(text: &str) -> Result<AuthorityPattern, String> {
        let bad = |why: &str| {
            format!(
                "`{}` is not an outgoing HTTP pattern: {why}",
                crate::policy::names::printable(text)
            )
        };
        if text.contains("://") || text.contains('/') {
            return Err(bad("give a host (and port), not a URL"));
        }
        // `[v6]`, `[v6]:port`, `host`, `host:port`: at most one `:` outside brackets.
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (v6, after) = rest
                    .split_once(']')
                    .ok_or_else(|| bad("an IPv6 address needs its closing `]`"))?;
                v6.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address in brackets"))?;
                match after {
                    "" => (v6, None),
                    _ => (
                        v6,
                        Some(
                            after
                                .strip_prefix(':')
                                .ok_or_else(|| bad("expected `:port`"))?,
                        ),
                    ),
                }
            }
            None => match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            },
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))
            })
            .transpose()?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.contains('*') {
            return Err(bad("`*` may only start the pattern, as in `*.example.com`"));
        }
        if !text.starts_with('[') {
            crate::policy::names::validate_host_name(host).map_err(|e| bad(&e))?;
        }
        Ok(AuthorityPattern {
            host: host.to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    /// Whether a request to `host` on `port` matches, where `default_port`
    /// is the default port of the request's scheme.
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.unwrap_or(default_port) == port
    }
}

/// How a request's host was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// By an entry naming the host itself (`db.internal`, `127.0.0.1:9000`):
    /// the user chose that destination, whatever it resolves to.
    Exact,
    /// Only by a `*.domain` entry: the name is the guest's choice, so what it
    /// resolves to is checked.
    Pattern,
}

/// A guest's outgoing HTTP allowlist and whether names granted by pattern
/// may resolve to internal addresses (see [`crate::policy::addresses`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAllowlist {
    patterns: Vec<AuthorityPattern>,
    block_private: bool,
}

impl Default for OutgoingAllowlist {
    /// Nothing allowed; internal addresses blocked for pattern grants.
    fn default() -> OutgoingAllowlist {
        OutgoingAllowlist {
            patterns: Vec::new(),
            block_private: true,
        }
    }
}

impl OutgoingAllowlist {
    /// Parses `entries` (see [`AuthorityPattern::parse`]); `block_private`
    /// refuses internal addresses behind names granted by pattern.
    pub fn parse(entries: &[String], block_private: bool) -> Result<OutgoingAllowlist, String> {
        Ok(OutgoingAllowlist {
            patterns: entries
                .iter()
                .map(|e| AuthorityPattern::parse(e))
                .collect::<Result<_, _>>()?,
            block_private,
        })
    }

    /// How a request to `host` on `port` is granted (`default_port` is its
    /// scheme's), if at all. An exact entry wins over a pattern.
    ///
    /// ```
    /// use keel::testing::policy::authority::{Grant, OutgoingAllowlist};
    /// let list = OutgoingAllowlist::parse(
    ///     &["*.example.com".into(), "db.example.com".into()], true).unwrap();
    /// assert_eq!(list.grant("api.example.com", 443, 443), Some(Grant::Pattern));
    /// assert_eq!(list.grant("db.example.com", 80, 80), Some(Grant::Exact));
    /// assert_eq!(list.grant("example.org", 80, 80), None);
    /// ```
    pub fn grant(&self, host: &str, port: u16, default_port: u16) -> Option<Grant> {
        let mut grant = None;
        for pattern in self.patterns.iter() {
            if pattern.allows(host, port, default_port) {
                if !pattern.wildcard {
                    return Some(Grant::Exact);
                }
                grant = Some(Grant::Pattern);
            }
        }
        grant
    }

    /// The internal range (its name) that refuses a connection to `ip` for
    /// a host granted by `grant`, or `None` when the address may be used.
    pub fn refuses(&self, grant: Grant, ip: std::net::IpAddr) -> Option<&'static str> {
        match grant {
            Grant::Pattern if self.block_private => crate::policy::addresses::internal_range(ip),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts_and_ports() {
        let exact = AuthorityPattern::parse("Example.com").unwrap();
        assert!(exact.allows("example.com", 443, 443));
        assert!(exact.allows("example.com", 80, 80));
        assert!(!exact.allows("api.example.com", 443, 443));
        assert!(
            !exact.allows("example.com", 6379, 80),
            "no port in the pattern: the scheme's default port only"
        );
        let port = AuthorityPattern::parse("127.0.0.1:9000").unwrap();
        assert!(port.allows("127.0.0.1", 9000, 80));
        assert!(!port.allows("127.0.0.1", 9001, 80));
        let v6 = AuthorityPattern::parse("[::1]:80").unwrap();
        assert!(v6.allows("::1", 80, 80));
        assert!(
            AuthorityPattern::parse("[::1]")
                .unwrap()
                .allows("::1", 443, 443)
        );
    }

    #[test]
    fn only_pattern_grants_refuse_internal_addresses() {
        let entries = ["*.example.com".to_string(), "db.example.com".to_string()];
        let loopback = "127.0.0.1".parse().unwrap();
        let public = "93.184.216.34".parse().unwrap();
        let blocking = OutgoingAllowlist::parse(&entries, true).unwrap();
        let pattern = blocking.grant("x.example.com", 80, 80).unwrap();
        assert_eq!(blocking.refuses(pattern, loopback), Some("loopback"));
        assert_eq!(blocking.refuses(pattern, public), None);
        let exact = blocking.grant("DB.example.com", 80, 80).unwrap();
        assert_eq!(exact, Grant::Exact, "the exact entry wins over the pattern");
        assert_eq!(blocking.refuses(exact, loopback), None);
        let open = OutgoingAllowlist::parse(&entries, false).unwrap();
        assert_eq!(open.refuses(pattern, loopback), None);
        assert!(
            OutgoingAllowlist::default()
                .grant("x.example.com", 80, 80)
                .is_none()
        );
        assert!(OutgoingAllowlist::parse(&["a:b:c".into()], true).is_err());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "http://x",
            "a.*.com",
            "x:notaport",
            "a:b:c",
            "*",
            "a b",
            "a\u{7}b",
            "",
            "[::1",
            "[x]:80",
            "a:",
            "a:99999",
        ] {
            assert!(AuthorityPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
