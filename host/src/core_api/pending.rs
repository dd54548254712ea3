//! The queue of messages a subscription has not read yet, bounded in
//! messages and bytes as NATS bounds a client's subscriptions: a message that
//! does not fit is dropped for that subscriber ("slow consumer") and counted,
//! and the publisher never waits. The drops are logged once per episode: a
//! warning at the first, a summary when the subscriber has caught up (or
//! unsubscribes).

use super::bus::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Default bound on the messages one subscription holds unread (NATS's
/// default pending-message limit; also the NATS client's subscription
/// capacity keel sets).
pub const DEFAULT_MAX_PENDING_MESSAGES: usize = 65_536;

/// Default bound on the bytes (subjects and bodies) one subscription holds
/// unread: NATS's default pending-bytes limit, 64 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// How much one subscription may hold unread.
///
/// ```
/// use keel::PendingLimits;
/// let limits = PendingLimits::new(1000, 1 << 20);
/// assert_eq!(limits.channel_capacity(), 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingLimits {
    /// Messages (65,536 by default; at least 1).
    pub max_messages: usize,
    /// Bytes of subject, reply subject and body
    /// (64 MiB by default).
    pub max_bytes: usize,
}

/// The most messages one subscription queue is made to hold, whatever
/// [`PendingLimits::max_messages`] says: Tokio's channels panic past
/// `usize::MAX >> 3`, and no host has memory for more anyway.
pub const MAX_PENDING_MESSAGES: usize = 1 << 24;

impl PendingLimits {
    /// At most `max_messages` messages and `max_bytes` bytes unread.
    pub fn new(max_messages: usize, max_bytes: usize) -> PendingLimits {
        PendingLimits {
            max_messages,
            max_bytes,
        }
    }

    /// The capacity of a subscription's queue: `max_messages`, at least 1
    /// and at most 2^24 (Tokio's channels panic past `usize::MAX >> 3`).
    pub fn channel_capacity(&self) -> usize {
        self.max_messages.clamp(1, MAX_PENDING_MESSAGES)
    }
}

impl Default for PendingLimits {
    fn default() -> PendingLimits {
        PendingLimits {
            max_messages: DEFAULT_MAX_PENDING_MESSAGES,
            max_bytes: DEFAULT_MAX_PENDING_BYTES,
        }
    }
}

/// What became of a message offered to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Queued for the subscriber.
    Queued,
    /// Dropped: the subscriber's queue is full.
    Dropped,
    /// The subscriber is gone.
    Closed,
}

/// What both ends share.
#[derive(Debug)]
struct Counters {
    subject: String,
    limits: PendingLimits,
    bytes: AtomicUsize,
    dropped: AtomicU64,
    /// Drops since the queue last ran empty.
    episode: AtomicU64,
}

impl Counters {
    /// Logs the end of a drop episode, if one is under way.
    fn end_episode(&self, why: &str) {
        let dropped = self.episode.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                subject = self.subject,
                dropped,
                "slow consumer {why}: {dropped} messages were dropped"
            );
        }
    }
}

