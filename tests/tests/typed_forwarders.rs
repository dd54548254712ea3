//! The typed forwarders of `wasi:config`, `wasi:logging`,
//! `wasmcloud:messaging` and `wasi:blobstore`: the built-in plugins run
//! shared, serving `examples/config-greeting`,
//! `examples/messaging-ping-pong` and the blobstore fixture, answer through
//! the typed forwarder exactly as through the generic one. (The keyvalue
//! and blobstore suites run through both forwarders too, see
//! `keyvalue_memory.rs` and `blobstore_memory.rs`.)

use keel_tests::{KeelProcess, get, guest, write_file};
use std::net::SocketAddr;
use std::time::Duration;

/// Starts keel on `manifest` (JSON logs) once every workload runs, after
/// checking that each of `interfaces` is served shared through `forwarder`.
fn start(
    manifest: &str,
    last_workload: &str,
    interfaces: &[&str],
    forwarder: &str,
) -> anyhow::Result<(KeelProcess, SocketAddr, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(dir.path(), "app.toml", manifest);
    let mut keel = KeelProcess::spawn(
        &manifest,
        &dir.path().join("cache"),
        &["--log-format", "json"],
    )?;
    let addr = keel.http_addr()?;
    // JSON lines: the message and the workload are separate fields.
    let running = format!("\"workload\":\"{last_workload}\"");
    keel.wait_for_log_line(
        &format!("{last_workload} running"),
        |l| l.contains("workload running") && l.contains(&running),
        Duration::from_secs(60),
    )?;
    for interface in interfaces {
        let line = keel.wait_for_log(interface, Duration::from_secs(5))?;
        let served: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(served["mode"], "shared", "{line}");
        assert_eq!(served["forwarder"], forwarder, "{line}");
    }
    Ok((keel, addr, dir))
}

