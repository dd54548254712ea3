//! `[workload.service]`: a workload's long-running `wasi:cli/run`
//! component, read like a `[[workload.component]]` plus its restarts and
//! its own memory limit.

use super::ManifestError;
use super::Source;
use super::workload::component_spec;
use crate::manifest::raw;
use crate::spec::ServiceSpec;
use crate::spec::validate::MIN_MEMORY;
use std::path::Path;

/// The service of a workload, its path resolved against `base`.
pub(super) fn service_spec(
    source: &Source<'_>,
    base: &Path,
    raw: raw::Service,
) -> Result<ServiceSpec, ManifestError> {
    let component = component_spec(
        source,
        base,
        &raw::Component {
            name: raw.name,
            path: raw.path,
            config: raw.config,
            config_env: raw.config_env,
            pool_size: None,
            max_invocations: None,
            max_concurrency: None,
        },
    )?;
    let mut service = ServiceSpec::new(component.name.clone(), component.source.clone());
    service.component = component;
    service.max_restarts = raw.max_restarts;
    if let Some(memory) = raw.memory {
        if *memory.get_ref() < MIN_MEMORY {
            return Err(source.error(
                memory.span(),
                format!("`memory` must be at least {MIN_MEMORY}"),
            ));
        }
        service.memory = Some(*memory.get_ref());
    }
    Ok(service)
}
