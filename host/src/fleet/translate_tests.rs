use super::*;
use crate::fleet::interfaces::default_consumer_group;
use crate::fleet::messages::WorkloadStartRequest;
use serde_json::{Value, json};

fn settings() -> Settings {
    Settings {
        scratch_dir: PathBuf::from("/nonexistent/scratch"),
        extra_packages: BTreeSet::new(),
    }
}

/// A minimal workload: one component, routed by `hello.local`.
fn workload() -> Value {
    json!({
        "namespace": "default",
        "name": "hello",
        "witWorld": {
            "components": [{"name": "hello", "image": "127.0.0.1:5000/hello:1"}],
            "hostInterfaces": [{
                "namespace": "wasi", "package": "http",
                "interfaces": ["incoming-handler"], "config": {"host": "hello.local"}
            }]
        }
    })
}

fn translated(workload: Value) -> Result<Translation, Refusal> {
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workloadId": "uid-1", "workload": workload}))
            .expect("a valid request");
    translate("uid-1", &request.workload.expect("a workload"), &settings())
}

fn refused_field(workload: Value) -> String {
    translated(workload).expect_err("refused").field
}

#[test]
fn a_plain_workload_becomes_one_oci_component_routed_by_its_host() {
    let t = translated(workload()).expect("translates");
    assert_eq!(t.spec.id, WorkloadId::new("default", "hello"));
    assert_eq!(t.spec.http.host.as_deref(), Some("hello.local"));
    let reference = t.spec.components[0]
        .source
        .reference()
        .expect("an OCI source");
    assert_eq!(reference.to_string(), "oci://127.0.0.1:5000/hello:1");
    assert!(t.pulls[0].policy.is_none() && t.pulls[0].credentials.is_none());
    assert!(t.spec.subscriptions.is_empty());
}

#[test]
fn local_resources_become_limits_environment_config_and_grants() {
    let mut w = workload();
    w["witWorld"]["components"][0]["localResources"] = json!({
        "memoryLimitMb": 64,
        "config": {"greeting": "hi"},
        "environment": {"MODE": "prod"},
        "allowedHosts": ["api.example.com"],
        "allowedIpNameLookups": ["*"],
        "allowedHostLoopbackPorts": ["5432/tcp", "53/udp"],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
    });
    w["witWorld"]["components"][0]["poolSize"] = json!(2);
    w["witWorld"]["components"][0]["maxConcurrency"] = json!(3);
    w["witWorld"]["components"][0]["imagePullPolicy"] = json!("IMAGE_PULL_POLICY_ALWAYS");
    w["witWorld"]["components"][0]["imagePullSecret"] = json!({"username": "u", "password": "p"});
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({"namespace": "wasi", "package": "config", "config": {"greeting": "default", "color": "blue"}}));
    w["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    // The emptyDir folder does not exist yet: the start makes it.
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let dir = scratch.path().join("uid-1").join("scratch");
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workloadId": "uid-1", "workload": w})).expect("valid");
    let settings = Settings {
        scratch_dir: scratch.path().to_path_buf(),
        ..settings()
    };
    let t =
        translate("uid-1", &request.workload.expect("a workload"), &settings).expect("translates");
    assert_eq!(t.spec.limits.memory, ByteSize::mib(64));
    assert_eq!(t.spec.limits.max_instances, 6);
    assert_eq!(t.spec.env.get("MODE").map(String::as_str), Some("prod"));
    let config = &t.spec.components[0].config;
    assert_eq!(config.get("greeting").map(String::as_str), Some("hi"));
    assert_eq!(config.get("color").map(String::as_str), Some("blue"));
    assert_eq!(t.spec.http.outgoing, ["api.example.com"]);
    assert!(t.spec.sockets.name_lookup);
    assert_eq!(t.spec.sockets.allow, ["127.0.0.1:5432", "127.0.0.1:53"]);
    assert_eq!(t.spec.volumes[0].guest, "/scratch");
    assert_eq!(t.spec.volumes[0].host, dir);
    assert_eq!(t.empty_dirs, [dir]);
    assert_eq!(t.pulls[0].policy, Some(PullPolicy::Always));
    let credentials = t.pulls[0].credentials.as_ref().expect("credentials");
    assert_eq!(credentials.username, "u");
    assert_eq!(credentials.password.expose(), "p");
}

