//! One Object Store bucket (ADR-20): stream `OBJ_<bucket>`, chunks at
//! `$O.<bucket>.C.<nuid>`, one metadata message per object at
//! `$O.<bucket>.M.<name in padded URL-safe base64>`, kept single by
//! `Nats-Rollup: sub`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use keel_jetstream::api::{self, StreamInfo};
use keel_jetstream::{JsError, time};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How many links `resolve` follows before giving up (a loop of links).
const MAX_LINKS: usize = 8;

/// An object's metadata message (ADR-20's ObjectInfo). Every field but
/// `name` may be missing, and unknown fields are ignored, so metadata any
/// client wrote reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's name, unencoded.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `string → [string]`, or old async-nats's `{"inner": …}`: kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    #[serde(default)]
    pub bucket: String,
    /// The chunks' subject token.
    #[serde(default)]
    pub nuid: String,
    /// Bytes.
    #[serde(default)]
    pub size: u64,
    /// Not meaningful (writers disagree); readers take the message's time.
    #[serde(default)]
    pub mtime: String,
    #[serde(default)]
    pub chunks: u64,
    /// `SHA-256=` and the hash in padded URL-safe base64.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// ObjectInfo's `options`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chunk_size: Option<u64>,
}

/// A link to an object (or, without a name, a whole bucket).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Link {
    pub bucket: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// An object's metadata and when it was written (seconds since the epoch,
/// from the metadata message's `Nats-Time-Stamp`).
#[derive(Debug, Clone)]
pub struct Object {
    pub info: ObjectInfo,
    pub written: u64,
}

/// A bucket: its name and its stream's.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub stream: String,
}

impl Bucket {
    /// Bucket `name` (which must be a valid JetStream name).
    pub fn new(name: &str) -> Bucket {
        Bucket {
            name: name.to_string(),
            stream: format!("OBJ_{name}"),
        }
    }

    /// The stream's info; `None` if the bucket does not exist.
    pub fn info(&self) -> Result<Option<StreamInfo>, JsError> {
        api::stream_info(&self.stream)
    }

    /// Creates the bucket; `false` if it already existed.
    pub fn create(&self) -> Result<bool, JsError> {
        if self.info()?.is_some() {
            return Ok(false);
        }
        match api::create_stream(&self.stream_config()) {
            Ok(_) => Ok(true),
            Err(e) if e.is(10058) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the bucket and its objects; `false` if it did not exist.
    pub fn delete(&self) -> Result<bool, JsError> {
        api::delete_stream(&self.stream)
    }

    /// Removes every object.
    pub fn clear(&self) -> Result<(), JsError> {
        api::purge(&self.stream, None).map(|_| ())
    }

    /// The subject of the metadata of object `name`.
    pub fn meta_subject(&self, name: &str) -> String {
        format!("$O.{}.M.{}", self.name, URL_SAFE.encode(name))
    }

    /// The subject of the chunks of the object version `nuid`.
    pub fn chunk_subject(&self, nuid: &str) -> String {
        format!("$O.{}.C.{nuid}", self.name)
    }

    /// Object `name`'s metadata, deletion markers included.
    pub fn metadata(&self, name: &str) -> Result<Option<Object>, JsError> {
        let Some(stored) = api::last_on(&self.stream, &self.meta_subject(name))? else {
            return Ok(None);
        };
        let info = parse_info(&stored.body)?;
        let written = time::unix_seconds(&stored.time)
            .or_else(|| time::unix_seconds(&info.mtime))
            .unwrap_or(0);
        Ok(Some(Object { info, written }))
    }

    /// Object `name` if it exists (not deleted); links are not followed.
    pub fn object(&self, name: &str) -> Result<Option<Object>, JsError> {
        Ok(self.metadata(name)?.filter(|o| !o.info.deleted))
    }

    /// Object `name`, following links to the object they name: the bucket
    /// that holds its chunks and its metadata.
    pub fn resolve(&self, name: &str) -> Result<Option<(Bucket, Object)>, JsError> {
        let mut at = (self.clone(), name.to_string());
        for _ in 0..=MAX_LINKS {
            let Some(object) = at.0.object(&at.1)? else {
                return Ok(None);
            };
            match object.info.options.as_ref().and_then(|o| o.link.as_ref()) {
                None => return Ok(Some((at.0, object))),
                Some(Link {
                    bucket,
                    name: Some(target),
                }) => at = (Bucket::new(bucket), target.clone()),
                Some(Link { bucket, name: None }) => {
                    return Err(JsError::Protocol(format!(
                        "object `{name}` links to the whole bucket `{bucket}`, which cannot be read"
                    )));
                }
            }
        }
        Err(JsError::Protocol(format!(
            "object `{name}` is a chain of more than {MAX_LINKS} links"
        )))
    }

    /// Writes `info` as its object's metadata, replacing the previous
    /// message (`Nats-Rollup: sub`).
    pub fn put_metadata(&self, info: &ObjectInfo) -> Result<(), JsError> {
        let body = serde_json::to_vec(info).map_err(|e| JsError::Protocol(e.to_string()))?;
        let headers = [("Nats-Rollup".to_string(), "sub".to_string())];
        api::publish(&self.meta_subject(&info.name), &headers, &body).map(|_| ())
    }

    /// Removes the chunks of object version `nuid`.
    pub fn purge_chunks(&self, nuid: &str) -> Result<(), JsError> {
        api::purge(&self.stream, Some(&self.chunk_subject(nuid))).map(|_| ())
    }

    /// Deletes object `name` (ADR-20: a deletion marker, then its chunks
    /// purged). Deleting a missing or deleted object does nothing.
    pub fn delete_object(&self, name: &str) -> Result<(), JsError> {
        let Some(Object { info, .. }) = self.metadata(name)? else {
            return Ok(());
        };
        if info.deleted {
            return Ok(());
        }
        let nuid = info.nuid.clone();
        let marker = ObjectInfo {
            deleted: true,
            size: 0,
            chunks: 0,
            digest: String::new(),
            mtime: time::rfc3339(now()),
            ..info
        };
        self.put_metadata(&marker)?;
        if !nuid.is_empty() {
            self.purge_chunks(&nuid)?;
        }
        Ok(())
    }

    /// A new bucket's stream (ADR-20).
    fn stream_config(&self) -> Value {
        json!({
            "name": self.stream,
            "subjects": [format!("$O.{}.C.>", self.name), format!("$O.{}.M.>", self.name)],
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msgs_per_subject": -1,
            "max_msg_size": -1,
            "discard": "new",
            "storage": "file",
            "num_replicas": 1,
            "allow_rollup_hdrs": true,
            "allow_direct": true,
        })
    }
}

/// Metadata JSON as an [`ObjectInfo`].
pub fn parse_info(body: &[u8]) -> Result<ObjectInfo, JsError> {
    serde_json::from_slice(body).map_err(|e| JsError::Protocol(format!("object metadata: {e}")))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    keel_guest::wasip2::clocks::wall_clock::now().seconds
}