/// The publishing end of a subscription's queue.
#[derive(Debug)]
pub struct PendingSender {
    sender: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

/// The reading end of a subscription's queue.
#[derive(Debug)]
pub struct PendingReceiver {
    receiver: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
}

/// A queue for a subscription to `subject` (named in the logs).
pub fn queue(subject: &str, limits: PendingLimits) -> (PendingSender, PendingReceiver) {
    let (sender, receiver) = mpsc::channel(limits.channel_capacity());
    let counters = Arc::new(Counters {
        subject: subject.to_string(),
        limits,
        bytes: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        episode: AtomicU64::new(0),
    });
    (
        PendingSender {
            sender,
            counters: counters.clone(),
        },
        PendingReceiver { receiver, counters },
    )
}

/// The bytes a message holds in a queue.
fn size(message: &Message) -> usize {
    message.subject.len() + message.reply_to.as_ref().map_or(0, String::len) + message.body.len()
}

impl PendingSender {
    /// Queues `message` if it fits within the limits; never waits.
    pub fn offer(&self, message: &Message) -> Offered {
        let counters = &*self.counters;
        let size = size(message);
        let before = counters.bytes.fetch_add(size, Ordering::Relaxed);
        let fits = before.saturating_add(size) <= counters.limits.max_bytes;
        let offered = if !fits {
            Offered::Dropped
        } else {
            match self.sender.try_send(message.clone()) {
                Ok(()) => return Offered::Queued,
                Err(mpsc::error::TrySendError::Full(_)) => Offered::Dropped,
                Err(mpsc::error::TrySendError::Closed(_)) => Offered::Closed,
            }
        };
        counters.bytes.fetch_sub(size, Ordering::Relaxed);
        if offered == Offered::Dropped {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            if counters.episode.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    subject = counters.subject,
                    max_messages = counters.limits.max_messages,
                    max_bytes = counters.limits.max_bytes,
                    "slow consumer: the subscription holds as much unread as it may; \
                     messages to it are dropped until it catches up"
                );
            }
        }
        offered
    }
}

impl PendingReceiver {
    /// The next message, or `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Message> {
        let message = self.receiver.recv().await;
        self.took(message)
    }

    /// The next message if one is queued.
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Message> {
        let message = self.receiver.try_recv().ok();
        self.took(message)
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    fn took(&mut self, message: Option<Message>) -> Option<Message> {
        if let Some(message) = &message {
            self.counters
                .bytes
                .fetch_sub(size(message), Ordering::Relaxed);
            if self.receiver.is_empty() {
                self.counters.end_episode("caught up");
            }
        }
        message
    }
}

impl Drop for PendingReceiver {
    fn drop(&mut self) {
        self.counters.end_episode("unsubscribed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: usize) -> Message {
        Message {
            subject: "s".into(),
            body: vec![0; body],
            reply_to: None,
        }
    }

    #[test]
    fn a_reader_that_does_not_read_holds_at_most_the_message_limit() {
        let limits = PendingLimits {
            max_messages: 3,
            max_bytes: 1 << 20,
        };
        let (sender, mut receiver) = queue("s", limits);
        let offered: Vec<Offered> = (0..5).map(|_| sender.offer(&message(1))).collect();
        use Offered::*;
        assert_eq!(offered, [Queued, Queued, Queued, Dropped, Dropped]);
        assert_eq!(receiver.dropped(), 2);
        assert_eq!(receiver.counters.episode.load(Ordering::Relaxed), 2);
        assert!(receiver.try_recv().is_some());
        assert_eq!(sender.offer(&message(1)), Queued, "room again once read");
        while receiver.try_recv().is_some() {}
        assert_eq!(
            receiver.counters.episode.load(Ordering::Relaxed),
            0,
            "the episode ends (and is logged) once the reader caught up"
        );
        assert_eq!(receiver.dropped(), 2, "the total stays");
    }

    #[test]
    fn a_reader_that_does_not_read_holds_at_most_the_byte_limit() {
        let limits = PendingLimits {
            max_messages: 100,
            max_bytes: 25,
        };
        let (sender, mut receiver) = queue("s", limits);
        // 11 bytes each (subject `s` and 10 of body): two fit, not three.
        let offered: Vec<Offered> = (0..3).map(|_| sender.offer(&message(10))).collect();
        assert_eq!(
            offered,
            [Offered::Queued, Offered::Queued, Offered::Dropped]
        );
        assert_eq!(sender.offer(&message(100)), Offered::Dropped, "never fits");
        assert_eq!(receiver.dropped(), 2);
        while receiver.try_recv().is_some() {}
        assert_eq!(sender.offer(&message(10)), Offered::Queued);
        drop(receiver);
        assert_eq!(sender.offer(&message(1)), Offered::Closed);
    }
}
