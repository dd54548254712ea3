//! `keel:core/nats`: the host's NATS connection for plugins that speak a
//! protocol over it (JetStream KV, the Object Store). Subjects are raw, not
//! namespaced, and each call is checked against the plugin's
//! [`SubjectGrants`], and so are the subjects a JetStream API body names
//! ([`jetstream_grants`](super::jetstream_grants)); streams created count
//! against the caller's namespace's
//! [`StreamCap`](super::stream_cap::StreamCap). Status lines (`404`, `408`,
//! …) and reply subjects reach the guest unchanged, since JetStream clients
//! need both.

use super::bindings::keel::core::nats::{Error, Header, Message};
use super::broker::{Broker, NatsConnection, check_size};
use super::jetstream_grants::{ApiCall, Checker, Refused};
use super::stream_cap::CapError;
use super::view::CoreCtxView;
use crate::policy::grants::SubjectGrants;
use crate::policy::inbox::plugin_inbox;
use crate::policy::subject::{self as rules, Use};
use async_nats::HeaderMap;
use futures::StreamExt;
use std::str::FromStr;
use std::time::Duration;
use wasmtime::component::Resource;

pub use super::bindings::keel::core::nats as api;

/// A plugin's live subscription (the `subscription` resource); dropping it
/// unsubscribes.
pub struct NatsSubscription {
    subscriber: async_nats::Subscriber,
}

/// What one call needs: the connection, the grants, and who is calling.
struct Caller<'a> {
    broker: &'a Broker,
    grants: &'a SubjectGrants,
    namespace: &'a str,
}

impl Caller<'_> {
    fn connection(&self) -> Result<&NatsConnection, Error> {
        match self.broker {
            Broker::Nats(connection) => Ok(connection),
            Broker::Bus(_) => Err(Error::NotConfigured),
        }
    }

    fn client(&self) -> Result<&async_nats::Client, Error> {
        self.connection().map(NatsConnection::client)
    }

    /// Checks the subjects a JetStream API body names ([`jetstream_grants`](super::jetstream_grants)).
    fn check_body(&self, subject: &str, body: &[u8]) -> Result<ApiCall, Error> {
        let checker = Checker {
            grants: self.grants,
            namespace: self.namespace,
        };
        checker.check(subject, body).map_err(|e| match e {
            Refused::NotGranted(why) => Error::NotGranted(why),
            Refused::Invalid(why) => Error::Invalid(why),
        })
    }

    fn check(&self, subject: &str) -> Result<(), Error> {
        if self.grants.allows(self.namespace, subject) {
            Ok(())
        } else {
            Err(Error::NotGranted(subject.to_string()))
        }
    }

    /// Refuses what the server would answer by closing the connection every
    /// plugin shares.
    fn check_size(&self, headers: &[Header], body: &[u8]) -> Result<(), Error> {
        // `NATS/1.0\r\n`, `name: value\r\n` each, and the closing `\r\n`.
        let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let size = body.len()
            + if headers.is_empty() {
                0
            } else {
                header_bytes + 14
            };
        check_size(self.client()?, size).map_err(|e| Error::TooLarge(e.to_string()))
    }
}

/// A subject one may send to or subscribe to ([`Use::Send`]: wildcard
/// characters are allowed in a sent subject, since JetStream API subjects
/// carry filters, and grants are checked with them as patterns). Checked
/// before the grants and before anything reaches the shared connection,
/// which the server would close on an overlong or malformed line.
fn valid(subject: &str, usage: Use) -> Result<(), Error> {
    rules::check(subject, usage).map_err(|e| Error::Invalid(e.to_string()))
}

fn header_map(headers: Vec<Header>) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = async_nats::HeaderName::from_str(&name)
            .map_err(|_| Error::Invalid(format!("header name `{name}`")))?;
        let value = async_nats::HeaderValue::from_str(&value)
            .map_err(|_| Error::Invalid(format!("header value of `{name}`")))?;
        map.append(name, value);
    }
    Ok(map)
}

