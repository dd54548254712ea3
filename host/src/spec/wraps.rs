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
///
/// ```
/// use keel::spec::Wraps;
/// let all = Wraps::plugin("keyvalue-nats");
/// let each = Wraps::default().with_interface("wasi:keyvalue/store", "keyvalue-memory");
/// assert_eq!(all.named().collect::<Vec<_>>(), ["keyvalue-nats"]);
/// # assert!(!each.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wraps {
    /// The plugin every import it exports goes to.
    pub plugin: Option<String>,
    /// Interface → the plugin that serves the layer's import of it.
    pub interfaces: BTreeMap<String, String>,
}

impl Wraps {
    /// Every import the layer makes that `plugin` exports goes to it.
    pub fn plugin(plugin: impl Into<String>) -> Wraps {
        Wraps {
            plugin: Some(plugin.into()),
            interfaces: BTreeMap::new(),
        }
    }

    /// The layer's import of `interface` goes to `plugin`.
    pub fn with_interface(
        mut self,
        interface: impl Into<String>,
        plugin: impl Into<String>,
    ) -> Wraps {
        self.interfaces.insert(interface.into(), plugin.into());
        self
    }

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
