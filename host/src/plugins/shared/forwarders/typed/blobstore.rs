//! The typed forwarder of `wasi:blobstore@0.2.0-draft` (`blobstore`,
//! `container`, `types`).
//!
//! The plugin's four resources (container, stream-object-names,
//! outgoing-value, incoming-value) reach the workload as host resources
//! whose representation is a slot of the invocation's
//! [`ProxyTable`](crate::plugins::shared::forwarders::proxy::ProxyTable), as with
//! [`keyvalue`](super::keyvalue). A value's body stream is a host object
//! (a pipe, for the built-in plugins): it moves out of the plugin's
//! resource table into the workload's while the call still holds the
//! plugin's Store. A plugin that fails during a call answers the error
//! string (it restarts on the next call).

use super::{CallParams, CallResults, Fallible, TypedPlugin, held, lent, link_each, moved};
use crate::plugins::shared::PluginView;
use crate::store::InvocationState;
use anyhow::Result;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{HasData, Linker, Resource, ResourceAny};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

/// The workload's side: `wasi:blobstore` as the host serves it.
mod workload_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-blobstore-0.2.0-draft",
        world: "wasi:blobstore/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": super::ContainerProxy,
            "wasi:blobstore/container.stream-object-names": super::NamesProxy,
            "wasi:blobstore/types.outgoing-value": super::OutgoingProxy,
            "wasi:blobstore/types.incoming-value": super::IncomingProxy,
        },
    });
}

/// The plugin's side: `wasi:blobstore` as a plugin exports it.
mod plugin_side {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-blobstore-0.2.0-draft",
        inline: "
            package keel:typed-blobstore;
            world plugin {
                export wasi:blobstore/blobstore@0.2.0-draft;
                export wasi:blobstore/container@0.2.0-draft;
                export wasi:blobstore/types@0.2.0-draft;
            }
        ",
        world: "keel:typed-blobstore/plugin",
        // Generates no host code of its own for `wasi:io`, whose resources
        // the exports use; `async` matches the bindings it points to.
        imports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

use plugin_side::exports::wasi::blobstore::types::{
    ContainerMetadata as PluginContainerMetadata, ObjectId as PluginObjectId,
    ObjectMetadata as PluginObjectMetadata,
};
use workload_side::wasi::blobstore::{blobstore, container, types};

mod values;

/// The interfaces this forwarder serves, as the workload imports them.
pub const INTERFACES: [&str; 3] = [
    "wasi:blobstore/blobstore@0.2.0-draft",
    "wasi:blobstore/container@0.2.0-draft",
    "wasi:blobstore/types@0.2.0-draft",
];

const BLOBSTORE: &str = INTERFACES[0];
const CONTAINER: &str = INTERFACES[1];
const TYPES: &str = INTERFACES[2];

/// A container of a shared plugin, as the workload holds it.
pub struct ContainerProxy;
/// A listing of a container's objects, as the workload holds it.
pub struct NamesProxy;
/// A value being written, as the workload holds it.
pub struct OutgoingProxy;
/// A value being read, as the workload holds it.
pub struct IncomingProxy;

typed_exports! {
    /// Where a plugin's `wasi:blobstore` functions are.
    BlobstoreExports, BlobstoreFuncs, check: plugin_side::PluginIndices::new;
    create_container: BLOBSTORE, "create-container", (String) -> (Result<ResourceAny, String>);
    get_container: BLOBSTORE, "get-container", (String) -> (Result<ResourceAny, String>);
    delete_container: BLOBSTORE, "delete-container", (String) -> (Result<(), String>);
    container_exists: BLOBSTORE, "container-exists", (String) -> (Result<bool, String>);
    copy_object: BLOBSTORE, "copy-object", (PluginObjectId, PluginObjectId)
        -> (Result<(), String>);
    move_object: BLOBSTORE, "move-object", (PluginObjectId, PluginObjectId)
        -> (Result<(), String>);
    name: CONTAINER, "[method]container.name", (ResourceAny) -> (Result<String, String>);
    info: CONTAINER, "[method]container.info", (ResourceAny)
        -> (Result<PluginContainerMetadata, String>);
    get_data: CONTAINER, "[method]container.get-data", (ResourceAny, String, u64, u64)
        -> (Result<ResourceAny, String>);
    write_data: CONTAINER, "[method]container.write-data", (ResourceAny, String, ResourceAny)
        -> (Result<(), String>);
    list_objects: CONTAINER, "[method]container.list-objects", (ResourceAny)
        -> (Result<ResourceAny, String>);
    delete_object: CONTAINER, "[method]container.delete-object", (ResourceAny, String)
        -> (Result<(), String>);
    delete_objects: CONTAINER, "[method]container.delete-objects", (ResourceAny, Vec<String>)
        -> (Result<(), String>);
    has_object: CONTAINER, "[method]container.has-object", (ResourceAny, String)
        -> (Result<bool, String>);
    object_info: CONTAINER, "[method]container.object-info", (ResourceAny, String)
        -> (Result<PluginObjectMetadata, String>);
    clear: CONTAINER, "[method]container.clear", (ResourceAny) -> (Result<(), String>);
    read_names: CONTAINER, "[method]stream-object-names.read-stream-object-names",
        (ResourceAny, u64) -> (Result<(Vec<String>, bool), String>);
    skip_names: CONTAINER, "[method]stream-object-names.skip-stream-object-names",
        (ResourceAny, u64) -> (Result<(u64, bool), String>);
    new_outgoing: TYPES, "[static]outgoing-value.new-outgoing-value", () -> (ResourceAny);
    write_body: TYPES, "[method]outgoing-value.outgoing-value-write-body", (ResourceAny)
        -> (Result<Resource<DynOutputStream>, ()>);
    finish: TYPES, "[static]outgoing-value.finish", (ResourceAny) -> (Result<(), String>);
    consume_sync: TYPES, "[static]incoming-value.incoming-value-consume-sync", (ResourceAny)
        -> (Result<Vec<u8>, String>);
    consume_async: TYPES, "[static]incoming-value.incoming-value-consume-async", (ResourceAny)
        -> (Result<Resource<DynInputStream>, String>);
    size: TYPES, "[method]incoming-value.size", (ResourceAny) -> (u64);
}

/// Forwards a component's `wasi:blobstore` imports to one shared plugin.
pub type BlobstoreForwarder = TypedPlugin<BlobstoreExports>;

/// Links the interfaces of [`INTERFACES`] among `imports`.
pub fn link(linker: &mut Linker<InvocationState>, imports: &[String]) -> Result<()> {
    fn view(state: &mut InvocationState) -> BlobstoreView<'_> {
        BlobstoreView { state }
    }
    link_each(imports, |import| match import {
        i if i == BLOBSTORE => blobstore::add_to_linker::<_, Blobstore>(linker, view),
        i if i == CONTAINER => container::add_to_linker::<_, Blobstore>(linker, view),
        i if i == TYPES => types::add_to_linker::<_, Blobstore>(linker, view),
        _ => Ok(()),
    })
}

