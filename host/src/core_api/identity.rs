//! `keel:core/identity`: plugins learn which workload they are serving.

use super::bindings::keel::core::identity as api;
use super::view::CoreCtxView;
use crate::spec::WorkloadId;

pub use api::WorkloadIdentity;

/// Builds the identity of `component` in workload `id`.
pub fn identity_of(id: &WorkloadId, component: &str) -> WorkloadIdentity {
    WorkloadIdentity {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        component: component.to_string(),
    }
}

/// The caller: the workload itself for composed plugins (they run in its
/// Store), the calling workload for a shared plugin (set per call).
impl api::Host for CoreCtxView<'_> {
    fn caller(&mut self) -> WorkloadIdentity {
        (**self.identity()).clone()
    }
}
