//! How `keel:core` reaches a Store's data: any Store data that implements
//! [`CoreView`] gets the whole `keel:core` world with [`add_to_linker`], the
//! way `wasmtime-wasi` serves any data that implements `WasiView`. So this
//! layer never names the Store type built above it ([`crate::store`]).

use super::bindings::keel::core::{identity, messaging, nats, pipe};
use super::broker::Broker;
use super::identity::WorkloadIdentity;
use crate::budget::StoreMemory;
use crate::policy::grants::SubjectGrants;
use anyhow::{Context, Result};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// The `keel:core` state of one Store.
pub struct CoreCtx {
    /// Whom the guest acts for: its workload, or for a shared plugin the
    /// workload whose call it serves (set per call).
    pub identity: Arc<WorkloadIdentity>,
    /// Where `keel:core/messaging` goes.
    pub broker: Broker,
    /// The subjects `keel:core/nats` lets the guest use.
    pub subjects: Arc<SubjectGrants>,
    /// The memory host pipes are paid from (the Store's own budget).
    pub memory: Arc<StoreMemory>,
}

/// A Store's `keel:core` state with the resource table it shares with WASI.
pub struct CoreCtxView<'a> {
    /// The `keel:core` state.
    pub ctx: &'a mut CoreCtx,
    /// The Store's resource table.
    pub table: &'a mut ResourceTable,
}

impl CoreCtxView<'_> {
    /// Whom the guest acts for.
    pub fn identity(&self) -> &Arc<WorkloadIdentity> {
        &self.ctx.identity
    }

    /// The host's message broker.
    pub fn broker(&self) -> &Broker {
        &self.ctx.broker
    }

    /// The NATS subjects granted.
    pub fn subjects(&self) -> &SubjectGrants {
        &self.ctx.subjects
    }

    /// The memory host pipes are paid from.
    pub fn store_memory(&self) -> &Arc<StoreMemory> {
        &self.ctx.memory
    }

    /// The Store's resource table.
    pub fn table_mut(&mut self) -> &mut ResourceTable {
        self.table
    }
}

/// Store data that can serve `keel:core`.
pub trait CoreView: Send {
    /// The Store's `keel:core` state and resource table.
    fn core(&mut self) -> CoreCtxView<'_>;
}

/// The [`HasData`] marker whose data is a [`CoreCtxView`].
struct HasCore;

impl HasData for HasCore {
    type Data<'a> = CoreCtxView<'a>;
}

/// Adds every `keel:core` interface to `linker`.
pub fn add_to_linker<T: CoreView + 'static>(linker: &mut Linker<T>) -> Result<()> {
    add_identity_to_linker(linker)?;
    messaging::add_to_linker::<T, HasCore>(linker, T::core)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/messaging")?;
    nats::add_to_linker::<T, HasCore>(linker, T::core)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/nats")?;
    pipe::add_to_linker::<T, HasCore>(linker, T::core)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/pipe")?;
    Ok(())
}

/// Adds only `keel:core/identity` to `linker`: all a plugin in a
/// synchronous Store may import, since the rest of `keel:core` waits.
pub fn add_identity_to_linker<T: CoreView + 'static>(linker: &mut Linker<T>) -> Result<()> {
    identity::add_to_linker::<T, HasCore>(linker, T::core)
        .map_err(anyhow::Error::from)
        .context("linking keel:core/identity")
}
