//! The host's NATS connection: connecting, and logging what the client
//! reports.

use crate::core_api::pending::PendingLimits;
use crate::spec::NatsSpec;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Connects to NATS. The first connection must succeed, so that a wrong URL
/// is reported at start; after that the client reconnects by itself, calls
/// made during an outage fail at their timeout, and the log says what
/// happened.
pub(super) async fn connect(nats: &NatsSpec, pending: PendingLimits) -> Result<async_nats::Client> {
    use anyhow::Context as _;
    let slow = Arc::new(SlowConsumers::default());
    let mut options = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        // A subscription holds this many unread messages; past it the client
        // drops messages to it and reports a slow consumer.
        .subscription_capacity(pending.channel_capacity())
        .event_callback(move |event| {
            let slow = slow.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS disconnected; reconnecting")
                    }
                    async_nats::Event::SlowConsumer(sid) => slow.dropped(sid),
                    other => tracing::warn!("NATS: {other}"),
                }
            }
        });
    if let Some(name) = &nats.name {
        options = options.name(name);
    }
    if let Some(ca) = &nats.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &nats.tls_client {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if let Some(credentials) = &nats.credentials {
        options = options
            .credentials_file(credentials)
            .await
            .with_context(|| format!("reading NATS credentials {}", credentials.display()))?;
    }
    let servers = nats.servers().map_err(anyhow::Error::msg)?;
    let client = tokio::time::timeout(std::time::Duration::from_secs(10), options.connect(servers))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to NATS at {}: no answer within 10 s", nats.url))?
        .with_context(|| format!("connecting to NATS at {}", nats.url))?;
    tracing::info!(url = nats.url, "messaging goes through NATS");
    Ok(client)
}

/// The NATS client reports every message it drops for a full subscription;
/// this logs the first drop of each subscription and then only at 2, 4, 8,
/// … drops, so a flood does not become a flood of log lines.
#[derive(Default)]
struct SlowConsumers {
    drops: Mutex<BTreeMap<u64, u64>>,
}

impl SlowConsumers {
    fn dropped(&self, sid: u64) {
        let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        let count = drops.entry(sid).or_default();
        *count += 1;
        if count.is_power_of_two() {
            tracing::warn!(
                subscription = sid,
                dropped = *count,
                "NATS slow consumer: a subscription holds as much unread as it may; \
                 messages to it are dropped"
            );
        }
    }
}