/// Marks [`BlobstoreView`] as the data the generated host traits run on.
struct Blobstore;

impl HasData for Blobstore {
    type Data<'a> = BlobstoreView<'a>;
}

/// A workload's Store, seen by the `wasi:blobstore` host traits.
struct BlobstoreView<'a> {
    state: &'a mut InvocationState,
}

/// What the workload gets: a value, or the interface's error string.
type Answer<T> = wasmtime::Result<Result<T, String>>;

impl BlobstoreView<'_> {
    fn forwarder(&self) -> Result<&Arc<BlobstoreForwarder>, String> {
        self.state
            .plugin_ref()
            .typed
            .blobstore
            .as_ref()
            .ok_or_else(|| "no plugin serves wasi:blobstore here".to_string())
    }

    /// Calls the function `pick` chooses with `params`, then makes the
    /// answer with `then` while the plugin's Store is at hand.
    async fn forward<P, T, U>(
        &mut self,
        generation: Option<u64>,
        pick: fn(&BlobstoreFuncs) -> Fallible<P, T, String>,
        params: P,
        then: impl FnOnce(&mut Store<InvocationState>, T) -> Result<U, String> + Send,
    ) -> Result<(U, u64), String>
    where
        P: CallParams,
        (Result<T, String>,): CallResults,
    {
        let forwarder = self.forwarder()?;
        let reply = forwarder
            .call_then(
                self.state.caller(),
                generation,
                pick,
                params,
                |store, (answer,)| answer.and_then(|value| then(store, value)),
            )
            .await;
        let (answer, generation) = reply?;
        Ok((answer?, generation))
    }

    /// [`forward`](Self::forward) of a call whose answer needs no Store.
    async fn plain<P, T>(
        &mut self,
        generation: Option<u64>,
        pick: fn(&BlobstoreFuncs) -> Fallible<P, T, String>,
        params: P,
    ) -> Answer<T>
    where
        P: CallParams,
        (Result<T, String>,): CallResults,
        T: Send,
    {
        let reply = self.forward(generation, pick, params, |_, value| Ok(value));
        Ok(reply.await.map(|(value, _)| value))
    }

    /// [`plain`](Self::plain) on the plugin resource behind the
    /// workload's proxy `rep`, with the parameters `params` makes of its
    /// handle.
    async fn on<P, T>(
        &mut self,
        rep: u32,
        pick: fn(&BlobstoreFuncs) -> Fallible<P, T, String>,
        params: impl FnOnce(ResourceAny) -> P,
    ) -> Answer<T>
    where
        P: CallParams,
        (Result<T, String>,): CallResults,
        T: Send,
    {
        match self.lent(rep) {
            Ok((handle, generation)) => self.plain(Some(generation), pick, params(handle)).await,
            Err(e) => Ok(Err(e)),
        }
    }

    /// [`plain`](Self::plain) of a function whose one parameter is the
    /// plugin resource behind the workload's proxy `rep`, which moves into
    /// the call (the function consumes it).
    async fn consume<T>(
        &mut self,
        rep: u32,
        pick: fn(&BlobstoreFuncs) -> Fallible<(ResourceAny,), T, String>,
    ) -> Answer<T>
    where
        (Result<T, String>,): CallResults,
        T: Send,
    {
        match self.moved(rep) {
            Ok((handle, generation)) => self.plain(Some(generation), pick, (handle,)).await,
            Err(e) => Ok(Err(e)),
        }
    }

    /// A call whose answer is a new plugin resource: the workload gets a
    /// proxy of it.
    async fn resource<P>(
        &mut self,
        generation: Option<u64>,
        pick: fn(&BlobstoreFuncs) -> Fallible<P, ResourceAny, String>,
        params: P,
    ) -> wasmtime::Result<Result<u32, String>>
    where
        P: CallParams,
    {
        let reply = self.forward(generation, pick, params, |_, handle| Ok(handle));
        let (handle, generation) = match reply.await {
            Ok(made) => made,
            Err(e) => return Ok(Err(e)),
        };
        let plugin = self.forwarder().map(|f| f.plugin().clone());
        Ok(plugin.map(|plugin| {
            held(
                &mut self.state.plugin_state().proxies,
                &plugin,
                generation,
                handle,
            )
        }))
    }

    /// [`resource`](Self::resource) on the plugin resource behind the
    /// workload's proxy `rep`.
    async fn resource_on<P: CallParams>(
        &mut self,
        rep: u32,
        pick: fn(&BlobstoreFuncs) -> Fallible<P, ResourceAny, String>,
        params: impl FnOnce(ResourceAny) -> P,
    ) -> wasmtime::Result<Result<u32, String>> {
        match self.lent(rep) {
            Ok((handle, generation)) => self.resource(Some(generation), pick, params(handle)).await,
            Err(e) => Ok(Err(e)),
        }
    }

    /// The plugin's handle behind the workload's proxy `rep`, lent.
    fn lent(&self, rep: u32) -> Result<(ResourceAny, u64), String> {
        lent(
            &self.state.plugin_ref().proxies,
            self.forwarder()?.plugin(),
            rep,
        )
    }

    /// The plugin's handle behind the workload's proxy `rep`, moved out.
    fn moved(&mut self, rep: u32) -> Result<(ResourceAny, u64), String> {
        let plugin = self.forwarder()?.plugin().clone();
        moved(&mut self.state.plugin_state().proxies, &plugin, rep)
    }

    /// Releases the plugin's handle behind the proxy `rep`, the workload
    /// having dropped it.
    async fn release(&mut self, rep: u32) {
        if let Some(proxy) = self.state.plugin_state().proxies.take(rep) {
            proxy.release().await;
        }
    }
}

