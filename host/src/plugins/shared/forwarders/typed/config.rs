//! The typed forwarder of `wasi:config/store@0.2.0-rc.1`, its functions
//! linked as [`route`]s. A plugin that fails during a call answers
//! `error::upstream` (it restarts on the next call).

use super::route::{Forward, route};
use super::{TypedForwarders, TypedPlugin, link_each};
use crate::store::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The workload's side: the types of `wasi:config` as the host serves it
/// (its functions are linked by hand, as [`route`]s).
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-config-0.2.0-rc.1",
        world: "wasi:config/imports",
    });
}

/// The plugin's side: `wasi:config` as a plugin exports it.
mod plugin_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-config-0.2.0-rc.1",
        inline: "
            package keel:typed-config;
            world plugin {
                export wasi:config/store@0.2.0-rc.1;
            }
        ",
        world: "keel:typed-config/plugin",
    });
}

use plugin_side::exports::wasi::config::store::Error as PluginError;
use workload_side::wasi::config::store;

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 1] = ["wasi:config/store@0.2.0-rc.1"];

typed_exports! {
    /// Where a plugin's `wasi:config` functions are.
    ConfigExports, ConfigFuncs, check: plugin_side::PluginIndices::new;
    get: INTERFACES[0], "get", (String) -> (Result<Option<String>, PluginError>);
    get_all: INTERFACES[0], "get-all", () -> (Result<Vec<(String, String)>, PluginError>);
}

/// Forwards a component's `wasi:config` import to one shared plugin.
pub type ConfigForwarder = TypedPlugin<ConfigExports>;

/// Links the interfaces of [`INTERFACES`] among `imports`, as synchronous
/// host functions if `sync` (the plugin runs in a synchronous Store).
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String], sync: bool) -> Result<()> {
    link_each(imports, |import| {
        let mut instance = linker.instance(import)?;
        route(
            &mut instance,
            "get",
            sync,
            config,
            |_, _, (key,): (String,)| Ok(Forward::new(|f: &ConfigFuncs| f.get, (key,))),
            |_, _, (), reply| (to_workload(reply),),
        )?;
        route(
            &mut instance,
            "get-all",
            sync,
            config,
            |_, _, (): ()| Ok(Forward::new(|f: &ConfigFuncs| f.get_all, ())),
            |_, _, (), reply| (to_workload(reply),),
        )
    })
}

/// The config forwarder of a workload's Store.
fn config(typed: &TypedForwarders) -> Option<&Arc<ConfigForwarder>> {
    typed.config.as_ref()
}

/// A plugin's answer (or its failure) in the workload's terms.
fn to_workload<T>(
    reply: Result<((Result<T, PluginError>,), u64), String>,
) -> Result<T, store::Error> {
    match reply {
        Ok(((Ok(value),), _)) => Ok(value),
        Ok(((Err(PluginError::Upstream(text)),), _)) => Err(store::Error::Upstream(text)),
        Ok(((Err(PluginError::Io(text)),), _)) => Err(store::Error::Io(text)),
        Err(failed) => Err(store::Error::Upstream(failed)),
    }
}
