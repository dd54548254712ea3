//! Measurements of one keel build under settings it offers (`--only`):
//! hello with fresh against warm instances, and hello next to a workload
//! spinning until its deadline, with and without turns on the CPU.

use crate::procs::{Server, ensure_free};
use crate::scenarios::{self, Argv, LoadTarget, Setup};
use crate::stats::Summary;
use crate::wrk;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `keel run <manifest>` with its own compile cache in `work`.
fn keel_argv(keel: &Path, manifest: PathBuf, work: &Path) -> Argv {
    keel_argv_with(keel, manifest, work, &[])
}

/// `keel run <manifest> <extra…>` with its own compile cache in `work`.
fn keel_argv_with(keel: &Path, manifest: PathBuf, work: &Path, extra: &[&str]) -> Argv {
    let (keel, cache) = (keel.display().to_string(), work.join("cache"));
    let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    Box::new(move |addr| {
        let mut argv = vec![
            keel.clone(),
            "run".into(),
            manifest.display().to_string(),
            "--listen".into(),
            addr.to_string(),
            "--cache-dir".into(),
            cache.display().to_string(),
        ];
        argv.extend(extra.iter().cloned());
        argv
    })
}

/// Hello with fresh instances, pooled memory handed back to the kernel
/// (the default) against kept resident up to `size`, interleaved.
pub fn keep_resident(setup: &Setup, keel: &Path, guests: &Path, size: &str) -> Result<String> {
    let hello = guests.join("hello.wasm");
    let manifest = write(
        &setup.work.join("resident.toml"),
        &format!("[[workload]]\nname = \"hello\"\n[[workload.component]]\npath = {hello:?}\n"),
    )?;
    let targets = vec![
        LoadTarget {
            label: "keel hello, --pool-keep-resident 0".into(),
            argv: keel_argv_with(
                keel,
                manifest.clone(),
                &setup.work,
                &["--pool-keep-resident", "0"],
            ),
        },
        LoadTarget {
            label: format!("keel hello, --pool-keep-resident {size}"),
            argv: keel_argv_with(keel, manifest, &setup.work, &["--pool-keep-resident", size]),
        },
    ];
    let results = scenarios::load(setup, &targets, &[1, 32])?;
    Ok(table(&results))
}

/// Start to first 200 of each target, and each target's ratio to the last
/// one (the anchor) taken start by start, interleaved as they ran.
pub fn start_table(start: &[(String, Summary)]) -> String {
    let mut md =
        String::from("| server | start to first 200, ms | / last, per round |\n|---|---|---|\n");
    let Some((_, anchor)) = start.last() else {
        return md;
    };
    for (label, summary) in start {
        let ratio = Summary {
            samples: summary
                .samples
                .iter()
                .zip(&anchor.samples)
                .map(|(a, b)| a / b)
                .collect(),
        };
        let _ = writeln!(md, "| {label} | {} | {} |", summary.show(1), ratio.show(2));
    }
    md
}

fn table(results: &[scenarios::LoadResult]) -> String {
    let mut md = String::from(
        "| target | connections | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.label,
            r.connections,
            r.rps.show(0),
            r.p50_ms.show(3),
            r.p99_ms.show(3),
            r.errors
        );
    }
    md
}

