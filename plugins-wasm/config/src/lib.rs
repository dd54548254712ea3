//! keel's config plugin: `wasi:config/store@0.2.0-rc.1`, composed into each
//! workload component. Its values are baked into it at composition (the
//! plugin's manifest config, then the component's own, later layers winning),
//! so it needs nothing from keel's core and a composed workload keeps its
//! configuration on any runtime. When the manifest asks (`config_env`), the
//! component's environment variables form a last layer.
//!
//! The layers are merged once per instance, on its first call: the baked
//! values and an instance's environment cannot change while it lives, and
//! merging them on every call cost more than the call itself.

wit_bindgen::generate!({
    inline: "
        package keel:config-plugin;
        world plugin {
            export wasi:config/store@0.2.0-rc.1;
        }
    ",
    path: "../../wit/wasi-config-0.2.0-rc.1",
    generate_all,
});

keel_guest::plugin_metadata!();

use exports::wasi::config::store::{Error, Guest};
use std::collections::BTreeMap;

static BAKED: keel_guest::baked::Region<16384> = keel_guest::baked::Region::new();

thread_local! {
    /// Every layer, merged on the instance's first call.
    static LAYERS: BTreeMap<String, String> = BAKED.config_layers();
}

struct Plugin;

impl Guest for Plugin {
    fn get(key: String) -> Result<Option<String>, Error> {
        Ok(LAYERS.with(|layers| layers.get(&key).cloned()))
    }

    fn get_all() -> Result<Vec<(String, String)>, Error> {
        Ok(LAYERS.with(|layers| {
            layers
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        }))
    }
}

export!(Plugin);
