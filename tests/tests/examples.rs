//! The examples under `examples/`, run from their own manifests with
//! `keel run`, as README tells a newcomer to.

use keel_tests::{get, run_example};
use std::time::Duration;

#[test]
fn hello() -> anyhow::Result<()> {
    let (_keel, addr, _cache) = run_example("hello", &[])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let answer = runtime.block_on(get(addr, "localhost:8080", "/"))?;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "Hello from keel! You asked for /\n")
    );
    Ok(())
}

#[test]
fn config_greeting_reads_layered_config_and_logs_structured_records() -> anyhow::Result<()> {
    let (mut keel, addr, _cache) = run_example("config-greeting", &["--log-format", "json"])?;
    let runtime = tokio::runtime::Runtime::new()?;
    // The component's own `greeting` and `shout` win over the plugin's.
    assert_eq!(
        runtime.block_on(get(addr, "localhost", "/?name=Ada"))?.body,
        "HEJ, ADA!\n"
    );
    assert_eq!(
        runtime.block_on(get(addr, "localhost", "/alarm"))?.body,
        "alarm raised\n"
    );

    let mut record = |needle: &str| -> anyhow::Result<serde_json::Value> {
        let line = keel.wait_for_log(needle, Duration::from_secs(10))?;
        Ok(serde_json::from_str(&line)?)
    };
    let info = record("greeted Ada")?;
    assert_eq!(info["level"], "INFO");
    assert_eq!(info["severity"], "info");
    assert_eq!(info["context"], "request");
    assert_eq!(info["workload"], "examples/config-greeting");
    assert_eq!(info["component"], "greeter");
    let error = record("someone pressed the alarm")?;
    assert_eq!(
        (error["level"].as_str(), error["severity"].as_str()),
        (Some("ERROR"), Some("error"))
    );
    let critical = record("the building is on fire")?;
    assert_eq!(
        (critical["level"].as_str(), critical["severity"].as_str()),
        (Some("ERROR"), Some("critical")),
        "critical stays distinct from error"
    );
    assert_eq!(critical["context"], "alarm");
    // The structured line itself does not leak into the log as raw stderr.
    assert!(
        !keel.log().iter().any(|l| l.contains("keel-log")),
        "raw structured lines were logged"
    );
    Ok(())
}

#[test]
fn http_keyvalue_counter_counts_per_path() -> anyhow::Result<()> {
    let (keel, addr, _cache) = run_example("http-keyvalue-counter", &[])?;
    // The built-in shared plugin is reached through the typed forwarder.
    let served = keel
        .log()
        .into_iter()
        .find(|l| l.contains("import=\"wasi:keyvalue/store@0.2.0-draft\""))
        .ok_or_else(|| anyhow::anyhow!("no log line for wasi:keyvalue/store"))?;
    assert!(served.contains("forwarder=\"typed\""), "{served}");
    let runtime = tokio::runtime::Runtime::new()?;
    let visit = |path: &str| {
        runtime
            .block_on(get(addr, "localhost", path))
            .map(|a| a.body)
    };
    assert_eq!(visit("/apples")?, "/apples has been visited 1 times\n");
    assert_eq!(visit("/apples")?, "/apples has been visited 2 times\n");
    assert_eq!(visit("/pears")?, "/pears has been visited 1 times\n");
    assert_eq!(visit("/apples")?, "/apples has been visited 3 times\n");
    Ok(())
}

#[test]
fn messaging_ping_pong_answers_over_request_reply() -> anyhow::Result<()> {
    let (mut keel, addr, _cache) = run_example("messaging-ping-pong", &[])?;
    keel.wait_for_log(
        "workload running workload=examples/ponger",
        Duration::from_secs(60),
    )?;
    // One route line, for the one workload serving HTTP; and no denial of
    // `wasmcloud:messaging/types`, which holds only types.
    let log = keel.log();
    let routes: Vec<&String> = log.iter().filter(|l| l.contains("route:")).collect();
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(
        routes[0].contains("route: any other host -> examples/pinger"),
        "{}",
        routes[0]
    );
    assert!(
        !log.iter().any(|l| l.contains("import denied")),
        "{}",
        log.join("\n")
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let ask = |path: &str| runtime.block_on(get(addr, "localhost", path));
    assert_eq!(ask("/?msg=hello")?.body, "pong: hello\n");
    // Nobody listens on `nowhere`: the request fails at once, cleanly.
    let lonely = ask("/?subject=nowhere&msg=x")?;
    assert_eq!(
        (lonely.status, lonely.body.as_str()),
        (502, "no responders\n")
    );
    // A handler error is logged with the subject it came from.
    assert_eq!(ask("/publish?subject=ping&msg=fail")?.status, 200);
    let failure = keel.wait_for_log("message handler failed", Duration::from_secs(10))?;
    assert!(
        failure.contains("subject=\"ping\"") && failure.contains("asked to fail"),
        "{failure}"
    );
    Ok(())
}

#[test]
fn http_blobstore_stores_serves_ranges_and_deletes() -> anyhow::Result<()> {
    use keel_tests::{request, request_with_headers};
    let (_keel, addr, _cache) = run_example("http-blobstore", &[])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let host = "localhost";
    let text = "hello, blobs";
    let put = runtime.block_on(request(addr, "PUT", host, "/greeting.txt", text))?;
    assert_eq!(
        (put.status, put.body.as_str()),
        (200, "stored 12 bytes as greeting.txt\n")
    );
    let whole = runtime.block_on(get(addr, host, "/greeting.txt"))?;
    assert_eq!((whole.status, whole.body.as_str()), (200, text));
    let ranged = |range: &str| {
        runtime.block_on(request_with_headers(
            addr,
            "GET",
            host,
            "/greeting.txt",
            &[("range", range)],
            "",
        ))
    };
    for (range, body, content_range) in [
        ("bytes=7-11", "blobs", "bytes 7-11/12"),
        ("bytes=7-", "blobs", "bytes 7-11/12"),
        ("bytes=-5", "blobs", "bytes 7-11/12"),
        ("bytes=0-0", "h", "bytes 0-0/12"),
        ("bytes=5-100", ", blobs", "bytes 5-11/12"),
    ] {
        let answer = ranged(range)?;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (206, body),
            "{range}"
        );
        assert_eq!(answer.headers["content-range"], content_range, "{range}");
    }
    let unsatisfiable = ranged("bytes=12-20")?;
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.headers["content-range"], "bytes */12");
    let deleted = runtime.block_on(request(addr, "DELETE", host, "/greeting.txt", ""))?;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        runtime.block_on(get(addr, host, "/greeting.txt"))?.status,
        404
    );
    Ok(())
}
