//! keel's config plugin: `wasi:config/store@0.2.0-rc.1`, composed into each
//! workload component. Its values are baked into it at composition (the
//! plugin's manifest config, then the component's own, later layers winning),
//! so it needs nothing from keel's core and a composed workload keeps its
//! configuration on any runtime. When the manifest asks (`config_env`), the
//! component's environment variables form a last layer, read at call time.

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

use exports::wasi::config::store::{Error, Guest};
use std::collections::BTreeMap;

/// The key under which composition records "add the environment as a layer".
/// Starts with NUL, so no manifest key can collide with it.
const ENV_LAYER: &str = "\0env";

static BAKED: keel_guest::baked::Region<16384> = keel_guest::baked::Region::new();

/// The layered values: baked ones, then the environment when asked for.
fn values() -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut with_env = false;
    for (key, value) in BAKED.pairs() {
        if key == ENV_LAYER {
            with_env = value == "true";
        } else {
            values.insert(key, value);
        }
    }
    if with_env {
        values.extend(std::env::vars());
    }
    values
}

struct Plugin;

impl Guest for Plugin {
    fn get(key: String) -> Result<Option<String>, Error> {
        Ok(values().remove(&key))
    }

    fn get_all() -> Result<Vec<(String, String)>, Error> {
        Ok(values().into_iter().collect())
    }
}

export!(Plugin);
