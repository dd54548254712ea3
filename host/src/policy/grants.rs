//! Which NATS subjects a plugin may use through `keel:core/nats`: the
//! patterns its manifest grants (`grants.subjects`), plus its own inboxes
//! ([`crate::policy::inbox`]).
//!
//! A pattern is a NATS subject pattern (`*` is one token, a final `>` one or
//! more) in which a token may also *contain* `*`, matching any run of
//! characters inside that token (`KV_demo_*` matches `KV_demo_a`), and
//! `{namespace}` stands for the caller's namespace as a
//! [`keel_names::token`]. So `$KV.KV_{namespace}-*.>` lets one instance of a
//! plugin reach each tenant's buckets only on that tenant's behalf.

use crate::policy::inbox::is_plugin_inbox_of;
use crate::policy::subject::{self as rules, Use};

/// The subjects granted to a plugin (or, in composed mode, to the plugins
/// composed into one component, which share its imports).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectGrants {
    patterns: Vec<Vec<String>>,
}

impl SubjectGrants {
    /// Parses grant patterns; an invalid one is an error naming it.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<SubjectGrants, String> {
        let mut grants = SubjectGrants::default();
        for pattern in patterns {
            grants.patterns.push(parse_pattern(pattern.as_ref())?);
        }
        Ok(grants)
    }

    /// These grants and `other`'s.
    pub fn union(&self, other: &SubjectGrants) -> SubjectGrants {
        let mut patterns = self.patterns.clone();
        for pattern in &other.patterns {
            if !patterns.contains(pattern) {
                patterns.push(pattern.clone());
            }
        }
        SubjectGrants { patterns }
    }

    /// Whether a caller of `namespace` may use `subject` (a literal subject,
    /// or a subscription pattern, which must fit inside one grant).
    pub fn allows(&self, namespace: &str, subject: &str) -> bool {
        let tokens: Vec<&str> = subject.split('.').collect();
        let namespace = keel_names::token(namespace);
        if is_plugin_inbox_of(&namespace, &tokens) {
            return true;
        }
        self.patterns
            .iter()
            .any(|pattern| covers(pattern, &tokens, &namespace))
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<String>, String> {
    // The rules every subject follows (the placeholder standing for a
    // namespace token), then those of grants.
    rules::check(&pattern.replace("{namespace}", "ns"), Use::Subscribe)
        .map_err(|e| format!("grant {e}"))?;
    let tokens: Vec<String> = pattern.split('.').map(str::to_string).collect();
    let bad = |why: &str| Err(format!("`{pattern}` is not a subject pattern: {why}"));
    if pattern.is_empty() || tokens.iter().any(String::is_empty) {
        return bad("empty token");
    }
    if pattern.contains(char::is_whitespace) {
        return bad("white space");
    }
    for (i, token) in tokens.iter().enumerate() {
        if token.contains('>') && (token != ">" || i + 1 != tokens.len()) {
            return bad("`>` must be a whole token, and the last");
        }
        let rest = token.replace("{namespace}", "");
        if rest.contains(['{', '}']) {
            return bad("the only placeholder is `{namespace}`");
        }
    }
    Ok(tokens)
}

/// Whether grant `pattern` covers every subject `subject` can match.
fn covers(pattern: &[String], subject: &[&str], namespace: &str) -> bool {
    let mut i = 0;
    for grant in pattern {
        if grant == ">" {
            return i < subject.len();
        }
        let Some(token) = subject.get(i) else {
            return false;
        };
        if *token == ">" {
            return false;
        }
        let grant = if grant.contains('{') {
            std::borrow::Cow::Owned(grant.replace("{namespace}", namespace))
        } else {
            std::borrow::Cow::Borrowed(grant.as_str())
        };
        if grant == "*" {
            // A subscription's `*` is one token: covered.
        } else if *token == "*" || !glob(&grant, token) {
            return false;
        }
        i += 1;
    }
    i == subject.len()
}

/// `*` inside a token matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(patterns: &[&str]) -> SubjectGrants {
        SubjectGrants::parse(patterns).unwrap()
    }

    #[test]
    fn whole_token_wildcards_work_as_in_nats() {
        let g = grants(&["orders.*", "audit.>"]);
        assert!(g.allows("ns", "orders.new"));
        assert!(!g.allows("ns", "orders.new.eu"));
        assert!(g.allows("ns", "audit.a.b"));
        assert!(!g.allows("ns", "audit"));
        assert!(g.allows("ns", "audit.>"), "a subscription inside the grant");
        assert!(
            !g.allows("ns", "orders.>"),
            "a subscription wider than the grant"
        );
        assert!(!g.allows("ns", "payments.new"));
    }

    #[test]
    fn stars_inside_a_token_and_the_namespace_placeholder() {
        let g = grants(&["$KV.demo_*.>", "$JS.API.STREAM.INFO.KV_{namespace}-*"]);
        assert!(g.allows("ns", "$KV.demo_a.key"));
        assert!(!g.allows("ns", "$KV.demo.key"));
        assert!(!g.allows("ns", "orders.new"));
        assert!(g.allows("shop", "$JS.API.STREAM.INFO.KV_shop-web-default"));
        assert!(!g.allows("shop", "$JS.API.STREAM.INFO.KV_shop2-web-default"));
        assert!(!g.allows("sho", "$JS.API.STREAM.INFO.KV_shop-web-default"));
        assert!(!g.allows("shop", "$JS.API.STREAM.INFO.*"));
    }

    #[test]
    fn a_namespace_reaches_its_own_inboxes_only() {
        let g = SubjectGrants::default();
        let inbox = crate::policy::inbox::plugin_inbox("shop");
        assert!(g.allows("shop", &inbox));
        assert!(!g.allows("other", &inbox));
        assert!(!g.allows("shop", "_INBOX.keel.shop.*"));
        assert!(!g.allows("shop", "_INBOX.>"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        let long = "x".repeat(2_000);
        for bad in ["", "a..b", "a.>.b", "a.b>", "{name}.x", "a b", &long] {
            assert!(SubjectGrants::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
