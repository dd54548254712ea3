//! Playing wasmCloud's runtime operator in tests: `keel host` processes
//! on a real NATS server, their heartbeats, and the protocol's requests,
//! spoken with nothing but the documented JSON messages.

use crate::registry::Registry;
use crate::{KeelProcess, write_file};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How long a request may wait for its reply (a start pulls and compiles).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A `keel host` child process.
pub struct KeelHost {
    /// The process (its log, signals).
    pub process: KeelProcess,
    /// The id it announced.
    pub id: String,
    /// Where it serves HTTP.
    pub http: SocketAddr,
}

impl KeelHost {
    /// Starts `keel host` on `nats` with its own cache folder in `dir`,
    /// HTTP on a free loopback port, heartbeats every 200 ms, and `extra`
    /// arguments; returns once it has announced its id.
    pub fn spawn(nats: &str, dir: &Path, extra: &[&str]) -> Result<KeelHost> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "host".into(),
            "--nats".into(),
            nats.into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--heartbeat-interval".into(),
            "200ms".into(),
            "--cache-dir".into(),
            dir.join("cache").into(),
            "--scratch-dir".into(),
            dir.join("scratch").into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let mut process = KeelProcess::spawn_args(&args, &[])?;
        let http = process.http_addr()?;
        let line = process.wait_for_log("keel host started", Duration::from_secs(60))?;
        let id = line
            .split("host_id=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|id| id.trim_matches('"').to_string())
            .with_context(|| format!("no host_id in {line:?}"))?;
        Ok(KeelHost { process, id, http })
    }
}

/// The operator's side: a NATS client, and every heartbeat since it
/// connected.
pub struct Operator {
    client: async_nats::Client,
    heartbeats: async_nats::Subscriber,
    /// Heartbeats received so far, per host id, oldest first.
    pub seen: BTreeMap<String, Vec<Value>>,
}

impl Operator {
    /// Connects to `url` and listens to heartbeats.
    pub async fn connect(url: &str) -> Result<Operator> {
        let client = async_nats::connect(url).await?;
        let heartbeats = client.subscribe("runtime.operator.heartbeat.*").await?;
        client.flush().await?;
        Ok(Operator {
            client,
            heartbeats,
            seen: BTreeMap::new(),
        })
    }

    /// The next heartbeat published (bounded by a generous timeout).
    pub async fn next_heartbeat(&mut self) -> Result<Value> {
        let message = tokio::time::timeout(Duration::from_secs(60), self.heartbeats.next())
            .await
            .context("no heartbeat within 60 s")?
            .context("the heartbeat subscription ended")?;
        let beat: Value = serde_json::from_slice(&message.payload)?;
        let id = beat["id"]
            .as_str()
            .context("a heartbeat without id")?
            .to_string();
        anyhow::ensure!(
            message.subject.as_str() == format!("runtime.operator.heartbeat.{id}"),
            "heartbeat of {id} on {}",
            message.subject
        );
        self.seen.entry(id).or_default().push(beat.clone());
        Ok(beat)
    }

    /// Waits for a heartbeat of host `id` satisfying `wanted`.
    pub async fn heartbeat_of(
        &mut self,
        id: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        loop {
            let beat = self.next_heartbeat().await?;
            if beat["id"] == id && wanted(&beat) {
                return Ok(beat);
            }
        }
    }

    /// Sends `command` to host `id` and returns the decoded reply.
    pub async fn request(&self, id: &str, command: &str, body: Value) -> Result<Value> {
        let subject = format!("runtime.host.{id}.{command}");
        let reply = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.client
                .request(subject.clone(), serde_json::to_vec(&body)?.into()),
        )
        .await
        .with_context(|| format!("no reply on {subject} within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("requesting {subject}"))?;
        Ok(serde_json::from_slice(&reply.payload)?)
    }

    /// Sends raw `payload` as `command` to host `id`.
    pub async fn request_raw(&self, id: &str, command: &str, payload: &str) -> Result<Value> {
        let subject = format!("runtime.host.{id}.{command}");
        let reply = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.client.request(subject, payload.to_string().into()),
        )
        .await
        .context("no reply in time")??;
        Ok(serde_json::from_slice(&reply.payload)?)
    }

    /// `workload.start` of `workload` as `uid`; returns the reply's
    /// `workloadStatus`.
    pub async fn start(&self, host: &str, uid: &str, workload: Value) -> Result<Value> {
        let reply = self
            .request(
                host,
                "workload.start",
                json!({"workloadId": uid, "workload": workload}),
            )
            .await?;
        status_of(reply)
    }

