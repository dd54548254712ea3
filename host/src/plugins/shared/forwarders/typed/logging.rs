//! The typed forwarder of `wasi:logging/logging@0.1.0-draft`, its function
//! linked as a [`route`]. `log` has no error to answer with, so a record
//! the plugin fails to take is written to the host's log instead, with the
//! failure: a failing logging plugin neither loses records nor ends the
//! workload's invocation.

use super::route::{Forward, route};
use super::{TypedForwarders, TypedPlugin, link_each};
use crate::core_api::identity::WorkloadIdentity;
use crate::plugins::shared::SharedPlugin;
use crate::store::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The workload's side: the types of `wasi:logging` as the host serves it
/// (its function is linked by hand, as a [`route`]).
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-logging-0.1.0-draft",
        world: "wasi:logging/imports",
    });
}

/// The plugin's side: `wasi:logging` as a plugin exports it.
mod plugin_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-logging-0.1.0-draft",
        inline: "
            package keel:typed-logging;
            world plugin {
                export wasi:logging/logging@0.1.0-draft;
            }
        ",
        world: "keel:typed-logging/plugin",
    });
}

use plugin_side::exports::wasi::logging::logging as plugin_logging;
use workload_side::wasi::logging::logging;

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 1] = ["wasi:logging/logging@0.1.0-draft"];

typed_exports! {
    /// Where a plugin's `wasi:logging` function is.
    LoggingExports, LoggingFuncs, check: plugin_side::PluginIndices::new;
    log: INTERFACES[0], "log", (plugin_logging::Level, Arc<str>, Arc<str>) -> ();
}

/// Forwards a component's `wasi:logging` import to one shared plugin.
pub type LoggingForwarder = TypedPlugin<LoggingExports>;

/// Links the interfaces of [`INTERFACES`] among `imports`, as synchronous
/// host functions if `sync` (the plugin runs in a synchronous Store).
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String], sync: bool) -> Result<()> {
    link_each(imports, |import| {
        route(
            &mut linker.instance(import)?,
            "log",
            sync,
            logging,
            |state, _, (level, context, message): (logging::Level, String, String)| {
                let record = Record {
                    level,
                    context: context.into(),
                    message: message.into(),
                    caller: state.identity.clone(),
                };
                Ok(Forward {
                    generation: None,
                    pick: |f: &LoggingFuncs| f.log,
                    params: (
                        to_plugin(level),
                        record.context.clone(),
                        record.message.clone(),
                    ),
                    keep: record,
                })
            },
            |_, plugin, record, reply| {
                if let Err(failed) = reply {
                    record.keep_here(plugin, &failed);
                }
            },
        )
    })
}

/// The logging forwarder of a workload's Store.
fn logging(typed: &TypedForwarders) -> Option<&Arc<LoggingForwarder>> {
    typed.logging.as_ref()
}

/// A record on its way to the plugin, kept for the host's log should the
/// plugin fail to take it (its text shared with the call, not copied).
struct Record {
    level: logging::Level,
    context: Arc<str>,
    message: Arc<str>,
    caller: Arc<WorkloadIdentity>,
}

impl Record {
    /// Writes the record to the host's log, with why `plugin` did not take
    /// it: its level in `severity` and its text in `record`, as the host
    /// logs a guest's own records (`workload::stdio`), since `message` is
    /// the host's line.
    fn keep_here(&self, plugin: &SharedPlugin, failed: &str) {
        tracing::warn!(
            workload = format!("{}/{}", self.caller.namespace, self.caller.name),
            plugin = plugin.name(),
            severity = severity(self.level),
            context = &*self.context,
            record = &*self.message,
            error = failed,
            "the logging plugin failed to take a record; it is kept here"
        );
    }
}

/// `level` as a guest's record names it.
fn severity(level: logging::Level) -> &'static str {
    match level {
        logging::Level::Trace => "trace",
        logging::Level::Debug => "debug",
        logging::Level::Info => "info",
        logging::Level::Warn => "warn",
        logging::Level::Error => "error",
        logging::Level::Critical => "critical",
    }
}

fn to_plugin(level: logging::Level) -> plugin_logging::Level {
    match level {
        logging::Level::Trace => plugin_logging::Level::Trace,
        logging::Level::Debug => plugin_logging::Level::Debug,
        logging::Level::Info => plugin_logging::Level::Info,
        logging::Level::Warn => plugin_logging::Level::Warn,
        logging::Level::Error => plugin_logging::Level::Error,
        logging::Level::Critical => plugin_logging::Level::Critical,
    }
}