#[test]
fn subscriptions_become_queue_subscriptions_in_the_group_wasmcloud_uses() {
    let mut w = workload();
    w["witWorld"]["components"][0]["localResources"] =
        json!({"config": {"subscriptions": "tasks.leet, audit.>"}});
    let t = translated(w).expect("translates");
    let subjects: Vec<_> = t
        .spec
        .subscriptions
        .iter()
        .map(|s| s.subject.as_str())
        .collect();
    assert_eq!(subjects, ["tasks.leet", "audit.>"]);
    // The value wasmCloud's own test computes for these three names has
    // this shape; the hash makes it stable across hosts.
    let queue = t.spec.subscriptions[0]
        .queue
        .clone()
        .expect("a queue group");
    assert!(
        queue.starts_with("wasmcloud.default.hello.hello."),
        "{queue}"
    );
    assert_eq!(queue, default_consumer_group("default", "hello", "hello"));
    assert_ne!(queue, default_consumer_group("default", "hello", "other"));

    let mut w = workload();
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({
            "namespace": "wasmcloud", "package": "messaging",
            "config": {"subscriptions": "jobs", "consumer_group": "broadcast"}
        }));
    let t = translated(w).expect("translates");
    assert_eq!(t.spec.subscriptions[0].subject, "jobs");
    assert_eq!(t.spec.subscriptions[0].queue, None);
}

#[test]
fn what_keel_cannot_honour_is_refused_naming_the_field() {
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "workload.service.localResources.allowedIpNameLookups",
            Box::new(|w| {
                w["service"] = json!({
                    "image": "r/s:1",
                    "localResources": {"allowedIpNameLookups": ["db.local"]}
                })
            }),
        ),
        (
            "workload.witWorld.components[0].localResources.cpuLimit",
            Box::new(|w| {
                w["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": 500})
            }),
        ),
        (
            "workload",
            Box::new(|w| {
                w["witWorld"]["hostInterfaces"][0]["config"]["host-aliases"] = json!("a b.local")
            }),
        ),
        (
            "workload.witWorld.hostInterfaces[0].config.path",
            Box::new(|w| w["witWorld"]["hostInterfaces"][0]["config"]["path"] = json!("/api")),
        ),
        (
            "workload.witWorld.hostInterfaces[1]",
            Box::new(|w| {
                w["witWorld"]["hostInterfaces"]
                    .as_array_mut()
                    .expect("a list")
                    .push(json!({"namespace": "acme", "package": "ledger"}))
            }),
        ),
        (
            "workload.witWorld.hostInterfaces[1].config.bucket",
            Box::new(|w| {
                w["witWorld"]["hostInterfaces"]
                    .as_array_mut()
                    .expect("a list")
                    .push(json!({"namespace": "wasi", "package": "keyvalue", "config": {"bucket": "x"}}))
            }),
        ),
        (
            "workload.witWorld.components[0].image",
            Box::new(|w| w["witWorld"]["components"][0]["image"] = json!("no-tag/repo")),
        ),
        (
            "workload.witWorld.components[0].localResources.allowedIpNameLookups",
            Box::new(|w| {
                w["witWorld"]["components"][0]["localResources"] =
                    json!({"allowedIpNameLookups": ["db.internal"]})
            }),
        ),
        (
            "workload.witWorld.components[0].localResources.volumeMounts[0].name",
            Box::new(|w| {
                w["witWorld"]["components"][0]["localResources"] =
                    json!({"volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]})
            }),
        ),
        (
            "workload.volumes[0]",
            Box::new(|w| w["volumes"] = json!([{"name": "v"}])),
        ),
        (
            "workload.witWorld.components",
            Box::new(|w| w["witWorld"]["components"] = json!([])),
        ),
        (
            "workload.namespace",
            Box::new(|w| w["namespace"] = json!("Not.Valid")),
        ),
    ];
    for (field, change) in cases {
        let mut w = workload();
        change(&mut w);
        assert_eq!(refused_field(w), field);
    }
}

