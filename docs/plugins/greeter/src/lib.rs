//! `greeter`: greets by name and counts the greetings of each caller.

wit_bindgen::generate!({
    world: "local:plugin/plugin",
    path: "wit",
    generate_all,
});

// The plugin's metadata (`keel-plugin.toml`), as the custom section keel
// reads: any static in a `keel-plugin` link section does.
#[used]
#[unsafe(link_section = "keel-plugin")]
static KEEL_PLUGIN: [u8; include_bytes!("../keel-plugin.toml").len()] =
    *include_bytes!("../keel-plugin.toml");

use exports::acme::greeter::greet::Guest;
use keel::core::identity;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The type every exported interface is implemented for.
pub struct Plugin;

/// Greetings so far per caller (`namespace/name`): this instance's state.
/// Composed, an instance lives for one request; shared, as long as the host.
static GREETINGS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

impl Guest for Plugin {
    fn greet(name: String) -> Result<String, String> {
        if name.is_empty() || name.len() > 64 {
            return Err("greeter: a name is 1 to 64 bytes".to_string());
        }
        let caller = identity::caller();
        let who = format!("{}/{}", caller.namespace, caller.name);
        let mut greetings = GREETINGS.lock().unwrap_or_else(PoisonError::into_inner);
        let count = greetings.entry(who.clone()).or_insert(0);
        *count += 1;
        Ok(format!("Hello, {name}! (greeting {count} for {who})"))
    }
}

export!(Plugin);
