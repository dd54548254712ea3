//! `keel-bench`: keel side by side with its anchors, or with an earlier
//! build of itself. `make bench-quick` and `make bench-anchors` build what it
//! needs and run it; `make bench-compare BASE=<git rev>` runs it with
//! `--keel-base`. See README "Performance".
//!
//! Every pair runs interleaved (A B A B …) over several rounds, servers
//! pinned to one core with `taskset` and `wrk` to another; the report gives
//! medians and ranges, and each ratio is taken per round, then summarised.

mod extra;
mod machine;
mod plan;
mod procs;
mod report;
mod scenarios;
mod stats;
mod wrk;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use plan::Tools;
use report::{Ratio, Report};
use scenarios::{LoadResult, Setup};
use stats::Summary;
use std::path::PathBuf;

/// How long a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A few minutes: 3 rounds of 3 s loads, one memory round.
    Quick,
    /// 5 rounds of 10 s loads, three memory rounds.
    Full,
}

/// A measurement of this keel alone, instead of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    /// Hello with fresh instances against hello with warm ones.
    Warm,
    /// Hello's latency next to a workload spinning 100 invocations.
    Neighbour,
    /// Hello with pooled memory handed back to the kernel against kept
    /// resident (`--keep-resident`).
    KeepResident,
    /// Process start to first 200 only: keel (and `--keel-base`, when
    /// given) against `wasmtime serve --allow-precompiled`, `--rounds`
    /// interleaved starts (default 10).
    Start,
}

/// Benchmarks keel against `wasmtime serve` and a native hyper floor.
#[derive(Debug, Parser)]
struct Args {
    /// Run length.
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    mode: Mode,
    /// The repository (manifests, guests, results).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The keel binary measured.
    #[arg(long)]
    keel: PathBuf,
    /// Compare with this keel binary instead of the anchors.
    #[arg(long)]
    keel_base: Option<PathBuf>,
    /// The wasmtime CLI.
    #[arg(long, default_value = "bench/.tools/bin/wasmtime")]
    wasmtime: PathBuf,
    /// The hello-floor binary.
    #[arg(long)]
    floor: PathBuf,
    /// wrk.
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// Manifest serving hello [default: examples/hello/app.toml].
    #[arg(long)]
    hello_manifest: Option<PathBuf>,
    /// Manifest serving the counter [default: examples/http-keyvalue-counter/app.toml].
    #[arg(long)]
    counter_manifest: Option<PathBuf>,
    /// One more argument to `keel run` (repeat for more).
    #[arg(long = "keel-arg", allow_hyphen_values = true)]
    keel_args: Vec<String>,
    /// One more argument to `wasmtime serve` (repeat for more).
    #[arg(long = "wasmtime-arg", allow_hyphen_values = true)]
    wasmtime_args: Vec<String>,
    /// Rounds of HTTP load [default: quick 3, full 5].
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds per wrk run [default: quick 3, full 10].
    #[arg(long)]
    seconds: Option<u32>,
    /// First of the loopback ports used.
    #[arg(long, default_value_t = 18080)]
    port_base: u16,
    /// Measure only this (results in bench/results/<name>.md).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// The size `--only keep-resident` passes to `--pool-keep-resident`.
    #[arg(long, default_value = "2MiB")]
    keep_resident: String,
    /// Write `<out>.md` and `<out>.json` [default: bench/results/latest, or
    /// bench/results/compare with --keel-base].
    #[arg(long)]
    out: Option<PathBuf>,
}

const CONNECTIONS: [u32; 2] = [1, 32];
const WORKLOADS: [usize; 3] = [1, 100, 1000];
/// The goal for resident memory per added idle workload.
const MIB_PER_WORKLOAD_GOAL: f64 = 0.5;

