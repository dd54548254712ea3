//! Which plugins serve a plugin's own imports: a plugin that imports an
//! interface another plugin exports is a *layer* over it (an audit, a
//! cache, a quota over a key-value backend).

use std::collections::BTreeMap;

/// What a layer wraps: the manifest's `wraps = "keyvalue-nats"` (every
/// import of the layer that plugin exports goes to it) or the table
/// `[plugin.wraps]` of interface → plugin (`"wasi:keyvalue/store" =
/// "keyvalue-memory"`, unversioned or a full versioned name). Imports
/// neither names are resolved like a workload's, the layer itself left
/// out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wraps {
    /// The plugin every import it exports goes to.
    pub plugin: Option<String>,
    /// Interface → the plugin that serves the layer's import of it.
    pub interfaces: BTreeMap<String, String>,
}

impl Wraps {
    /// Whether the plugin wraps nothing (it is no layer, or its imports
    /// are resolved like a workload's).
    pub fn is_empty(&self) -> bool {
        self.plugin.is_none() && self.interfaces.is_empty()
    }

    /// Every plugin named.
    pub fn named(&self) -> impl Iterator<Item = &str> {
        self.plugin
            .iter()
            .chain(self.interfaces.values())
            .map(String::as_str)
    }
}