/// Runs config-greeting with the built-in config and logging plugins
/// shared behind `forwarder`; returns the greeting, and the log line of the
/// error record `/alarm` raises.
fn greet_through(forwarder: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let manifest = format!(
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
    );
    let (mut keel, addr, _dir) = start(
        &manifest,
        "default/greeter",
        &[
            "wasi:config/store@0.2.0-rc.1",
            "wasi:logging/logging@0.1.0-draft",
        ],
        forwarder,
    )?;
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

/// A shared logging plugin that traps on a record: the workload's request
/// still answers, the record lands in the host's log with the failure, and
/// the records before it went to the plugin.
#[test]
fn a_record_the_logging_plugin_fails_to_take_is_kept_in_the_host_log() -> anyhow::Result<()> {
    let manifest = format!(
        r#"
[[plugin]]
name = "config"
mode = "composed"

[[plugin]]
name = "faulty-logger"
path = {logger:?}
mode = "shared"

[[workload]]
name = "greeter"
[[workload.component]]
path = {greeter:?}
"#,
        logger = guest("faulty_logger"),
        greeter = guest("config_greeting")
    );
    let (mut keel, addr, _dir) = start(
        &manifest,
        "default/greeter",
        &["wasi:logging/logging@0.1.0-draft"],
        "typed",
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    // `/alarm` logs an error record, then a critical one, which the plugin
    // traps on.
    let alarm = runtime.block_on(get(addr, "localhost", "/alarm"))?;
    assert_eq!((alarm.status, alarm.body.as_str()), (200, "alarm raised\n"));
    let kept = keel.wait_for_log("it is kept here", Duration::from_secs(10))?;
    let kept: serde_json::Value = serde_json::from_str(&kept)?;
    assert_eq!(kept["plugin"], "faulty-logger", "{kept}");
    assert_eq!(kept["workload"], "default/greeter", "{kept}");
    assert_eq!(kept["context"], "alarm", "{kept}");
    assert_eq!(kept["severity"], "critical", "{kept}");
    assert_eq!(kept["record"], "the building is on fire", "{kept}");
    assert!(
        kept["error"]
            .as_str()
            .is_some_and(|e| e.contains("`faulty-logger` failed") && e.contains("wasm trap")),
        "the plugin's failure is not in the host's log: {kept}"
    );
    // The error record before it went to the plugin, which dropped it.
    assert!(
        !keel
            .log()
            .iter()
            .any(|l| l.contains("someone pressed the alarm")),
        "a record the plugin took was kept in the host's log"
    );
    // The restarted plugin takes the next request's records.
    let again = runtime.block_on(get(addr, "localhost", "/?name=Ada"))?;
    assert_eq!(again.status, 200, "{}", again.body);
    Ok(())
}

/// Runs messaging-ping-pong with the built-in messaging plugin shared behind
/// `forwarder`; returns the pinger's answer to a request nobody listens
/// for, and the ponger's failure log line for a message the pinger
/// published. (No request/reply: a shared plugin runs one call at a time,
/// so the ponger's reply would wait behind the pinger's request.)
fn ping_through(forwarder: &str) -> anyhow::Result<((u16, String), serde_json::Value)> {
    let manifest = format!(
        r#"
[[plugin]]
name = "messaging"
mode = "shared"
forwarder = "{forwarder}"

[[workload]]
namespace = "examples"
name = "pinger"
[[workload.component]]
path = {pinger:?}

[[workload]]
namespace = "examples"
name = "ponger"
[[workload.subscription]]
subject = "ping"
[[workload.component]]
path = {ponger:?}
"#,
        pinger = guest("pinger"),
        ponger = guest("ponger")
    );
    let (mut keel, addr, _dir) = start(
        &manifest,
        "examples/ponger",
        &["wasmcloud:messaging/consumer@0.2.0"],
        forwarder,
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    let lonely = runtime.block_on(get(addr, "localhost", "/?subject=nowhere&msg=x"))?;
    let published = runtime.block_on(get(addr, "localhost", "/publish?subject=ping&msg=fail"))?;
    assert_eq!(published.body, "published\n");
    let failure = keel.wait_for_log("message handler failed", Duration::from_secs(10))?;
    Ok((
        (lonely.status, lonely.body),
        serde_json::from_str(&failure)?,
    ))
}

#[test]
fn messaging_answers_alike_through_both_forwarders() -> anyhow::Result<()> {
    let (typed_lonely, typed_failure) = ping_through("typed")?;
    assert_eq!(typed_lonely, (502, "no responders\n".to_string()));
    assert_eq!(typed_failure["subject"], "ping", "{typed_failure}");
    assert!(
        typed_failure
            .to_string()
            .contains("asked to fail on `ping`"),
        "{typed_failure}"
    );
    let (generic_lonely, generic_failure) = ping_through("generic")?;
    assert_eq!(generic_lonely, typed_lonely);
    assert_eq!(generic_failure["subject"], typed_failure["subject"]);
    assert!(
        generic_failure
            .to_string()
            .contains("asked to fail on `ping`"),
        "{generic_failure}"
    );
    Ok(())
}

/// Writes and reads back a 300 KB object through `blobstore-memory` shared
/// behind `forwarder` (streams moving between the Stores both ways), then
/// lists the container; returns the answers.
fn blobs_through(forwarder: &str) -> anyhow::Result<Vec<(u16, String)>> {
    let manifest = format!(
        r#"
[[plugin]]
name = "blobstore-memory"
mode = "shared"
forwarder = "{forwarder}"

[[workload]]
name = "blobs"
[[workload.component]]
path = {user:?}
"#,
        user = guest("blobstore_user")
    );
    let (_keel, addr, _dir) = start(
        &manifest,
        "default/blobs",
        &[
            "wasi:blobstore/blobstore@0.2.0-draft",
            "wasi:blobstore/container@0.2.0-draft",
            "wasi:blobstore/types@0.2.0-draft",
        ],
        forwarder,
    )?;
    let body: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut answers = Vec::new();
    for (method, path, body) in [
        ("PUT", "/container?c=c", String::new()),
        ("PUT", "/object?c=c&o=big", body.clone()),
        ("GET", "/object?c=c&o=big", String::new()),
        (
            "GET",
            "/object?c=c&o=big&start=3&end=9&read=sync",
            String::new(),
        ),
        ("GET", "/list?c=c&page=10", String::new()),
        ("GET", "/object?c=c&o=missing", String::new()),
    ] {
        let answer =
            runtime.block_on(keel_tests::request(addr, method, "localhost", path, body))?;
        answers.push((answer.status, answer.body));
    }
    assert_eq!(answers[2], (200, body), "the object came back whole");
    Ok(answers)
}

#[test]
fn blobstore_answers_alike_through_both_forwarders() -> anyhow::Result<()> {
    let typed = blobs_through("typed")?;
    assert_eq!(typed[3], (200, "defghij".to_string()));
    assert_eq!(typed[5].0, 500, "{:?}", typed[5]);
    let generic = blobs_through("generic")?;
    assert_eq!(generic, typed);
    Ok(())
}
