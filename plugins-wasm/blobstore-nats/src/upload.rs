//! Writing an object (ADR-20 put): chunks of [`CHUNK`] bytes to a fresh
//! `$O.<bucket>.C.<nuid>`, each acknowledged, with a running SHA-256; then
//! the metadata, which replaces the old version's; then the old version's
//! chunks purged. Readers see the old object until the metadata lands, and
//! an upload that never finishes leaves no object behind.

use crate::bucket::{Bucket, ObjectInfo, Options, now};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use keel_jetstream::{JsError, api, time};
use sha2::{Digest, Sha256};

/// Bytes per chunk: the Object Store default (128 KiB), far below any
/// server's `max_payload`.
pub const CHUNK: usize = 128 * 1024;

/// An object being written.
pub struct Upload {
    bucket: Bucket,
    name: String,
    nuid: String,
    hasher: Sha256,
    size: u64,
    chunks: u64,
    pending: Vec<u8>,
    done: bool,
}

impl Upload {
    /// Starts writing object `name` of `bucket` (nothing is sent yet).
    pub fn start(bucket: Bucket, name: &str) -> Upload {
        Upload {
            bucket,
            name: name.to_string(),
            nuid: nuid(),
            hasher: Sha256::new(),
            size: 0,
            chunks: 0,
            pending: Vec::with_capacity(CHUNK),
            done: false,
        }
    }

    /// Adds `bytes`, sending every chunk that fills.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), JsError> {
        while !bytes.is_empty() {
            let n = (CHUNK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.pending.len() == CHUNK {
                self.send_pending()?;
            }
        }
        Ok(())
    }

    fn send_pending(&mut self) -> Result<(), JsError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        api::publish(&self.bucket.chunk_subject(&self.nuid), &[], &self.pending)?;
        self.hasher.update(&self.pending);
        self.size += self.pending.len() as u64;
        self.chunks += 1;
        self.pending.clear();
        Ok(())
    }

    /// Sends the last chunk and the metadata, then purges the chunks of the
    /// version this one replaces.
    pub fn finish(mut self) -> Result<(), JsError> {
        self.send_pending()?;
        let previous = self.bucket.object(&self.name)?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        let info = ObjectInfo {
            name: self.name.clone(),
            bucket: self.bucket.name.clone(),
            nuid: self.nuid.clone(),
            size: self.size,
            chunks: self.chunks,
            mtime: time::rfc3339(now()),
            digest: format!("SHA-256={}", URL_SAFE.encode(digest)),
            options: Some(Options {
                link: None,
                max_chunk_size: Some(CHUNK as u64),
            }),
            ..ObjectInfo::default()
        };
        self.bucket.put_metadata(&info)?;
        self.done = true;
        match previous {
            Some(old) if !old.info.nuid.is_empty() && old.info.nuid != self.nuid => {
                self.bucket.purge_chunks(&old.info.nuid)
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Upload {
    /// An upload given up: its chunks are purged (best effort; a failure
    /// leaves unreferenced chunks, which no reader sees).
    fn drop(&mut self) {
        if !self.done && self.chunks > 0 {
            let _ = self.bucket.purge_chunks(&self.nuid);
        }
    }
}

/// A fresh NUID-style token: 22 characters of `[0-9A-Za-z]` from 16 random
/// bytes (about 131 bits).
fn nuid() -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let bytes = keel_guest::wasip2::random::random::get_random_bytes(16);
    let mut value = bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    (0..22)
        .map(|_| {
            let digit = DIGITS[(value % 62) as usize];
            value /= 62;
            char::from(digit)
        })
        .collect()
}
