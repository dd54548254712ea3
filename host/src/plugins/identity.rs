//! `keel:core/identity`: plugins learn which workload they are serving. The
//! host bindings of the whole `keel:core` plugin world live here too.

use crate::manifest::WorkloadId;

/// Host bindings of the `keel:core` plugin world.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/keel-core",
        world: "keel:core/plugin",
        imports: {
            "keel:core/messaging.publish": async,
            "keel:core/messaging.request": async,
            "keel:core/nats.publish": async,
            "keel:core/nats.request": async,
            "keel:core/nats.subscribe": async,
            "keel:core/nats.[method]subscription.next": async,
            "keel:core/pipe.new-pipe": trappable,
        },
        with: {
            "keel:core/nats.subscription": crate::core_api::nats::NatsSubscription,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
        },
    });
}

pub use bindings::keel::core::identity::WorkloadIdentity;

/// Builds the identity of `component` in workload `id`.
pub fn identity_of(id: &WorkloadId, component: &str) -> WorkloadIdentity {
    WorkloadIdentity {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        component: component.to_string(),
    }
}

/// Whom a shared plugin's call serves: the calling workload, and when that
/// workload's invocation must end. The deadline bounds the caller's wait
/// for a busy plugin, and no call begins past it; a call under way runs on
/// under the plugin's own time limit (see
/// [`in_flight`](crate::plugins::shared::in_flight)).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The calling workload's identity.
    pub identity: &'a std::sync::Arc<WorkloadIdentity>,
    /// The caller's deadline, if it has one.
    pub deadline: Option<std::time::Instant>,
    /// The caller's marker of a call under way in an async plugin, if it
    /// has one.
    pub in_flight: Option<&'a crate::plugins::shared::in_flight::InFlight>,
}
