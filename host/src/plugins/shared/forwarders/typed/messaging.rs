//! The typed forwarder of `wasmcloud:messaging/consumer@0.2.0` (with the
//! `types` interface it uses). A plugin that fails during a call answers
//! the interface's error string (it restarts on the next call).

use super::{CallParams, CallResults, Fallible, TypedPlugin, link_each};
use crate::plugins::shared::PluginView;
use crate::store::InvocationState;
use anyhow::Result;
use wasmtime::component::{HasData, Linker};

/// The workload's side: `wasmcloud:messaging` as the host serves it.
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasmcloud-messaging-0.2.0",
        inline: "
            package keel:typed-messaging-imports;
            world imports {
                import wasmcloud:messaging/consumer@0.2.0;
            }
        ",
        world: "keel:typed-messaging-imports/imports",
        imports: { default: async | trappable },
    });
}

/// The plugin's side: `wasmcloud:messaging` as a plugin exports it.
mod plugin_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasmcloud-messaging-0.2.0",
        inline: "
            package keel:typed-messaging;
            world plugin {
                export wasmcloud:messaging/consumer@0.2.0;
            }
        ",
        world: "keel:typed-messaging/plugin",
    });
}

use plugin_side::wasmcloud::messaging::types as plugin_types;
use workload_side::wasmcloud::messaging::{consumer, types};

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 2] = [
    "wasmcloud:messaging/consumer@0.2.0",
    "wasmcloud:messaging/types@0.2.0",
];

typed_exports! {
    /// Where a plugin's `wasmcloud:messaging/consumer` functions are.
    MessagingExports, MessagingFuncs, check: plugin_side::PluginIndices::new;
    request: INTERFACES[0], "request", (String, Vec<u8>, u32)
        -> (Result<plugin_types::BrokerMessage, String>);
    publish: INTERFACES[0], "publish", (plugin_types::BrokerMessage) -> (Result<(), String>);
}

/// Forwards a component's `wasmcloud:messaging` imports to one shared plugin.
pub type MessagingForwarder = TypedPlugin<MessagingExports>;

/// Links the interfaces of [`INTERFACES`] among `imports` (`types` holds
/// types only: an empty instance).
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String]) -> Result<()> {
    fn view(state: &mut InvocationState) -> MessagingView<'_> {
        MessagingView { state }
    }
    link_each(imports, |import| match import {
        i if i == INTERFACES[0] => consumer::add_to_linker::<_, Messaging>(linker, view),
        _ => linker.instance(import).map(|_| ()),
    })
}

/// Marks [`MessagingView`] as the data the generated host traits run on.
struct Messaging;

impl HasData for Messaging {
    type Data<'a> = MessagingView<'a>;
}

/// A workload's Store, seen by the `wasmcloud:messaging` host traits.
struct MessagingView<'a> {
    state: &'a mut InvocationState,
}

impl MessagingView<'_> {
    /// Calls the function `pick` chooses with `params`.
    async fn forward<P, T>(
        &mut self,
        pick: fn(&MessagingFuncs) -> Fallible<P, T, String>,
        params: P,
    ) -> wasmtime::Result<Result<T, String>>
    where
        P: CallParams,
        (Result<T, String>,): CallResults,
    {
        let Some(forwarder) = self.state.plugin_ref().typed.messaging.clone() else {
            return Ok(Err("no plugin serves wasmcloud:messaging here".into()));
        };
        let reply = forwarder
            .call(self.state.caller(), None, pick, params)
            .await;
        Ok(reply.and_then(|((answer,), _)| answer))
    }
}

impl types::Host for MessagingView<'_> {}

impl consumer::Host for MessagingView<'_> {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::BrokerMessage, String>> {
        let reply = self
            .forward(|f| f.request, (subject, body, timeout_ms))
            .await?;
        Ok(reply.map(|m| types::BrokerMessage {
            subject: m.subject,
            body: m.body,
            reply_to: m.reply_to,
        }))
    }

    async fn publish(
        &mut self,
        message: types::BrokerMessage,
    ) -> wasmtime::Result<Result<(), String>> {
        let message = plugin_types::BrokerMessage {
            subject: message.subject,
            body: message.body,
            reply_to: message.reply_to,
        };
        self.forward(|f| f.publish, (message,)).await
    }
}