fn main() -> Result<()> {
    let args = Args::parse();
    let repo = std::fs::canonicalize(&args.repo).context("finding the repository")?;
    let abs = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            repo.join(p)
        }
    };
    let work = repo.join("bench/.work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).context("creating bench/.work")?;
    let tools = Tools {
        keel: abs(&args.keel),
        keel_base: args.keel_base.as_ref().map(abs),
        keel_args: args.keel_args.clone(),
        wasmtime: abs(&args.wasmtime),
        wasmtime_args: args.wasmtime_args.clone(),
        floor: abs(&args.floor),
        hello_wasm: repo.join("target/guests/hello.wasm"),
        hello_manifest: abs(&args
            .hello_manifest
            .clone()
            .unwrap_or_else(|| "examples/hello/app.toml".into())),
        counter_manifest: abs(&args
            .counter_manifest
            .clone()
            .unwrap_or_else(|| "examples/http-keyvalue-counter/app.toml".into())),
        work: work.clone(),
    };
    let quick = args.mode == Mode::Quick;
    let setup = |rounds| Setup {
        server_cpu: "0".into(),
        load_cpu: "1".into(),
        wrk: args.wrk.clone(),
        rounds,
        seconds: args.seconds.unwrap_or(if quick { 3 } else { 10 }),
        port_base: args.port_base,
        work: work.clone(),
    };
    let load_setup = setup(args.rounds.unwrap_or(if quick { 3 } else { 5 }));
    let compare = tools.keel_base.is_some();
    let machine = machine::Machine::collect(
        &repo,
        &tools.keel.display().to_string(),
        &tools.wasmtime.display().to_string(),
        &args.wrk,
    );

    if let Some(only) = args.only {
        let guests = repo.join("target/guests");
        let (name, markdown) = match only {
            Only::Warm => ("warm", extra::warm(&load_setup, &tools.keel, &guests)?),
            Only::Neighbour => (
                "neighbour",
                extra::neighbour(
                    &load_setup,
                    &tools.keel,
                    tools.keel_base.as_deref(),
                    &guests,
                    &args.keel_args,
                )?,
            ),
            Only::Start => {
                let rounds = args.rounds.unwrap_or(10);
                let start = scenarios::start(&setup(rounds), &tools.start_targets_with_anchor()?)?;
                ("start", extra::start_table(&start))
            }
            Only::KeepResident => (
                "keep-resident",
                extra::keep_resident(&load_setup, &tools.keel, &guests, &args.keep_resident)?,
            ),
        };
        let out = repo.join(format!("bench/results/{name}.md"));
        let text = format!(
            "# keel-bench --only {name}\n\n{} rounds of {} s; {}\n\n{markdown}",
            load_setup.rounds,
            load_setup.seconds,
            format_args!(
                "{}, {} cores, kernel {}, keel {}, {}",
                machine.cpu, machine.cores, machine.kernel, machine.keel, machine.date
            )
        );
        std::fs::write(&out, &text).context("writing the report")?;
        println!("{text}\nwritten: {}", out.display());
        return Ok(());
    }
    let load = scenarios::load(&load_setup, &tools.load_targets(), &CONNECTIONS)?;
    let start = scenarios::start(&setup(if quick { 5 } else { 10 }), &tools.start_targets()?)?;
    let memory = scenarios::idle_memory(
        &setup(if quick { 1 } else { 3 }),
        &tools.idle_targets(&WORKLOADS)?,
        &WORKLOADS,
    )?;

    let ratios = if compare {
        base_ratios(&load, &start, &memory)
    } else {
        anchor_ratios(&load, &start, &memory)
    };
    let report = Report {
        kind: format!(
            "{} {}",
            if quick { "quick" } else { "full" },
            if compare {
                "keel against a base build"
            } else {
                "anchors"
            }
        ),
        rounds: load_setup.rounds,
        seconds: load_setup.seconds,
        machine,
        load,
        start,
        memory,
        ratios,
    };
    let out = args.out.as_ref().map(abs).unwrap_or_else(|| {
        repo.join(if compare {
            "bench/results/compare"
        } else {
            "bench/results/latest"
        })
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).context("creating the results folder")?;
    }
    let markdown = report.markdown();
    std::fs::write(out.with_extension("md"), &markdown).context("writing the Markdown report")?;
    let json = serde_json::to_string_pretty(&report.json()).context("encoding the report")?;
    std::fs::write(out.with_extension("json"), json + "\n").context("writing the JSON report")?;
    println!("{markdown}");
    println!("written: {}.md and .json", out.display());
    Ok(())
}

/// `a / b` round by round.
fn per_round(a: &Summary, b: &Summary) -> Summary {
    Summary {
        samples: a
            .samples
            .iter()
            .zip(&b.samples)
            .map(|(x, y)| x / y)
            .collect(),
    }
}

fn find<'a>(load: &'a [LoadResult], label: &str, connections: u32) -> Option<&'a LoadResult> {
    load.iter()
        .find(|r| r.label == label && r.connections == connections)
}

