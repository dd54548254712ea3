//! HTTP: the ingress server, routing by Host header, the per-request path
//! into a guest, and the outgoing-request allowlist.

pub mod body;
pub mod handler;
pub mod ingress;
pub mod outgoing;
pub mod router;

pub use ingress::Ingress;
pub use router::Router;
