//! JetStream KV (ADR-8) as keel's plugins share it: bucket `b` is stream
//! `KV_b`, key `k` is subject `$KV.b.k`, deletes are tombstones
//! (`KV-Operation: DEL` or `PURGE`).
//!
//! Keys keel's guests use are freer than KV keys, so they are stored as
//! valid keys as they are, any other as `=` + unpadded URL-safe base64 of
//! its UTF-8 (every character of which is valid in a key, and no verbatim
//! key starts with `=`).

use crate::api::{self, Stored};
use crate::{JsError, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The stream of bucket `bucket`.
pub fn stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The subject of `key` (in its stored form) in `bucket`.
pub fn subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{}", encode(key))
}

/// The latest message on `key` in `bucket`, tombstones included (they
/// carry the revision a create must expect).
pub fn latest(bucket: &str, key: &str) -> Result<Option<Stored>, JsError> {
    api::last_on(&stream(bucket), &subject(bucket, key))
}

/// Whether a message with `headers` is a tombstone.
pub fn is_tombstone(headers: &[(String, String)]) -> bool {
    matches!(header(headers, "KV-Operation"), Some("DEL" | "PURGE"))
}

/// Whether `key` is a valid NATS KV key (ADR-8).
fn valid(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
}

/// The stored form of `key`.
pub fn encode(key: &str) -> String {
    if valid(key) && !key.starts_with('=') {
        key.to_string()
    } else {
        format!("={}", URL_SAFE_NO_PAD.encode(key.as_bytes()))
    }
}

/// The key a stored key stands for (a key another client wrote that merely
/// starts with `=` comes back as written).
pub fn decode(stored: &str) -> String {
    stored
        .strip_prefix('=')
        .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|key| encode(key) == stored)
        .unwrap_or_else(|| stored.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_valid_ones_stay_readable() {
        assert_eq!(encode("user.42/profile"), "user.42/profile");
        for key in ["", "ключ", "a b", ".x", "a..b", "=x", "鍵/🔑"] {
            let stored = encode(key);
            assert!(valid(&stored), "{stored}");
            assert_eq!(decode(&stored), key);
        }
    }
}
