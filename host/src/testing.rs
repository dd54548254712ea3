//! Internals that keel's own tests, benchmarks and fuzz targets reach
//! into. **Not part of the library API**: anything here may change or go
//! away in any release. An embedder uses the crate root, [`crate::spec`],
//! [`crate::manifest`] and [`crate::oci`].

pub use crate::core_api::broker::{Broker, BrokerSubscription};
pub use crate::core_api::bus::{Bus, Message};
pub use crate::engine::KeelEngine;
pub use crate::fleet::{FleetHost, Identity, Settings};
pub use crate::oci::client::install_tls_provider;
pub use crate::plugins::shared::SharedPlugin;
pub use crate::workload::{Unavailable, Workload};

/// The rules about names, subjects, authorities and sockets.
pub mod policy {
    pub use crate::policy::{addresses, authority, grants, inbox, loopback, names, sockets};
}

/// Link plans and the plugin set they are made from.
pub mod plugins {
    pub use crate::plugins::{LinkPlan, PluginSet, component_info, host_serves};
}