#[test]
fn host_aliases_become_more_routes() {
    let mut w = workload();
    w["witWorld"]["hostInterfaces"][0]["config"]["host-aliases"] = json!("a.local, b.local,,");
    let t = translated(w).expect("translates");
    assert_eq!(t.spec.http.aliases, ["a.local", "b.local"]);
    let names: Vec<_> = t.spec.http.names().cloned().collect();
    assert_eq!(names, ["hello.local", "a.local", "b.local"]);
}

#[test]
fn components_disagreeing_on_an_environment_variable_are_refused() {
    let mut w = workload();
    w["witWorld"]["components"] = json!([
        {"name": "a", "image": "r/a:1", "localResources": {"environment": {"MODE": "x"}}},
        {"name": "b", "image": "r/b:1", "localResources": {"environment": {"MODE": "y"}}}
    ]);
    assert_eq!(
        refused_field(w),
        "workload.witWorld.components[1].localResources.environment.MODE"
    );
}

#[test]
fn an_empty_dir_of_a_hostile_id_stays_inside_the_scratch_folder() {
    assert_eq!(
        safe_segment("../../etc").as_deref(),
        Some("_2E_2E_2F_2E_2E_2Fetc")
    );
    // Distinct ids, distinct folders.
    assert_ne!(safe_segment("a/b"), safe_segment("a_b"));
    assert_eq!(safe_segment("a_b").as_deref(), Some("a_5Fb"));
    assert_eq!(safe_segment(""), None);
    assert_eq!(safe_segment(&"x".repeat(81)), None);
    let uid = "6f1c2a9e-0000-4000-8000-000000000001";
    assert_eq!(safe_segment(uid).as_deref(), Some(uid));
}

#[test]
fn packages_of_host_configured_plugins_are_accepted() {
    let mut w = workload();
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({"namespace": "acme", "package": "ledger"}));
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workloadId": "uid-1", "workload": w})).expect("valid");
    let mut settings = settings();
    settings.extra_packages.insert("acme:ledger".into());
    assert!(translate("uid-1", &request.workload.expect("a workload"), &settings).is_ok());
}

/// `workload()` with `interface` added to its host interfaces.
fn with_interface(interface: Value) -> Value {
    let mut w = workload();
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(interface);
    w
}

#[test]
fn replicas_of_a_set_keep_their_data_under_the_set() {
    let mut w = workload();
    w["name"] = json!("counter-x7bq2");
    w["annotations"] = json!({"runtime.wasmcloud.dev/workload-replica-set-generation": "5f7d9c8b"});
    let t = translated(w.clone()).expect("translates");
    assert_eq!(t.spec.id.name, "counter-x7bq2");
    assert_eq!(t.spec.data_name(), "counter");
    // Without the operator's annotation, a name is only a name.
    w["annotations"] = json!({});
    assert_eq!(
        translated(w).expect("translates").spec.data_name(),
        "counter-x7bq2"
    );
    assert_eq!(
        translated(workload()).expect("translates").spec.data_name,
        None
    );
}

#[test]
fn a_data_name_of_keyvalue_or_blobstore_names_the_workloads_data() {
    let kv = json!({"namespace": "wasi", "package": "keyvalue", "name": "cache",
                    "config": {"data-name": "shop-data"}});
    let mut w = with_interface(kv.clone());
    w["name"] = json!("counter-x7bq2");
    w["annotations"] = json!({"runtime.wasmcloud.dev/workload-replica-set-generation": "1"});
    // Named outright: over what the replicas have in common.
    assert_eq!(
        translated(w).expect("translates").spec.data_name(),
        "shop-data"
    );

    // Blobstore agreeing is fine; disagreeing is refused naming the key.
    let mut w = with_interface(kv);
    let blobs = json!({"namespace": "wasi", "package": "blobstore",
                       "config": {"data-name": "other"}});
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(blobs);
    let refusal = translated(w).expect_err("two data names");
    assert_eq!(
        refusal.field,
        "workload.witWorld.hostInterfaces[2].config.data-name"
    );
    assert!(refusal.message.contains("shop-data"), "{refusal}");

    // It is a keel name: it cannot leave the namespace or reach raw buckets.
    for bad in ["Other.Ns", "a/b", "", "$KV"] {
        let w = with_interface(json!({"namespace": "wasi", "package": "keyvalue",
                                      "config": {"data-name": bad}}));
        assert_eq!(
            refused_field(w),
            "workload.witWorld.hostInterfaces[1].config.data-name",
            "{bad}"
        );
    }
}

