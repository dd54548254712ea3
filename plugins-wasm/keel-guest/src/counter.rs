//! The one encoding of `wasi:keyvalue/atomics` counters used by every
//! keyvalue backend keel ships: the value is the counter as decimal ASCII
//! digits (`b"42"`), with no sign, padding or whitespace. Any client of the
//! backing store (a NATS KV reader, say) reads it as text.

/// Why a stored value is not a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACounter;

/// Reads a stored counter.
///
/// ```
/// assert_eq!(keel_guest::counter::decode(b"42"), Ok(42));
/// assert!(keel_guest::counter::decode(b"forty-two").is_err());
/// assert!(keel_guest::counter::decode(b"").is_err());
/// ```
pub fn decode(value: &[u8]) -> Result<u64, NotACounter> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(NotACounter);
    }
    std::str::from_utf8(value)
        .map_err(|_| NotACounter)?
        .parse()
        .map_err(|_| NotACounter)
}

/// Writes a counter.
pub fn encode(value: u64) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// `current + delta` for a key holding `current` (`None`: the key is
/// missing, which counts as 0). Errors on a non-counter value or overflow.
pub fn increment(current: Option<&[u8]>, delta: u64) -> Result<u64, String> {
    let base = match current {
        None => 0,
        Some(value) => decode(value).map_err(|NotACounter| {
            "the key holds a value that is not a counter (counters are decimal ASCII digits)"
                .to_string()
        })?,
    };
    base.checked_add(delta)
        .ok_or_else(|| format!("the counter would overflow: {base} + {delta}"))
}
