//! A wasmCloud workload with a `service` through `keel host`: the service
//! pulled from a registry and run beside the workload's HTTP component,
//! which reaches it over the workload's own loopback; a service that
//! finishes makes the workload COMPLETED, one failing past `maxRestarts`
//! makes it ERROR; a service image that cannot be pulled is named.

use anyhow::{Result, bail};
use keel_tests::fleet::{
    KeelHost, Operator, assert_error, host_config, http_workload, push_guest, state,
};
use keel_tests::get;
use keel_tests::nats::NatsServer;
use keel_tests::registry::Registry;
use serde_json::{Value, json};
use std::time::Duration;

/// A generous bound for what a loaded machine does in milliseconds.
const WAIT: Duration = Duration::from_secs(60);

/// Polls `workload.status` of `uid` until its state is `wanted`.
async fn status_until(operator: &Operator, host: &str, uid: &str, wanted: &str) -> Result<Value> {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let status = operator.status(host, uid).await?;
        if state(&status) == wanted {
            return Ok(status);
        }
        if tokio::time::Instant::now() > until {
            bail!("{uid} never reached {wanted}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workloads_http_component_calls_its_service_over_localhost() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let api = push_guest(&registry, "http_behaviours", "apps/api:1").await?;
    let db = push_guest(&registry, "service-listen", "apps/db:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = KeelHost::spawn(&nats.url(), dir.path(), &["--config", &config])?;
    operator.heartbeat_of(&host.id, |_| true).await?;

    let mut workload = http_workload("default", "api", &api, "api.local");
    // It may resolve names, so it may call its service `localhost`.
    workload["witWorld"]["components"][0]["localResources"] =
        json!({"allowedIpNameLookups": ["*"]});
    workload["service"] = json!({
        "image": db,
        "maxRestarts": "2",
        "localResources": {"environment": {"SERVICE_NAME": "db"}, "memoryLimitMb": 32}
    });
    operator.start_running(&host.id, "uid-1", workload).await?;
    // The service listens once its instance has run that far: until then
    // the component's connect is refused (502).
    let until = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let answer = get(host.http, "api.local", "/connect?addr=localhost:8080").await?;
        if answer.status == 200 || tokio::time::Instant::now() > until {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.starts_with("hello from service db"),
        "{}",
        answer.body
    );
    // The service counts among the host's components.
    let beat = operator.request(&host.id, "heartbeat", json!({})).await?;
    assert_eq!(beat["componentCount"], "2", "{beat}");
    assert_eq!(beat["workloadCount"], "1", "{beat}");
    assert_eq!(
        state(&operator.status(&host.id, "uid-1").await?),
        "WORKLOAD_STATE_RUNNING"
    );
    operator.stop_stopping(&host.id, "uid-1").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_service_completes_and_a_failing_one_errors() -> Result<()> {
    let nats = NatsServer::start()?;
    let registry = Registry::start()?;
    let done = push_guest(&registry, "service-done", "jobs/done:1").await?;
    let fail = push_guest(&registry, "service-fail", "jobs/fail:1").await?;
    let dir = tempfile::tempdir()?;
    let config = host_config(dir.path(), &registry, "");
    let mut operator = Operator::connect(&nats.url()).await?;
    let host = KeelHost::spawn(&nats.url(), dir.path(), &["--config", &config])?;
    operator.heartbeat_of(&host.id, |_| true).await?;

    // A service alone: a batch job.
    let job = json!({"namespace": "default", "name": "job", "service": {"image": done}});
    operator.start(&host.id, "uid-done", job).await?;
    status_until(&operator, &host.id, "uid-done", "WORKLOAD_STATE_COMPLETED").await?;

    let crash = json!({
        "namespace": "default", "name": "crash",
        "service": {"image": fail, "maxRestarts": "1"}
    });
    operator.start(&host.id, "uid-fail", crash).await?;
    let status = status_until(&operator, &host.id, "uid-fail", "WORKLOAD_STATE_ERROR").await?;
    assert_error(&status, &["service `service` failed after 1 restart(s)"]);

    let missing = json!({
        "namespace": "default", "name": "missing",
        "service": {"image": format!("{}/jobs/nothing:1", registry.host())}
    });
    let refused = operator.start(&host.id, "uid-missing", missing).await?;
    assert_error(&refused, &["workload.service.image", "jobs/nothing"]);
    Ok(())
}
