//! How many JetStream streams (buckets) each namespace may create through
//! `keel:core/nats`: at most [`StreamCap::max`] (default
//! [`DEFAULT_MAX_STREAMS_PER_NAMESPACE`](crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE)),
//! so one tenant cannot fill the server with thousands of buckets.
//!
//! The host keeps, per namespace, the names of the streams it holds. The
//! set is read from the server at the namespace's first stream create after
//! the host starts: every stream named the way keel's built-in plugins name
//! a namespace's buckets (`KV_<namespace>-…`, `OBJ_<namespace>-…`, the
//! namespace as a [`keel_names::token`], which never holds a `-`). From
//! then on a successful `STREAM.CREATE` (or `STREAM.RESTORE`) adds its
//! stream, and a successful `STREAM.DELETE` requested through
//! `keel:core/nats` removes it. So the count survives restarts for the
//! built-ins' buckets, while streams named otherwise (by third-party
//! plugins) count only from their creation until the host stops; and
//! streams another host creates or deletes meanwhile are seen at this
//! host's next start. Creates in one namespace are serialised, so
//! concurrent ones cannot pass the cap together.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long reading a namespace's streams from the server may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Pages of 1,024 stream names read at most (a million streams).
const MAX_PAGES: usize = 1_024;

/// The streams of one namespace; `None` until read from the server.
type Streams = Arc<tokio::sync::Mutex<Option<BTreeSet<String>>>>;

/// The per-namespace stream cap of one host.
#[derive(Debug)]
pub struct StreamCap {
    max: u32,
    namespaces: Mutex<HashMap<String, Streams>>,
}

/// Why a create is refused before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// The namespace holds its cap of streams already.
    #[error(
        "namespace `{namespace}` already has {held} JetStream streams, the most one namespace may create through keel:core/nats (max_streams_per_namespace = {max}); stream `{stream}` was not created"
    )]
    Full {
        /// The namespace.
        namespace: String,
        /// Streams it holds.
        held: usize,
        /// The cap.
        max: u32,
        /// The stream refused.
        stream: String,
    },
    /// The namespace's streams could not be read from the server.
    #[error("the streams of namespace `{namespace}` could not be counted: {why}")]
    Unavailable {
        /// The namespace.
        namespace: String,
        /// What failed.
        why: String,
    },
}

/// A create let through: holds the namespace's turn until it is
/// [`settle`](Admission::settle)d or dropped.
pub struct Admission {
    streams: tokio::sync::OwnedMutexGuard<Option<BTreeSet<String>>>,
    stream: String,
}

impl Admission {
    /// Records the outcome: `created` if the server created (or already
    /// had) the stream.
    pub fn settle(mut self, created: bool) {
        if created && let Some(streams) = self.streams.as_mut() {
            streams.insert(std::mem::take(&mut self.stream));
        }
    }
}

impl StreamCap {
    /// A cap of `max` streams per namespace.
    pub fn new(max: u32) -> StreamCap {
        StreamCap {
            max,
            namespaces: Mutex::new(HashMap::new()),
        }
    }

    /// The cap.
    pub fn max(&self) -> u32 {
        self.max
    }

    fn streams_of(&self, namespace: &str) -> Streams {
        let mut namespaces = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        namespaces.entry(namespace.to_string()).or_default().clone()
    }

    /// Lets a create of `stream` for `namespace` through if the namespace
    /// holds it already or holds fewer than the cap; reads the namespace's
    /// streams from the server through `client` the first time.
    pub async fn admit(
        &self,
        client: &async_nats::Client,
        namespace: &str,
        stream: &str,
    ) -> Result<Admission, CapError> {
        let mut streams = self.streams_of(namespace).lock_owned().await;
        if streams.is_none() {
            let listed = tokio::time::timeout(LIST_TIMEOUT, stream_names(client))
                .await
                .unwrap_or_else(|_| Err("the server did not answer in time".to_string()))
                .map_err(|why| CapError::Unavailable {
                    namespace: namespace.to_string(),
                    why,
                })?;
            *streams = Some(of_namespace(namespace, listed));
        }
        let held = streams.as_ref().map_or(0, BTreeSet::len);
        let known = streams.as_ref().is_some_and(|s| s.contains(stream));
        if !known && held >= self.max as usize {
            return Err(CapError::Full {
                namespace: namespace.to_string(),
                held,
                max: self.max,
                stream: stream.to_string(),
            });
        }
        Ok(Admission {
            streams,
            stream: stream.to_string(),
        })
    }

