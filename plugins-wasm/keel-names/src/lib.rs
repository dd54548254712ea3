//! How keel names things on a shared NATS server, written once for the host
//! (which checks subject grants) and the plugins (which build the names).
//!
//! JetStream names (buckets, streams) allow `[A-Za-z0-9_-]` only, while
//! namespaces, workload names and a guest's bucket identifiers are freer. A
//! name becomes a **token** by keeping ASCII letters and digits and writing
//! every other byte of its UTF-8 as `_` and two upper-case hex digits (`-`
//! is `_2D`, `_` is `_5F`). A token therefore never contains `-`, so tokens
//! joined with `-` split back apart in exactly one way: names built from
//! tokens are collision-free.
//!
//! keel's NATS-backed plugins name a workload's bucket
//! `<namespace>-<workload>-<identifier>` in tokens (see [`scoped`]), so a
//! grant pattern `KV_{namespace}-*` covers exactly one namespace's buckets.

/// A name as a token: letters and digits kept, every other byte `_XX`.
///
/// ```
/// assert_eq!(keel_names::token("default"), "default");
/// assert_eq!(keel_names::token("my-team"), "my_2Dteam");
/// assert_eq!(keel_names::token("a_b"), "a_5Fb");
/// assert_eq!(keel_names::token("clé"), "cl_C3_A9");
/// ```
pub fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push('_');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0xf));
        }
    }
    out
}

/// Reads a token back into the name it was made from; `None` if `token` is
/// not one [`token`] makes.
///
/// ```
/// assert_eq!(keel_names::name("my_2Dteam").as_deref(), Some("my-team"));
/// assert_eq!(keel_names::name("bad-token"), None);
/// ```
pub fn name(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The name of a workload's own `identifier` (a bucket, a container):
/// `<namespace>-<workload>-<identifier>`, each part a [`token`].
///
/// ```
/// assert_eq!(keel_names::scoped("shop", "cart", "default"), "shop-cart-default");
/// assert_eq!(keel_names::scoped("a-b", "c", "d"), "a_2Db-c-d");
/// assert_ne!(keel_names::scoped("a-b", "c", "d"), keel_names::scoped("a", "b-c", "d"));
/// ```
pub fn scoped(namespace: &str, workload: &str, identifier: &str) -> String {
    format!(
        "{}-{}-{}",
        token(namespace),
        token(workload),
        token(identifier)
    )
}

fn hex_digit(value: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(value & 0xf)])
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_hold_a_dash() {
        for text in ["", "plain", "a-b_c", "ключ", "鍵/🔑", "x y.z", "_2D"] {
            let t = token(text);
            assert!(!t.contains('-'), "{t}");
            assert!(
                t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{t}"
            );
            assert_eq!(name(&t).as_deref(), Some(text));
        }
    }

    #[test]
    fn scoped_names_split_back_into_their_parts() {
        let made = scoped("team-1", "web_app", "orders.v2");
        let parts: Vec<_> = made
            .split('-')
            .map(|p| name(p).unwrap_or_default())
            .collect();
        assert_eq!(parts, ["team-1", "web_app", "orders.v2"]);
    }
}
