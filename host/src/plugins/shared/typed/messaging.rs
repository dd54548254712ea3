//! The typed forwarder of `wasmcloud:messaging/consumer@0.2.0` (with the
//! `types` interface it uses). A plugin that fails during a call answers
//! the interface's error string (it restarts on the next call).

use super::super::InPlugin;
use super::{TypedPlugin, link_each};
use crate::workload::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::Store;
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
        exports: { default: async },
    });
}

use plugin_side::wasmcloud::messaging::types as plugin_types;
use workload_side::wasmcloud::messaging::{consumer, types};

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 2] = [
    "wasmcloud:messaging/consumer@0.2.0",
    "wasmcloud:messaging/types@0.2.0",
];

/// Forwards a component's `wasmcloud:messaging` imports to one shared plugin.
pub type MessagingForwarder = TypedPlugin<plugin_side::PluginIndices>;

plugin_exports!(plugin_side);

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
    async fn forward<T: Send + 'static>(
        &mut self,
        work: impl for<'a> FnOnce(
            &'a mut Store<InvocationState>,
            Arc<plugin_side::Plugin>,
        ) -> InPlugin<'a, Result<T, String>>
        + Send
        + 'static,
    ) -> wasmtime::Result<Result<T, String>> {
        let Some(forwarder) = self.state.typed.messaging.clone() else {
            return Ok(Err("no plugin serves wasmcloud:messaging here".into()));
        };
        Ok(
            match forwarder.call(self.state.identity(), None, work).await {
                Ok((answer, _)) => answer,
                Err(failed) => Err(failed),
            },
        )
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
        self.forward(move |store, plugin| {
            Box::pin(async move {
                let reply = plugin
                    .wasmcloud_messaging_consumer()
                    .call_request(store, &subject, &body, timeout_ms)
                    .await?;
                Ok(reply.map(|m| types::BrokerMessage {
                    subject: m.subject,
                    body: m.body,
                    reply_to: m.reply_to,
                }))
            })
        })
        .await
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
        self.forward(move |store, plugin| {
            Box::pin(async move {
                plugin
                    .wasmcloud_messaging_consumer()
                    .call_publish(store, &message)
                    .await
            })
        })
        .await
    }
}
