//! Where `keel:core/messaging` goes: the in-process [`Bus`] by default, or a
//! NATS server when the host is configured with one. Same semantics either
//! way (subjects, wildcards, queue groups, request/reply, "no responders"),
//! so plugins and workloads run unchanged on both.

use super::bus::{Bus, BusError, Message, Subscription};
use super::stream_cap::StreamCap;
use crate::policy::subject::{self as rules, Use};
use crate::spec::SubjectScope;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The message broker of a host.
#[derive(Clone, Debug)]
pub enum Broker {
    /// In process, for a host on its own.
    Bus(Bus),
    /// A NATS server, shared by many hosts.
    Nats(NatsConnection),
}

/// The host's one NATS connection, and what the host keeps about its use
/// through `keel:core/nats`. It dereferences to the client.
#[derive(Clone, Debug)]
pub struct NatsConnection {
    client: async_nats::Client,
    streams: Arc<StreamCap>,
    scope: SubjectScope,
}

impl NatsConnection {
    /// `client`, whose namespaces may each create `streams.max()` streams,
    /// with workload subjects mapped by `scope`.
    pub fn new(
        client: async_nats::Client,
        streams: StreamCap,
        scope: SubjectScope,
    ) -> NatsConnection {
        NatsConnection {
            client,
            streams: Arc::new(streams),
            scope,
        }
    }

    /// The client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The per-namespace stream cap.
    pub fn streams(&self) -> &StreamCap {
        &self.streams
    }
}

impl std::ops::Deref for NatsConnection {
    type Target = async_nats::Client;

    fn deref(&self) -> &async_nats::Client {
        &self.client
    }
}

impl Broker {
    /// How workload subjects map onto this broker's: always by namespace
    /// on the in-process bus, as configured on NATS.
    pub fn subject_scope(&self) -> SubjectScope {
        match self {
            Broker::Bus(_) => SubjectScope::Namespace,
            Broker::Nats(connection) => connection.scope,
        }
    }
}

/// Why a broker operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Nobody is subscribed to a request's subject.
    #[error("no responders on `{0}`")]
    NoResponders(String),
    /// No reply came within the timeout.
    #[error("no reply on `{0}` in time")]
    Timeout(String),
    /// The subject is malformed ([`crate::policy::subject`]); says why.
    #[error("{0}")]
    InvalidSubject(String),
    /// The message is larger than the server accepts.
    #[error("the message is {size} bytes, more than the server's max_payload of {max}")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// The connection failed (the server is down, say).
    #[error("messaging failed: {0}")]
    Unavailable(String),
}

impl From<BusError> for BrokerError {
    fn from(e: BusError) -> BrokerError {
        match e {
            BusError::NoResponders(s) => BrokerError::NoResponders(s),
            BusError::Timeout(s, _) => BrokerError::Timeout(s),
            BusError::InvalidSubject(s) => BrokerError::InvalidSubject(s),
        }
    }
}

/// A live subscription on either broker.
pub enum BrokerSubscription {
    /// On the in-process bus.
    Bus(Subscription),
    /// On NATS.
    Nats(async_nats::Subscriber),
}

impl BrokerSubscription {
    /// The next message, or `None` once the subscription ends.
    pub async fn next(&mut self) -> Option<Message> {
        match self {
            BrokerSubscription::Bus(subscription) => subscription.next().await,
            BrokerSubscription::Nats(subscriber) => subscriber.next().await.map(|m| Message {
                subject: m.subject.to_string(),
                body: m.payload.to_vec(),
                reply_to: m.reply.map(|r| r.to_string()),
            }),
        }
    }
}

impl Broker {
    /// Publishes `message`.
    pub async fn publish(&self, message: Message) -> Result<(), BrokerError> {
        check(&message.subject, Use::Publish)?;
        if let Some(reply) = &message.reply_to {
            check(reply, Use::Publish)?;
        }
        match self {
            Broker::Bus(bus) => bus.publish(message).map(|_| ()).map_err(Into::into),
            Broker::Nats(client) => {
                check_size(client, message.body.len())?;
                let body = message.body.into();
                let result = match message.reply_to {
                    Some(reply) => {
                        client
                            .publish_with_reply(message.subject.clone(), reply, body)
                            .await
                    }
                    None => client.publish(message.subject.clone(), body).await,
                };
                result.map_err(|e| BrokerError::Unavailable(e.to_string()))
            }
        }
    }

