//! `keel:core/messaging` over the host's [`Broker`] (in-process bus or
//! NATS): every subject a workload names, reply inboxes included, is scoped
//! under its namespace (`<namespace>.<subject>`), so tenants neither hear
//! nor answer each other.
//!
//! A namespace is a name that starts with a lower-case letter
//! ([`crate::spec::validate_name`]), so no workload subject can ever be
//! one of the subjects plugins and the NATS client use for themselves
//! (`_INBOX.…`, `$JS.…`, `$KV.…`): a workload cannot read JetStream replies
//! whatever pattern it subscribes to.

use super::bindings::keel::core::messaging::{self as api, Error, Message};
use super::broker::{Broker, BrokerError};
use super::bus::Message as BusMessage;
use super::view::CoreCtxView;
use std::time::Duration;

/// The broker subject for `subject` named by a workload of `namespace`.
pub fn scoped(namespace: &str, subject: &str) -> String {
    format!("{namespace}.{subject}")
}

/// `subject` as a workload of `namespace` sees it, or `None` when it lies
/// outside the namespace (a workload can neither see nor use it).
pub fn within(namespace: &str, subject: &str) -> Option<String> {
    subject
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|rest| !rest.is_empty())
        .map(str::to_string)
}

/// `subject` as a workload of `namespace` sees it (the scope removed; a
/// subject outside the namespace is returned whole).
pub fn unscoped(namespace: &str, subject: &str) -> String {
    within(namespace, subject).unwrap_or_else(|| subject.to_string())
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
    let message = BusMessage {
        subject: scoped(namespace, &message.subject),
        body: message.body,
        reply_to: message.reply_to.map(|r| scoped(namespace, &r)),
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
    let inbox = crate::policy::inbox::workload_inbox(namespace);
    let reply = broker
        .request(&scoped(namespace, &subject), &inbox, body, timeout)
        .await
        .map_err(error)?;
    Ok(Message {
        subject: unscoped(namespace, &reply.subject),
        body: reply.body,
        reply_to: reply.reply_to.and_then(|r| within(namespace, &r)),
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

    #[test]
    fn every_subject_is_scoped_by_namespace_inboxes_included() {
        assert_eq!(scoped("shop", "orders.new"), "shop.orders.new");
        assert_eq!(scoped("shop", "_INBOX.7"), "shop._INBOX.7");
        assert_eq!(scoped("shop", ">"), "shop.>");
        assert_eq!(unscoped("shop", "shop.orders.new"), "orders.new");
        assert_eq!(within("shop", "shop._INBOX.7").as_deref(), Some("_INBOX.7"));
        assert_eq!(within("shop", "_INBOX.7"), None);
        assert_eq!(within("shop", "shopping.x"), None);
        assert_eq!(within("shop", "shop."), None);
    }

    #[test]
    fn a_request_inbox_lies_inside_the_namespace_and_is_unguessable() {
        use crate::policy::inbox::{WORKLOAD_INBOX_PREFIX, workload_inbox};
        let inbox = workload_inbox("shop");
        let inside = within("shop", &inbox).expect("inside the namespace");
        assert!(inside.starts_with(WORKLOAD_INBOX_PREFIX), "{inbox}");
        assert_eq!(inside.len(), WORKLOAD_INBOX_PREFIX.len() + 22);
        assert_ne!(inbox, workload_inbox("shop"));
    }
}
