//! A guest's outgoing HTTP (`wasi:http/outgoing-handler`): the allowlist
//! check on each request ([`OutgoingHooks`]), name resolution done by keel
//! ([`Resolver`]), and connecting only to addresses that were checked
//! ([`connect`]). Every guest Store gets these hooks, workloads and shared
//! plugins alike; the ingress side of HTTP is [`crate::http`].

pub mod connect;
pub mod hooks;
pub mod resolve;

pub use hooks::OutgoingHooks;
pub use resolve::Resolver;
