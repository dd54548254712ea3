//! `greeter-quota`: a layer over any greeter. Each caller gets three
//! greetings; later calls are refused before they reach the greeter beneath.

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

// The same interface twice: what the layer exports, and what it imports
// from the plugin beneath it (the manifest's `wraps`).
use acme::greeter::greet as beneath;
use exports::acme::greeter::greet::Guest;
use keel::core::identity;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The type every exported interface is implemented for.
pub struct Plugin;

/// Greetings each caller may have.
const QUOTA: u64 = 3;

/// Greetings used so far per caller (`namespace/name`).
static USED: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

impl Guest for Plugin {
    fn greet(name: String) -> Result<String, String> {
        let caller = identity::caller();
        let who = format!("{}/{}", caller.namespace, caller.name);
        {
            let mut used = USED.lock().unwrap_or_else(PoisonError::into_inner);
            let count = used.entry(who.clone()).or_insert(0);
            if *count >= QUOTA {
                return Err(format!(
                    "greeter-quota: {who} has had its {QUOTA} greetings"
                ));
            }
            *count += 1;
        }
        beneath::greet(&name)
    }
}

export!(Plugin);