    /// Sends `body` to `subject` with reply subject `inbox` and waits up to
    /// `timeout` for the first message there. The caller picks the inbox so
    /// that it lies in the caller's namespace: the replies never travel on
    /// the NATS client's own `_INBOX.…` subjects, which carry the plugins'
    /// JetStream traffic.
    pub async fn request(
        &self,
        subject: &str,
        inbox: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Message, BrokerError> {
        check(subject, Use::Publish)?;
        check(inbox, Use::Publish)?;
        match self {
            Broker::Bus(bus) => bus
                .request(subject, inbox, body, timeout)
                .await
                .map_err(Into::into),
            Broker::Nats(client) => {
                check_size(client, body.len())?;
                // One bound for all of it: the subscribe and the publish can
                // also be stuck behind a lost connection.
                tokio::time::timeout(timeout, nats_request(client, subject, inbox, body))
                    .await
                    .unwrap_or_else(|_| Err(BrokerError::Timeout(subject.to_string())))
            }
        }
    }

    /// Subscribes to `subject`, optionally in queue group `queue`; on NATS
    /// the subscription is confirmed by the server before this returns.
    pub async fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<BrokerSubscription, BrokerError> {
        check(subject, Use::Subscribe)?;
        match self {
            Broker::Bus(bus) => Ok(BrokerSubscription::Bus(bus.subscribe(subject, queue)?)),
            Broker::Nats(client) => {
                let subscribed = match queue {
                    Some(queue) => {
                        client
                            .queue_subscribe(subject.to_string(), queue.to_string())
                            .await
                    }
                    None => client.subscribe(subject.to_string()).await,
                };
                let subscriber = subscribed.map_err(|e| {
                    BrokerError::InvalidSubject(format!("`{subject}` is refused: {e}"))
                })?;
                // A flush round-trips to the server: the SUB is live there now.
                client
                    .flush()
                    .await
                    .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
                Ok(BrokerSubscription::Nats(subscriber))
            }
        }
    }
}

/// A request over NATS: subscribe to `inbox` (on one connection the server
/// takes the SUB before the PUB that follows it), publish, wait for the first
/// message. The server answers a request nobody is subscribed to with a 503
/// status message: "no responders".
async fn nats_request(
    client: &async_nats::Client,
    subject: &str,
    inbox: &str,
    body: Vec<u8>,
) -> Result<Message, BrokerError> {
    let unavailable = |e: &dyn std::fmt::Display| BrokerError::Unavailable(e.to_string());
    let mut replies = client
        .subscribe(inbox.to_string())
        .await
        .map_err(|e| unavailable(&e))?;
    client
        .publish_with_reply(subject.to_string(), inbox.to_string(), body.into())
        .await
        .map_err(|e| match e.kind() {
            async_nats::client::PublishErrorKind::InvalidSubject => {
                BrokerError::InvalidSubject(format!("`{subject}` is not a valid subject"))
            }
            _ => unavailable(&e),
        })?;
    match replies.next().await {
        Some(reply) if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
            Err(BrokerError::NoResponders(subject.to_string()))
        }
        Some(reply) => Ok(Message {
            subject: reply.subject.to_string(),
            body: reply.payload.to_vec(),
            reply_to: reply.reply.map(|r| r.to_string()),
        }),
        None => Err(BrokerError::Unavailable(
            "the connection closed while waiting for a reply".to_string(),
        )),
    }
}

/// Refuses a subject before it reaches the bus or the shared connection
/// (where a malformed or overlong one would make the server close it).
fn check(subject: &str, usage: Use) -> Result<(), BrokerError> {
    rules::check(subject, usage).map_err(|e| BrokerError::InvalidSubject(e.to_string()))
}

/// Refuses what the server would answer by closing the connection every
/// plugin shares.
pub(crate) fn check_size(client: &async_nats::Client, size: usize) -> Result<(), BrokerError> {
    let max = client.server_info().max_payload;
    if max > 0 && size > max {
        return Err(BrokerError::TooLarge { size, max });
    }
    Ok(())
}
