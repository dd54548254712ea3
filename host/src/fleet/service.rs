//! A wasmCloud `Workload.service` as a keel [`ServiceSpec`]: its image
//! pulled as a component's, its `localResources` granted to the workload
//! as a component's are, its memory limit its own, `maxRestarts` kept.

use super::messages::{Component, Service};
use super::translate::{Folder, Refusal, component_of, cpu_limit, grants, refuse};
use crate::oci::PullSettings;
use crate::spec::{ByteSize, ServiceSpec, WorkloadSpec};
use std::collections::BTreeMap;

/// What the service adds to a translated workload.
pub(super) struct TranslatedService {
    /// The service itself.
    pub spec: ServiceSpec,
    /// How its image is pulled.
    pub pull: PullSettings,
    /// Its `cpuLimit`, as whole cores, if it sets one.
    pub cores: Option<u32>,
}

/// Translates `service` of a workload whose translation so far is `spec`
/// (its environment and grants grow by the service's), with the
/// workload's `wasi:config` values `workload_config` and volumes
/// `volumes`.
pub(super) fn service_of(
    service: &Service,
    workload_config: &BTreeMap<String, String>,
    volumes: &BTreeMap<String, Folder>,
    spec: &mut WorkloadSpec,
) -> Result<TranslatedService, Refusal> {
    let field = "workload.service";
    // A name none of the workload's components has.
    let taken = |name: &str| spec.components.iter().any(|c| c.name == name);
    let name = (0..)
        .map(|n| match n {
            0 => "service".to_string(),
            n => format!("service-{n}"),
        })
        .find(|name| !taken(name))
        .unwrap_or_default();
    let as_component = Component {
        image: service.image.clone(),
        local_resources: service.local_resources.clone(),
        image_pull_secret: service.image_pull_secret.clone(),
        image_pull_policy: service.image_pull_policy,
        name,
        ..Component::default()
    };
    let (component, pull) = component_of(field, 0, &as_component, workload_config)?;
    let mut translated = ServiceSpec::new(component.name.clone(), component.source.clone());
    translated.component = component;
    translated.max_restarts = u32::try_from(service.max_restarts).unwrap_or(u32::MAX);
    let mut cores = None;
    if let Some(resources) = &service.local_resources {
        let field = format!("{field}.localResources");
        cores = cpu_limit(&field, resources.cpu_limit)?;
        if resources.memory_limit_mb > 0 {
            let mib = u64::from(resources.memory_limit_mb.unsigned_abs());
            translated.memory = Some(ByteSize::mib(mib));
        }
        for (key, value) in &resources.environment {
            if let Some(other) = spec.env.insert(key.clone(), value.clone())
                && &other != value
            {
                return Err(refuse(
                    format!("{field}.environment.{key}"),
                    "the service and the components of one keel workload share one \
                     environment, and a component sets this variable differently",
                ));
            }
        }
        grants(&field, resources, volumes, spec)?;
    }
    Ok(TranslatedService {
        spec: translated,
        pull,
        cores,
    })
}

#[cfg(test)]
mod tests {
    use super::super::messages::WorkloadStartRequest;
    use super::super::translate::{Settings, Translation, translate};
    use crate::oci::PullPolicy;
    use serde_json::{Value, json};

    fn translated(workload: Value) -> Result<Translation, super::Refusal> {
        let request: WorkloadStartRequest =
            serde_json::from_value(json!({"workloadId": "uid-1", "workload": workload}))
                .expect("a valid request");
        let workload = request.workload.expect("a workload");
        translate("uid-1", &workload, &Settings::default())
    }

    #[test]
    fn a_service_becomes_the_workloads_service_with_its_resources() {
        let t = translated(json!({
            "namespace": "default",
            "name": "app",
            "service": {
                "image": "127.0.0.1:5000/db:1",
                "maxRestarts": "3",
                "imagePullPolicy": "IMAGE_PULL_POLICY_ALWAYS",
                "imagePullSecret": {"username": "u", "password": "p"},
                "localResources": {
                    "memoryLimitMb": 32,
                    "cpuLimit": 1,
                    "environment": {"DB_PORT": "8080"},
                    "config": {"mode": "fast"},
                    "allowedHostLoopbackPorts": ["5432"]
                }
            },
            "witWorld": {
                "components": [{"name": "service", "image": "127.0.0.1:5000/api:1"}],
                "hostInterfaces": [{
                    "namespace": "wasi", "package": "http",
                    "interfaces": ["incoming-handler"], "config": {"host": "app.local"}
                }]
            }
        }))
        .expect("translates");
        let service = t.spec.service.as_ref().expect("a service");
        // A component already has the name `service`.
        assert_eq!(service.component.name, "service-1");
        assert_eq!(service.max_restarts, 3);
        assert_eq!(service.memory.map(|m| m.0), Some(32 << 20));
        assert_eq!(service.component.config["mode"], "fast");
        assert_eq!(
            service.component.source.reference().map(|r| r.to_string()),
            Some("oci://127.0.0.1:5000/db:1".to_string())
        );
        assert_eq!(t.spec.env["DB_PORT"], "8080");
        assert_eq!(t.spec.sockets.allow, ["127.0.0.1:5432"]);
        assert_eq!(t.spec.limits.max_running, Some(1));
        let pull = t.service_pull.expect("the service's pull settings");
        assert_eq!(pull.policy, Some(PullPolicy::Always));
        assert!(pull.credentials.is_some());
    }

    #[test]
    fn a_service_alone_is_a_workload() {
        let t = translated(json!({
            "namespace": "default",
            "name": "batch",
            "service": {"image": "127.0.0.1:5000/job:1"}
        }))
        .expect("translates");
        assert!(t.spec.components.is_empty());
        assert_eq!(t.spec.service.map(|s| s.max_restarts), Some(0));
        // Neither a component nor a service: refused.
        let refused = translated(json!({"namespace": "default", "name": "empty"}))
            .err()
            .map(|r| r.field);
        assert_eq!(refused.as_deref(), Some("workload.witWorld.components"));
    }
}
