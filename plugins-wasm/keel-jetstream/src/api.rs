//! The JetStream JSON API and the messages it stores: requests to
//! `$JS.API.…`, acknowledged publishes, and direct gets.

use crate::{JsError, TIMEOUT_MS, header, nats};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The error object every API reply may carry.
#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

fn check_error(reply: &Value) -> Result<(), JsError> {
    match reply.get("error") {
        None | Some(Value::Null) => Ok(()),
        Some(error) => {
            let e: ApiError = serde_json::from_value(error.clone())
                .map_err(|e| JsError::Protocol(format!("error object: {e}")))?;
            Err(JsError::Api {
                code: e.code,
                err_code: e.err_code,
                description: e.description,
            })
        }
    }
}

/// Sends `body` to API endpoint `$JS.API.<endpoint>` and reads the reply.
pub fn call<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, JsError> {
    let subject = format!("$JS.API.{endpoint}");
    let reply = nats::request(&subject, &[], body, TIMEOUT_MS)?;
    let value: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| JsError::Protocol(format!("{subject}: {e}")))?;
    check_error(&value)?;
    serde_json::from_value(value).map_err(|e| JsError::Protocol(format!("{subject}: {e}")))
}

/// A stream's configuration, as the server reports it (the fields keel reads).
#[derive(Debug, Clone, Deserialize)]
pub struct StreamConfig {
    /// Whether direct gets are answered.
    #[serde(default)]
    pub allow_direct: bool,
    /// Revisions kept per subject.
    #[serde(default)]
    pub max_msgs_per_subject: i64,
}

/// What the server reports about a stream (the fields keel reads).
#[derive(Debug, Clone, Deserialize)]
pub struct StreamInfo {
    /// Its configuration.
    pub config: StreamConfig,
    /// When it was created (RFC 3339; see [`crate::time`]).
    #[serde(default)]
    pub created: String,
}

/// What the server reports about stream `name`, or `None` if it does not
/// exist.
pub fn stream_info(name: &str) -> Result<Option<StreamInfo>, JsError> {
    match call::<StreamInfo>(&format!("STREAM.INFO.{name}"), b"") {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.is(10059) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The configuration of stream `name`, or `None` if it does not exist.
pub fn stream_config(name: &str) -> Result<Option<StreamConfig>, JsError> {
    Ok(stream_info(name)?.map(|info| info.config))
}

/// Deletes stream `name` with every message in it; `false` if there was no
/// such stream.
pub fn delete_stream(name: &str) -> Result<bool, JsError> {
    match call::<Value>(&format!("STREAM.DELETE.{name}"), b"") {
        Ok(_) => Ok(true),
        Err(e) if e.is(10059) => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct Purged {
    #[serde(default)]
    purged: u64,
}

/// Removes the messages of stream `name` whose subject matches `filter`
/// (all of them with `None`); returns how many went.
pub fn purge(name: &str, filter: Option<&str>) -> Result<u64, JsError> {
    let body = match filter {
        Some(filter) => serde_json::to_vec(&serde_json::json!({ "filter": filter }))
            .map_err(|e| JsError::Protocol(e.to_string()))?,
        None => Vec::new(),
    };
    Ok(call::<Purged>(&format!("STREAM.PURGE.{name}"), &body)?.purged)
}

/// Creates a stream from `config` (its `name` included). Creating one that
/// exists with the same configuration succeeds; with a different one it is
/// error 10058.
pub fn create_stream(config: &Value) -> Result<StreamInfo, JsError> {
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = serde_json::to_vec(config).map_err(|e| JsError::Protocol(e.to_string()))?;
    call::<StreamInfo>(&format!("STREAM.CREATE.{name}"), &body)
}

/// A stream's acknowledgement of a publish.
#[derive(Debug, Clone, Deserialize)]
pub struct Ack {
    /// The stream that stored the message.
    pub stream: String,
    /// Its sequence number there (a KV revision).
    pub seq: u64,
    /// Whether it was a duplicate of an earlier `Nats-Msg-Id`.
    #[serde(default)]
    pub duplicate: bool,
}

/// Publishes to a stream subject and waits for the stream's ack.
pub fn publish(subject: &str, headers: &[(String, String)], body: &[u8]) -> Result<Ack, JsError> {
    let reply = nats::request(subject, headers, body, TIMEOUT_MS)?;
    let value: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| JsError::Protocol(format!("ack on {subject}: {e}")))?;
    check_error(&value)?;
    serde_json::from_value(value).map_err(|e| JsError::Protocol(format!("ack on {subject}: {e}")))
}

/// A message as a stream stores it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its subject.
    pub subject: String,
    /// Its sequence number in the stream.
    pub seq: u64,
    /// When it was stored (RFC 3339).
    pub time: String,
    /// The headers its writer gave it.
    pub headers: Vec<(String, String)>,
    /// Its payload.
    pub body: Vec<u8>,
}

/// Reads a direct-get reply: `None` for `404`.
fn stored(reply: nats::Message) -> Result<Option<Stored>, JsError> {
    match reply.status {
        Some(404) => return Ok(None),
        Some(code) => {
            let what = reply.description.unwrap_or_default();
            return Err(JsError::Protocol(format!(
                "direct get answered {code} {what}"
            )));
        }
        None => {}
    }
    let seq = header(&reply.headers, "Nats-Sequence")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JsError::Protocol("direct get reply without Nats-Sequence".into()))?;
    Ok(Some(Stored {
        subject: header(&reply.headers, "Nats-Subject")
            .unwrap_or(&reply.subject)
            .to_string(),
        seq,
        time: header(&reply.headers, "Nats-Time-Stamp")
            .unwrap_or_default()
            .to_string(),
        headers: reply.headers,
        body: reply.body,
    }))
}

/// The last message on `subject` in `stream` (a direct get).
pub fn last_on(stream: &str, subject: &str) -> Result<Option<Stored>, JsError> {
    let reply = nats::request(
        &format!("$JS.API.DIRECT.GET.{stream}.{subject}"),
        &[],
        b"",
        TIMEOUT_MS,
    )?;
    stored(reply)
}

/// The first message at or after sequence `seq` in `stream` whose subject
/// matches `filter` (a direct get with `next_by_subj`), or the message at
/// exactly `seq` when `filter` is `None`.
pub fn at_or_after(
    stream: &str,
    seq: u64,
    filter: Option<&str>,
) -> Result<Option<Stored>, JsError> {
    let body = match filter {
        Some(filter) => serde_json::json!({ "seq": seq, "next_by_subj": filter }),
        None => serde_json::json!({ "seq": seq }),
    };
    let body = serde_json::to_vec(&body).map_err(|e| JsError::Protocol(e.to_string()))?;
    let reply = nats::request(
        &format!("$JS.API.DIRECT.GET.{stream}"),
        &[],
        &body,
        TIMEOUT_MS,
    )?;
    stored(reply)
}
