//! keel inside another program: a [`Host`] without a listener of its own,
//! a workload started from the component's bytes (as a control plane or a
//! registry would hand them over), one request served through
//! [`Host::handle`] (what an existing hyper or axum server would call), and
//! the workload's state watched while it is stopped and removed.
//!
//! ```text
//! make guests
//! cargo run -p keel --example embed -- target/guests/hello.wasm
//! ```

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use keel::{Host, WorkloadId, WorkloadSpec};
use std::io::Write;

/// `Host` needs a multi-thread runtime.
#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: embed <component.wasm>")?;
    let component = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    run(component, &mut std::io::stdout()).await
}

/// Runs the whole demonstration on `component` (an HTTP component such as
/// `hello.wasm`), writing what happens to `out`.
pub async fn run(component: Vec<u8>, out: &mut dyn Write) -> Result<()> {
    // No `http_listen`: requests come through `Host::handle` only.
    let host = Host::builder().start().await?;
    let id = WorkloadId::new("demo", "hello");
    host.start_workload(WorkloadSpec::from_bytes(id.clone(), "hello", component))
        .await?;

    // Every state from now on, until the workload is gone.
    let mut states = host.watch(&id).context("the workload just started")?;
    let watcher = tokio::spawn(async move {
        let mut seen = vec![states.borrow_and_update().to_string()];
        while states.changed().await.is_ok() {
            seen.push(states.borrow_and_update().to_string());
        }
        seen
    });

    // What an embedding server would forward: any body of `Bytes` will do.
    let request = http::Request::builder()
        .uri("/embedded")
        .header(http::header::HOST, "localhost")
        .body(Full::new(Bytes::new()))?;
    let response = host.handle(request).await;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    write!(
        out,
        "GET /embedded -> {} {}",
        status.as_u16(),
        String::from_utf8_lossy(&body)
    )?;

    host.stop_workload(&id).await?;
    host.remove_workload(&id).await?;
    if host.status(&id).is_some() {
        bail!("workload {id} is still listed after its removal");
    }
    // Removed, the workload is dropped and the channel closes.
    let seen = watcher.await?;
    writeln!(out, "states: {}", seen.join(" -> "))?;
    writeln!(out, "removed: {}", host.list().is_empty())?;
    host.shutdown().await;
    Ok(())
}
