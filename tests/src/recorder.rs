//! The `recorder` fixture: a workload whose messaging handler reports every
//! message it receives on subject `seen` of its namespace, so a test can see
//! exactly what a workload's subscriptions delivered, and in which order.

use anyhow::{Result, bail};
use keel::spec::SubscriptionSpec;
use keel::testing::BrokerSubscription;
use keel::{WorkloadId, WorkloadSpec};
use std::net::SocketAddr;
use std::time::Duration;

/// A `recorder` workload in `namespace` subscribed to each of `subjects`.
/// It runs one instance at a time, so each subscription's messages are
/// handled, and reported, in the order they arrived.
pub fn recorder(namespace: &str, subjects: &[&str]) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(
        WorkloadId::new(namespace, "recorder"),
        crate::guest("recorder"),
    );
    spec.limits.max_instances = 1;
    for subject in subjects {
        spec.subscriptions.push(SubscriptionSpec::new(*subject));
    }
    spec
}

/// Reads `reports` (a subscription to `<namespace>.seen`) until `markers`
/// reports equal to `marker` arrived, and returns every report read, in
/// order. A report is `<subject> <reply-to or -> <body>`. Since a marker
/// reached each subscription after whatever that subscription received
/// earlier, the reports returned are everything the recorder received.
pub async fn reports_until(
    reports: &mut BrokerSubscription,
    marker: &str,
    markers: usize,
) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.iter().filter(|r| *r == marker).count() < markers {
        match tokio::time::timeout_at(deadline, reports.next()).await {
            Ok(Some(report)) => seen.push(String::from_utf8_lossy(&report.body).into_owned()),
            Ok(None) => bail!("the report subscription ended; reports so far: {seen:#?}"),
            Err(_) => bail!("{markers} × `{marker}` not reported within 30 s; reports: {seen:#?}"),
        }
    }
    Ok(seen)
}

/// The report of the marker [`nothing_but_the_marker`] publishes.
const MARKER: &str = "_INBOX.marker - marker";

/// Has the `pinger` workload served on `pinger_host` publish a marker on
/// `_INBOX.marker` of its namespace, then checks that the recorder of that
/// namespace (`subscriptions` subscriptions, reporting on `reports`)
/// received that marker once per subscription and nothing else: what
/// another namespace did before the marker never reached it.
pub async fn nothing_but_the_marker(
    addr: SocketAddr,
    pinger_host: &str,
    reports: &mut BrokerSubscription,
    subscriptions: usize,
) -> Result<()> {
    let marker = crate::get(
        addr,
        pinger_host,
        "/publish?subject=_INBOX.marker&msg=marker",
    )
    .await?;
    if marker.status != 200 {
        bail!("publishing the marker: {} {}", marker.status, marker.body);
    }
    let seen = reports_until(reports, MARKER, subscriptions).await?;
    if !seen.iter().all(|r| r == MARKER) {
        bail!("the recorder received more than its own marker: {seen:#?}");
    }
    Ok(())
}
