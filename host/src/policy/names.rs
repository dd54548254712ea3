//! Which names keel accepts: namespaces, workload and component names, and
//! host names (HTTP routes, outgoing allowlists). One set of rules, used by
//! the manifest loader and by [`WorkloadSpec::validate`] alike.
//!
//! [`WorkloadSpec::validate`]: crate::spec::WorkloadSpec::validate

/// The longest namespace, workload or component name.
pub const MAX_NAME_LEN: usize = 63;

/// The longest host name (as DNS allows).
pub const MAX_HOST_LEN: usize = 253;

/// Checks that `text` can be a namespace, workload or component name:
/// lower-case letters, digits, `-` and `_`, starting with a letter, at most
/// [`MAX_NAME_LEN`] long. A name never holds `.`, `*`, `>` or white space,
/// so it is always one NATS subject token, and it never starts with `_` or
/// `$`, so a namespace prefix can never be mistaken for the `_INBOX` or
/// `$JS` subjects of the host's own connection.
///
/// ```
/// use keel::testing::policy::names::validate_name;
/// assert!(validate_name("team-a").is_ok());
/// assert!(validate_name("a.b").is_err());
/// assert!(validate_name("_INBOX").is_err());
/// ```
pub fn validate_name(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid && text.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid name: use up to {MAX_NAME_LEN} lower-case letters, digits, `-` or `_`, starting with a letter",
            printable(text)
        ))
    }
}

/// Checks that `text` is a host name (`api.example.com`, `localhost`) or an
/// IPv4 address: dot-separated labels of ASCII letters, digits, `-` and `_`,
/// each 1–63 long, at most [`MAX_HOST_LEN`] in all. No scheme, port,
/// wildcard, white space or control character.
///
/// ```
/// use keel::testing::policy::names::validate_host_name;
/// assert!(validate_host_name("api.example.com").is_ok());
/// assert!(validate_host_name("*.example.com").is_err());
/// assert!(validate_host_name("a\u{7}b").is_err());
/// ```
pub fn validate_host_name(text: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if text.len() <= MAX_HOST_LEN && text.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a host name: expected dot-separated labels of letters, digits and `-` \
             (like \"api.example.com\"), without scheme, port or wildcard",
            printable(text)
        ))
    }
}

/// `text` with control characters escaped and cut to 80 characters, for
/// error messages that quote what a user wrote.
pub fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Whether the export or import `name` is the WIT `interface`
/// (`ns:pkg/iface`) at any version (`ns:pkg/iface@1.2.3`).
pub fn is_interface(name: &str, interface: &str) -> bool {
    name.strip_prefix(interface)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_subject_tokens() {
        for good in ["a", "team-a", "a_b", "x1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "A", "1a", "a.b", "a*", "a>", "a b", "_inbox", "$js", "-a",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn host_names_have_no_wildcards_ports_or_control_characters() {
        for good in ["localhost", "api.example.com", "127.0.0.1", "a-b.c_d"] {
            assert!(validate_host_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a..b", ".a", "a.", "*", "*.a", "a:80", "a/b", "a b", "a\nb", "é.com",
        ] {
            assert!(validate_host_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_host_name(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn quoted_text_is_printable_and_short() {
        assert_eq!(printable("a\u{1b}b"), "a\\u{1b}b");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 81);
    }
}
