//! HTTP: the ingress server and its connection bounds, routing by Host
//! header, the per-request path into a guest.
//! Outgoing requests are [`crate::outgoing`].

pub mod body;
pub mod connection;
pub mod handler;
pub mod ingress;
pub mod options;
pub mod router;
pub mod watchdog;

pub use ingress::Ingress;
pub use options::IngressOptions;
pub use router::Router;
