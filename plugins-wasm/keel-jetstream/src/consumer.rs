//! Ephemeral pull consumers: how a guest walks a stream (listing KV keys,
//! mapping Object Store chunks) in batches, without server-side state that
//! outlives it. The consumer is deleted when dropped, and expires on its
//! own (`inactive_threshold`) if the guest dies first.

use crate::{JsError, TIMEOUT_MS, api, nats};
use serde::Deserialize;
use serde_json::{Value, json};

/// Seconds an abandoned consumer lives on the server.
const INACTIVE_NS: u64 = 30_000_000_000;

/// A message a consumer delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its stream subject.
    pub subject: String,
    /// Its headers (with `headers_only`, `Nats-Msg-Size` gives the body size).
    pub headers: Vec<(String, String)>,
    /// Its payload (empty with `headers_only`).
    pub body: Vec<u8>,
    /// Its sequence number in the stream.
    pub stream_seq: u64,
    /// How many messages the consumer had left after this one.
    pub pending: u64,
}

/// An ephemeral pull consumer on one stream.
pub struct Consumer {
    stream: String,
    name: String,
    inbox: String,
    subscription: nats::Subscription,
    /// Messages the consumer had to deliver when created.
    pub num_pending: u64,
}

#[derive(Deserialize)]
struct ConsumerInfo {
    #[serde(default)]
    num_pending: u64,
}

impl Consumer {
    /// Creates a consumer on `stream` delivering messages whose subject
    /// matches `filter`, with `config` (deliver policy and such; name,
    /// filter, ack policy and expiry are set here).
    pub fn create(stream: &str, filter: &str, mut config: Value) -> Result<Consumer, JsError> {
        let inbox = nats::new_inbox();
        // The inbox's last token is random: a fine consumer name.
        let name = inbox.rsplit('.').next().unwrap_or("keel").to_string();
        if let Some(fields) = config.as_object_mut() {
            fields.insert("name".into(), json!(name));
            fields.insert("filter_subject".into(), json!(filter));
            fields.insert("ack_policy".into(), json!("none"));
            fields.insert("replay_policy".into(), json!("instant"));
            fields.insert("inactive_threshold".into(), json!(INACTIVE_NS));
            fields.insert("num_replicas".into(), json!(1));
            fields.insert("mem_storage".into(), json!(true));
        }
        let body = json!({ "stream_name": stream, "config": config });
        let body = serde_json::to_vec(&body).map_err(|e| JsError::Protocol(e.to_string()))?;
        let subscription = nats::subscribe(&inbox, None)?;
        let info: ConsumerInfo =
            api::call(&format!("CONSUMER.CREATE.{stream}.{name}.{filter}"), &body)?;
        Ok(Consumer {
            stream: stream.to_string(),
            name,
            inbox,
            subscription,
            num_pending: info.num_pending,
        })
    }

    /// Up to `batch` messages; fewer when the consumer runs out (or `wait_ms`
    /// passes first).
    pub fn fetch(&mut self, batch: u32, wait_ms: u32) -> Result<Vec<Delivery>, JsError> {
        let request = json!({ "batch": batch, "expires": u64::from(wait_ms) * 1_000_000 });
        let request = serde_json::to_vec(&request).map_err(|e| JsError::Protocol(e.to_string()))?;
        let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", self.stream, self.name);
        nats::publish(&next, Some(&self.inbox), &[], &request)?;
        let mut out = Vec::new();
        while out.len() < batch as usize {
            let Some(message) = self.subscription.next(wait_ms.saturating_add(TIMEOUT_MS))? else {
                break;
            };
            match message.status {
                // 408: the pull expired before the batch filled; 404: nothing left.
                Some(404 | 408) => break,
                Some(code) => {
                    let what = message.description.unwrap_or_default();
                    return Err(JsError::Protocol(format!("pull answered {code} {what}")));
                }
                None => {}
            }
            let (stream_seq, pending) = message
                .reply_to
                .as_deref()
                .and_then(ack_metadata)
                .ok_or_else(|| JsError::Protocol("a delivery without $JS.ACK metadata".into()))?;
            out.push(Delivery {
                subject: message.subject,
                headers: message.headers,
                body: message.body,
                stream_seq,
                pending,
            });
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Hands every message the consumer has to `each`, in order, fetching
    /// `batch` at a time until none is pending (or a fetch comes back
    /// empty). Stops at the first error `each` returns.
    pub fn for_each<E: From<JsError>>(
        &mut self,
        batch: u32,
        mut each: impl FnMut(Delivery) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut pending = self.num_pending;
        while pending > 0 {
            let deliveries = self.fetch(batch, 2_000)?;
            let Some(last) = deliveries.last() else {
                break;
            };
            pending = last.pending;
            deliveries.into_iter().try_for_each(&mut each)?;
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Already gone (10014) or unreachable: it expires on its own.
        let _ = api::call::<Value>(
            &format!("CONSUMER.DELETE.{}.{}", self.stream, self.name),
            b"",
        );
    }
}

/// `(stream sequence, pending)` from a delivery's `$JS.ACK…` reply subject:
/// the 9-token form of nats-server 2.9, or the 11-or-more-token form with a
/// domain and account hash (ADR-15).
pub fn ack_metadata(reply: &str) -> Option<(u64, u64)> {
    let tokens: Vec<&str> = reply.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let base = if tokens.len() == 9 { 2 } else { 4 };
    let stream_seq = tokens.get(base + 3)?.parse().ok()?;
    let pending = tokens.get(base + 6)?.parse().ok()?;
    Some((stream_seq, pending))
}

#[cfg(test)]
mod tests {
    use super::ack_metadata;

    #[test]
    fn both_ack_subject_forms_are_read() {
        assert_eq!(
            ack_metadata("$JS.ACK.KV_demo.keys_x.1.4.1.1795219329207665143.5"),
            Some((4, 5))
        );
        assert_eq!(
            ack_metadata("$JS.ACK.hub.ACC.KV_demo.keys_x.1.4.1.1795219329207665143.5.tok"),
            Some((4, 5))
        );
        assert_eq!(ack_metadata("_INBOX.x"), None);
    }
}