    /// `workload.start` sent now, its reply awaited on a task of its own
    /// (for a start the test holds inside its pull); the task's result is
    /// the reply's `workloadStatus`.
    pub fn start_in_background(
        &self,
        host: &str,
        uid: &str,
        workload: Value,
    ) -> tokio::task::JoinHandle<Result<Value>> {
        let subject = format!("runtime.host.{host}.workload.start");
        let body = json!({"workloadId": uid, "workload": workload}).to_string();
        let client = self.client.clone();
        tokio::spawn(async move {
            let reply = client.request(subject, body.into()).await?;
            status_of(serde_json::from_slice(&reply.payload)?)
        })
    }

    /// `workload.start` that must answer `RUNNING`; the status.
    pub async fn start_running(&self, host: &str, uid: &str, workload: Value) -> Result<Value> {
        let status = self.start(host, uid, workload).await?;
        if state(&status) != "WORKLOAD_STATE_RUNNING" {
            bail!("{uid} is not running: {status}");
        }
        Ok(status)
    }

    /// `workload.stop` that must answer `STOPPING`.
    pub async fn stop_stopping(&self, host: &str, uid: &str) -> Result<()> {
        let status = self.stop(host, uid).await?;
        if state(&status) != "WORKLOAD_STATE_STOPPING" {
            bail!("{uid} is not stopping: {status}");
        }
        Ok(())
    }

    /// `workload.status` of `uid`.
    pub async fn status(&self, host: &str, uid: &str) -> Result<Value> {
        status_of(
            self.request(host, "workload.status", json!({"workloadId": uid}))
                .await?,
        )
    }

    /// `workload.stop` of `uid`.
    pub async fn stop(&self, host: &str, uid: &str) -> Result<Value> {
        status_of(
            self.request(host, "workload.stop", json!({"workloadId": uid}))
                .await?,
        )
    }

    /// The client, for anything else.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

/// The `workloadStatus` of a reply, checked to carry exactly the
/// protocol's fields.
pub fn status_of(reply: Value) -> Result<Value> {
    let object = reply.as_object().context("a reply that is not an object")?;
    if object.keys().collect::<Vec<_>>() != ["workloadStatus"] {
        bail!("a reply with other fields than workloadStatus: {reply}");
    }
    let status = reply["workloadStatus"].clone();
    let mut keys: Vec<&String> = status
        .as_object()
        .context("workloadStatus")?
        .keys()
        .collect();
    keys.sort();
    if keys != ["message", "workloadId", "workloadState"] {
        bail!("a workloadStatus with other fields: {status}");
    }
    Ok(status)
}

/// A wasmCloud workload of one component `image`, routed by `host`.
pub fn http_workload(namespace: &str, name: &str, image: &str, host: &str) -> Value {
    json!({
        "namespace": namespace,
        "name": name,
        "witWorld": {
            "components": [{"name": name, "image": image}],
            "hostInterfaces": [{
                "namespace": "wasi", "package": "http", "version": "0.2.0",
                "interfaces": ["incoming-handler"], "config": {"host": host}
            }]
        }
    })
}

/// The state of a `workloadStatus`.
pub fn state(status: &Value) -> &str {
    status["workloadState"].as_str().unwrap_or("")
}

/// Asserts that `status` is an `ERROR` whose message holds every one of
/// `needles`.
#[track_caller]
pub fn assert_error(status: &Value, needles: &[&str]) {
    assert_eq!(state(status), "WORKLOAD_STATE_ERROR", "{status}");
    let message = status["message"].as_str().unwrap_or("");
    for needle in needles {
        assert!(message.contains(needle), "no `{needle}` in {status}");
    }
}

/// Pushes guest `file` to `repo_tag` of `registry` (plain HTTP); returns
/// the image as a wasmCloud workload writes it (no scheme).
pub async fn push_guest(registry: &Registry, file: &str, repo_tag: &str) -> Result<String> {
    registry.push_guest(file, repo_tag).await?;
    Ok(format!("{}/{repo_tag}", registry.host()))
}

/// A host configuration in `dir` letting a host speak plain HTTP to
/// `registry`, followed by `more` (TOML); returns its path.
pub fn host_config(dir: &Path, registry: &Registry, more: &str) -> String {
    insecure_config(dir, &registry.host(), more)
}

/// A host configuration in `dir` letting a host speak plain HTTP to the
/// registry at `registry_host`, followed by `more`; returns its path.
pub fn insecure_config(dir: &Path, registry_host: &str, more: &str) -> String {
    let text = format!("[[registry]]\nhost = \"{registry_host}\"\ninsecure = true\n{more}");
    write_file(dir, "host.toml", &text).display().to_string()
}
