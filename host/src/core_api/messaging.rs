//! `keel:core/messaging` over the host's [`Broker`] (in-process bus or
//! NATS). By default every subject a workload names, reply inboxes
//! included, is scoped under its namespace (`<namespace>.<subject>`), so
//! tenants neither hear nor answer each other.
//!
//! A namespace is a name that starts with a lower-case letter
//! ([`crate::spec::validate_name`]), so no workload subject can ever be
//! one of the subjects plugins and the NATS client use for themselves
//! (`_INBOX.…`, `$JS.…`, `$KV.…`): a workload cannot read JetStream replies
//! whatever pattern it subscribes to.
//!
//! A host on NATS may instead map subjects as written
//! ([`SubjectScope::AsWritten`]), as wasmCloud hosts do: tenants are then
//! separated by NATS accounts, and [`check_open`] keeps workloads off the
//! subjects the host itself relies on.

use super::bindings::keel::core::messaging::{self as api, Error, Message};
use super::broker::{Broker, BrokerError};
use super::bus::Message as BusMessage;
use super::view::CoreCtxView;
use crate::spec::SubjectScope;
use std::time::Duration;

/// The first token of the host protocol's subjects (`runtime.host.…`,
/// `runtime.operator.…`): no workload may use them.
pub const CONTROL_TOKEN: &str = "runtime";

/// The broker subject for `subject` named by a workload of `namespace`.
pub fn scoped(scope: SubjectScope, namespace: &str, subject: &str) -> String {
    match scope {
        SubjectScope::Namespace => format!("{namespace}.{subject}"),
        SubjectScope::AsWritten => subject.to_string(),
    }
}

/// `subject` as a workload of `namespace` sees it, or `None` when it lies
/// outside the namespace (a workload can neither see nor use it).
pub fn within(scope: SubjectScope, namespace: &str, subject: &str) -> Option<String> {
    match scope {
        SubjectScope::Namespace => subject
            .strip_prefix(namespace)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|rest| !rest.is_empty())
            .map(str::to_string),
        SubjectScope::AsWritten => (!subject.is_empty()).then(|| subject.to_string()),
    }
}

/// `subject` as a workload of `namespace` sees it (the scope removed; a
/// subject outside the namespace is returned whole).
pub fn unscoped(scope: SubjectScope, namespace: &str, subject: &str) -> String {
    within(scope, namespace, subject).unwrap_or_else(|| subject.to_string())
}

/// Whether a workload may use `subject` as written: never the host
/// protocol's subjects nor `$` subjects (JetStream's API, the system
/// account's), and for a subscription, no wildcard or `_` as its first
/// token (it would hear other clients' replies or the host's requests).
/// Under [`SubjectScope::Namespace`] every subject is fine: the prefix
/// keeps it apart.
pub fn check_open(scope: SubjectScope, subject: &str, subscribe: bool) -> Result<(), String> {
    if scope == SubjectScope::Namespace {
        return Ok(());
    }
    let first = subject.split('.').next().unwrap_or_default();
    let reserved = first == CONTROL_TOKEN
        || first.starts_with('$')
        || (subscribe && (first == "*" || first == ">" || first.starts_with('_')));
    if reserved {
        Err(format!(
            "`{}` is reserved: workloads may not use `{CONTROL_TOKEN}.…` or `$…` subjects, nor              subscribe to `_…` or to a wildcard first token",
            crate::policy::subject::shortened(subject)
        ))
    } else {
        Ok(())
    }
}

fn error(e: BrokerError) -> Error {
    match e {
        BrokerError::NoResponders(_) => Error::NoResponders,
        BrokerError::Timeout(_) => Error::Timeout,
        BrokerError::InvalidSubject(s) => Error::InvalidSubject(s),
        other @ (BrokerError::TooLarge { .. } | BrokerError::Unavailable(_)) => {
            Error::Other(other.to_string())
        }
    }
}

/// `publish` for a caller in `namespace`.
pub async fn publish(broker: &Broker, namespace: &str, message: Message) -> Result<(), Error> {
    let scope = broker.subject_scope();
    check_open(scope, &message.subject, false).map_err(Error::InvalidSubject)?;
    if let Some(reply) = &message.reply_to {
        check_open(scope, reply, false).map_err(Error::InvalidSubject)?;
    }
    let message = BusMessage {
        subject: scoped(scope, namespace, &message.subject),
        body: message.body,
        reply_to: message.reply_to.map(|r| scoped(scope, namespace, &r)),
    };
    broker.publish(message).await.map_err(error)
}

