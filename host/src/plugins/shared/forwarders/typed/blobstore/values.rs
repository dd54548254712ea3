//! Values in transit: `outgoing-value` (written by the workload, then
//! finished into a container) and `incoming-value` (read out of one), whose
//! body streams move from the plugin's resource table into the workload's.

use super::{Answer, BlobstoreView, IncomingProxy, OutgoingProxy, held, take_out, types};
use crate::plugins::shared::PluginView;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

impl types::Host for BlobstoreView<'_> {}

impl types::HostOutgoingValue for BlobstoreView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingProxy>> {
        // `new-outgoing-value` has no error to answer with: a plugin that
        // cannot make one fails the workload's call.
        let (forwarder, caller) = match self.forwarder() {
            Ok(forwarder) => (forwarder.clone(), self.state.caller()),
            Err(e) => wasmtime::bail!("{e}"),
        };
        let reply = forwarder.call(caller, None, |f| f.new_outgoing, ()).await;
        let ((handle,), generation) = reply.map_err(|e| wasmtime::format_err!("{e}"))?;
        let slot = held(
            &mut self.state.plugin_state().proxies,
            forwarder.plugin(),
            generation,
            handle,
        );
        Ok(Resource::new_own(slot))
    }

    async fn outgoing_value_write_body(
        &mut self,
        this: Resource<OutgoingProxy>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let (handle, generation) = match self.lent(this.rep()) {
            Ok(found) => found,
            Err(_) => return Ok(Err(())),
        };
        let forwarder = match self.forwarder() {
            Ok(forwarder) => forwarder,
            Err(_) => return Ok(Err(())),
        };
        let reply = forwarder
            .call_then(
                self.state.caller(),
                Some(generation),
                |f| f.write_body,
                (handle,),
                |store, (stream,)| match stream {
                    Ok(stream) => take_out(store, stream),
                    Err(()) => Err("the plugin has no body stream to give".into()),
                },
            )
            .await
            .and_then(|(stream, generation)| Ok((stream?, generation)));
        match reply {
            Ok((stream, _)) => Ok(Ok(self.state.table_mut().push(stream)?)),
            // The interface has no error to say why; the workload sees
            // `err`, the host's log the reason.
            Err(e) => {
                tracing::warn!(error = e, "a blobstore plugin gave no body stream");
                Ok(Err(()))
            }
        }
    }

    async fn finish(&mut self, this: Resource<OutgoingProxy>) -> Answer<()> {
        self.consume(this.rep(), |f| f.finish).await
    }

    async fn drop(&mut self, this: Resource<OutgoingProxy>) -> wasmtime::Result<()> {
        self.release(this.rep()).await;
        Ok(())
    }
}

impl types::HostIncomingValue for BlobstoreView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        this: Resource<IncomingProxy>,
    ) -> Answer<Vec<u8>> {
        self.consume(this.rep(), |f| f.consume_sync).await
    }

    async fn incoming_value_consume_async(
        &mut self,
        this: Resource<IncomingProxy>,
    ) -> Answer<Resource<DynInputStream>> {
        let (handle, generation) = match self.moved(this.rep()) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let reply = self
            .forward(Some(generation), |f| f.consume_async, (handle,), take_out)
            .await;
        Ok(match reply {
            Ok((stream, _)) => Ok(self.state.table_mut().push(stream)?),
            Err(e) => Err(e),
        })
    }

    async fn size(&mut self, this: Resource<IncomingProxy>) -> wasmtime::Result<u64> {
        // `size` has no error to answer with: a stale handle or a failing
        // plugin fails the workload's call.
        let (handle, generation) = self.lent(this.rep()).map_err(wasmtime::Error::msg)?;
        let forwarder = self.forwarder().map_err(wasmtime::Error::msg)?.clone();
        let reply = forwarder
            .call(self.state.caller(), Some(generation), |f| f.size, (handle,))
            .await;
        let ((size,), _) = reply.map_err(wasmtime::Error::msg)?;
        Ok(size)
    }

    async fn drop(&mut self, this: Resource<IncomingProxy>) -> wasmtime::Result<()> {
        self.release(this.rep()).await;
        Ok(())
    }
}