/// Takes the host object behind `resource` out of `store`'s table.
fn take_out<T: 'static>(
    store: &mut Store<InvocationState>,
    resource: Resource<T>,
) -> Result<T, String> {
    store
        .data_mut()
        .table_mut()
        .delete(resource)
        .map_err(|e| format!("taking a stream from the plugin: {e}"))
}

fn to_plugin_id(id: types::ObjectId) -> PluginObjectId {
    PluginObjectId {
        container: id.container,
        object: id.object,
    }
}

impl blobstore::Host for BlobstoreView<'_> {
    async fn create_container(&mut self, name: String) -> Answer<Resource<ContainerProxy>> {
        let slot = self.resource(None, |f| f.create_container, (name,)).await?;
        Ok(slot.map(Resource::new_own))
    }

    async fn get_container(&mut self, name: String) -> Answer<Resource<ContainerProxy>> {
        let slot = self.resource(None, |f| f.get_container, (name,)).await?;
        Ok(slot.map(Resource::new_own))
    }

    async fn delete_container(&mut self, name: String) -> Answer<()> {
        self.plain(None, |f| f.delete_container, (name,)).await
    }

    async fn container_exists(&mut self, name: String) -> Answer<bool> {
        self.plain(None, |f| f.container_exists, (name,)).await
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let ids = (to_plugin_id(src), to_plugin_id(dest));
        self.plain(None, |f| f.copy_object, ids).await
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        let ids = (to_plugin_id(src), to_plugin_id(dest));
        self.plain(None, |f| f.move_object, ids).await
    }
}

