//! keel: a host for WebAssembly components in which every capability is
//! itself a component.
//!
//! The crate is built in layers; a module uses its own layer and the ones
//! below, never one above (`tools/check-layers.sh` checks it; README's
//! "Architecture" draws it). From the bottom:
//!
//! - [`policy`]: names, NATS subjects, grants and allowlists, as rules.
//! - [`spec`]: the data model ([`WorkloadSpec`], [`spec::PluginSpec`],
//!   statuses, the built-in plugin catalog) with its validation;
//!   [`manifest`] turns TOML into it.
//! - [`budget`], [`trap`], [`logging`], [`pool`]: memory budgets, trap
//!   summaries, the log writer, admission to the instance pool.
//! - [`engine`], [`cache`], [`oci`]: Wasmtime, compiled components on disk,
//!   components from registries.
//! - [`outgoing`]: a guest's outgoing HTTP.
//! - [`core_api`]: the host side of `keel:core`, for any Store data that
//!   implements [`core_api::CoreView`].
//! - [`store`]: a guest's Store and the one builder that makes it.
//! - [`plugins`]: link plans, composed and shared plugins, forwarders.
//! - [`services`], [`workload`]: what workloads share; their lifecycle.
//! - [`http`]: the ingress.
//! - [`host`] and [`error`]: the library API ([`Host`]) and its typed
//!   errors; [`fleet`]: `keel host`'s side of wasmCloud's host protocol;
//!   [`cli`]: the `keel` command.
//!
//! A request's path: [`http::ingress`] → [`http::router`] (Host header) →
//! [`http::handler`] → a fresh instance of the workload's component in a new
//! Store ([`workload::invocation`] → [`store::GuestStore`]), bounded in
//! time, memory and concurrency.

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
pub use core_api::pending::PendingLimits;
pub use engine::EngineOptions;
pub use error::Error;
pub use host::{Host, HostBuilder};
pub use http::IngressOptions;
pub use manifest::Manifest;
pub use spec::{ComponentSource, WorkloadId, WorkloadSpec, WorkloadState, WorkloadStatus};