/// `request` for a caller in `namespace`: the reply comes back on an inbox
/// inside the namespace, to this caller only.
pub async fn request(
    broker: &Broker,
    namespace: &str,
    subject: String,
    body: Vec<u8>,
    timeout_ms: u32,
) -> Result<Message, Error> {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let scope = broker.subject_scope();
    check_open(scope, &subject, false).map_err(Error::InvalidSubject)?;
    let inbox = scoped(scope, namespace, &crate::policy::inbox::workload_inbox());
    let reply = broker
        .request(&scoped(scope, namespace, &subject), &inbox, body, timeout)
        .await
        .map_err(error)?;
    Ok(Message {
        subject: unscoped(scope, namespace, &reply.subject),
        body: reply.body,
        reply_to: reply.reply_to.and_then(|r| within(scope, namespace, &r)),
    })
}

/// Plugins publish and request as their caller, in its namespace.
impl api::Host for CoreCtxView<'_> {
    async fn publish(&mut self, message: Message) -> Result<(), Error> {
        publish(self.broker(), &self.identity().namespace, message).await
    }

    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Message, Error> {
        request(
            self.broker(),
            &self.identity().namespace,
            subject,
            body,
            timeout_ms,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::inbox::{WORKLOAD_INBOX_PREFIX, workload_inbox};

    const NS: SubjectScope = SubjectScope::Namespace;
    const OPEN: SubjectScope = SubjectScope::AsWritten;

    #[test]
    fn every_subject_is_scoped_by_namespace_inboxes_included() {
        assert_eq!(scoped(NS, "shop", "orders.new"), "shop.orders.new");
        assert_eq!(scoped(NS, "shop", "_INBOX.7"), "shop._INBOX.7");
        assert_eq!(scoped(NS, "shop", ">"), "shop.>");
        assert_eq!(unscoped(NS, "shop", "shop.orders.new"), "orders.new");
        assert_eq!(
            within(NS, "shop", "shop._INBOX.7").as_deref(),
            Some("_INBOX.7")
        );
        assert_eq!(within(NS, "shop", "_INBOX.7"), None);
        assert_eq!(within(NS, "shop", "shopping.x"), None);
        assert_eq!(within(NS, "shop", "shop."), None);
    }

    #[test]
    fn a_request_inbox_lies_inside_the_namespace_and_is_unguessable() {
        let inbox = scoped(NS, "shop", &workload_inbox());
        let inside = within(NS, "shop", &inbox).expect("inside the namespace");
        assert!(inside.starts_with(WORKLOAD_INBOX_PREFIX), "{inbox}");
        assert_eq!(inside.len(), WORKLOAD_INBOX_PREFIX.len() + 22);
        assert_ne!(inbox, scoped(NS, "shop", &workload_inbox()));
    }

    #[test]
    fn as_written_subjects_stay_as_written_and_keep_off_the_hosts_own() {
        assert_eq!(scoped(OPEN, "shop", "tasks.leet"), "tasks.leet");
        assert_eq!(
            within(OPEN, "shop", "tasks.leet").as_deref(),
            Some("tasks.leet")
        );
        assert!(scoped(OPEN, "shop", &workload_inbox()).starts_with(WORKLOAD_INBOX_PREFIX));
        assert!(check_open(OPEN, "tasks.leet", true).is_ok());
        assert!(
            check_open(OPEN, "_INBOX.abc", false).is_ok(),
            "replies go to inboxes"
        );
        for reserved in [
            "runtime.host.x.workload.start",
            "$JS.API.STREAM.DELETE.x",
            "$SYS.x",
        ] {
            assert!(check_open(OPEN, reserved, false).is_err(), "{reserved}");
        }
        for reserved in [">", "*.x", "_INBOX.>", "runtime.>"] {
            assert!(check_open(OPEN, reserved, true).is_err(), "{reserved}");
        }
        // With the namespace prefix nothing needs refusing.
        assert!(check_open(NS, "runtime.host.x", true).is_ok());
    }
}