impl container::Host for BlobstoreView<'_> {}

impl container::HostContainer for BlobstoreView<'_> {
    async fn name(&mut self, this: Resource<ContainerProxy>) -> Answer<String> {
        self.on(this.rep(), |f| f.name, |h| (h,)).await
    }

    async fn info(&mut self, this: Resource<ContainerProxy>) -> Answer<types::ContainerMetadata> {
        let info = self.on(this.rep(), |f| f.info, |h| (h,)).await?;
        Ok(info.map(|m| types::ContainerMetadata {
            name: m.name,
            created_at: m.created_at,
        }))
    }

    async fn get_data(
        &mut self,
        this: Resource<ContainerProxy>,
        name: String,
        start: u64,
        end: u64,
    ) -> Answer<Resource<IncomingProxy>> {
        let params = |h| (h, name, start, end);
        let slot = self.resource_on(this.rep(), |f| f.get_data, params).await?;
        Ok(slot.map(Resource::new_own))
    }

    async fn write_data(
        &mut self,
        this: Resource<ContainerProxy>,
        name: String,
        data: Resource<OutgoingProxy>,
    ) -> Answer<()> {
        let lent = self
            .lent(this.rep())
            .and_then(|container| Ok((container, self.lent(data.rep())?)));
        let ((container, generation), (value, value_generation)) = match lent {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        if value_generation != generation {
            return Ok(Err(
                "the value and the container come from different instances of the plugin".into(),
            ));
        }
        let params = (container, name, value);
        self.plain(Some(generation), |f| f.write_data, params).await
    }

    async fn list_objects(
        &mut self,
        this: Resource<ContainerProxy>,
    ) -> Answer<Resource<NamesProxy>> {
        let slot = self
            .resource_on(this.rep(), |f| f.list_objects, |h| (h,))
            .await?;
        Ok(slot.map(Resource::new_own))
    }

    async fn delete_object(&mut self, this: Resource<ContainerProxy>, name: String) -> Answer<()> {
        self.on(this.rep(), |f| f.delete_object, |h| (h, name))
            .await
    }

    async fn delete_objects(
        &mut self,
        this: Resource<ContainerProxy>,
        names: Vec<String>,
    ) -> Answer<()> {
        self.on(this.rep(), |f| f.delete_objects, |h| (h, names))
            .await
    }

    async fn has_object(&mut self, this: Resource<ContainerProxy>, name: String) -> Answer<bool> {
        self.on(this.rep(), |f| f.has_object, |h| (h, name)).await
    }

    async fn object_info(
        &mut self,
        this: Resource<ContainerProxy>,
        name: String,
    ) -> Answer<types::ObjectMetadata> {
        let info = self
            .on(this.rep(), |f| f.object_info, |h| (h, name))
            .await?;
        Ok(info.map(|m| types::ObjectMetadata {
            name: m.name,
            container: m.container,
            created_at: m.created_at,
            size: m.size,
        }))
    }

    async fn clear(&mut self, this: Resource<ContainerProxy>) -> Answer<()> {
        self.on(this.rep(), |f| f.clear, |h| (h,)).await
    }

    async fn drop(&mut self, this: Resource<ContainerProxy>) -> wasmtime::Result<()> {
        self.release(this.rep()).await;
        Ok(())
    }
}

impl container::HostStreamObjectNames for BlobstoreView<'_> {
    async fn read_stream_object_names(
        &mut self,
        this: Resource<NamesProxy>,
        len: u64,
    ) -> Answer<(Vec<String>, bool)> {
        self.on(this.rep(), |f| f.read_names, |h| (h, len)).await
    }

    async fn skip_stream_object_names(
        &mut self,
        this: Resource<NamesProxy>,
        num: u64,
    ) -> Answer<(u64, bool)> {
        self.on(this.rep(), |f| f.skip_names, |h| (h, num)).await
    }

    async fn drop(&mut self, this: Resource<NamesProxy>) -> wasmtime::Result<()> {
        self.release(this.rep()).await;
        Ok(())
    }
}
