//! What a Store keeps for the shared plugins it calls: the plugin handles
//! its instance holds ([`ProxyTable`]) and the typed forwarders of its
//! component ([`TypedForwarders`]). It lives in the Store's extension slot
//! (see [`InvocationState::extension_mut`]), so the Store layer need not
//! know the plugins above it.

use super::forwarders::proxy::ProxyTable;
use super::forwarders::typed::TypedForwarders;
use crate::store::{Caller, InvocationState};

/// The shared-plugin bookkeeping of one Store.
pub struct PluginState {
    /// Shared-plugin resources this instance holds.
    pub proxies: ProxyTable,
    /// The typed forwarders of the component's shared plugins.
    pub typed: TypedForwarders,
}

impl PluginState {
    /// No handles held, no forwarders.
    const EMPTY: PluginState = PluginState {
        proxies: ProxyTable::new(),
        typed: TypedForwarders::NONE,
    };
}

impl Default for PluginState {
    fn default() -> Self {
        PluginState::EMPTY
    }
}

/// What a Store that has not used shared plugins reads: nothing held.
static NOTHING_HELD: PluginState = PluginState::EMPTY;

/// Store data that keeps [`PluginState`].
pub trait PluginView {
    /// The Store's shared-plugin bookkeeping, made on first use.
    fn plugin_state(&mut self) -> &mut PluginState;

    /// The Store's shared-plugin bookkeeping, to read (empty if never made).
    fn plugin_ref(&self) -> &PluginState;

    /// The bookkeeping, and the Store's invocation as a caller, at once.
    fn plugin_and_caller(&mut self) -> (&mut PluginState, Caller<'_>);
}

impl PluginView for InvocationState {
    fn plugin_state(&mut self) -> &mut PluginState {
        self.extension_mut::<PluginState>()
    }

    fn plugin_ref(&self) -> &PluginState {
        self.extension_ref::<PluginState>().unwrap_or(&NOTHING_HELD)
    }

    fn plugin_and_caller(&mut self) -> (&mut PluginState, Caller<'_>) {
        self.extension_and_caller::<PluginState>()
    }
}