    /// Forgets `stream` of `namespace`, deleted.
    pub async fn deleted(&self, namespace: &str, stream: &str) {
        if let Some(streams) = self.streams_of(namespace).lock().await.as_mut() {
            streams.remove(stream);
        }
    }
}

/// The streams of `names` that keel's built-in plugins would name for
/// `namespace`.
fn of_namespace(namespace: &str, names: Vec<String>) -> BTreeSet<String> {
    let token = keel_names::token(namespace);
    let prefixes = [format!("KV_{token}-"), format!("OBJ_{token}-")];
    names
        .into_iter()
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p.as_str())))
        .collect()
}

/// One page of `$JS.API.STREAM.NAMES`.
#[derive(serde::Deserialize)]
struct NamesPage {
    #[serde(default)]
    streams: Option<Vec<String>>,
    #[serde(default)]
    total: usize,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Every stream name of the account, page by page.
async fn stream_names(client: &async_nats::Client) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for _ in 0..MAX_PAGES {
        let body = serde_json::json!({ "offset": names.len() }).to_string();
        let reply = client
            .request("$JS.API.STREAM.NAMES", body.into())
            .await
            .map_err(|e| format!("$JS.API.STREAM.NAMES: {e}"))?;
        let page: NamesPage = serde_json::from_slice(&reply.payload)
            .map_err(|e| format!("$JS.API.STREAM.NAMES answered: {e}"))?;
        if let Some(error) = page.error {
            return Err(format!("$JS.API.STREAM.NAMES answered {error}"));
        }
        let page_names = page.streams.unwrap_or_default();
        if page_names.is_empty() {
            break;
        }
        names.extend(page_names);
        if names.len() >= page.total {
            break;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap_with(max: u32, namespace: &str, held: &[&str]) -> StreamCap {
        let cap = StreamCap::new(max);
        let streams = cap.streams_of(namespace);
        *streams.try_lock().unwrap() = Some(held.iter().map(|s| s.to_string()).collect());
        cap
    }

    /// A client never used: the namespaces below are already read.
    async fn idle_client() -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("nats://127.0.0.1:1")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_namespace_creates_up_to_its_cap_and_others_are_apart() {
        let client = idle_client().await;
        let cap = cap_with(2, "shop", &["KV_shop-a-1"]);
        cap.admit(&client, "shop", "KV_shop-a-2")
            .await
            .unwrap()
            .settle(true);
        let full = cap
            .admit(&client, "shop", "KV_shop-a-3")
            .await
            .err()
            .unwrap();
        let text = full.to_string();
        assert!(
            text.contains("namespace `shop` already has 2") && text.contains("= 2"),
            "{text}"
        );
        // Making one it holds again is no new stream.
        cap.admit(&client, "shop", "KV_shop-a-1")
            .await
            .unwrap()
            .settle(true);
        // A failed create counts nothing; a delete frees a place.
        cap.deleted("shop", "KV_shop-a-1").await;
        cap.admit(&client, "shop", "KV_shop-a-3")
            .await
            .unwrap()
            .settle(false);
        cap.admit(&client, "shop", "KV_shop-a-4")
            .await
            .unwrap()
            .settle(true);
        assert!(cap.admit(&client, "shop", "KV_shop-a-5").await.is_err());
        let other = cap_with(2, "bank", &[]);
        assert!(other.admit(&client, "bank", "KV_bank-a-1").await.is_ok());
    }

    #[test]
    fn a_namespaces_streams_are_told_apart_by_token() {
        let names = [
            "KV_shop-web-default",
            "OBJ_shop-web-files",
            "KV_shop_2Dx-web-default",
            "KV_shopping-web-default",
            "orders",
            "KV_shop",
        ];
        let held = of_namespace("shop", names.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            held.into_iter().collect::<Vec<_>>(),
            ["KV_shop-web-default", "OBJ_shop-web-files"]
        );
        let held = of_namespace("shop-x", names.iter().map(|s| s.to_string()).collect());
        assert_eq!(held.len(), 1);
    }
}
