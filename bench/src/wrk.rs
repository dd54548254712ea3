//! One `wrk` run and what it printed: requests per second, median and 99th
//! percentile latency, and any errors (which make a run's figures suspect).

use anyhow::{Context, Result, bail};
use std::process::Command;

/// What one `wrk --latency` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    /// `Requests/sec:`.
    pub requests_per_sec: f64,
    /// The 50% line of the latency distribution, in milliseconds.
    pub p50_ms: f64,
    /// The 99% line of the latency distribution, in milliseconds.
    pub p99_ms: f64,
    /// Non-2xx/3xx answers plus socket errors: anything but 0 is reported.
    pub errors: u64,
}

/// Runs `taskset -c <cpu> wrk` with one thread and `connections`
/// connections against `url` for `seconds`, with `host` as the Host header
/// when given.
pub fn run(
    wrk: &str,
    cpu: &str,
    url: &str,
    host: Option<&str>,
    connections: u32,
    seconds: u32,
) -> Result<WrkRun> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpu, wrk, "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        // A stalled server must not stall the whole bench.
        .arg("--timeout")
        .arg("10s");
    if let Some(host) = host {
        cmd.arg("-H").arg(format!("Host: {host}"));
    }
    let output = cmd.arg(url).output().context("running wrk under taskset")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's output:\n{stdout}"))
}

/// Reads `wrk --latency`'s report.
pub fn parse(text: &str) -> Result<WrkRun> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => rps = words.next().and_then(|w| w.parse().ok()),
            Some("50%") => p50 = words.next().and_then(latency_ms),
            Some("99%") => p99 = words.next().and_then(latency_ms),
            Some("Non-2xx") => {
                errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(1)
            }
            Some("Socket") => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                errors += line
                    .split(',')
                    .filter_map(|part| part.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    match (rps, p50, p99) {
        (Some(requests_per_sec), Some(p50_ms), Some(p99_ms)) => Ok(WrkRun {
            requests_per_sec,
            p50_ms,
            p99_ms,
            errors,
        }),
        _ => bail!("no Requests/sec or latency distribution"),
    }
}

/// `123.45us`, `1.20ms`, `2.00s`, `1.5m` → milliseconds.
fn latency_ms(word: &str) -> Option<f64> {
    let split = word.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = word.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 3s test @ http://127.0.0.1:18081/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.61ms    1.03ms  20.86ms   90.12%
    Req/Sec     5.72k   220.31     6.02k    80.00%
  Latency Distribution
     50%    5.40ms
     75%    5.80ms
     90%    6.55ms
     99%    9.90ms
  17081 requests in 3.00s, 2.44MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   5693.21
Transfer/sec:    832.73KB
";

    #[test]
    fn reads_rate_percentiles_and_errors() {
        let run = parse(OUTPUT).unwrap();
        assert_eq!(run.requests_per_sec, 5693.21);
        assert_eq!(run.p50_ms, 5.40);
        assert_eq!(run.p99_ms, 9.90);
        assert_eq!(run.errors, 10);
        assert_eq!(latency_ms("250.00us"), Some(0.25));
        assert_eq!(latency_ms("1.50s"), Some(1500.0));
        assert!(parse("Running 3s test").is_err());
    }
}
