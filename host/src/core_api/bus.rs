//! The in-process message bus: what serves `keel:core/messaging` when no NATS
//! server is configured. NATS semantics, in one process: subjects of
//! dot-separated tokens, `*` matching one token and `>` the rest, queue
//! groups (each message to one member of a group), and request/reply through
//! a private inbox, with "no responders" when nobody listens and a timeout.
//! Each subscription holds a bounded queue ([`PendingLimits`]): a subscriber
//! that does not keep up loses messages, as a slow consumer does on NATS,
//! and the publisher never waits for it.

use super::pending::{self, Offered, PendingLimits, PendingReceiver, PendingSender};
use crate::policy::subject::{self as rules, Use};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A message on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub subject: String,
    /// Its payload.
    pub body: Vec<u8>,
    /// Where a reply goes, for requests.
    pub reply_to: Option<String>,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// A request's subject has no subscriber.
    #[error("no responders on `{0}`")]
    NoResponders(String),
    /// No reply came within the timeout.
    #[error("no reply on `{0}` within {1:?}")]
    Timeout(String, Duration),
    /// The subject breaks the rules of [`crate::policy::subject`] (empty
    /// token, wildcard in a publish, `>` not last, too long); says why.
    #[error("{0}")]
    InvalidSubject(String),
}

/// How the bus behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusOptions {
    /// How much each subscription may hold unread before messages to it are
    /// dropped.
    pub pending: PendingLimits,
}

struct Subscriber {
    id: u64,
    pattern: Vec<String>,
    queue: Option<String>,
    sender: PendingSender,
}

#[derive(Default)]
struct Inner {
    options: BusOptions,
    subscribers: RwLock<Vec<Subscriber>>,
    next_id: AtomicU64,
    /// Rotates queue-group deliveries among members.
    rotation: AtomicU64,
}

/// The bus; cheap to clone (all clones are one bus).
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subscribers = self.inner.subscribers.read().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("Bus")
            .field("subscribers", &subscribers)
            .finish()
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    bus: Bus,
    receiver: PendingReceiver,
}

impl Subscription {
    /// The next message, or `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    /// Messages dropped so far because this subscription held as much
    /// unread as its [`PendingLimits`] allow.
    pub fn dropped(&self) -> u64 {
        self.receiver.dropped()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.unsubscribe(self.id);
    }
}

/// The tokens of a subject already checked by [`rules::check`].
fn tokens(subject: &str) -> Vec<String> {
    subject.split('.').map(str::to_string).collect()
}

fn invalid(e: rules::SubjectError) -> BusError {
    BusError::InvalidSubject(e.to_string())
}

/// Whether `pattern` (with `*` and `>`) matches `subject`.
fn matches(pattern: &[String], subject: &[String]) -> bool {
    for (i, token) in pattern.iter().enumerate() {
        match token.as_str() {
            ">" => return subject.len() > i,
            "*" if i < subject.len() => {}
            literal if subject.get(i).is_some_and(|s| s == literal) => {}
            _ => return false,
        }
    }
    pattern.len() == subject.len()
}

impl Bus {
    /// A new, empty bus with the default options.
    pub fn new() -> Bus {
        Bus::default()
    }

