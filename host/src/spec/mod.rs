//! keel's data model: what a host runs ([`WorkloadSpec`]), the plugins it
//! links ([`PluginSpec`]), the NATS connection ([`NatsSpec`]), the catalog
//! of [`builtin`] plugins, and a workload's [`WorkloadStatus`].
//!
//! Specs come from a manifest (`crate::manifest` turns TOML into them) or
//! from an embedder's code; either way [`WorkloadSpec::validate`] and
//! [`PluginSpec::validate`] refuse the same things. This layer knows names
//! and policy (the crate's `policy` layer) and nothing that runs.

pub mod builtin;
pub mod image_ref;
mod limits;
mod location;
mod nats;
mod plugin;
pub mod plugin_meta;
mod reach;
mod registry;
mod service;
mod source;
mod status;
pub(crate) mod units;
pub(crate) mod validate;
mod warm;
mod workload;
mod wraps;

pub use crate::policy::names::validate_name;
pub use image_ref::{ImageRef, InvalidReference};
pub use limits::Limits;
pub use location::Location;
pub use nats::{NatsSpec, SubjectScope};
pub use plugin::{Forwarder, LinkMode, PluginGrants, PluginSpec, SharedScope};
pub use reach::{HttpSpec, SocketsSpec, VolumeSpec};
pub use registry::RegistrySpec;
pub use service::ServiceSpec;
pub use source::{ComponentSource, OciComponent};
pub use status::{WorkloadState, WorkloadStatus};
pub use units::{ByteSize, parse_duration};
pub use validate::InvalidSpec;
pub use warm::WarmSpec;
pub use workload::{ComponentSpec, SubscriptionSpec, WorkloadId, WorkloadSpec};
pub use wraps::Wraps;

/// JetStream streams the plugins acting for one namespace may create
/// through `keel:core/nats` unless the host is configured otherwise.
pub const DEFAULT_MAX_STREAMS_PER_NAMESPACE: u32 = 100;
