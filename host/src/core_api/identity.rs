//! `keel:core/identity`: plugins learn which workload they are serving.

use super::bindings::keel::core::identity as api;
use super::view::CoreCtxView;
use crate::spec::WorkloadId;

pub use api::WorkloadIdentity;

/// Builds the identity of `component` in workload `id`, whose data is
/// kept under `data_name` (the workload's name unless its replicas share
/// another: plugins scope a workload's data by namespace and this name).
pub fn identity_of(id: &WorkloadId, data_name: &str, component: &str) -> WorkloadIdentity {
    WorkloadIdentity {
        namespace: id.namespace.clone(),
        name: data_name.to_string(),
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
