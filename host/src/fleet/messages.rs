//! The messages of wasmCloud's host protocol (`wasmcloud.runtime.v2`) in
//! protobuf's JSON mapping, written by hand from the `.proto` files.
//!
//! What the mapping asks of a peer, and what these types do about it:
//! - field names are lowerCamelCase; readers also accept the proto names
//!   (snake_case), hence an `alias` on every two-word field;
//! - enums travel as their names; 64-bit integers as strings, 32-bit ones as
//!   numbers (readers take either, as protobuf's own readers do);
//! - a missing field is its zero value (`#[serde(default)]` throughout);
//! - an unknown field is an error on both sides (Go's `protojson`, wash's
//!   serde code), so requests refuse them (`deny_unknown_fields`) and what
//!   keel sends carries exactly the fields of the `.proto`, no more.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// What a host announces about itself: published on
/// `runtime.operator.heartbeat.<id>` and the reply to `heartbeat`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostHeartbeat {
    /// The host's id (a UUID: no `.`).
    pub id: String,
    /// Its public name or address.
    pub hostname: String,
    /// A DNS-1123 name (the operator names its Kubernetes object after it).
    pub friendly_name: String,
    /// keel's version.
    pub version: String,
    /// What the operator's host selectors match.
    pub labels: BTreeMap<String, String>,
    /// When the host started, RFC 3339.
    pub started_at: String,
    /// `x86_64`, `aarch64`, …
    pub os_arch: String,
    /// `linux`, …
    pub os_name: String,
    /// The kernel release.
    pub os_kernel: String,
    /// Share of the machine's CPU time in use, 0–100.
    pub system_cpu_usage: f32,
    /// Bytes of memory the machine has.
    #[serde(serialize_with = "u64_as_string")]
    pub system_memory_total: u64,
    /// Bytes of memory available.
    #[serde(serialize_with = "u64_as_string")]
    pub system_memory_free: u64,
    /// Components of the workloads the host runs.
    #[serde(serialize_with = "u64_as_string")]
    pub component_count: u64,
    /// Workloads the host runs.
    #[serde(serialize_with = "u64_as_string")]
    pub workload_count: u64,
    /// Interfaces the host imports (keel: none).
    pub imports: Vec<WitInterface>,
    /// Interfaces the host's plugins and the host itself serve.
    pub exports: Vec<WitInterface>,
    /// The port HTTP is served on.
    pub http_port: u32,
    /// The namespace (tenant) the host is for when the operator schedules
    /// by environment; empty for a shared host.
    pub environment: String,
}

/// A WIT package and some of its interfaces, as a workload asks for them
/// (`hostInterfaces`) or a host offers them (`exports`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WitInterface {
    /// `wasi`
    pub namespace: String,
    /// `keyvalue`
    pub package: String,
    /// `0.2.0-draft`; empty for any.
    pub version: String,
    /// `["store", "atomics"]`
    pub interfaces: Vec<String>,
    /// Per-workload settings for whatever serves the package.
    pub config: BTreeMap<String, String>,
    /// An instance name, for several backends of one package.
    pub name: String,
}

/// `workload.start`'s request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadStartRequest {
    /// What to run.
    pub workload: Option<Workload>,
    /// The operator's id for it (the Kubernetes object's UID).
    #[serde(alias = "workload_id")]
    pub workload_id: String,
}

/// `workload.status`'s request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadStatusRequest {
    /// Which workload.
    #[serde(alias = "workload_id")]
    pub workload_id: String,
}

/// `workload.stop`'s request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WorkloadStopRequest {
    /// Which workload.
    #[serde(alias = "workload_id")]
    pub workload_id: String,
}

/// The reply to any of the three workload requests (`WorkloadStartResponse`,
/// `WorkloadStatusResponse` and `WorkloadStopResponse` have one shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadResponse {
    /// Where the workload is.
    pub workload_status: WorkloadStatus,
}

/// A workload's state as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// The operator's id.
    pub workload_id: String,
    /// The state.
    pub workload_state: WireState,
    /// Why, for people.
    pub message: String,
}