fn write(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// Hello with a fresh instance per request against hello keeping 32 warm
/// instances, interleaved; a Markdown table.
pub fn warm(setup: &Setup, keel: &Path, guests: &Path) -> Result<String> {
    let hello = guests.join("hello.wasm");
    let manifest = |name: &str, extra: &str| {
        write(
            &setup.work.join(format!("{name}.toml")),
            &format!(
                "[[workload]]\nname = \"{name}\"\n[[workload.component]]\npath = {hello:?}\n{extra}"
            ),
        )
    };
    let targets = vec![
        LoadTarget {
            label: "keel hello, fresh instances".into(),
            argv: keel_argv(keel, manifest("fresh", "")?, &setup.work),
        },
        LoadTarget {
            label: "keel hello, pool_size = 32".into(),
            argv: keel_argv(keel, manifest("warm", "pool_size = 32\n")?, &setup.work),
        },
    ];
    let results = scenarios::load(setup, &targets, &[1, 32])?;
    let mut md = table(&results);
    for c in [1, 32] {
        let of = |label: &str| {
            results
                .iter()
                .find(|r| r.connections == c && r.label == label)
        };
        if let (Some(w), Some(f)) = (
            of("keel hello, pool_size = 32"),
            of("keel hello, fresh instances"),
        ) {
            let ratio = Summary {
                samples: w
                    .rps
                    .samples
                    .iter()
                    .zip(&f.rps.samples)
                    .map(|(a, b)| a / b)
                    .collect(),
            };
            let _ = writeln!(
                md,
                "\nwarm / fresh, req/s at {c} connection(s), per round: {}",
                ratio.show(2)
            );
        }
    }
    Ok(md)
}

/// Hello's latency at 4 connections on a host that also runs a workload
/// taking 100 requests at once that spin until their 1 s deadline: alone,
/// next to the spinner with the default `max_running`, and next to it with
/// `max_running = 100` (no per-workload turns); with `base`, that keel's
/// alone and next to the spinner too, for a paired before and after. Each
/// configuration is its own keel process (`keel_args` added to this keel's
/// command lines); rounds interleave them.
pub fn neighbour(
    setup: &Setup,
    keel: &Path,
    base: Option<&Path>,
    guests: &Path,
    keel_args: &[String],
) -> Result<String> {
    let (hello, spin) = (
        guests.join("hello.wasm"),
        guests.join("http_behaviours.wasm"),
    );
    let manifest = |name: &str, max_running: Option<u32>| {
        let limit = max_running
            .map(|n| format!("max_running = {n}\n"))
            .unwrap_or_default();
        write(
            &setup.work.join(format!("{name}.toml")),
            &format!(
                "[[workload]]\nname = \"hello\"\n[workload.http]\nhost = \"hello.bench.local\"\n\
                 [[workload.component]]\npath = {hello:?}\n\n\
                 [[workload]]\nname = \"spin\"\n[workload.http]\nhost = \"spin.bench.local\"\n\
                 [workload.limits]\ntimeout = \"1s\"\nmax_instances = 100\n{limit}\
                 [[workload.component]]\npath = {spin:?}\n"
            ),
        )
    };
    let extra: Vec<&str> = keel_args.iter().map(String::as_str).collect();
    let mut configs: Vec<(String, Argv, bool)> = vec![
        (
            "hello alone".into(),
            keel_argv_with(keel, manifest("alone", None)?, &setup.work, &extra),
            false,
        ),
        (
            "hello next to 100 spinning, default max_running".into(),
            keel_argv_with(keel, manifest("gated", None)?, &setup.work, &extra),
            true,
        ),
        (
            "hello next to 100 spinning, max_running = 100".into(),
            keel_argv_with(keel, manifest("ungated", Some(100))?, &setup.work, &extra),
            true,
        ),
    ];
    if let Some(base) = base {
        configs.push((
            "base: hello alone".into(),
            keel_argv(base, manifest("alone", None)?, &setup.work),
            false,
        ));
        configs.push((
            "base: hello next to 100 spinning, default max_running".into(),
            keel_argv(base, manifest("gated", None)?, &setup.work),
            true,
        ));
    }
    let mut servers = Vec::new();
    for (i, (label, argv, _)) in configs.iter().enumerate() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], setup.port_base + 300 + i as u16));
        ensure_free(addr)?;
        let argv = argv(addr);
        let log = setup.work.join(format!("neighbour-{i}.log"));
        let mut server = Server::start(&argv, &setup.server_cpu, addr, &log)?;
        server
            .wait_ok(
                "hello.bench.local",
                Instant::now(),
                Duration::from_secs(300),
            )
            .with_context(|| format!("waiting for {label}"))?;
        servers.push(server);
    }
    let mut p50 = vec![Summary::default(); configs.len()];
    let mut p99 = vec![Summary::default(); configs.len()];
    for round in 1..=setup.rounds {
        for (i, ((label, _, spinning), server)) in configs.iter().zip(&servers).enumerate() {
            let url = format!("http://{}/", server.addr);
            let spinner = spinning.then(|| {
                let (wrk_path, cpu, url) = (setup.wrk.clone(), setup.load_cpu.clone(), url.clone());
                let seconds = setup.seconds + 3;
                std::thread::spawn(move || {
                    wrk::run(
                        &wrk_path,
                        &cpu,
                        &format!("{url}loop"),
                        Some("spin.bench.local"),
                        100,
                        seconds,
                    )
                })
            });
            if spinner.is_some() {
                // The spinners' first requests are in before hello is measured.
                std::thread::sleep(Duration::from_secs(2));
            }
            let run = wrk::run(
                &setup.wrk,
                &setup.load_cpu,
                &url,
                Some("hello.bench.local"),
                4,
                setup.seconds,
            )?;
            if let Some(spinner) = spinner {
                let _ = spinner.join();
            }
            eprintln!(
                "round {round}/{}: {label}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
                setup.rounds, run.requests_per_sec, run.p50_ms, run.p99_ms, run.errors
            );
            p50[i].push(run.p50_ms);
            p99[i].push(run.p99_ms);
        }
    }
    let mut md = String::from("| hello at 4 connections | p50 ms | p99 ms |\n|---|---|---|\n");
    for (i, (label, _, _)) in configs.iter().enumerate() {
        let _ = writeln!(md, "| {label} | {} | {} |", p50[i].show(3), p99[i].show(3));
    }
    // p99 next to the spinner over p99 alone, per round (goal: at most 10).
    let mut ratios = vec![("this keel, default max_running", 1, 0)];
    if base.is_some() {
        ratios.push(("base, default max_running", 4, 3));
    }
    md.push_str(
        "\n| p99 next to the spinner / p99 alone (per round) | median (range) |\n|---|---|\n",
    );
    for (label, next, alone) in ratios {
        let mut ratio = Summary::default();
        for (n, a) in p99[next].samples.iter().zip(&p99[alone].samples) {
            ratio.push(n / a);
        }
        let _ = writeln!(md, "| {label} | {} |", ratio.show(1));
    }
    Ok(md)
}
