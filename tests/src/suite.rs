//! What the interface suites ([`keyvalue_suite`](crate::keyvalue_suite),
//! [`blobstore_suite`](crate::blobstore_suite)) run against: a host with two
//! workloads, `a.test` and `b.test`, and some backend behind them.

use crate::{Answer, get, request};
use anyhow::Result;
use bytes::Bytes;
use keel::Host;
use std::net::SocketAddr;

/// A host running workloads `a.test` and `b.test` with some backend.
pub struct Target {
    /// The host (shut down by the generated test).
    pub host: Host,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// The NATS server behind it, if any (stopped when the target drops).
    pub nats: Option<crate::nats::NatsServer>,
}

impl Target {
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
