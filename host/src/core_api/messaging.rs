//! `keel:core/messaging` over the host's [`Broker`] (in-process bus or
//! NATS): subjects scoped by the calling workload's namespace, so tenants do
//! not hear each other.

use super::broker::{Broker, BrokerError};
use super::bus::{INBOX_PREFIX, Message as BusMessage};
use crate::plugins::identity::bindings::keel::core::messaging::{Error, Message};
use std::time::Duration;

/// The bus subject for `subject` published by a workload of `namespace`.
pub fn scoped(namespace: &str, subject: &str) -> String {
    if subject.starts_with(INBOX_PREFIX) {
        subject.to_string()
    } else {
        format!("{namespace}.{subject}")
    }
}

/// `subject` as a workload of `namespace` sees it (the scope removed).
pub fn unscoped(namespace: &str, subject: &str) -> String {
    subject
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(subject)
        .to_string()
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

/// `request` for a caller in `namespace`.
pub async fn request(
    broker: &Broker,
    namespace: &str,
    subject: String,
    body: Vec<u8>,
    timeout_ms: u32,
) -> Result<Message, Error> {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let reply = broker
        .request(&scoped(namespace, &subject), body, timeout)
        .await
        .map_err(error)?;
    Ok(Message {
        subject: unscoped(namespace, &reply.subject),
        body: reply.body,
        reply_to: reply.reply_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_scoped_by_namespace_except_inboxes() {
        assert_eq!(scoped("shop", "orders.new"), "shop.orders.new");
        assert_eq!(scoped("shop", "_INBOX.7"), "_INBOX.7");
        assert_eq!(unscoped("shop", "shop.orders.new"), "orders.new");
        assert_eq!(unscoped("shop", "_INBOX.7"), "_INBOX.7");
    }
}