impl WorkloadResponse {
    /// A reply saying workload `id` is in `state`, because `message`.
    pub fn new(id: &str, state: WireState, message: impl Into<String>) -> WorkloadResponse {
        WorkloadResponse {
            workload_status: WorkloadStatus {
                workload_id: id.to_string(),
                workload_state: state,
                message: message.into(),
            },
        }
    }
}

/// `WorkloadState`, as its enum value names. Every value of the protocol is
/// listed, including those keel never reports (`Unspecified`, `Completed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(not(test), allow(dead_code))]
pub enum WireState {
    /// Unknown.
    #[serde(rename = "WORKLOAD_STATE_UNSPECIFIED")]
    Unspecified,
    /// Being pulled, compiled, linked.
    #[serde(rename = "WORKLOAD_STATE_STARTING")]
    Starting,
    /// Serving.
    #[serde(rename = "WORKLOAD_STATE_RUNNING")]
    Running,
    /// A `wasi:cli/run` workload that finished.
    #[serde(rename = "WORKLOAD_STATE_COMPLETED")]
    Completed,
    /// Being stopped (or stopped: the reply to a stop).
    #[serde(rename = "WORKLOAD_STATE_STOPPING")]
    Stopping,
    /// Failed, or refused; the message says why.
    #[serde(rename = "WORKLOAD_STATE_ERROR")]
    Error,
    /// No workload has this id here.
    #[serde(rename = "WORKLOAD_STATE_NOT_FOUND")]
    NotFound,
}

/// What the operator asks a host to run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Workload {
    /// The Kubernetes namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// Free metadata.
    pub annotations: BTreeMap<String, String>,
    /// A long-running `wasi:cli/run` component beside the others.
    pub service: Option<Service>,
    /// The components and what the host must provide them.
    #[serde(alias = "wit_world")]
    pub wit_world: Option<WitWorld>,
    /// Volumes the components may mount.
    pub volumes: Vec<Volume>,
}

/// A workload's long-running service component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Service {
    /// Its OCI reference.
    pub image: String,
    /// Its resources and grants.
    #[serde(alias = "local_resources")]
    pub local_resources: Option<LocalResources>,
    /// Restarts allowed before the workload is in error.
    #[serde(alias = "max_restarts", deserialize_with = "lenient_u64")]
    pub max_restarts: u64,
    /// Registry credentials.
    #[serde(alias = "image_pull_secret")]
    pub image_pull_secret: Option<ImagePullSecret>,
    /// When to pull.
    #[serde(alias = "image_pull_policy")]
    pub image_pull_policy: ImagePullPolicy,
}

/// The components of a workload and the interfaces the host provides them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WitWorld {
    /// The components.
    pub components: Vec<Component>,
    /// What the host must provide, with per-workload settings.
    #[serde(alias = "host_interfaces")]
    pub host_interfaces: Vec<WitInterface>,
}

/// One component of a workload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Component {
    /// Its OCI reference (`registry/repository:tag`).
    pub image: String,
    /// Its resources and grants.
    #[serde(alias = "local_resources")]
    pub local_resources: Option<LocalResources>,
    /// Warm instances kept; zero or less: not configured.
    #[serde(alias = "pool_size", deserialize_with = "lenient_i32")]
    pub pool_size: i32,
    /// Calls one instance serves before it is retired; zero or less: not
    /// configured.
    #[serde(alias = "max_invocations", deserialize_with = "lenient_i32")]
    pub max_invocations: i32,
    /// Registry credentials.
    #[serde(alias = "image_pull_secret")]
    pub image_pull_secret: Option<ImagePullSecret>,
    /// Its name within the workload.
    pub name: String,
    /// When to pull.
    #[serde(alias = "image_pull_policy")]
    pub image_pull_policy: ImagePullPolicy,
    /// Calls one instance has in flight; zero or less: not configured.
    #[serde(alias = "max_concurrency", deserialize_with = "lenient_i32")]
    pub max_concurrency: i32,
}

