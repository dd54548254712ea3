//! The results of one run as Markdown (`latest.md`) and JSON (`latest.json`).

use crate::machine::Machine;
use crate::scenarios::LoadResult;
use crate::stats::Summary;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// A comparison drawn from the run: the median and range of its per-round
/// values, and the goal it is held to, if any.
#[derive(Debug, Clone)]
pub struct Ratio {
    /// What is compared.
    pub name: String,
    /// One value per round (rounds pair up, so drift cancels).
    pub per_round: Summary,
    /// The goal in words (`≥ 2`), if there is one.
    pub goal: Option<String>,
    /// Whether the median meets the goal.
    pub met: Option<bool>,
}

/// Everything one run measured.
pub struct Report {
    /// `quick` or `full`, and whether keel was compared with its anchors or
    /// with an earlier keel.
    pub kind: String,
    /// Rounds and seconds per `wrk` run.
    pub rounds: usize,
    /// Seconds per `wrk` run.
    pub seconds: u32,
    /// Where it ran.
    pub machine: Machine,
    /// HTTP load.
    pub load: Vec<LoadResult>,
    /// Start to first 200, ms.
    pub start: Vec<(String, Summary)>,
    /// Resident memory, KiB, by target and number of workloads.
    pub memory: Vec<(String, usize, Summary)>,
    /// Comparisons.
    pub ratios: Vec<Ratio>,
}

fn spread(s: &Summary, digits: usize) -> String {
    format!(
        "{:.*} ({:.*}–{:.*})",
        digits,
        s.median(),
        digits,
        s.min(),
        digits,
        s.max()
    )
}

impl Report {
    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# keel benchmarks: {} run\n", self.kind);
        let _ = writeln!(
            out,
            "Written by `bench/src/main.rs` (`make bench-quick` / `make bench-anchors`). \
             Figures are medians over {} interleaved rounds with the range (min–max) in \
             parentheses; servers pinned to one core, `wrk` (one thread, {} s a run) to the other.\n",
            self.rounds, self.seconds
        );
        let _ = writeln!(out, "| machine | |\n|---|---|");
        for (k, v) in [
            ("CPU", m.cpu.clone()),
            ("cores", m.cores.to_string()),
            ("kernel", m.kernel.clone()),
            ("keel", m.keel.clone()),
            ("wasmtime", m.wasmtime.clone()),
            ("wrk", m.wrk.clone()),
            ("date", m.date.clone()),
        ] {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        let _ = writeln!(out, "\n## HTTP load\n");
        let _ = writeln!(
            out,
            "| server | connections | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|"
        );
        for r in &self.load {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.label,
                r.connections,
                spread(&r.rps, 0),
                spread(&r.p50_ms, 3),
                spread(&r.p99_ms, 3),
                r.errors
            );
        }
        let _ = writeln!(
            out,
            "\n## Process start to first 200\n\n| server | ms |\n|---|---|"
        );
        for (label, s) in &self.start {
            let _ = writeln!(out, "| {label} | {} |", spread(s, 1));
        }
        let _ = writeln!(
            out,
            "\n## Resident memory of an idle host (VmRSS)\n\n| host | workloads | MiB |\n|---|---|---|"
        );
        for (label, n, s) in &self.memory {
            let mib = Summary {
                samples: s.samples.iter().map(|k| k / 1024.0).collect(),
            };
            let _ = writeln!(out, "| {label} | {n} | {} |", spread(&mib, 1));
        }
        let _ = writeln!(
            out,
            "\n## Ratios\n\n| comparison | median (range over rounds) | goal | met |\n|---|---|---|---|"
        );
        for r in &self.ratios {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} |",
                r.name,
                spread(&r.per_round, 2),
                r.goal.as_deref().unwrap_or("")
            );
        }
        out
    }

    /// The same data as JSON.
    pub fn json(&self) -> Value {
        json!({
            "kind": self.kind,
            "rounds": self.rounds,
            "seconds_per_load_run": self.seconds,
            "machine": self.machine.to_json(),
            "load": self.load.iter().map(|r| json!({
                "server": r.label,
                "connections": r.connections,
                "requests_per_sec": r.rps.to_json(),
                "p50_ms": r.p50_ms.to_json(),
                "p99_ms": r.p99_ms.to_json(),
                "errors": r.errors,
            })).collect::<Vec<_>>(),
            "start_to_first_200_ms": self.start.iter().map(|(label, s)| json!({
                "server": label, "ms": s.to_json(),
            })).collect::<Vec<_>>(),
            "idle_memory_kib": self.memory.iter().map(|(label, n, s)| json!({
                "host": label, "workloads": n, "vmrss_kib": s.to_json(),
            })).collect::<Vec<_>>(),
            "ratios": self.ratios.iter().map(|r| json!({
                "comparison": r.name,
                "per_round": r.per_round.to_json(),
                "goal": r.goal,
                "met": r.met,
            })).collect::<Vec<_>>(),
        })
    }
}
