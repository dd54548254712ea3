//! The host's log: `tracing` records, filtered `RUST_LOG`-style, printed as
//! text for people or JSON lines for machines, written to stderr by a
//! thread of their own ([`sink`]).

pub mod sink;

use anyhow::{Result, anyhow};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub use sink::LogGuard;

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
/// Text is coloured only when stderr is a terminal and `NO_COLOR` is unset.
/// Keep the returned guard until the end: dropping it writes out what is
/// still queued.
pub fn init(format: LogFormat) -> Result<LogGuard> {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The registry client's debug lines include token answers: never shown,
    // whatever RUST_LOG asks (keel logs each pull itself).
    for directive in ["oci_client=warn", "reqwest=warn"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    // Colour only for people at a terminal: never in pipes and log files.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (writer, guard) =
        sink::start(format).map_err(|e| anyhow!("starting the log writer thread: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| anyhow!("installing the logger: {e}"))?;
    Ok(guard)
}