#[test]
fn keyvalue_and_blobstore_keys_that_choose_what_a_plugin_reaches_are_refused() {
    for package in ["keyvalue", "blobstore"] {
        for key in [
            "backend",
            "url",
            "bucket",
            "root",
            "credentials",
            "container",
        ] {
            let w = with_interface(json!({"namespace": "wasi", "package": package,
                                          "config": {key: "x"}}));
            let refusal = translated(w).expect_err("refused");
            assert_eq!(
                refusal.field,
                format!("workload.witWorld.hostInterfaces[1].config.{key}")
            );
            assert!(refusal.message.contains("widen"), "{refusal}");
        }
    }
}

#[test]
fn per_workload_settings_hold_when_the_hosts_plugins_export_the_package_too() {
    // A keel host's built-ins export wasi:config, wasi:keyvalue, …: keel's
    // own handling of those packages still applies.
    let mut settings = settings();
    for package in [
        "wasi:config",
        "wasi:keyvalue",
        "wasi:blobstore",
        "wasi:logging",
    ] {
        settings.extra_packages.insert(package.into());
    }
    let mut w = with_interface(json!({"namespace": "wasi", "package": "config",
                                      "config": {"greeting": "hej"}}));
    w["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(json!({"namespace": "wasi", "package": "keyvalue", "config": {"data-name": "d"}}));
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workloadId": "uid-1", "workload": w})).expect("valid");
    let t =
        translate("uid-1", &request.workload.expect("a workload"), &settings).expect("translates");
    assert_eq!(
        t.spec.components[0]
            .config
            .get("greeting")
            .map(String::as_str),
        Some("hej")
    );
    assert_eq!(t.spec.data_name(), "d");
    let w = with_interface(json!({"namespace": "wasi", "package": "keyvalue",
                                  "config": {"url": "nats://elsewhere:4222"}}));
    let request: WorkloadStartRequest =
        serde_json::from_value(json!({"workloadId": "uid-1", "workload": w})).expect("valid");
    let refusal =
        translate("uid-1", &request.workload.expect("a workload"), &settings).expect_err("refused");
    assert_eq!(
        refusal.field,
        "workload.witWorld.hostInterfaces[1].config.url"
    );
}

#[test]
fn cpu_limit_counts_cores_and_becomes_cpu_turns() {
    let mut w = workload();
    w["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": 1});
    let t = translated(w).expect("translates");
    assert_eq!(t.spec.limits.max_running, Some(1));
    // Not set (wash's default is -1): keel's default turns.
    for unset in [0, -1] {
        let mut w = workload();
        w["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": unset});
        assert_eq!(
            translated(w).expect("translates").spec.limits.max_running,
            None
        );
    }
    // Two components: the smallest bounds the workload.
    let mut w = workload();
    let machine = std::thread::available_parallelism().map_or(1, |n| n.get());
    w["witWorld"]["components"] = json!([
        {"name": "a", "image": "127.0.0.1:5000/a:1", "localResources": {"cpuLimit": machine}},
        {"name": "b", "image": "127.0.0.1:5000/b:1", "localResources": {"cpuLimit": 1}},
    ]);
    assert_eq!(
        translated(w).expect("translates").spec.limits.max_running,
        Some(1)
    );
    // More cores than the machine has: refused, saying why.
    let mut w = workload();
    w["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": machine + 1});
    let refusal = translated(w).expect_err("refused");
    assert_eq!(
        refusal.field,
        "workload.witWorld.components[0].localResources.cpuLimit"
    );
    assert!(refusal.message.contains("whole cores"), "{refusal}");
}
