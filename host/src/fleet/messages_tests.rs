use super::*;
use serde_json::{Value, json};

/// The JSON names of an object's fields, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

fn interface() -> WitInterface {
    WitInterface {
        namespace: "wasi".into(),
        package: "keyvalue".into(),
        version: "0.2.0-draft".into(),
        interfaces: vec!["store".into()],
        config: BTreeMap::new(),
        name: String::new(),
    }
}

fn heartbeat() -> HostHeartbeat {
    HostHeartbeat {
        id: "0b3c6f5e-4f0e-4c4b-9d43-2f1b8f3a9e10".into(),
        hostname: "node-1".into(),
        friendly_name: "brisk-otter".into(),
        version: "0.1.0".into(),
        labels: BTreeMap::from([("hostgroup".into(), "default".into())]),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        os_arch: "x86_64".into(),
        os_name: "linux".into(),
        os_kernel: "6.1.0".into(),
        system_cpu_usage: 12.5,
        system_memory_total: 8_589_934_592,
        system_memory_free: 1,
        component_count: 3,
        workload_count: 2,
        imports: vec![],
        exports: vec![interface()],
        http_port: 8080,
        environment: "test".into(),
    }
}

#[test]
fn a_heartbeat_carries_exactly_the_fields_of_the_protocol() {
    let value = serde_json::to_value(heartbeat()).expect("serializes");
    // HostHeartbeat in wasmcloud/runtime/v2/host_heartbeat.proto.
    let expected = [
        "id",
        "hostname",
        "friendlyName",
        "version",
        "labels",
        "startedAt",
        "osArch",
        "osName",
        "osKernel",
        "systemCpuUsage",
        "systemMemoryTotal",
        "systemMemoryFree",
        "componentCount",
        "workloadCount",
        "imports",
        "exports",
        "httpPort",
        "environment",
    ];
    assert_eq!(keys(&value), sorted(&expected));
    // WitInterface in wit_interface.proto.
    let export = &value["exports"][0];
    assert_eq!(
        keys(export),
        sorted(&[
            "namespace",
            "package",
            "version",
            "interfaces",
            "config",
            "name"
        ])
    );
}

#[test]
fn sixty_four_bit_integers_travel_as_strings_and_the_rest_as_numbers() {
    let value = serde_json::to_value(heartbeat()).expect("serializes");
    assert_eq!(value["systemMemoryTotal"], json!("8589934592"));
    assert_eq!(value["componentCount"], json!("3"));
    assert_eq!(value["workloadCount"], json!("2"));
    assert_eq!(value["httpPort"], json!(8080));
    assert_eq!(value["systemCpuUsage"], json!(12.5));
}

#[test]
fn a_workload_reply_carries_exactly_the_fields_of_the_protocol() {
    let reply = WorkloadResponse::new("uid-1", WireState::NotFound, "no such workload");
    let value = serde_json::to_value(&reply).expect("serializes");
    assert_eq!(keys(&value), sorted(&["workloadStatus"]));
    assert_eq!(
        keys(&value["workloadStatus"]),
        sorted(&["workloadId", "workloadState", "message"])
    );
    assert_eq!(
        value["workloadStatus"]["workloadState"],
        json!("WORKLOAD_STATE_NOT_FOUND")
    );
}

#[test]
fn every_state_is_written_as_its_enum_name() {
    let states = [
        (WireState::Unspecified, "WORKLOAD_STATE_UNSPECIFIED"),
        (WireState::Starting, "WORKLOAD_STATE_STARTING"),
        (WireState::Running, "WORKLOAD_STATE_RUNNING"),
        (WireState::Completed, "WORKLOAD_STATE_COMPLETED"),
        (WireState::Stopping, "WORKLOAD_STATE_STOPPING"),
        (WireState::Error, "WORKLOAD_STATE_ERROR"),
        (WireState::NotFound, "WORKLOAD_STATE_NOT_FOUND"),
    ];
    for (state, name) in states {
        assert_eq!(
            serde_json::to_value(state).expect("serializes"),
            json!(name)
        );
    }
}

/// A start request using every field the protocol defines.
fn full_start_request() -> Value {
    json!({
        "workloadId": "6f1c2a9e-0000-4000-8000-000000000001",
        "workload": {
            "namespace": "default",
            "name": "hello",
            "annotations": {"team": "a"},
            "service": {
                "image": "ghcr.io/x/svc:1",
                "localResources": {},
                "maxRestarts": "3",
                "imagePullSecret": {"username": "u", "password": "p"},
                "imagePullPolicy": "IMAGE_PULL_POLICY_ALWAYS"
            },
            "witWorld": {
                "components": [{
                    "image": "ghcr.io/x/hello:1",
                    "localResources": {
                        "memoryLimitMb": 64,
                        "cpuLimit": 0,
                        "config": {"a": "b"},
                        "environment": {"E": "1"},
                        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                        "allowedHosts": ["api.example.com"],
                        "allowedIpNameLookups": [],
                        "allowedHostLoopbackPorts": ["5432/tcp"]
                    },
                    "poolSize": 2,
                    "maxInvocations": "10",
                    "imagePullSecret": {"username": "u", "password": "p"},
                    "name": "hello",
                    "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT",
                    "maxConcurrency": 4
                }],
                "hostInterfaces": [{
                    "namespace": "wasi", "package": "http", "version": "0.2.0",
                    "interfaces": ["incoming-handler"], "config": {"host": "hello.local"},
                    "name": ""
                }]
            },
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "etc", "hostPath": {"localPath": "/etc/app"}}
            ]
        }
    })
}

