//! Which IP addresses are internal: the host itself, private networks, and
//! ranges that are never a public server. Outgoing HTTP refuses them for a
//! host name granted only by pattern (`*.example.com`), so that a DNS answer
//! cannot turn a grant to the internet into a path to the host's own or its
//! network's services.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The name of the internal range `ip` falls in, or `None` for an address
/// that may be a public server.
///
/// IPv6 addresses that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4
/// `2002:aabb:ccdd::`) are judged by the IPv4 address they reach.
///
/// ```
/// use keel::testing::policy::addresses::internal_range;
/// assert_eq!(internal_range("10.1.2.3".parse().unwrap()), Some("private"));
/// assert_eq!(internal_range("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
/// assert_eq!(internal_range("93.184.216.34".parse().unwrap()), None);
/// ```
pub fn internal_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        // `0.0.0.0` reaches the host itself on Linux; the rest of 0/8 is
        // "this network".
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        // 100.64.0.0/10: carrier-grade NAT, private to a provider's network.
        Some("shared")
    } else if ip.is_link_local() {
        // Includes 169.254.169.254, the cloud metadata service.
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240 {
        // 240.0.0.0/4 (reserved) and 255.255.255.255 (broadcast).
        Some("reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        // 192.0.0.0/24: IETF protocol assignments, never a public server.
        Some("reserved")
    } else {
        None
    }
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return v4_range(v4);
    }
    let first = ip.segments()[0];
    if first & 0xfe00 == 0xfc00 {
        Some("unique local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        // Site-local: deprecated, but still private where it is used.
        Some("site-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms a resolver or
/// a translating network may hand out.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped `::ffff:a.b.c.d`.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // IPv4-compatible `::a.b.c.d` (deprecated; `::` and `::1` are
        // handled before this).
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // NAT64 well-known prefix `64:ff9b::/96`.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4 `2002:aabb:ccdd::/48`.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Option<&'static str> {
        internal_range(text.parse().expect("an IP address"))
    }

    #[test]
    fn internal_ipv4_ranges_are_named() {
        for (ip, name) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.254", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared"),
            ("100.127.255.255", "shared"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("192.0.0.8", "reserved"),
        ] {
            assert_eq!(range(ip), Some(name), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.0.1",
            "192.0.2.1",
            "192.169.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }

    #[test]
    fn internal_ipv6_ranges_are_named() {
        for (ip, name) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::192.168.0.1", "private"),
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
        ] {
            assert_eq!(range(ip), Some(name), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "fbff::1",
            "fe00::1",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }
}