/// A goal: how it reads in the report, and the check on a median.
type Goal = Option<(&'static str, fn(f64) -> bool)>;

fn ratio(name: String, per_round: Summary, goal: Goal) -> Ratio {
    let median = per_round.median();
    Ratio {
        name,
        goal: goal.map(|(text, _)| text.to_string()),
        met: goal.map(|(_, check)| check(median)),
        per_round,
    }
}

/// Throughput ratios `a / b` at every connection count.
fn load_ratios(out: &mut Vec<Ratio>, load: &[LoadResult], a: &str, b: &str, goal_at_32: Goal) {
    for c in CONNECTIONS {
        if let (Some(x), Some(y)) = (find(load, a, c), find(load, b, c)) {
            let goal = if c == 32 { goal_at_32 } else { None };
            out.push(ratio(
                format!("{a} / {b}, req/s at {c} connection(s)"),
                per_round(&x.rps, &y.rps),
                goal,
            ));
        }
    }
}

/// Resident memory per added workload, MiB, round by round: from the
/// fewest workloads to the most.
fn per_workload_mib(memory: &[(String, usize, Summary)], label: &str) -> Summary {
    let of = |n: usize| {
        memory
            .iter()
            .find(|(l, w, _)| l == label && *w == n)
            .map(|(_, _, s)| s)
    };
    let (lo, hi) = (WORKLOADS[0], WORKLOADS[WORKLOADS.len() - 1]);
    match (of(lo), of(hi)) {
        (Some(a), Some(b)) => Summary {
            samples: a
                .samples
                .iter()
                .zip(&b.samples)
                .map(|(x, y)| (y - x) / (hi - lo) as f64 / 1024.0)
                .collect(),
        },
        _ => Summary::default(),
    }
}

fn start_of<'a>(start: &'a [(String, Summary)], label: &str) -> Option<&'a Summary> {
    start.iter().find(|(l, _)| l == label).map(|(_, s)| s)
}

fn anchor_ratios(
    load: &[LoadResult],
    start: &[(String, Summary)],
    memory: &[(String, usize, Summary)],
) -> Vec<Ratio> {
    let mut out = Vec::new();
    load_ratios(
        &mut out,
        load,
        "keel hello",
        "wasmtime serve hello",
        Some(("≥ 2", |r| r >= 2.0)),
    );
    load_ratios(
        &mut out,
        load,
        "keel hello (warm instances)",
        "wasmtime serve hello",
        Some(("≥ 4", |r| r >= 4.0)),
    );
    load_ratios(&mut out, load, "keel hello", "hyper floor", None);
    load_ratios(
        &mut out,
        load,
        "keel counter",
        "keel hello",
        Some(("≥ 0.8", |r| r >= 0.8)),
    );
    if let (Some(k), Some(w)) = (
        start_of(start, "keel (warm cache)"),
        start_of(start, "wasmtime serve --allow-precompiled"),
    ) {
        out.push(ratio(
            "keel (warm cache) / wasmtime serve --allow-precompiled, start to first 200".into(),
            per_round(k, w),
            Some(("≤ 1.0", |r| r <= 1.0)),
        ));
    }
    out.push(ratio(
        format!(
            "keel: MiB resident per added idle workload ({}→{})",
            WORKLOADS[0],
            WORKLOADS[WORKLOADS.len() - 1]
        ),
        per_workload_mib(memory, "keel"),
        Some(("≤ 0.5", |r| r <= MIB_PER_WORKLOAD_GOAL)),
    ));
    out
}

fn base_ratios(
    load: &[LoadResult],
    start: &[(String, Summary)],
    memory: &[(String, usize, Summary)],
) -> Vec<Ratio> {
    let mut out = Vec::new();
    load_ratios(&mut out, load, "keel hello", "base hello", None);
    load_ratios(&mut out, load, "keel counter", "base counter", None);
    if let (Some(k), Some(b)) = (
        start_of(start, "keel (warm cache)"),
        start_of(start, "base (warm cache)"),
    ) {
        out.push(ratio(
            "keel / base, start to first 200".into(),
            per_round(k, b),
            None,
        ));
    }
    for label in ["base", "keel"] {
        out.push(ratio(
            format!("{label}: MiB resident per added idle workload"),
            per_workload_mib(memory, label),
            Some(("≤ 0.5", |r| r <= MIB_PER_WORKLOAD_GOAL)),
        ));
    }
    out
}
