//! Whom a shared plugin's call serves.

use super::in_flight::InFlight;
use crate::core_api::identity::WorkloadIdentity;
use std::sync::Arc;
use std::time::Instant;

/// Whom a shared plugin's call serves: the calling workload, and when that
/// workload's invocation must end. The deadline bounds the caller's wait
/// for a busy plugin, and no call begins past it; a call under way runs on
/// under the plugin's own time limit (see [`in_flight`](super::in_flight)).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The calling workload's identity.
    pub identity: &'a Arc<WorkloadIdentity>,
    /// The caller's deadline, if it has one.
    pub deadline: Option<Instant>,
    /// The caller's marker of a call under way in an async plugin, if it
    /// has one.
    pub in_flight: Option<&'a InFlight>,
}
