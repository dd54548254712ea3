//! The typed forwarders of `wasi:config` and `wasi:logging`: the built-in
//! config and logging plugins run shared, serving `examples/config-greeting`,
//! answer through the typed forwarder exactly as through the generic one.
//! (`wasi:keyvalue`'s typed forwarder runs the keyvalue suite, see
//! `keyvalue_memory.rs`.)

use keel_tests::{KeelProcess, get, guest, write_file};
use std::time::Duration;

/// Runs config-greeting with the built-in config and logging plugins
/// shared behind `forwarder`; returns the greeting, and the log line of the
/// error record `/alarm` raises.
fn greet_through(forwarder: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            r#"
[[plugin]]
name = "config"
mode = "shared"
forwarder = "{forwarder}"
config = {{ greeting = "Hej", shout = "true" }}

[[plugin]]
name = "logging"
mode = "shared"
forwarder = "{forwarder}"

[[workload]]
name = "greeter"
[[workload.component]]
path = {greeter:?}
"#,
            greeter = guest("config_greeting")
        ),
    );
    let mut keel = KeelProcess::spawn(
        &manifest,
        &dir.path().join("cache"),
        &["--log-format", "json"],
    )?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    for interface in [
        "wasi:config/store@0.2.0-rc.1",
        "wasi:logging/logging@0.1.0-draft",
    ] {
        let line = keel.wait_for_log(interface, Duration::from_secs(5))?;
        let served: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(served["mode"], "shared", "{line}");
        assert_eq!(served["forwarder"], forwarder, "{line}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let greeting = runtime.block_on(get(addr, "localhost", "/?name=Ada"))?.body;
    let alarm = runtime.block_on(get(addr, "localhost", "/alarm"))?;
    assert_eq!(alarm.body, "alarm raised\n");
    let record = keel.wait_for_log("someone pressed the alarm", Duration::from_secs(10))?;
    Ok((greeting, serde_json::from_str(&record)?))
}

#[test]
fn config_and_logging_answer_alike_through_both_forwarders() -> anyhow::Result<()> {
    let (typed_greeting, typed_record) = greet_through("typed")?;
    assert_eq!(typed_greeting, "HEJ, ADA!\n");
    assert_eq!(typed_record["severity"], "error");
    assert_eq!(typed_record["context"], "alarm");
    let (generic_greeting, generic_record) = greet_through("generic")?;
    assert_eq!(generic_greeting, typed_greeting);
    assert_eq!(
        (&generic_record["severity"], &generic_record["context"]),
        (&typed_record["severity"], &typed_record["context"])
    );
    Ok(())
}