/// What a component may use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LocalResources {
    /// Memory, MiB.
    #[serde(alias = "memory_limit_mb", deserialize_with = "lenient_i32")]
    pub memory_limit_mb: i32,
    /// CPU, millicores.
    #[serde(alias = "cpu_limit", deserialize_with = "lenient_i32")]
    pub cpu_limit: i32,
    /// `wasi:config` values.
    pub config: BTreeMap<String, String>,
    /// `wasi:cli` environment.
    pub environment: BTreeMap<String, String>,
    /// Volumes mounted.
    #[serde(alias = "volume_mounts")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Outbound hosts (`*` as a whole label).
    #[serde(alias = "allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Names the component may resolve.
    #[serde(alias = "allowed_ip_name_lookups")]
    pub allowed_ip_name_lookups: Vec<String>,
    /// Loopback ports it may reach (`5432`, `5432/tcp`, `53/udp`).
    #[serde(alias = "allowed_host_loopback_ports")]
    pub allowed_host_loopback_ports: Vec<String>,
}

/// A volume mounted into a component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct VolumeMount {
    /// The volume's name.
    pub name: String,
    /// Where the component sees it.
    #[serde(alias = "mount_path")]
    pub mount_path: String,
    /// Whether it may only read.
    #[serde(alias = "read_only")]
    pub read_only: bool,
}

/// A volume of a workload: a host folder or a fresh empty one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Volume {
    /// Its name, as mounts refer to it.
    pub name: String,
    /// A folder of the host.
    #[serde(alias = "host_path")]
    pub host_path: Option<HostPathVolume>,
    /// A fresh empty folder, removed with the workload.
    #[serde(alias = "empty_dir")]
    pub empty_dir: Option<EmptyDirVolume>,
}

/// `hostPath`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HostPathVolume {
    /// The folder.
    #[serde(alias = "local_path")]
    pub local_path: String,
}

/// `emptyDir`: no fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyDirVolume {}

/// Registry credentials of one image.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ImagePullSecret {
    /// The user name.
    pub username: String,
    /// The password or token (never printed).
    pub password: String,
}

impl fmt::Debug for ImagePullSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImagePullSecret")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// When an image is pulled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// Not said: if not present.
    #[default]
    Unspecified,
    /// Ask the registry every time.
    Always,
    /// Use the store when it has the image.
    IfNotPresent,
    /// The store only.
    Never,
}

impl<'de> Deserialize<'de> for ImagePullPolicy {
    /// The enum value's name, or its number (as protobuf's readers accept).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ImagePullPolicy, D::Error> {
        let value = NameOrNumber::deserialize(d)?;
        match value {
            NameOrNumber::Name(n) if n == "IMAGE_PULL_POLICY_UNSPECIFIED" => {
                Ok(ImagePullPolicy::Unspecified)
            }
            NameOrNumber::Name(n) if n == "IMAGE_PULL_POLICY_ALWAYS" => Ok(ImagePullPolicy::Always),
            NameOrNumber::Name(n) if n == "IMAGE_PULL_POLICY_IF_NOT_PRESENT" => {
                Ok(ImagePullPolicy::IfNotPresent)
            }
            NameOrNumber::Name(n) if n == "IMAGE_PULL_POLICY_NEVER" => Ok(ImagePullPolicy::Never),
            NameOrNumber::Number(0) => Ok(ImagePullPolicy::Unspecified),
            NameOrNumber::Number(1) => Ok(ImagePullPolicy::Always),
            NameOrNumber::Number(2) => Ok(ImagePullPolicy::IfNotPresent),
            NameOrNumber::Number(3) => Ok(ImagePullPolicy::Never),
            other => Err(serde::de::Error::custom(format!(
                "unknown ImagePullPolicy {other:?}"
            ))),
        }
    }
}

/// An enum value or an integer as JSON carries it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NameOrNumber {
    Number(i64),
    Name(String),
}

/// A `uint64` as protobuf's JSON mapping writes it: a decimal string.
fn u64_as_string<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}

/// A 32-bit integer written as a number or as a decimal string.
fn lenient_i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let value = match NameOrNumber::deserialize(d)? {
        NameOrNumber::Number(n) => n,
        NameOrNumber::Name(s) => s.parse::<i64>().map_err(serde::de::Error::custom)?,
    };
    i32::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is not an int32")))
}

/// A 64-bit unsigned integer written as a decimal string or a number.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NameOrNumber::deserialize(d)? {
        NameOrNumber::Number(n) => {
            u64::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is not a uint64")))
        }
        NameOrNumber::Name(s) => s.parse::<u64>().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
