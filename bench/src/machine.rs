//! What the figures were measured on: CPU, cores, kernel, tool versions, date.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// The machine and the versions of everything measured.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs available.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `keel --version` and the git commit it was built from.
    pub keel: String,
    /// `wasmtime --version`.
    pub wasmtime: String,
    /// First line of `wrk -v`.
    pub wrk: String,
    /// UTC date and time of the run.
    pub date: String,
}

impl Machine {
    /// Collects everything; a part that cannot be read is `unknown`.
    pub fn collect(repo: &Path, keel: &str, wasmtime: &str, wrk: &str) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name")?
                        .split_once(':')
                        .map(|(_, m)| m.trim().to_string())
                })
            })
            .unwrap_or_else(unknown);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|_| unknown());
        let commit = first_line(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["describe", "--always", "--dirty"]),
        );
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            keel: format!(
                "{} ({commit})",
                first_line(Command::new(keel).arg("--version"))
            ),
            wasmtime: first_line(Command::new(wasmtime).arg("--version")),
            wrk: first_line(Command::new(wrk).arg("-v")),
            date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        }
    }

    /// The same as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "cpu": self.cpu, "cores": self.cores, "kernel": self.kernel,
            "keel": self.keel, "wasmtime": self.wasmtime, "wrk": self.wrk, "date": self.date,
        })
    }
}

fn unknown() -> String {
    "unknown".to_string()
}

/// The first line a command prints (stdout, else stderr), whatever its exit
/// status (`wrk -v` exits 1).
fn first_line(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        }
        Err(_) => unknown(),
    }
}
