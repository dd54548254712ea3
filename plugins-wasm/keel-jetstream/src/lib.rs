//! JetStream for keel's NATS-backed plugins, spoken from inside the guest
//! over `keel:core/nats`: the JSON API (`$JS.API.…`), acknowledged
//! publishes, direct gets, and ephemeral pull consumers. The wire facts
//! follow nats-server 2.9 (ADR-1, ADR-8, ADR-20, ADR-31); plugins built on
//! this crate ([`api`], [`consumer`], [`kv`] for KV buckets and keys,
//! [`time`] for the timestamps the server writes) interoperate with any
//! NATS client.

wit_bindgen::generate!({
    inline: "
        package keel:jetstream;
        world client {
            import keel:core/nats@0.1.0;
        }
    ",
    path: "../../wit/keel-core",
    generate_all,
});

pub mod api;
pub mod consumer;
pub mod kv;
pub mod time;

pub use keel::core::nats;

/// How long one JetStream API call may take.
pub const TIMEOUT_MS: u32 = 5_000;

/// Why a JetStream operation failed.
#[derive(Debug, Clone)]
pub enum JsError {
    /// The server answered with an API error (`err_code` as in the server's
    /// `errors.json`: 10059 stream not found, 10071 wrong last sequence, …).
    Api {
        /// The HTTP-like code.
        code: u16,
        /// The JetStream error code.
        err_code: u32,
        /// What the server said.
        description: String,
    },
    /// The call through `keel:core/nats` failed.
    Nats(nats::Error),
    /// The reply did not follow the protocol.
    Protocol(String),
}

impl JsError {
    /// Whether this is the API error `err_code`.
    pub fn is(&self, err_code: u32) -> bool {
        matches!(self, JsError::Api { err_code: e, .. } if *e == err_code)
    }
}

impl std::fmt::Display for JsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsError::Api {
                code,
                err_code,
                description,
            } => {
                write!(f, "JetStream error {err_code} ({code}): {description}")
            }
            JsError::Nats(e) => write!(f, "NATS: {}", describe(e)),
            JsError::Protocol(what) => write!(f, "unexpected JetStream reply: {what}"),
        }
    }
}

impl From<nats::Error> for JsError {
    fn from(e: nats::Error) -> JsError {
        JsError::Nats(e)
    }
}

/// A `keel:core/nats` error in words.
pub fn describe(e: &nats::Error) -> String {
    match e {
        nats::Error::NoResponders => "no responders (is JetStream enabled on the server?)".into(),
        nats::Error::Timeout => "timed out".into(),
        nats::Error::NotGranted(subject) => {
            format!("subject `{subject}` is not granted to this plugin")
        }
        nats::Error::Invalid(what) => format!("invalid: {what}"),
        nats::Error::TooLarge(what) => format!("too large: {what}"),
        nats::Error::NotConfigured => "the host has no NATS server configured".into(),
        nats::Error::Unavailable(what) => format!("unavailable: {what}"),
    }
}

/// The value of header `name` (compared case-insensitively), if present.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