#[test]
fn a_start_request_with_every_field_is_read() {
    let request: WorkloadStartRequest =
        serde_json::from_value(full_start_request()).expect("reads");
    let workload = request.workload.expect("a workload");
    let component = &workload.wit_world.as_ref().expect("a world").components[0];
    assert_eq!(component.max_invocations, 10);
    assert_eq!(component.pool_size, 2);
    assert_eq!(component.image_pull_policy, ImagePullPolicy::IfNotPresent);
    let resources = component.local_resources.as_ref().expect("resources");
    assert_eq!(resources.memory_limit_mb, 64);
    assert!(resources.volume_mounts[0].read_only);
    assert_eq!(workload.service.expect("a service").max_restarts, 3);
    assert!(workload.volumes[0].empty_dir.is_some());
    assert_eq!(
        workload.volumes[1]
            .host_path
            .as_ref()
            .map(|p| p.local_path.as_str()),
        Some("/etc/app")
    );
}

#[test]
fn snake_case_names_are_read_too() {
    let request: WorkloadStartRequest = serde_json::from_value(json!({
        "workload_id": "x",
        "workload": {"namespace": "n", "name": "w", "wit_world": {"components": [
            {"image": "r/a:1", "image_pull_policy": "IMAGE_PULL_POLICY_NEVER", "max_concurrency": 2}
        ], "host_interfaces": []}}
    }))
    .expect("reads");
    assert_eq!(request.workload_id, "x");
    let world = request.workload.and_then(|w| w.wit_world).expect("a world");
    assert_eq!(
        world.components[0].image_pull_policy,
        ImagePullPolicy::Never
    );
    assert_eq!(world.components[0].max_concurrency, 2);
}

#[test]
fn an_unknown_field_is_refused_at_every_depth() {
    let cases = [
        json!({"workloadId": "x", "extra": 1}),
        json!({"workloadId": "x", "workload": {"namespace": "n", "replicas": 2}}),
        json!({"workloadId": "x", "workload": {"witWorld": {"components": [{"image": "a", "gpu": true}]}}}),
        json!({"workloadId": "x", "workload": {"witWorld": {"components": [{"localResources": {"swap": 1}}]}}}),
        json!({"workloadId": "x", "workload": {"volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}]}}),
        json!({"workloadId": "x", "workload": {"witWorld": {"hostInterfaces": [{"namespace": "wasi", "target": "x"}]}}}),
    ];
    for case in cases {
        let error = serde_json::from_value::<WorkloadStartRequest>(case.clone())
            .expect_err("an unknown field is refused");
        assert!(
            error.to_string().contains("unknown field"),
            "{case}: {error}"
        );
    }
    assert!(
        serde_json::from_value::<WorkloadStatusRequest>(
            json!({"workloadId": "x", "verbose": true})
        )
        .is_err()
    );
    assert!(
        serde_json::from_value::<WorkloadStopRequest>(json!({"workloadId": "x", "force": true}))
            .is_err()
    );
}

#[test]
fn missing_fields_are_their_zero_values() {
    let request: WorkloadStatusRequest = serde_json::from_value(json!({})).expect("reads");
    assert_eq!(request.workload_id, "");
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workload": {"witWorld": {"components": [{}]}}}))
            .expect("reads");
    let component = &request
        .workload
        .and_then(|w| w.wit_world)
        .expect("a world")
        .components[0];
    assert_eq!(component.image_pull_policy, ImagePullPolicy::Unspecified);
    assert_eq!(component.pool_size, 0);
}

#[test]
fn a_pull_secret_never_prints_its_password() {
    let secret = ImagePullSecret {
        username: "robot".into(),
        password: "hunter2".into(),
    };
    let printed = format!("{secret:?}");
    assert!(
        printed.contains("robot") && !printed.contains("hunter2"),
        "{printed}"
    );
}

#[test]
fn an_unknown_enum_name_or_an_out_of_range_integer_is_refused() {
    let bad_policy =
        json!({"workload": {"witWorld": {"components": [{"imagePullPolicy": "SOMETIMES"}]}}});
    assert!(serde_json::from_value::<WorkloadStartRequest>(bad_policy).is_err());
    let too_big =
        json!({"workload": {"witWorld": {"components": [{"poolSize": 4_294_967_296_i64}]}}});
    assert!(serde_json::from_value::<WorkloadStartRequest>(too_big).is_err());
}
