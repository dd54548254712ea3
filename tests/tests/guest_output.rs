//! What a guest's output and failures can make the host do: its lines are
//! split in linear time and capped, a workload's output is held to its log
//! rate (the excess dropped and reported), and a trap is logged as a
//! bounded summary, whatever `RUST_BACKTRACE` says.

use keel_tests::{KeelProcess, get, guest, write_file};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A manifest running the behaviours fixture as `out/talker` with the
/// extra `[workload.limits]` lines `limits`.
fn manifest(dir: &Path, limits: &str) -> PathBuf {
    write_file(
        dir,
        "app.toml",
        &format!(
            "[[workload]]\nnamespace = \"out\"\nname = \"talker\"\n\
             [workload.limits]\n{limits}\n\
             [[workload.component]]\npath = {:?}\n",
            guest("http_behaviours")
        ),
    )
}

/// Starts `keel run` with JSON logs and `env`; returns it and its address.
fn start(
    dir: &Path,
    limits: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<(KeelProcess, std::net::SocketAddr)> {
    let manifest = manifest(dir, limits);
    let mut keel = KeelProcess::spawn_with_env(
        &manifest,
        &dir.join("cache"),
        &["--log-format", "json"],
        env,
    )?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    Ok((keel, addr))
}

fn records(keel: &KeelProcess) -> Vec<serde_json::Value> {
    keel.log()
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[test]
fn a_flood_of_output_is_held_to_the_log_rate_while_the_host_keeps_answering() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (mut keel, addr) = start(dir.path(), "timeout = \"5s\"\nlog_rate = \"64KiB\"", &[])?;
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    // 4 MiB of newlines in each write, one write after another, until the
    // deadline stops the guest: only a host that splits linearly and in
    // host calls that end gets it there.
    let flood = runtime.spawn(get(addr, "x", "/flood?newlines=4194304&repeat=0"));
    keel.wait_for_log("flood begins", Duration::from_secs(60))?;

    let hello = runtime.block_on(get(addr, "x", "/"))?;
    assert_eq!(
        (hello.status, hello.body.as_str()),
        (200, "hello from fixture"),
        "answered while the flood goes on"
    );
    let flooded = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), flood).await })
        .map_err(|_| anyhow::anyhow!("the flooding request was not cut by its 5 s deadline"))???;
    assert_eq!(flooded.status, 504, "{}", flooded.body);
    let elapsed = started.elapsed();

    let report = keel.wait_for_log("bytes of output dropped", Duration::from_secs(30))?;
    let report: serde_json::Value = serde_json::from_str(&report)?;
    assert_eq!(report["workload"], "out/talker", "{report}");
    assert!(
        report["dropped_bytes"].as_u64().unwrap_or(0) > 1 << 20,
        "most of each 4 MiB write was dropped: {report}"
    );

    // Each empty line costs 128 bytes of a 64 KiB/s rate with a one-second
    // burst: at most 512 lines, then 512 a second.
    let logged = records(&keel)
        .iter()
        .filter(|r| r["workload"] == "out/talker" && r["stream"] == "stdout")
        .count();
    let allowed = 512.0 * (1.0 + elapsed.as_secs_f64()) + 1.0;
    assert!(
        (logged as f64) <= allowed,
        "{logged} lines logged in {elapsed:?}, at most {allowed} allowed"
    );
    assert!(logged > 1, "the burst was logged");
    Ok(())
}

#[test]
fn an_over_long_line_is_logged_cut_with_a_marker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut keel, addr) = start(dir.path(), "", &[])?;
    let runtime = tokio::runtime::Runtime::new()?;
    // One 10 MiB line in one write.
    let answer = runtime.block_on(get(addr, "x", "/flood?line=10485760"))?;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "wrote 10485761 bytes")
    );
    let line = keel.wait_for_log("bytes cut]", Duration::from_secs(30))?;
    let record: serde_json::Value = serde_json::from_str(&line)?;
    let message = record["message"].as_str().unwrap_or_default();
    let kept = 16 * 1024;
    assert!(
        message.ends_with(&format!("… [{} bytes cut]", 10_485_760 - kept)),
        "{}…",
        &message[..80.min(message.len())]
    );
    assert!(message.starts_with(&"x".repeat(kept)), "the first 16 KiB");
    assert!(message.len() < kept + 64, "{} bytes", message.len());
    let pieces = records(&keel)
        .iter()
        .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with("xxx")))
        .count();
    assert_eq!(pieces, 1, "one record for the line, not a record per piece");
    Ok(())
}

#[test]
fn a_trap_is_logged_as_a_bounded_summary_even_with_rust_backtrace() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let env = [("RUST_BACKTRACE", "1"), ("WASMTIME_BACKTRACE_DETAILS", "1")];
    let (mut keel, addr) = start(dir.path(), "", &env)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let trapped = runtime.block_on(get(addr, "x", "/trap"))?;
    assert_eq!(trapped.status, 500, "{}", trapped.body);
    let line = keel.wait_for_log("guest trapped", Duration::from_secs(30))?;
    assert!(
        line.len() <= 1024,
        "a {} byte record: {}…",
        line.len(),
        &line[..400.min(line.len())]
    );
    let record: serde_json::Value = serde_json::from_str(&line)?;
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains("unreachable"), "names the trap: {error}");
    assert!(error.contains("[at "), "names the top frames: {error}");
    Ok(())
}
