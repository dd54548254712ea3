//! The three kinds of measurement: HTTP load with `wrk`, process start to
//! first 200, and resident memory of an idle host. Each runs its targets
//! interleaved (A B A B …), so drift on the machine hits them alike.

use crate::procs::{Server, ensure_free};
use crate::stats::Summary;
use crate::wrk;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The server command for a listen address.
pub type Argv = Box<dyn Fn(SocketAddr) -> Vec<String>>;

/// Where processes run and how long measurements take.
pub struct Setup {
    /// The core servers are pinned to (`taskset -c`).
    pub server_cpu: String,
    /// The core `wrk` is pinned to.
    pub load_cpu: String,
    /// `wrk`'s path.
    pub wrk: String,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Seconds of load per `wrk` run.
    pub seconds: u32,
    /// The first port used; each server gets its own.
    pub port_base: u16,
    /// Where server logs go.
    pub work: PathBuf,
}

impl Setup {
    fn addr(&self, offset: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port_base + offset))
    }

    fn start(&self, label: &str, argv: &Argv, offset: u16) -> Result<Server> {
        let addr = self.addr(offset);
        ensure_free(addr)?;
        let log = self.work.join(format!("{}.log", file_name(label)));
        Server::start(&argv(addr), &self.server_cpu, addr, &log)
            .with_context(|| format!("starting {label}; its log: {}", log.display()))
    }
}

/// A server measured under load.
pub struct LoadTarget {
    /// Its name in the report.
    pub label: String,
    /// How to start it.
    pub argv: Argv,
}

/// One target at one connection count, over all rounds.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The target's label.
    pub label: String,
    /// `wrk` connections.
    pub connections: u32,
    /// Requests per second, one sample per round.
    pub rps: Summary,
    /// Median latency, ms.
    pub p50_ms: Summary,
    /// 99th percentile latency, ms.
    pub p99_ms: Summary,
    /// Failed requests over all rounds (non-2xx answers, socket errors).
    pub errors: u64,
}

/// Starts every target at once (on its own port), warms each up, then runs
/// `wrk` round after round: for each connection count, every target in turn.
pub fn load(setup: &Setup, targets: &[LoadTarget], connections: &[u32]) -> Result<Vec<LoadResult>> {
    let mut servers = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let offset = u16::try_from(i).context("too many targets")?;
        let mut server = setup.start(&target.label, &target.argv, offset)?;
        server
            .wait_ok("localhost", Instant::now(), Duration::from_secs(300))
            .with_context(|| format!("waiting for {}", target.label))?;
        servers.push(server);
    }
    let url = |s: &Server| format!("http://{}/", s.addr);
    for (target, server) in targets.iter().zip(&servers) {
        eprintln!("warming up {}", target.label);
        wrk::run(&setup.wrk, &setup.load_cpu, &url(server), None, 32, 2)?;
    }
    let mut results: Vec<LoadResult> = connections
        .iter()
        .flat_map(|&c| {
            targets.iter().map(move |t| LoadResult {
                label: t.label.clone(),
                connections: c,
                rps: Summary::default(),
                p50_ms: Summary::default(),
                p99_ms: Summary::default(),
                errors: 0,
            })
        })
        .collect();
    for round in 1..=setup.rounds {
        for (ci, &c) in connections.iter().enumerate() {
            for (ti, server) in servers.iter().enumerate() {
                let run = wrk::run(
                    &setup.wrk,
                    &setup.load_cpu,
                    &url(server),
                    None,
                    c,
                    setup.seconds,
                )?;
                let result = &mut results[ci * targets.len() + ti];
                eprintln!(
                    "round {round}/{}: {} at {c}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms{}",
                    setup.rounds,
                    result.label,
                    run.requests_per_sec,
                    run.p50_ms,
                    run.p99_ms,
                    if run.errors > 0 {
                        format!(", {} errors", run.errors)
                    } else {
                        String::new()
                    }
                );
                result.rps.push(run.requests_per_sec);
                result.p50_ms.push(run.p50_ms);
                result.p99_ms.push(run.p99_ms);
                result.errors += run.errors;
            }
        }
    }
    Ok(results)
}

/// Process start to first 200, in milliseconds, for each target: one
/// untimed start each first (the warm cache, the page cache), then
/// `rounds` timed starts of each, interleaved.
pub fn start(setup: &Setup, targets: &[LoadTarget]) -> Result<Vec<(String, Summary)>> {
    let mut results: Vec<(String, Summary)> = targets
        .iter()
        .map(|t| (t.label.clone(), Summary::default()))
        .collect();
    // Its own port for every start: nothing waits for the last one's socket.
    let mut offset = 100;
    for round in 0..=setup.rounds {
        for (target, (_, summary)) in targets.iter().zip(results.iter_mut()) {
            offset += 1;
            let since = Instant::now();
            let mut server = setup.start(&target.label, &target.argv, offset)?;
            let took = server
                .wait_ok("localhost", since, Duration::from_secs(120))
                .with_context(|| format!("waiting for {}", target.label))?;
            drop(server);
            let ms = took.as_secs_f64() * 1000.0;
            if round == 0 {
                eprintln!("start (untimed warm-up) {}: {ms:.1} ms", target.label);
            } else {
                eprintln!(
                    "start {round}/{}: {}: {ms:.1} ms",
                    setup.rounds, target.label
                );
                summary.push(ms);
            }
        }
    }
    Ok(results)
}

/// A host measured idle with a number of workloads.
pub struct IdleTarget {
    /// Its name in the report.
    pub label: String,
    /// How to start it with `workloads` workloads.
    pub argv: Box<dyn Fn(SocketAddr, usize) -> Vec<String>>,
}

/// Resident memory (KiB) of each target with each number of workloads.
/// A host is ready when the last workload (`w{n-1}.bench.local`) answers
/// 200; workloads start in order, so every other one runs by then. That
/// one request is all the traffic the host sees; it then rests a second
/// before `VmRSS` is read.
pub fn idle_memory(
    setup: &Setup,
    targets: &[IdleTarget],
    counts: &[usize],
) -> Result<Vec<(String, usize, Summary)>> {
    let mut results = Vec::new();
    for target in targets {
        for &n in counts {
            results.push((target.label.clone(), n, Summary::default()));
        }
    }
    let mut offset = 200;
    for round in 1..=setup.rounds {
        for (ci, &n) in counts.iter().enumerate() {
            for (ti, target) in targets.iter().enumerate() {
                offset += 1;
                let addr = setup.addr(offset);
                ensure_free(addr)?;
                let label = format!("{} {n} workloads", target.label);
                let log = setup.work.join(format!("{}.log", file_name(&label)));
                let mut server =
                    Server::start(&(target.argv)(addr, n), &setup.server_cpu, addr, &log)?;
                let since = Instant::now();
                let took = server
                    .wait_ok(
                        &format!("w{}.bench.local", n - 1),
                        since,
                        Duration::from_secs(900),
                    )
                    .with_context(|| format!("waiting for {label}; its log: {}", log.display()))?;
                std::thread::sleep(Duration::from_secs(1));
                let kib = server.rss_kib()?;
                eprintln!(
                    "memory {round}/{}: {label}: {:.1} MiB (ready after {:.1} s)",
                    setup.rounds,
                    kib as f64 / 1024.0,
                    took.as_secs_f64()
                );
                results[ti * counts.len() + ci].2.push(kib as f64);
            }
        }
    }
    Ok(results)
}

/// A label as a file name.
fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
