//! Manifest text as a user may write it, through the whole loader (TOML,
//! validation, path resolution). It must never panic, and an error must
//! point at a place inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    match keel::Manifest::parse(Path::new("app.toml"), text) {
        Ok(manifest) => {
            // A manifest accepted by the loader is one the library accepts too.
            for spec in &manifest.workloads {
                if let Err(e) = spec.validate() {
                    panic!("the loader accepted a workload that validate() refuses: {e}");
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            if let Some(location) = e.location() {
                let lines = text.matches('\n').count() + 1;
                assert!(
                    (1..=lines).contains(&location.line) && location.column >= 1,
                    "{message}: outside a text of {lines} lines"
                );
            }
        }
    }
});