    /// A new, empty bus with `options`.
    pub fn with_options(options: BusOptions) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                options,
                ..Inner::default()
            }),
        }
    }

    /// Subscribes to `subject` (wildcards allowed), optionally as a member
    /// of queue group `queue`. Live when this returns.
    pub fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscription, BusError> {
        rules::check(subject, Use::Subscribe).map_err(invalid)?;
        let pattern = tokens(subject);
        let (sender, receiver) = pending::queue(subject, self.inner.options.pending);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            id,
            pattern,
            queue: queue.map(str::to_string),
            sender,
        };
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(subscriber);
        Ok(Subscription {
            id,
            bus: self.clone(),
            receiver,
        })
    }

    fn unsubscribe(&self, id: u64) {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.id != id);
    }

    /// Publishes `message`; returns how many subscribers received it (a
    /// subscriber whose queue is full loses it). Never waits.
    pub fn publish(&self, message: Message) -> Result<usize, BusError> {
        self.offer(message).map(|(queued, _)| queued)
    }

    /// Publishes `message`; returns how many subscribers queued it and how
    /// many dropped it.
    fn offer(&self, message: Message) -> Result<(usize, usize), BusError> {
        rules::check(&message.subject, Use::Publish).map_err(invalid)?;
        if let Some(reply) = &message.reply_to {
            rules::check(reply, Use::Publish).map_err(invalid)?;
        }
        let subject = tokens(&message.subject);
        let subscribers = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let (mut queued, mut dropped) = (0, 0);
        let mut count = |offered: Offered| match offered {
            Offered::Queued => queued += 1,
            Offered::Dropped => dropped += 1,
            Offered::Closed => {}
        };
        let mut groups: Vec<(&str, Vec<&Subscriber>)> = Vec::new();
        for subscriber in subscribers.iter().filter(|s| matches(&s.pattern, &subject)) {
            match &subscriber.queue {
                None => count(subscriber.sender.offer(&message)),
                Some(queue) => match groups.iter_mut().find(|(q, _)| q == queue) {
                    Some((_, members)) => members.push(subscriber),
                    None => groups.push((queue, vec![subscriber])),
                },
            }
        }
        for (_, members) in groups {
            let turn = self.inner.rotation.fetch_add(1, Ordering::Relaxed) as usize;
            let chosen = members[turn % members.len()];
            count(chosen.sender.offer(&message));
        }
        Ok((queued, dropped))
    }

    /// Publishes `body` to `subject` with `inbox` as its reply subject and
    /// waits up to `timeout` for the first reply there. The caller picks the
    /// inbox (unguessable, and inside its own namespace) so that only it
    /// hears the reply.
    pub async fn request(
        &self,
        subject: &str,
        inbox: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let mut replies = self.subscribe(inbox, None)?;
        let message = Message {
            subject: subject.to_string(),
            body,
            reply_to: Some(inbox.to_string()),
        };
        // A responder too slow to take the request still exists: the
        // request times out, as on NATS, rather than finding no responders.
        if self.offer(message)? == (0, 0) {
            return Err(BusError::NoResponders(subject.to_string()));
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply),
            _ => Err(BusError::Timeout(subject.to_string(), timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, body: &str) -> Message {
        Message {
            subject: subject.into(),
            body: body.into(),
            reply_to: None,
        }
    }

    #[test]
    fn wildcards_match_one_token_or_the_rest() {
        let t = tokens;
        assert!(matches(&t("orders.*"), &t("orders.new")));
        assert!(!matches(&t("orders.*"), &t("orders.new.eu")));
        assert!(matches(&t("orders.>"), &t("orders.new.eu")));
        assert!(!matches(&t("orders.>"), &t("orders")));
        assert!(matches(&t("*.new"), &t("orders.new")));
        assert!(!matches(&t("orders.new"), &t("orders.old")));
    }

    #[tokio::test]
    async fn every_plain_subscriber_gets_a_message_and_one_queue_member_does() {
        let bus = Bus::new();
        let mut plain = bus.subscribe("orders.*", None).unwrap();
        let mut first = bus.subscribe("orders.new", Some("workers")).unwrap();
        let mut second = bus.subscribe("orders.>", Some("workers")).unwrap();
        for i in 0..10 {
            assert_eq!(
                bus.publish(message("orders.new", &i.to_string())).unwrap(),
                2
            );
        }
        let mut plain_count = 0;
        while plain.receiver.try_recv().is_some() {
            plain_count += 1;
        }
        let (mut a, mut b) = (0, 0);
        while first.receiver.try_recv().is_some() {
            a += 1;
        }
        while second.receiver.try_recv().is_some() {
            b += 1;
        }
        assert_eq!(plain_count, 10);
        assert_eq!(a + b, 10, "each message goes to exactly one queue member");
        assert!(
            a > 0 && b > 0,
            "the queue group spreads the load ({a} / {b})"
        );
    }

    #[tokio::test]
    async fn request_reply_no_responders_and_timeout() {
        let bus = Bus::new();
        let err = bus
            .request(
                "nobody",
                "_INBOX.1",
                b"?".to_vec(),
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert_eq!(err, BusError::NoResponders("nobody".into()));

        let mut service = bus.subscribe("echo", None).unwrap();
        let responder = bus.clone();
        tokio::spawn(async move {
            while let Some(request) = service.next().await {
                let reply = Message {
                    subject: request.reply_to.unwrap(),
                    body: request.body,
                    reply_to: None,
                };
                responder.publish(reply).unwrap();
            }
        });
        let reply = bus
            .request("echo", "_INBOX.2", b"hi".to_vec(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply.body, b"hi");

        let _silent = bus.subscribe("silent", None).unwrap();
        let err = bus
            .request("silent", "_INBOX.3", vec![], Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Timeout(..)));
    }

    #[test]
    fn invalid_subjects_are_refused_and_drop_unsubscribes() {
        let bus = Bus::new();
        assert!(bus.subscribe("a..b", None).is_err());
        assert!(bus.subscribe("a.>.b", None).is_err());
        assert!(bus.publish(message("a.*", "x")).is_err());
        let subscription = bus.subscribe("a", None).unwrap();
        assert_eq!(bus.publish(message("a", "x")).unwrap(), 1);
        drop(subscription);
        assert_eq!(bus.publish(message("a", "x")).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_read_holds_at_most_its_limit() {
        let bus = Bus::with_options(BusOptions {
            pending: PendingLimits {
                max_messages: 100,
                max_bytes: 1 << 20,
            },
        });
        let mut idle = bus.subscribe("flood", None).unwrap();
        let mut reader = bus.subscribe("flood", None).unwrap();
        let mut read = 0;
        // Far more than the limit, published without ever waiting: the idle
        // subscriber keeps the first 100 and loses the rest, the reader
        // (which keeps up) loses nothing.
        for i in 0..10_000 {
            bus.publish(message("flood", &i.to_string())).unwrap();
            while reader.receiver.try_recv().is_some() {
                read += 1;
            }
        }
        assert_eq!(read, 10_000);
        assert_eq!(reader.dropped(), 0);
        assert_eq!(idle.dropped(), 9_900);
        let mut held = Vec::new();
        while let Some(m) = idle.receiver.try_recv() {
            held.push(m.body);
        }
        assert_eq!(held.len(), 100);
        assert_eq!(held[0], b"0", "the first ones are kept, in order");

        // A request to a responder that is too slow to take it times out;
        // it does not find "no responders".
        let _stuck = bus.subscribe("busy", None).unwrap();
        for i in 0..100 {
            bus.publish(message("busy", &i.to_string())).unwrap();
        }
        let err = bus
            .request("busy", "_INBOX.4", vec![], Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Timeout(..)), "{err}");
    }

    #[test]
    fn the_default_limits_are_those_of_nats() {
        let limits = BusOptions::default().pending;
        assert_eq!(limits.max_messages, 65_536);
        assert_eq!(limits.max_bytes, 64 * 1024 * 1024);
    }
}
