//! The host's log: `tracing` records, filtered `RUST_LOG`-style, printed as
//! text for people or JSON lines for machines.

use anyhow::{Result, anyhow};
use tracing_subscriber::EnvFilter;

/// How log records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, writing to stderr. The filter comes from
/// `RUST_LOG` (e.g. `keel=debug,keel::guest=warn`) and defaults to `info`.
pub fn init(format: LogFormat) -> Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| anyhow!("installing the logger: {e}"))
}
