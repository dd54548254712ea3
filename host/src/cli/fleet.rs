//! `keel host`: a long-running host with no manifest, driven over NATS by
//! wasmCloud's runtime operator (see [`crate::fleet`]).

use super::Signals;
use super::serve::ServeArgs;
use crate::fleet::{FleetHost, Identity, Settings};
use crate::http::IngressOptions;
use crate::manifest::Manifest;
use crate::spec::{SubjectScope, parse_duration};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `keel host`.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// The NATS server the operator speaks on (overrides the host
    /// configuration's `[nats] url`).
    #[arg(long, value_name = "nats://host:port")]
    pub nats: Option<String>,
    /// A NATS `.creds` file (JWT and NKey seed): the account the host's
    /// workloads and the protocol use.
    #[arg(long, value_name = "FILE")]
    pub nats_credentials: Option<PathBuf>,
    /// PEM CA certificates to trust for NATS over TLS.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// A PEM client certificate, for a NATS server that verifies its
    /// clients (as the wasmCloud chart's NATS does).
    #[arg(long, value_name = "FILE", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The PEM private key of `--nats-tls-cert`.
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
    /// How workload subjects map onto NATS: `as-written`, as wasmCloud
    /// hosts do (tenants separated by NATS accounts: give each tenant's
    /// hosts their own credentials), or `namespace`, each prefixed with the
    /// workload's namespace as `keel run` does.
    #[arg(long, value_enum, default_value_t = SubjectScope::AsWritten)]
    pub subjects: SubjectScope,
    /// A host configuration: a manifest with `[nats]`, `[[plugin]]` and
    /// `[[registry]]` and no `[[workload]]`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The host's name for the operator (a DNS-1123 label) [default:
    /// keel-<the start of the host id>].
    #[arg(long, value_name = "NAME", value_parser = parse_friendly_name)]
    pub friendly_name: Option<String>,
    /// A label the operator's host selectors match, `KEY=VALUE`; repeat for
    /// several. `hostgroup=default` unless a `hostgroup` is given.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The heartbeat's `environment`: the Kubernetes namespace (tenant)
    /// whose workloads the operator may place here when it schedules by
    /// environment; empty for a host shared by every namespace.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub environment: String,
    /// What `keel run` takes too.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Where `emptyDir` volumes are made (one folder per workload, removed
    /// when it stops) [default: the system's temporary folder].
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// How often the heartbeat is published (the operator expects 15 s;
    /// shorter for tests).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration, hide = true)]
    pub heartbeat_interval: Duration,
}

/// `keel host`: connect, announce, serve the operator until a signal, then
/// stop every workload.
pub async fn host(args: HostArgs) -> Result<()> {
    let mut signals = Signals::new()?;
    let config = match &args.config {
        Some(path) => Manifest::load_host_config(path)?,
        None => Manifest::default(),
    };
    let Some(mut nats) = super::serve::nats_with_url(args.nats.as_ref(), config.nats.clone())
    else {
        anyhow::bail!("keel host needs a NATS server: give --nats or [nats] in --config")
    };
    if let Some(credentials) = &args.nats_credentials {
        nats.credentials = Some(credentials.clone());
    }
    if let Some(ca) = &args.nats_tls_ca {
        nats.tls_ca = Some(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&args.nats_tls_cert, &args.nats_tls_key) {
        nats.tls_client = Some((cert.clone(), key.clone()));
    }
    nats.subjects = args.subjects;
    let builder = args
        .serve
        .host_builder(IngressOptions::default(), config.registries.clone())
        .nats(nats);
    let host = Arc::new(builder.start().await?);
    for plugin in config.plugins {
        host.add_plugin(plugin).await?;
    }
    let client = match host.broker() {
        crate::core_api::broker::Broker::Nats(connection) => connection.client().clone(),
        crate::core_api::broker::Broker::Bus(_) => anyhow::bail!("keel host runs on NATS only"),
    };
    let mut labels: BTreeMap<String, String> = args.labels.into_iter().collect();
    labels
        .entry("hostgroup".to_string())
        .or_insert_with(|| "default".to_string());
    let identity = Identity::new(args.friendly_name, labels, args.environment);
    let settings = Settings {
        scratch_dir: args
            .scratch_dir
            .unwrap_or_else(|| std::env::temp_dir().join("keel-empty-dirs"))
            .join(&identity.id),
        extra_packages: host
            .plugin_exports()
            .iter()
            .filter_map(|name| name.split_once('/').map(|(package, _)| package.to_string()))
            .collect(),
    };
    if let Some(addr) = host.http_addr() {
        tracing::info!("listening on http://{addr}");
    }
    tracing::info!(
        host_id = identity.id,
        friendly_name = identity.friendly_name,
        "keel host started"
    );
    let fleet = Arc::new(FleetHost::new(host.clone(), client, identity, settings));
    let served = fleet
        .clone()
        .serve(args.heartbeat_interval, async {
            if let Err(e) = signals.next().await {
                tracing::warn!("{e:#}");
            }
        })
        .await;
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = host.shutdown() => {}
        signal = signals.next() => {
            signal?;
            anyhow::bail!("a second signal: exiting without finishing in-flight requests");
        }
    }
    fleet.remove_scratch();
    tracing::info!("stopped");
    served
}

/// `KEY=VALUE`.
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A DNS-1123 label: lower-case letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 long.
fn parse_friendly_name(text: &str) -> Result<String, String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| alnum(c) || c == '-')
        && text.starts_with(alnum)
        && text.ends_with(alnum);
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a DNS-1123 label: up to 63 lower-case letters, digits and `-`, \
             starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_names_are_dns_labels() {
        assert!(parse_friendly_name("keel-1").is_ok());
        for bad in ["", "Keel", "-a", "a-", "a.b", &"a".repeat(64)] {
            assert!(parse_friendly_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_key_value() {
        assert_eq!(parse_label("zone=a=b"), Ok(("zone".into(), "a=b".into())));
        assert!(parse_label("=x").is_err());
        assert!(parse_label("novalue").is_err());
    }
}
