//! Where a workload's keys live in Redis: every key of bucket `B` opened
//! by workload `W` of namespace `N` is `<prefix><N>-<W>-<B>:<key>`, the
//! three names as [`keel_names::token`]s (letters and digits, every other
//! byte `_XX`). Tokens hold neither `-` nor `:`, so no two (namespace,
//! workload, bucket) triples share a key space, and no guest key can reach
//! out of its own: what one tenant writes another can neither read nor
//! list.

/// The key prefix of `namespace`'s `workload`'s bucket `bucket`.
pub fn bucket_prefix(prefix: &str, namespace: &str, workload: &str, bucket: &str) -> Vec<u8> {
    format!(
        "{prefix}{}:",
        keel_names::scoped(namespace, workload, bucket)
    )
    .into_bytes()
}

/// A `SCAN … MATCH` pattern for every key starting with `prefix`: the
/// prefix with glob characters escaped, then `*`.
pub fn match_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 2);
    for &byte in prefix {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_and_buckets_never_share_a_prefix() {
        let a = bucket_prefix("keel:", "a-b", "c", "d");
        let b = bucket_prefix("keel:", "a", "b-c", "d");
        let c = bucket_prefix("keel:", "a", "b", "c:d");
        assert_ne!(a, b);
        assert!(!c.starts_with(&bucket_prefix("keel:", "a", "b", "c")));
        assert_eq!(bucket_prefix("p/", "ns", "w", "x"), b"p/ns-w-x:");
    }

    #[test]
    fn glob_characters_of_the_prefix_match_only_themselves() {
        assert_eq!(match_pattern(b"k*[a]?\\:"), b"k\\*\\[a\\]\\?\\\\:*");
    }
}
