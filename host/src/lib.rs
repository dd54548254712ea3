//! keel: a host for WebAssembly components in which every capability is
//! itself a component.
//!
//! The native core is thin: the Wasmtime [`engine`], a disk [`cache`] of
//! compiled components, [`workload`]s with their per-invocation Stores and
//! limits, the [`http`] ingress and outgoing allowlist, and the [`manifest`]
//! that describes what to run. [`Host`] ties them together and is the library
//! API; [`cli`] is the `keel` command.
//!
//! A request's path: [`http::ingress`] → [`http::router`] (Host header) →
//! [`http::handler`] → a fresh instance of the workload's component in a new
//! Store ([`workload::invocation`]), bounded in time, memory and concurrency.

pub mod budget;
pub mod cache;
pub mod cli;
pub mod core_api;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod host;
pub mod http;
pub mod logging;
pub mod manifest;
pub mod oci;
pub mod outgoing;
pub mod plugins;
pub mod policy;
pub mod pool;
pub mod services;
pub mod spec;
pub mod store;
pub mod trap;
pub mod workload;

pub use cache::CacheStats;
pub use engine::EngineOptions;
pub use error::Error;
pub use host::{Host, HostBuilder};
pub use manifest::Manifest;
pub use spec::{ComponentSource, WorkloadId, WorkloadSpec, WorkloadState, WorkloadStatus};
