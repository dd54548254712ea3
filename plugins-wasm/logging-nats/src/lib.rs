//! keel's logging plugin with a NATS sink: `wasi:logging/logging@0.1.0-draft`,
//! composed into each workload. Every record goes to the host log, as with
//! the built-in `logging` plugin (a structured stderr line,
//! [`keel_guest::log_record`]), and is also published on NATS, so a
//! platform can collect the logs of all its hosts in one place.
//!
//! **Subject**: `<prefix>.<namespace>.<workload>`, the names as
//! [`keel_names::token`]s and the prefix the plugin's setting
//! `logging-nats.prefix` (default `keel.logs`). The plugin may publish
//! under `<prefix>.<its caller's namespace>.>` and nowhere else.
//!
//! **Payload**: one JSON object, `{"level":…,"context":…,"message":…,
//! "namespace":…,"workload":…,"component":…,"time":…}` (`time` in RFC 3339,
//! UTC, to the second).
//!
//! Publishing is fire and forget: a record that cannot be published (no
//! server, refused) is still in the host log, with a warning beside it.

wit_bindgen::generate!({
    inline: "
        package keel:logging-nats;
        world plugin {
            import keel:core/identity@0.1.0;
            import keel:core/nats@0.1.0;
            export wasi:logging/logging@0.1.0-draft;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasi-logging-0.1.0-draft"],
    with: {
        "keel:core/nats@0.1.0": keel_jetstream::nats,
    },
    generate_all,
});

keel_guest::plugin_metadata!();

use exports::wasi::logging::logging::{Guest, Level};
use keel_guest::log_record::{json_string, line};
use keel_jetstream::{describe, nats};
use std::io::Write;

static BAKED: keel_guest::baked::Region<1024> = keel_guest::baked::Region::new();

/// The subject prefix when the plugin's config names none.
const DEFAULT_PREFIX: &str = "keel.logs";

struct Plugin;

impl Guest for Plugin {
    fn log(level: Level, context: String, message: String) {
        let level = keel_guest::log_record::level_name(level as u8);
        let mut lines = line(level, &context, &message);
        lines.push('\n');
        let caller = keel::core::identity::caller();
        let prefix = BAKED
            .pairs()
            .into_iter()
            .find(|(key, _)| key == "logging-nats.prefix")
            .map_or_else(|| DEFAULT_PREFIX.to_string(), |(_, value)| value);
        let subject = format!(
            "{prefix}.{}.{}",
            keel_names::token(&caller.namespace),
            keel_names::token(&caller.name)
        );
        let now = keel_guest::wasip2::clocks::wall_clock::now().seconds;
        let record = format!(
            "{{\"level\":{},\"context\":{},\"message\":{},\"namespace\":{},\"workload\":{},\"component\":{},\"time\":\"{}\"}}",
            json_string(level),
            json_string(&context),
            json_string(&message),
            json_string(&caller.namespace),
            json_string(&caller.name),
            json_string(&caller.component),
            keel_jetstream::time::rfc3339(now)
        );
        if let Err(e) = nats::publish(&subject, None, &[], record.as_bytes()) {
            let warning = format!("log record not published to `{subject}`: {}", describe(&e));
            lines.push_str(&line("warn", "logging-nats", &warning));
            lines.push('\n');
        }
        // One write per record, so records from one instance never interleave.
        let _ = std::io::stderr().write_all(lines.as_bytes());
    }
}

export!(Plugin);
