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
    /// use keel::policy::authority::AuthorityPattern;
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
