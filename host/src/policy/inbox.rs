//! Reply inboxes: the subjects a request's answer comes back on. keel makes
//! two kinds, because its two messaging surfaces name subjects differently:
//!
//! - A **workload's** subjects (`keel:core/messaging` for plugins acting for
//!   it, and the messaging interfaces it imports) are scoped by the broker
//!   like any subject it names: under its namespace
//!   (`<namespace>._INBOX.<id>`) with `keel run`'s default, as written
//!   (`_INBOX.<id>`) where a fleet's subjects are. [`workload_inbox`] makes
//!   the inbox as the workload sees it.
//! - A **plugin's** raw NATS subjects (`keel:core/nats`) are absolute, as the
//!   protocols it speaks (JetStream) expect, and limited by its grants
//!   instead. Its inboxes are `_INBOX.keel.<namespace token>.<id>`
//!   ([`plugin_inbox`]); grants allow a caller the inboxes of its own
//!   namespace only ([`is_plugin_inbox_of`]), so a plugin acting for one
//!   tenant cannot listen to another's replies.
//!
//! Either way the last token is 22 random letters and digits (about 131
//! bits): nobody can guess another caller's inbox.

/// How a workload's inboxes start, after its namespace.
pub const WORKLOAD_INBOX_PREFIX: &str = "_INBOX.";

/// The first tokens of a plugin's inboxes, before the namespace token.
pub const PLUGIN_INBOX_ROOT: &str = "_INBOX.keel";

/// A fresh last token for an inbox subject.
pub fn inbox_token() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(22)
        .map(char::from)
        .collect()
}

/// A fresh reply inbox for a workload's request, as the workload sees it
/// (`_INBOX.<id>`); the broker scopes it as it scopes the workload's other
/// subjects.
pub fn workload_inbox() -> String {
    format!("{WORKLOAD_INBOX_PREFIX}{}", inbox_token())
}

/// A fresh inbox for a plugin acting for `namespace`, through
/// `keel:core/nats`: `_INBOX.keel.<namespace token>.<id>`.
pub fn plugin_inbox(namespace: &str) -> String {
    format!(
        "{PLUGIN_INBOX_ROOT}.{}.{}",
        keel_names::token(namespace),
        inbox_token()
    )
}

/// Whether subject `tokens` is one of the plugin inboxes of the namespace
/// whose token is `namespace_token` (a literal subject, no wildcards).
pub fn is_plugin_inbox_of(namespace_token: &str, tokens: &[&str]) -> bool {
    match tokens {
        ["_INBOX", "keel", ns, id] => {
            *ns == namespace_token && !id.is_empty() && !id.contains(['*', '>'])
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_inbox_has_its_shape_and_a_fresh_id() {
        let a = workload_inbox();
        let b = workload_inbox();
        assert!(a.starts_with("_INBOX."), "{a}");
        assert_ne!(a, b);
        let p = plugin_inbox("shop");
        let tokens: Vec<&str> = p.split('.').collect();
        assert!(
            is_plugin_inbox_of(&keel_names::token("shop"), &tokens),
            "{p}"
        );
        assert!(!is_plugin_inbox_of(&keel_names::token("other"), &tokens));
        assert!(!is_plugin_inbox_of(
            "shop",
            &["_INBOX", "keel", "shop", "*"]
        ));
    }
}
