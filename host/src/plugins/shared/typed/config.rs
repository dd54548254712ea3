//! The typed forwarder of `wasi:config/store@0.2.0-rc.1`. A plugin that
//! fails during a call answers `error::upstream` (it restarts on the next
//! call).

use super::{CallParams, CallResults, Fallible, TypedPlugin, link_each};
use crate::workload::InvocationState;
use anyhow::Result;
use wasmtime::component::{HasData, Linker};

/// The workload's side: `wasi:config` as the host serves it.
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-config-0.2.0-rc.1",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
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

/// Links the interfaces of [`INTERFACES`] among `imports`.
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String]) -> Result<()> {
    fn view(state: &mut InvocationState) -> ConfigView<'_> {
        ConfigView { state }
    }
    link_each(imports, |_| store::add_to_linker::<_, Config>(linker, view))
}

/// Marks [`ConfigView`] as the data the generated host traits run on.
struct Config;

impl HasData for Config {
    type Data<'a> = ConfigView<'a>;
}

/// A workload's Store, seen by the `wasi:config` host traits.
struct ConfigView<'a> {
    state: &'a mut InvocationState,
}

impl ConfigView<'_> {
    /// Calls the function `pick` chooses with `params`.
    async fn forward<P, T>(
        &mut self,
        pick: fn(&ConfigFuncs) -> Fallible<P, T, PluginError>,
        params: P,
    ) -> wasmtime::Result<Result<T, store::Error>>
    where
        P: CallParams,
        (Result<T, PluginError>,): CallResults,
    {
        let Some(forwarder) = self.state.typed.config.clone() else {
            return Ok(Err(store::Error::Upstream(
                "no plugin serves wasi:config here".into(),
            )));
        };
        let reply = forwarder
            .call(self.state.caller(), None, pick, params)
            .await;
        Ok(match reply {
            Ok(((answer,), _)) => answer.map_err(|error| match error {
                PluginError::Upstream(text) => store::Error::Upstream(text),
                PluginError::Io(text) => store::Error::Io(text),
            }),
            Err(failed) => Err(store::Error::Upstream(failed)),
        })
    }
}

impl store::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        self.forward(|f| f.get, (key,)).await
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        self.forward(|f| f.get_all, ()).await
    }
}
