//! The composition manifest: what `keel run app.toml` starts.
//!
//! A manifest is TOML. Every table rejects keys it does not know, and every
//! error names the file, line and column (see [`ManifestError`]). The full
//! reference, with defaults, is in the README; in short:
//!
//! ```toml
//! [nats]                      # optional: messaging over NATS, not in-process
//! url = "nats://127.0.0.1:4222"
//!
//! [[workload]]
//! namespace = "shop"          # optional, "default" when left out
//! name = "api"
//! env = { GREETING = "hi" }
//! data_name = "api"           # optional: the name its data is kept under
//!
//! [workload.http]
//! host = "api.shop.local"     # route requests with this Host header here
//! outgoing = ["api.example.com", "*.internal:8443"]   # outgoing HTTP allowlist
//! block_private = true        # `*.` grants may not resolve to internal addresses
//!
//! [workload.sockets]
//! allow = ["127.0.0.1:6379"]  # TCP/UDP addresses the guest may use
//!
//! [workload.limits]
//! memory = "64MiB"            # per instance
//! timeout = "5s"              # per invocation
//! max_instances = 64          # in flight at once
//! queue_timeout = "1s"        # wait for a free instance, then 503
//! max_request_body = "10MiB"
//!
//! [[workload.volume]]
//! host = "./data"             # relative to the manifest's folder
//! guest = "/data"
//! read_only = true
//!
//! [[workload.component]]
//! name = "api"
//! path = "api.wasm"           # relative to the manifest's folder
//! config = { greeting = "hi" } # wasi:config values, over the config plugin's
//! config_env = false          # add the environment as a last wasi:config layer
//!
//! [workload.service]          # optional: a long-running wasi:cli/run component
//! path = "db.wasm"            # whose loopback ports are the workload's localhost
//! max_restarts = 3            # new instances after failures, then the workload fails
//!
//! [[workload.subscription]]   # messages to the wasmcloud:messaging/handler export
//! subject = "orders.*"        # in the workload's namespace
//! queue = "workers"           # optional queue group
//!
//! [workload.plugins]          # which plugin serves an interface, when several could
//! "acme:tally/counters" = "tally"
//!
//! [[plugin]]                  # a capability, as a component
//! name = "tally"
//! path = "tally_plugin.wasm"
//! mode = "composed"           # or "shared"
//! scope = "namespace"         # shared: one instance per namespace, "host" or "workload"
//! forwarder = "auto"          # shared: typed where keel has one; "typed" (warns where
//!                             # keel has none) or "generic"
//! memory = "256MiB"           # shared: linear memory of one instance
//! call_timeout = "5s"         # shared: how long one call may run in the plugin
//!
//! [plugin.grants]             # what the plugin itself may reach
//! outgoing_http = ["api.example.com"]   # shared mode only
//! outgoing_block_private = true         # as `block_private` of a workload
//! sockets = ["10.0.0.5:6379"]           # shared mode only
//! subjects = ["$KV.KV_{namespace}-*.>"] # NATS subjects, through keel:core/nats
//!
//! [[plugin]]                  # no path: configures the built-in of this name
//! name = "config"
//! config = { greeting = "hello" }
//! ```

mod load;
pub(crate) mod raw;

pub use load::ManifestError;

use crate::spec::{NatsSpec, PluginSpec, WorkloadSpec};
use std::path::PathBuf;

/// A whole manifest: the plugins and workloads one host runs.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    /// The NATS server messaging goes through, if any (else the in-process bus).
    pub nats: Option<NatsSpec>,
    /// The plugins workloads may be linked to, in manifest order.
    pub plugins: Vec<PluginSpec>,
    /// The workloads, in manifest order.
    pub workloads: Vec<WorkloadSpec>,
    /// How to reach the registries `oci://` references name: plain HTTP,
    /// credentials (`[[registry]]`).
    pub registries: Vec<crate::spec::RegistrySpec>,
}
