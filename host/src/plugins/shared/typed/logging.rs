//! The typed forwarder of `wasi:logging/logging@0.1.0-draft`. `log` has no
//! error to answer with, so a record the plugin fails to take is written to
//! the host's log instead, with the failure: a failing logging plugin
//! neither loses records nor ends the workload's invocation.

use super::{TypedPlugin, link_each};
use crate::workload::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

/// The workload's side: `wasi:logging` as the host serves it.
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-logging-0.1.0-draft",
        world: "wasi:logging/imports",
        imports: { default: async | trappable },
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

/// Links the interfaces of [`INTERFACES`] among `imports`.
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String]) -> Result<()> {
    fn view(state: &mut InvocationState) -> LoggingView<'_> {
        LoggingView { state }
    }
    link_each(imports, |_| {
        logging::add_to_linker::<_, Logging>(linker, view)
    })
}

/// Marks [`LoggingView`] as the data the generated host traits run on.
struct Logging;

impl HasData for Logging {
    type Data<'a> = LoggingView<'a>;
}

/// A workload's Store, seen by the `wasi:logging` host traits.
struct LoggingView<'a> {
    state: &'a mut InvocationState,
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

impl logging::Host for LoggingView<'_> {
    async fn log(
        &mut self,
        level: logging::Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        let Some(forwarder) = self.state.typed.logging.clone() else {
            return Ok(());
        };
        // Shared with the call, and kept for the host's log should the
        // plugin fail to take it.
        let (context, message): (Arc<str>, Arc<str>) = (context.into(), message.into());
        let params = (to_plugin(level), context.clone(), message.clone());
        let sent = forwarder
            .call(self.state.caller(), None, |f| f.log, params)
            .await;
        if let Err(failed) = sent {
            let caller = self.state.identity();
            tracing::warn!(
                workload = format!("{}/{}", caller.namespace, caller.name),
                plugin = forwarder.plugin().name(),
                level = ?level,
                context = &*context,
                message = &*message,
                error = failed,
                "the logging plugin failed to take a record; it is kept here"
            );
        }
        Ok(())
    }
}
