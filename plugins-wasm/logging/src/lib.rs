//! keel's logging plugin: `wasi:logging/logging@0.1.0-draft`, composed into
//! each workload component. Each `log(level, context, message)` becomes one
//! structured line on the component's stderr ([`keel_guest::log_record`]),
//! which keel turns into a host log record carrying the workload, component,
//! level and context. It needs nothing from keel's core, so a composed
//! workload still logs sensibly on another runtime.

wit_bindgen::generate!({
    inline: "
        package keel:logging-plugin;
        world plugin {
            export wasi:logging/logging@0.1.0-draft;
        }
    ",
    path: "../../wit/wasi-logging-0.1.0-draft",
    generate_all,
});

keel_guest::plugin_metadata!();

use exports::wasi::logging::logging::{Guest, Level};
use std::io::Write;

struct Plugin;

impl Guest for Plugin {
    fn log(level: Level, context: String, message: String) {
        let level = keel_guest::log_record::level_name(level as u8);
        let mut line = keel_guest::log_record::line(level, &context, &message);
        line.push('\n');
        // One write per record, so records from one instance never interleave.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

export!(Plugin);
