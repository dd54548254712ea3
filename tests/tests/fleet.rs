//! keel hosts on a NATS lattice, driven by a test playing wasmCloud's
//! runtime operator with the protocol's documented messages only: a real
//! nats-server, a real registry on loopback, `keel host` processes.

use anyhow::Result;
use keel_tests::fleet::{
    KeelHost, Operator, assert_error, host_config, http_workload, push_guest, state,
};
use keel_tests::keel::oci::{OciOptions, Registry as KeelRegistry};
use keel_tests::keel::spec::{ImageRef, RegistrySpec};
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use keel_tests::{get, guest, write_file};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const HELLO: &str = "Hello from keel! You asked for /\n";

/// `HostHeartbeat`'s JSON field names, sorted.
const HEARTBEAT_FIELDS: [&str; 18] = [
    "componentCount",
    "environment",
    "exports",
    "friendlyName",
    "hostname",
    "httpPort",
    "id",
    "imports",
    "labels",
    "osArch",
    "osKernel",
    "osName",
    "startedAt",
    "systemCpuUsage",
    "systemMemoryFree",
    "systemMemoryTotal",
    "version",
    "workloadCount",
];

fn spawn(nats: &NatsServer, dir: &Path, config: &str, extra: &[&str]) -> Result<KeelHost> {
    let mut args = vec!["--config", config];
    args.extend_from_slice(extra);
    KeelHost::spawn(&nats.url(), dir, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hosts_join_run_serve_report_and_stop_workloads() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "hello", "apps/hello:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let mut hosts = Vec::new();
    for i in 0..3 {
        let zone = format!("zone=z{i}");
        let host_dir = dir.path().join(format!("host{i}"));
        hosts.push(spawn(&nats, &host_dir, &config, &["--label", &zone])?);
    }
    // Each is seen through its heartbeats, with its labels and its port.
    for (i, host) in hosts.iter().enumerate() {
        let beat = operator.heartbeat_of(&host.id, |_| true).await?;
        // Exactly HostHeartbeat's fields, as the operator's reader wants.
        let mut fields: Vec<&str> = beat
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, HEARTBEAT_FIELDS);
        assert_eq!(beat["labels"]["hostgroup"], "default");
        assert_eq!(beat["labels"]["zone"], format!("z{i}"));
        assert_eq!(beat["httpPort"], json!(host.http.port()));
        assert_eq!(beat["workloadCount"], "0");
        assert!(!host.id.contains('.'));
    }
    let ids: BTreeSet<_> = hosts.iter().map(|h| h.id.clone()).collect();
    assert_eq!(ids.len(), 3);

    for (i, host) in hosts.iter().enumerate() {
        let uid = format!("uid-{i}");
        let name = format!("hello-{i}");
        let route = format!("{name}.local");
        let mut workload = http_workload("default", &name, &image, &route);
        workload["witWorld"]["hostInterfaces"][0]["config"]["host-aliases"] =
            json!(format!("alias-{i}.local, other-{i}.local"));
        let started = operator.start(&host.id, &uid, workload).await?;
        assert_eq!(state(&started), "WORKLOAD_STATE_RUNNING", "{started}");
        assert_eq!(started["workloadId"], uid.as_str());
        for name in [
            route.clone(),
            format!("alias-{i}.local"),
            format!("other-{i}.local"),
        ] {
            let answer = get(host.http, &name, "/").await?;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, HELLO),
                "{name}"
            );
        }
        let status = operator.status(&host.id, &uid).await?;
        assert_eq!(state(&status), "WORKLOAD_STATE_RUNNING", "{status}");
        // The heartbeat counts it.
        let beat = operator
            .heartbeat_of(&host.id, |b| b["workloadCount"] == "1")
            .await?;
        assert_eq!(beat["componentCount"], "1");
    }
    let first = &hosts[0];

    // A duplicate start answers as wasmCloud does and disturbs nothing.
    let again = operator
        .start(
            &first.id,
            "uid-0",
            http_workload("default", "hello-0", &image, "hello-0.local"),
        )
        .await?;
    assert_error(&again, &["already exists"]);
    assert_eq!(
        state(&operator.status(&first.id, "uid-0").await?),
        "WORKLOAD_STATE_RUNNING"
    );
    assert_eq!(get(first.http, "hello-0.local", "/").await?.status, 200);

    // Unknown ids: NOT_FOUND for status, and stop is no error.
    let unknown = operator.status(&first.id, "no-such-uid").await?;
    assert_eq!(state(&unknown), "WORKLOAD_STATE_NOT_FOUND");
    let unknown = operator.stop(&first.id, "no-such-uid").await?;
    assert_eq!(state(&unknown), "WORKLOAD_STATE_NOT_FOUND");

    // A missing image: ERROR naming it, and nothing is left behind.
    let missing = format!("{}/apps/missing:1", registry.host());
    let failed = operator
        .start(
            &first.id,
            "uid-missing",
            // Under the name of the running workload: its failure must not
            // touch that one.
            http_workload("default", "hello-0", &missing, "m.local"),
        )
        .await?;
    assert_error(&failed, &[&missing]);
    assert_eq!(
        state(&operator.status(&first.id, "uid-missing").await?),
        "WORKLOAD_STATE_NOT_FOUND"
    );
    assert_eq!(
        state(&operator.status(&first.id, "uid-0").await?),
        "WORKLOAD_STATE_RUNNING"
    );
    assert_eq!(get(first.http, "hello-0.local", "/").await?.status, 200);
    // A replica under another name shares the route; stopping it leaves
    // the first serving.
    operator
        .start_running(
            &first.id,
            "uid-replica",
            http_workload("default", "hello-0b", &image, "hello-0.local"),
        )
        .await?;
    operator.stop_stopping(&first.id, "uid-replica").await?;
    assert_eq!(get(first.http, "hello-0.local", "/").await?.status, 200);
    // Nor does a second workload of its name that is refused by keel.
    let twin = operator
        .start(
            &first.id,
            "uid-twin",
            http_workload("default", "hello-0", &image, "twin.local"),
        )
        .await?;
    assert_error(&twin, &["already exists"]);
    assert_eq!(get(first.http, "hello-0.local", "/").await?.status, 200);

    // A field keel cannot honour: ERROR naming it.
    let mut cpu = http_workload("default", "cpu", &image, "cpu.local");
    cpu["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": 500});
    let refused = operator.start(&first.id, "uid-cpu", cpu).await?;
    assert_eq!(state(&refused), "WORKLOAD_STATE_ERROR");
    let message = refused["message"].as_str().unwrap_or("");
    assert!(message.contains("localResources.cpuLimit"), "{refused}");
    // Whole cores the host has are honoured (as CPU turns).
    let mut one = http_workload("default", "cpu-one", &image, "cpu-one.local");
    one["witWorld"]["components"][0]["localResources"] = json!({"cpuLimit": 1});
    operator
        .start_running(&first.id, "uid-cpu-one", one)
        .await?;
    assert_eq!(get(first.http, "cpu-one.local", "/").await?.status, 200);
    operator.stop_stopping(&first.id, "uid-cpu-one").await?;
    // A keyvalue setting that would choose what the plugin reaches: ERROR
    // naming the key.
    let mut elsewhere = http_workload("default", "elsewhere", &image, "elsewhere.local");
    elsewhere["witWorld"]["hostInterfaces"]
        .as_array_mut()
        .expect("a list")
        .push(
            json!({"namespace": "wasi", "package": "keyvalue", "interfaces": ["store"],
                     "config": {"url": "nats://elsewhere:4222"}}),
        );
    let refused = operator
        .start(&first.id, "uid-elsewhere", elsewhere)
        .await?;
    assert_error(&refused, &["hostInterfaces[1].config.url", "widen"]);

    // A field the protocol does not have: ERROR naming it, the id kept.
    let odd = operator
        .request_raw(
            &first.id,
            "workload.start",
            r#"{"workloadId": "uid-odd", "workload": {"namespace": "default", "replicas": 3}}"#,
        )
        .await?;
    let odd = keel_tests::fleet::status_of(odd)?;
    assert_eq!(state(&odd), "WORKLOAD_STATE_ERROR");
    assert_eq!(odd["workloadId"], "uid-odd");
    assert!(
        odd["message"].as_str().unwrap_or("").contains("replicas"),
        "{odd}"
    );

    // The heartbeat request answers with the same message.
    let beat = operator.request(&first.id, "heartbeat", json!({})).await?;
    assert_eq!(beat["id"], first.id.as_str());
    assert_eq!(beat["workloadCount"], "1");

    // Stop: the workload goes, its route with it.
    for (i, host) in hosts.iter().enumerate() {
        let uid = format!("uid-{i}");
        let stopped = operator.stop(&host.id, &uid).await?;
        assert_eq!(state(&stopped), "WORKLOAD_STATE_STOPPING", "{stopped}");
        assert_eq!(
            state(&operator.status(&host.id, &uid).await?),
            "WORKLOAD_STATE_NOT_FOUND"
        );
        assert_eq!(
            get(host.http, &format!("hello-{i}.local"), "/")
                .await?
                .status,
            404
        );
        let alias = format!("alias-{i}.local");
        assert_eq!(get(host.http, &alias, "/").await?.status, 404);
    }

    // A host killed with SIGKILL stops heartbeating: once it is gone, the
    // other two beat three more times each and it not once.
    let mut killed = hosts.pop().expect("three hosts");
    killed.process.signal("KILL")?;
    killed.process.wait(Duration::from_secs(30))?;
    let counts = |operator: &Operator| {
        hosts
            .iter()
            .map(|h| operator.seen.get(&h.id).map_or(0, Vec::len))
            .collect::<Vec<_>>()
    };
    let before = counts(&operator);
    let killed_before = operator.seen.get(&killed.id).map_or(0, Vec::len);
    // Beats already in flight when it died may still arrive: drain them by
    // waiting for one fresh beat of each live host first.
    for host in &hosts {
        operator.heartbeat_of(&host.id, |_| true).await?;
    }
    let killed_drained = operator.seen.get(&killed.id).map_or(0, Vec::len);
    assert!(killed_drained >= killed_before);
    let start = counts(&operator);
    while counts(&operator)
        .iter()
        .zip(&start)
        .any(|(now, then)| now < &(then + 3))
    {
        operator.next_heartbeat().await?;
    }
    assert!(
        counts(&operator)
            .iter()
            .zip(&before)
            .all(|(now, then)| now > then)
    );
    assert_eq!(
        operator.seen.get(&killed.id).map_or(0, Vec::len),
        killed_drained,
        "the killed host kept heartbeating"
    );
    // Nobody answers for it any more.
    assert!(
        operator
            .request(&killed.id, "heartbeat", json!({}))
            .await
            .is_err()
    );

    // Restarted (NATS stays up), it registers again under a new id.
    let restarted = spawn(&nats, &dir.path().join("host2"), &config, &[])?;
    assert!(!ids.contains(&restarted.id));
    operator.heartbeat_of(&restarted.id, |_| true).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_restart_keeps_the_host_registered_with_its_workloads() -> Result<()> {
    let mut nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "hello", "apps/hello:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = spawn(&nats, dir.path(), &config, &[])?;
    operator.heartbeat_of(&host.id, |_| true).await?;
    operator
        .start_running(
            &host.id,
            "uid-1",
            http_workload("default", "hello", &image, "hello.local"),
        )
        .await?;
    drop(operator);

    nats.restart()?;
    // Same id, same workload: the host reconnected and resubscribed.
    let mut operator = Operator::connect(&nats.url()).await?;
    operator
        .heartbeat_of(&host.id, |b| b["workloadCount"] == "1")
        .await?;
    let status = operator.status(&host.id, "uid-1").await?;
    assert_eq!(state(&status), "WORKLOAD_STATE_RUNNING", "{status}");
    assert_eq!(get(host.http, "hello.local", "/").await?.body, HELLO);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_images_pull_secret_and_pull_policy_are_honoured() -> Result<()> {
    use base64::Engine as _;
    let nats = NatsServer::start()?;
    let registry = Registry::start_with_auth("robot", "s3cret")?;
    let dir = tempfile::tempdir()?;
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret");
    let docker = format!(
        r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
        registry.host()
    );
    let credentials = write_file(dir.path(), "auth.json", &docker);
    let pusher = KeelRegistry::new(
        OciOptions::default().with_registry(
            RegistrySpec::new(registry.host())
                .with_insecure(true)
                .with_credentials(credentials),
        ),
    )?;
    let bytes = std::fs::read(guest("hello"))?;
    for tag in ["private/hello:1", "private/hello:2"] {
        pusher
            .push(&ImageRef::parse(&registry.reference(tag))?, &bytes)
            .await?;
    }
    // The host itself has no credentials for the registry.
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = spawn(&nats, dir.path(), &config, &[])?;
    operator.heartbeat_of(&host.id, |_| true).await?;
    let image = format!("{}/private/hello:1", registry.host());
    let with_secret = |password: &str| {
        let mut workload = http_workload("default", "private", &image, "private.local");
        workload["witWorld"]["components"][0]["imagePullSecret"] =
            json!({"username": "robot", "password": password});
        workload
    };

    let anonymous = http_workload("default", "private", &image, "private.local");
    let refused = operator.start(&host.id, "uid-anon", anonymous).await?;
    assert_error(&refused, &["not authorized"]);
    let wrong = operator
        .start(&host.id, "uid-wrong", with_secret("guess"))
        .await?;
    assert_eq!(state(&wrong), "WORKLOAD_STATE_ERROR");
    let message = wrong["message"].as_str().unwrap_or("");
    assert!(
        message.contains("not authorized") && !message.contains("guess"),
        "{wrong}"
    );
    operator
        .start_running(&host.id, "uid-right", with_secret("s3cret"))
        .await?;
    assert_eq!(get(host.http, "private.local", "/").await?.body, HELLO);

    // `NEVER`: only what the host's store holds. Tag 1 is there, tag 2 not.
    let never = |tag: &str, name: &str| {
        let image = format!("{}/private/hello:{tag}", registry.host());
        let mut workload = http_workload("default", name, &image, &format!("{name}.local"));
        workload["witWorld"]["components"][0]["imagePullPolicy"] = json!("IMAGE_PULL_POLICY_NEVER");
        workload
    };
    operator
        .start_running(&host.id, "uid-never-1", never("1", "stored"))
        .await?;
    let absent = operator
        .start(&host.id, "uid-never-2", never("2", "absent"))
        .await?;
    assert_error(&absent, &["never"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_dir_lives_exactly_as_long_as_its_workload() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let image = push_guest(&registry, "hello", "apps/hello:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = spawn(&nats, dir.path(), &config, &[])?;
    operator.heartbeat_of(&host.id, |_| true).await?;
    let with_scratch = |image: &str, name: &str| {
        let mut workload = http_workload("default", name, image, &format!("{name}.local"));
        workload["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
        workload["witWorld"]["components"][0]["localResources"] =
            json!({"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]});
        workload
    };
    // `KeelHost::spawn` gives each host `<dir>/scratch`.
    let folder = |uid: &str| {
        dir.path()
            .join("scratch")
            .join(&host.id)
            .join(uid)
            .join("scratch")
    };

    operator
        .start_running(&host.id, "uid-1", with_scratch(&image, "one"))
        .await?;
    assert!(folder("uid-1").is_dir());
    operator.stop_stopping(&host.id, "uid-1").await?;
    assert!(!folder("uid-1").exists());
    assert!(
        !folder("uid-1")
            .parent()
            .expect("the workload's folder")
            .exists()
    );

    // A start that fails leaves none behind either.
    let missing = format!("{}/apps/missing:1", registry.host());
    let failed = operator
        .start(&host.id, "uid-2", with_scratch(&missing, "two"))
        .await?;
    assert_eq!(state(&failed), "WORKLOAD_STATE_ERROR");
    assert!(!folder("uid-2").exists());
    Ok(())
}
