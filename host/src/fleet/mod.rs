//! A keel host in a fleet scheduled by wasmCloud's runtime operator (or
//! anything speaking its protocol over NATS): the protocol's [`messages`],
//! the [`translate`]ion of a wasmCloud workload into a keel one, the
//! [`heartbeat`], and the [`server`] answering requests. keel schedules
//! nothing itself: the operator places workloads on hosts.
//!
//! This layer sits above [`crate::host`]: it drives a [`Host`](crate::Host)
//! through its library API only.

pub mod heartbeat;
mod interfaces;
pub mod messages;
mod replicas;
pub mod server;
mod service;
pub mod translate;

pub use heartbeat::Identity;
pub use server::FleetHost;
pub use translate::Settings;
