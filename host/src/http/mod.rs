//! HTTP: the ingress server and its connection bounds, routing by Host
//! header, the per-request path into a guest, and outgoing requests: the
//! allowlist, resolution, and connecting to checked addresses only.

pub mod body;
pub mod connect;
pub mod connection;
pub mod handler;
pub mod ingress;
pub mod options;
pub mod outgoing;
pub mod resolve;
pub mod router;
pub mod watchdog;

pub use ingress::Ingress;
pub use options::IngressOptions;
pub use resolve::Resolver;
pub use router::Router;
