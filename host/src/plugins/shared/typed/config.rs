//! The typed forwarder of `wasi:config/store@0.2.0-rc.1`. A plugin that
//! fails during a call answers `error::upstream` (it restarts on the next
//! call).

use super::super::InPlugin;
use super::{TypedPlugin, link_each};
use crate::workload::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::Store;
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
        exports: { default: async },
    });
}

use plugin_side::exports::wasi::config::store as plugin_store;
use workload_side::wasi::config::store;

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 1] = ["wasi:config/store@0.2.0-rc.1"];

/// Forwards a component's `wasi:config` import to one shared plugin.
pub type ConfigForwarder = TypedPlugin<plugin_side::PluginIndices>;

plugin_exports!(plugin_side);

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
    async fn forward<T: Send + 'static>(
        &mut self,
        work: impl for<'a> FnOnce(
            &'a mut Store<InvocationState>,
            Arc<plugin_side::Plugin>,
        ) -> InPlugin<'a, Result<T, plugin_store::Error>>
        + Send
        + 'static,
    ) -> wasmtime::Result<Result<T, store::Error>> {
        let Some(forwarder) = self.state.typed.config.clone() else {
            return Ok(Err(store::Error::Upstream(
                "no plugin serves wasi:config here".into(),
            )));
        };
        Ok(
            match forwarder.call(self.state.identity(), None, work).await {
                Ok((answer, _)) => answer.map_err(|error| match error {
                    plugin_store::Error::Upstream(text) => store::Error::Upstream(text),
                    plugin_store::Error::Io(text) => store::Error::Io(text),
                }),
                Err(failed) => Err(store::Error::Upstream(failed)),
            },
        )
    }
}

impl store::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        self.forward(move |store, plugin| {
            Box::pin(async move { plugin.wasi_config_store().call_get(store, &key).await })
        })
        .await
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        self.forward(move |store, plugin| {
            Box::pin(async move { plugin.wasi_config_store().call_get_all(store).await })
        })
        .await
    }
}