fn message(m: async_nats::Message) -> Message {
    let headers = m
        .headers
        .map(|h| {
            h.iter()
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |v| (name.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Message {
        subject: m.subject.to_string(),
        reply_to: m.reply.map(|r| r.to_string()),
        headers,
        body: m.payload.to_vec(),
        status: m.status.map(|s| s.as_u16()),
        description: m.description,
    }
}

/// Sends a request over the host's connection and waits up to `timeout`.
async fn send_request(
    client: &async_nats::Client,
    subject: String,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Message, Error> {
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(body.into())
        .timeout(Some(timeout));
    // The client's timeout covers the wait for the reply; this one also
    // bounds a publish stuck behind a lost connection.
    match tokio::time::timeout(timeout, client.send_request(subject, request)).await {
        Err(_) => Err(Error::Timeout),
        Ok(Ok(reply)) => Ok(message(reply)),
        Ok(Err(e)) => Err(match e.kind() {
            async_nats::RequestErrorKind::NoResponders => Error::NoResponders,
            async_nats::RequestErrorKind::TimedOut => Error::Timeout,
            async_nats::RequestErrorKind::InvalidSubject => Error::Invalid(e.to_string()),
            async_nats::RequestErrorKind::MaxPayloadExceeded => Error::TooLarge(e.to_string()),
            async_nats::RequestErrorKind::Other => unavailable(e),
        }),
    }
}

/// Whether a JetStream API reply reports success: JSON without an `error`.
fn succeeded(reply: &Message) -> bool {
    reply.status.is_none()
        && serde_json::from_slice::<serde_json::Value>(&reply.body)
            .is_ok_and(|v| v.is_object() && v.get("error").is_none_or(|e| e.is_null()))
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl CoreCtxView<'_> {
    fn nats_caller(&self) -> Caller<'_> {
        Caller {
            broker: self.broker(),
            grants: self.subjects(),
            namespace: &self.identity().namespace,
        }
    }
}

impl api::Host for CoreCtxView<'_> {
    async fn publish(
        &mut self,
        subject: String,
        reply_to: Option<String>,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<(), Error> {
        let caller = self.nats_caller();
        valid(&subject, Use::Send)?;
        caller.check(&subject)?;
        if let Some(reply) = &reply_to {
            valid(reply, Use::Send)?;
            caller.check(reply)?;
        }
        if let ApiCall::CreateStream(_) = caller.check_body(&subject, &body)? {
            return Err(Error::Invalid(format!(
                "`{}`: a stream is created with `request`, whose reply the host reads to count the namespace's streams",
                rules::shortened(&subject)
            )));
        }
        caller.check_size(&headers, &body)?;
        let headers = header_map(headers)?;
        let client = caller.client()?;
        let sent = match reply_to {
            Some(reply) => {
                client
                    .publish_with_reply_and_headers(subject, reply, headers, body.into())
                    .await
            }
            None => {
                client
                    .publish_with_headers(subject, headers, body.into())
                    .await
            }
        };
        sent.map_err(|e| match e.kind() {
            async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                Error::TooLarge(e.to_string())
            }
            async_nats::client::PublishErrorKind::InvalidSubject => Error::Invalid(e.to_string()),
            async_nats::client::PublishErrorKind::Send => unavailable(e),
        })
    }

    async fn request(
        &mut self,
        subject: String,
        headers: Vec<Header>,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Message, Error> {
        let caller = self.nats_caller();
        valid(&subject, Use::Send)?;
        caller.check(&subject)?;
        let call = caller.check_body(&subject, &body)?;
        caller.check_size(&headers, &body)?;
        let headers = header_map(headers)?;
        let connection = caller.connection()?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        match call {
            ApiCall::CreateStream(stream) => {
                let admission = connection
                    .streams()
                    .admit(connection.client(), caller.namespace, &stream)
                    .await
                    .map_err(|e| match e {
                        CapError::Full { .. } => Error::Invalid(e.to_string()),
                        CapError::Unavailable { .. } => unavailable(e),
                    })?;
                let reply =
                    send_request(connection.client(), subject, headers, body, timeout).await;
                admission.settle(reply.as_ref().is_ok_and(succeeded));
                reply
            }
            ApiCall::DeleteStream(stream) => {
                let reply =
                    send_request(connection.client(), subject, headers, body, timeout).await;
                if reply.as_ref().is_ok_and(succeeded) {
                    connection
                        .streams()
                        .deleted(caller.namespace, &stream)
                        .await;
                }
                reply
            }
            ApiCall::Other => {
                send_request(connection.client(), subject, headers, body, timeout).await
            }
        }
    }

    fn new_inbox(&mut self) -> String {
        plugin_inbox(&self.identity().namespace)
    }

    fn max_payload(&mut self) -> Result<u64, Error> {
        let info = self.nats_caller().client()?.server_info();
        Ok(info.max_payload as u64)
    }

    async fn subscribe(
        &mut self,
        subject: String,
        queue: Option<String>,
    ) -> Result<Resource<NatsSubscription>, Error> {
        let caller = self.nats_caller();
        valid(&subject, Use::Subscribe)?;
        caller.check(&subject)?;
        let client = caller.client()?;
        let subscribed = match queue {
            Some(queue) => client.queue_subscribe(subject, queue).await,
            None => client.subscribe(subject).await,
        };
        let subscriber = subscribed.map_err(|e| match e.kind() {
            async_nats::client::SubscribeErrorKind::Other => unavailable(e),
            _ => Error::Invalid(e.to_string()),
        })?;
        self.table_mut()
            .push(NatsSubscription { subscriber })
            .map_err(unavailable)
    }
}

impl api::HostSubscription for CoreCtxView<'_> {
    async fn next(
        &mut self,
        subscription: Resource<NatsSubscription>,
        timeout_ms: u32,
    ) -> Result<Option<Message>, Error> {
        let subscription = self
            .table_mut()
            .get_mut(&subscription)
            .map_err(unavailable)?;
        let wait = Duration::from_millis(u64::from(timeout_ms));
        match tokio::time::timeout(wait, subscription.subscriber.next()).await {
            Err(_) => Ok(None),
            Ok(Some(m)) => Ok(Some(message(m))),
            Ok(None) => Err(Error::Unavailable(
                "the subscription ended (the connection closed)".to_string(),
            )),
        }
    }

    fn drop(&mut self, subscription: Resource<NatsSubscription>) -> wasmtime::Result<()> {
        // Dropping the subscriber sends the UNSUB.
        self.table_mut().delete(subscription)?;
        Ok(())
    }
}
