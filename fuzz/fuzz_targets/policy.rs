//! The policy layer's parsers on arbitrary text, one candidate a line (as
//! in `fuzz/seeds/policy/`): every line is tried as an outgoing HTTP
//! pattern, a socket pattern, a host name and a name, and every pattern is
//! asked about every line. Never panics, and what parses behaves as written:
//! - an authority pattern allows the host it names (on its port, or the
//!   scheme's default only), case-insensitively, and `*.d` never allows `d`;
//! - a socket pattern written as an address allows that address only;
//! - a valid host name has no scheme, port, wildcard or white space.

#![no_main]

use keel::testing::policy::authority::AuthorityPattern;
use keel::testing::policy::names::{MAX_HOST_LEN, printable, validate_host_name, validate_name};
use keel::testing::policy::sockets::SocketPattern;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

/// Lines past this many are ignored: the checks are quadratic.
const MAX_LINES: usize = 16;

/// Ports every authority pattern is asked about, besides its own.
const PORTS: [u16; 5] = [0, 22, 80, 443, 65535];

fuzz_target!(|text: &str| {
    let lines: Vec<&str> = text.lines().take(MAX_LINES).collect();
    let addrs: Vec<SocketAddr> = lines.iter().filter_map(|l| l.parse().ok()).collect();

    for line in &lines {
        let _ = printable(line);
        let _ = validate_name(line);
        if validate_host_name(line).is_ok() {
            assert!(line.len() <= MAX_HOST_LEN, "{line:?}");
            assert!(
                !line.contains(|c: char| c.is_whitespace()
                    || c.is_control()
                    || ":/*[]@".contains(c)),
                "{line:?} passed as a host name"
            );
        }

        if let Ok(pattern) = AuthorityPattern::parse(line) {
            check_names_itself(line, &pattern);
            for host in &lines {
                for port in PORTS {
                    for default_port in [80, 443] {
                        assert_eq!(
                            pattern.allows(host, port, default_port),
                            pattern.allows(&host.to_ascii_uppercase(), port, default_port),
                            "{line:?}: case changed the answer for {host:?}"
                        );
                    }
                }
            }
        }

        if let Ok(pattern) = SocketPattern::parse(line) {
            let exact = line.parse::<SocketAddr>().ok();
            if let Some(exact) = exact {
                assert!(pattern.allows(&exact), "{line:?} refuses its own address");
            }
            for addr in &addrs {
                let allowed = pattern.allows(addr);
                // Scope ids and flow labels are not part of a pattern.
                if let Some(exact) = exact
                    && (exact.ip(), exact.port()) != (addr.ip(), addr.port())
                {
                    assert!(!allowed, "{line:?} allows {addr}");
                }
            }
        }
    }
});

/// A parsed authority pattern allows the host (and port) it was written with.
fn check_names_itself(text: &str, pattern: &AuthorityPattern) {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']').expect("parsed, so bracketed");
            (v6, after.strip_prefix(':'))
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    let port: Option<u16> = port.map(|p| p.parse().expect("parsed, so a port"));
    let (request_port, default_port) = match port {
        Some(p) => (p, p.wrapping_add(1)),
        None => (443, 443),
    };
    match host.strip_prefix("*.") {
        Some(domain) => {
            let sub = format!("api.{domain}");
            assert!(
                pattern.allows(&sub, request_port, default_port),
                "{text:?} refuses {sub}"
            );
            assert!(
                !pattern.allows(domain, request_port, default_port),
                "{text:?} allows {domain}"
            );
        }
        None => assert!(
            pattern.allows(host, request_port, default_port),
            "{text:?} refuses {host}"
        ),
    }
    if port.is_none() {
        assert!(!pattern.allows(host, 22, 443), "{text:?} allows port 22");
    }
}
