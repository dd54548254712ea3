//! One set of rules for NATS subjects, used by the in-process bus, the NATS
//! broker, `keel:core/nats` and the manifest, so that what one accepts the
//! others accept too, and nothing reaches the shared NATS connection that
//! would make the server close it.
//!
//! nats-server (2.9) reads a protocol line of at most `max_control_line`
//! bytes (4 KiB by default) and closes the connection on a longer one; a
//! publish's line holds its subject and its reply subject. Bounding each to
//! [`MAX_SUBJECT_BYTES`] keeps every line keel sends well inside that, and a
//! subscription the server would refuse is refused here, once, instead of
//! being sent again on every reconnect.

/// The longest subject (or reply subject, or subscription pattern) keel
/// sends, in bytes, namespace included.
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// Where a subject is used, which decides what wildcards mean in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Published to (or a reply subject): no `*` or `>` token.
    Publish,
    /// Subscribed to: `*` stands for one token, a final `>` for the rest.
    Subscribe,
    /// Sent as is over raw NATS by a protocol plugin: wildcard characters
    /// are data there (JetStream API subjects carry filters such as
    /// `CONSUMER.CREATE.<stream>.<name>.$KV.b.>`).
    Send,
}

/// Why a subject is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a valid subject: {why}")]
pub struct SubjectError {
    /// The subject, shortened when long.
    shown: String,
    /// The rule it breaks.
    why: String,
}

impl SubjectError {
    fn new(subject: &str, why: impl Into<String>) -> SubjectError {
        SubjectError {
            shown: shortened(subject),
            why: why.into(),
        }
    }
}

/// `subject` cut to a readable length for messages and logs.
pub fn shortened(subject: &str) -> String {
    const SHOWN: usize = 60;
    if subject.len() <= SHOWN {
        return subject.to_string();
    }
    let mut end = SHOWN;
    while !subject.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &subject[..end])
}

/// Checks `subject` for `usage`: at most [`MAX_SUBJECT_BYTES`] bytes of
/// non-empty dot-separated tokens, no white space or control characters
/// (they end a protocol line), and wildcards only where `usage` allows.
pub fn check(subject: &str, usage: Use) -> Result<(), SubjectError> {
    let bad = |why: String| Err(SubjectError::new(subject, why));
    if subject.is_empty() {
        return bad("it is empty".into());
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return bad(format!(
            "it is {} bytes long, more than {MAX_SUBJECT_BYTES}",
            subject.len()
        ));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains white space or a control character".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return bad("it has an empty token (`..`, or a dot at an end)".into());
    }
    match usage {
        Use::Publish if tokens.iter().any(|t| *t == "*" || *t == ">") => {
            bad("a published subject cannot hold a `*` or `>` wildcard".into())
        }
        Use::Subscribe if tokens[..tokens.len() - 1].contains(&">") => {
            bad("`>` can only be the last token".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_allowed_where_they_mean_something() {
        assert!(check("orders.new", Use::Publish).is_ok());
        assert!(check("orders.*", Use::Publish).is_err());
        assert!(check("orders.>", Use::Publish).is_err());
        assert!(check("orders.*.>", Use::Subscribe).is_ok());
        assert!(check(">", Use::Subscribe).is_ok());
        assert!(check("a.>.b", Use::Subscribe).is_err());
        assert!(check("$JS.API.CONSUMER.CREATE.s.c.$KV.b.>", Use::Send).is_ok());
        // Inside a token, `*` and `>` are ordinary characters.
        assert!(check("KV_a*b.x>", Use::Publish).is_ok());
    }

    #[test]
    fn malformed_subjects_are_refused_whatever_the_use() {
        for usage in [Use::Publish, Use::Subscribe, Use::Send] {
            for bad in [
                "",
                ".a",
                "a.",
                "a..b",
                "a b",
                "a\tb",
                "a\r\nPUB x 1",
                "a\u{0}",
            ] {
                assert!(check(bad, usage).is_err(), "{bad:?} for {usage:?}");
            }
        }
    }

    #[test]
    fn long_subjects_are_refused_and_shown_shortened() {
        let longest = "a".repeat(MAX_SUBJECT_BYTES);
        assert!(check(&longest, Use::Publish).is_ok());
        let long = format!("{longest}b");
        let err = check(&long, Use::Subscribe).unwrap_err().to_string();
        assert!(err.contains("1025 bytes long, more than 1024"), "{err}");
        assert!(err.len() < 200, "{err}");
        let wide = "é".repeat(600);
        assert!(check(&wide, Use::Send).is_err(), "1,200 bytes");
    }
}
