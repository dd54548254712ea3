//! Messaging handlers: the component of a workload that exports
//! `wasmcloud:messaging/handler` receives the messages of the workload's
//! subscriptions, each in a fresh instance, under the same limits (instance
//! slots, deadline, memory) as an HTTP request.

use super::Workload;
use super::invocation::InvocationTemplate;
use crate::core_api::broker::BrokerSubscription;
use crate::core_api::bus::Message;
use crate::core_api::messaging::{unscoped, within};
use crate::engine::KeelEngine;
use crate::policy::names::is_interface;
use crate::spec::SubjectScope;
use crate::store::InvocationState;
use anyhow::{Context, Result};
use std::sync::Arc;
use wasmtime::component::{Component, ComponentExportIndex, ComponentType, InstancePre, Lower};

/// The interface a component exports to receive messages.
pub const MESSAGE_HANDLER: &str = "wasmcloud:messaging/handler";

/// `wasmcloud:messaging/types.broker-message`, as the handler receives it.
#[derive(ComponentType, Lower)]
#[component(record)]
struct BrokerMessage {
    subject: String,
    body: Vec<u8>,
    #[component(name = "reply-to")]
    reply_to: Option<String>,
}

/// A component that handles messages.
pub struct HandlerComponent {
    pre: InstancePre<InvocationState>,
    template: InvocationTemplate,
    function: ComponentExportIndex,
}

impl HandlerComponent {
    /// The handler of `component`, if it exports `wasmcloud:messaging/handler`.
    pub fn find(
        component: &Component,
        engine: &wasmtime::Engine,
        pre: &InstancePre<InvocationState>,
        template: impl FnOnce() -> Result<InvocationTemplate>,
    ) -> Result<Option<HandlerComponent>> {
        let Some(interface) = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .find(|name| is_interface(name, MESSAGE_HANDLER))
        else {
            return Ok(None);
        };
        let function = component
            .get_export_index(None, &interface)
            .and_then(|i| component.get_export_index(Some(&i), "handle-message"))
            .with_context(|| format!("`{interface}` has no `handle-message`"))?;
        Ok(Some(HandlerComponent {
            pre: pre.clone(),
            template: template()?,
            function,
        }))
    }
}

/// Delivers the messages of `subscription` to the workload's handler until
/// the subscription is dropped (when the workload stops). Each message runs
/// in its own task, holding an instance slot.
pub async fn deliver(
    workload: Arc<Workload>,
    mut subscription: BrokerSubscription,
    engine: Arc<KeelEngine>,
    scope: SubjectScope,
) {
    while let Some(message) = subscription.next().await {
        let permit = match workload.admit().await {
            Ok(permit) => permit,
            Err(e) => {
                tracing::warn!(workload = %workload.id(), subject = message.subject, "message dropped: {e}");
                continue;
            }
        };
        let workload = workload.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(handler) = workload.handler() {
                handle(handler, &workload, &engine, scope, message).await;
            }
        });
    }
}

async fn handle(
    handler: &HandlerComponent,
    workload: &Workload,
    engine: &KeelEngine,
    scope: SubjectScope,
    message: Message,
) {
    let namespace = &workload.id().namespace;
    let subject = unscoped(scope, namespace, &message.subject);
    // The handler answers by publishing to `reply_to`, which is scoped into
    // its namespace like every subject it names: it receives the reply
    // subject without the scope, and one outside its namespace (published
    // by a client outside keel) not at all, since it could not answer there.
    let reply_to = message.reply_to.and_then(|reply| {
        let inside = within(scope, namespace, &reply);
        if inside.is_none() {
            tracing::debug!(workload = %workload.id(), subject, reply, "reply subject outside the namespace withheld from the handler");
        }
        inside
    });
    let outcome = async {
        let mut store = handler.template.new_store(engine)?;
        let deadline = tokio::time::Instant::now() + handler.template.timeout();
        let in_flight = store.data().in_flight().clone();
        let call = async {
            let instance = handler.pre.instantiate_async(&mut store).await?;
            let func = instance.get_typed_func::<(BrokerMessage,), (Result<(), String>,)>(
                &mut store,
                handler.function,
            )?;
            let argument = BrokerMessage {
                subject: subject.clone(),
                body: message.body,
                reply_to,
            };
            let (result,) = func.call_async(&mut store, (argument,)).await?;
            wasmtime::Result::<Result<(), String>>::Ok(result)
        };
        // As for an HTTP request: a plugin call under way finishes first.
        match in_flight.until(deadline, call).await {
            Ok(result) => result.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!(
                "the handler ran past its {:?} deadline",
                handler.template.timeout()
            )),
        }
    }
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(workload = %workload.id(), subject, error, "message handler failed")
        }
        Err(e) => {
            // A composed plugin the trap came from, named in the record.
            let plugin = crate::trap::plugin_of_anyhow(&e);
            tracing::warn!(workload = %workload.id(), subject, plugin, error = crate::trap::summary_anyhow(&e), "message handler trapped");
            tracing::debug!(workload = %workload.id(), subject, error = format!("{e:?}"), "the whole error");
        }
    }
}
