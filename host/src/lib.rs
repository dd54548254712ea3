//! keel: a host for WebAssembly components in which every capability is
//! itself a component.
//!
//! # The library API
//!
//! A [`Host`] is configured with a [`HostBuilder`] ([`EngineOptions`],
//! [`IngressOptions`], [`PendingLimits`], [`oci::OciOptions`], a
//! [`Resolver`], a [`spec::NatsSpec`]) and runs workloads described by
//! [`WorkloadSpec`]s, with plugins described by [`spec::PluginSpec`]s; its
//! calls fail with a typed [`Error`]. [`spec`] is the data model (every
//! spec and option struct is `#[non_exhaustive]`: build it with its
//! constructor or `Default` and its `with_*` methods), [`manifest`] turns a
//! TOML manifest into specs, and [`oci`] pulls and pushes components in
//! registries. `Host` must run on a multi-thread Tokio runtime.
//!
//! ```no_run
//! use keel::spec::{ComponentSpec, HttpSpec};
//! use keel::{Host, WorkloadId, WorkloadSpec};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder()
//!     .http_listen("127.0.0.1:8080".parse()?)
//!     .start()
//!     .await?;
//! let spec = WorkloadSpec::new(
//!     WorkloadId::new("demo", "hello"),
//!     ComponentSpec::new("hello", "hello.wasm"),
//! )
//! .with_http(HttpSpec::default().with_host("localhost"));
//! host.start_workload(spec).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Nothing else is part of the API; `testing` (hidden) holds what keel's
//! own tests reach into.
//!
//! # Inside
//!
//! The crate is built in layers; a module uses its own layer and the ones
//! below, never one above (`tools/check-layers.sh` checks it; README's
//! "Architecture" draws it). From the bottom:
//!
//! - `policy`: names, NATS subjects, grants and allowlists, as rules.
//! - `spec`: the data model with its validation; `manifest` turns TOML
//!   into it.
//! - `budget`, `trap`, `logging`, `pool`: memory budgets, trap summaries,
//!   the log writer, admission to the instance pool.
//! - `engine`, `cache`, `oci`: Wasmtime, compiled components on disk,
//!   components from registries.
//! - `outgoing`: a guest's outgoing HTTP.
//! - `core_api`: the host side of `keel:core`, for any Store data that
//!   implements `CoreView`.
//! - `store`: a guest's Store and the one builder that makes it.
//! - `plugins`: link plans, composed and shared plugins, forwarders.
//! - `services`, `workload`: what workloads share; their lifecycle.
//! - `http`: the ingress.
//! - `host` and `error`: the library API and its typed errors; `fleet`:
//!   `keel host`'s side of wasmCloud's host protocol; `cli`: the `keel`
//!   command.
//!
//! A request's path: `http::ingress` → `http::router` (Host header) →
//! `http::handler` → a fresh instance of the workload's component in a new
//! Store (`workload::invocation` → `store::GuestStore`), bounded in time,
//! memory and concurrency.

// The library API: the data model, manifests and registries as modules,
// the rest re-exported below. Everything else is the crate's own.
pub mod manifest;
pub mod oci;
pub mod spec;

mod budget;
mod cache;
mod cli;
mod core_api;
mod engine;
mod error;
mod fleet;
mod host;
mod http;
mod logging;
mod outgoing;
mod plugins;
mod policy;
mod pool;
mod services;
mod store;
mod trap;
mod workload;

#[doc(hidden)]
pub mod testing;

pub use cache::CacheStats;
pub use core_api::pending::PendingLimits;
pub use engine::EngineOptions;
pub use error::{Error, Result};
pub use host::{Host, HostBuilder};
pub use http::IngressOptions;
pub use http::body::ResponseBody;
pub use manifest::{Manifest, ManifestError};
pub use outgoing::resolve::{Lookup, Resolver};
pub use spec::{ComponentSource, WorkloadId, WorkloadSpec, WorkloadState, WorkloadStatus};

/// The `keel` command (`host/src/main.rs`): not part of the library API.
#[doc(hidden)]
pub use cli::main as cli_main;
