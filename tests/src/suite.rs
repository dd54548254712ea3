//! What the interface suites ([`keyvalue_suite`](crate::keyvalue_suite),
//! [`blobstore_suite`](crate::blobstore_suite)) run against: a host with two
//! workloads, `a.test` and `b.test`, and some backend behind them.

use crate::{Answer, get, request};
use anyhow::{Context, Result};
use bytes::Bytes;
use keel::{Host, WorkloadId, WorkloadSpec};
use std::net::SocketAddr;

/// A host running workloads `a.test` and `b.test` with some backend.
pub struct Target {
    /// The host (shut down by the generated test).
    pub host: Host,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// The NATS server behind it, if any (stopped when the target drops).
    pub nats: Option<crate::nats::NatsServer>,
    /// The Redis server behind it, if any (stopped when the target drops).
    pub redis: Option<crate::redis::RedisServer>,
}

impl Target {
    /// Starts workloads `a` and `b` of `namespace` on `host`, both running
    /// guest `file` and routed as `a.test` and `b.test`; `nats` is the server
    /// behind the host, if any.
    pub async fn start(
        host: Host,
        namespace: &str,
        file: &str,
        nats: Option<crate::nats::NatsServer>,
    ) -> Result<Target> {
        for name in ["a", "b"] {
            let mut spec =
                WorkloadSpec::single(WorkloadId::new(namespace, name), crate::guest(file));
            spec.http.host = Some(format!("{name}.test"));
            host.start_workload(spec).await?;
        }
        let addr = host.http_addr().context("the host has no HTTP ingress")?;
        Ok(Target {
            host,
            addr,
            nats,
            redis: None,
        })
    }

    /// [`Target::start`] on a host whose broker is a fresh `nats-server`
    /// (kept in the target), with built-in `plugin` configured if given.
    pub async fn on_nats(
        namespace: &str,
        file: &str,
        plugin: Option<keel::spec::PluginSpec>,
    ) -> Result<Target> {
        let server = crate::nats::NatsServer::start()?;
        let host = crate::nats::host_on(&server).await?;
        if let Some(plugin) = plugin {
            host.add_plugin(plugin).await?;
        }
        Target::start(host, namespace, file, Some(server)).await
    }

    /// `method path` on workload `who` (`a` or `b`).
    pub async fn call(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer> {
        request(self.addr, method, &format!("{who}.test"), path, body).await
    }

    /// `GET path` on workload `who`.
    pub async fn get(&self, who: &str, path: &str) -> Result<Answer> {
        get(self.addr, &format!("{who}.test"), path).await
    }
}
