//! What a host says about itself in a `HostHeartbeat`: who it is (fixed at
//! start) and the machine's figures now (read from `/proc` at each beat).

use super::messages::{HostHeartbeat, WitInterface};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Who a host is to the operator; fixed for the host's life.
#[derive(Debug, Clone)]
pub struct Identity {
    /// A UUID v4 (no `.`: the id is one subject token).
    pub id: String,
    /// The machine's name.
    pub hostname: String,
    /// A DNS-1123 label.
    pub friendly_name: String,
    /// What host selectors match.
    pub labels: BTreeMap<String, String>,
    /// When the host started, RFC 3339 in UTC.
    pub started_at: String,
    /// The tenant namespace the host is for (`--environment`), or empty.
    pub environment: String,
}

impl Identity {
    /// A fresh identity: a new id, the machine's name, and `friendly_name`
    /// or one made from the id.
    pub fn new(
        friendly_name: Option<String>,
        labels: BTreeMap<String, String>,
        environment: String,
    ) -> Identity {
        let id = uuid_v4();
        let friendly_name = friendly_name.unwrap_or_else(|| format!("keel-{}", &id[..8]));
        Identity {
            hostname: machine_name(),
            friendly_name,
            labels,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            environment,
            id,
        }
    }
}

/// What changes between beats: the host's own counts and offers.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Workloads running (or starting).
    pub workloads: u64,
    /// Their components.
    pub components: u64,
    /// The interfaces the host serves, as `ns:pkg/iface@version` names.
    pub exports: Vec<String>,
    /// The HTTP port, 0 without one.
    pub http_port: u16,
}

/// Builds heartbeats, keeping the CPU counters of the last one so that
/// each reports the CPU use since the one before.
#[derive(Debug, Default)]
pub struct Beats {
    last_cpu: Mutex<Option<CpuTimes>>,
}

impl Beats {
    /// The heartbeat of `identity` with `figures` and the machine's state now.
    pub fn beat(&self, identity: &Identity, figures: Figures) -> HostHeartbeat {
        let (total, free) = memory();
        HostHeartbeat {
            id: identity.id.clone(),
            hostname: identity.hostname.clone(),
            friendly_name: identity.friendly_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            labels: identity.labels.clone(),
            started_at: identity.started_at.clone(),
            os_arch: std::env::consts::ARCH.to_string(),
            os_name: std::env::consts::OS.to_string(),
            os_kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            system_cpu_usage: self.cpu_usage(),
            system_memory_total: total,
            system_memory_free: free,
            component_count: figures.components,
            workload_count: figures.workloads,
            imports: Vec::new(),
            exports: group(&figures.exports),
            http_port: u32::from(figures.http_port),
            environment: identity.environment.clone(),
        }
    }

    /// Percent of CPU time busy since the last beat (since boot at the
    /// first), 0 where `/proc/stat` cannot be read.
    fn cpu_usage(&self) -> f32 {
        let Some(now) = CpuTimes::read() else {
            return 0.0;
        };
        let mut last = self.last_cpu.lock().unwrap_or_else(|p| p.into_inner());
        let before = last.replace(now).unwrap_or_default();
        let total = now.total.saturating_sub(before.total);
        let idle = now.idle.saturating_sub(before.idle);
        if total == 0 {
            return 0.0;
        }
        // Both fit an f64 exactly for any realistic uptime.
        (100.0 * (total - idle.min(total)) as f64 / total as f64) as f32
    }
}

/// Interface names grouped by package and version, as `WitInterface`s,
/// in name order.
fn group(exports: &[String]) -> Vec<WitInterface> {
    let mut packages: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for name in exports {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        let Some((package, interface)) = path.split_once('/') else {
            continue;
        };
        let Some((namespace, package)) = package.split_once(':') else {
            continue;
        };
        let interfaces = packages
            .entry((namespace.into(), package.into(), version.into()))
            .or_default();
        if !interfaces.iter().any(|i| i == interface) {
            interfaces.push(interface.to_string());
        }
    }
    packages
        .into_iter()
        .map(|((namespace, package, version), interfaces)| WitInterface {
            namespace,
            package,
            version,
            interfaces,
            config: BTreeMap::new(),
            name: String::new(),
        })
        .collect()
}

/// The cumulative CPU counters of `/proc/stat`'s first line, in ticks.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes {
    total: u64,
    idle: u64,
}

impl CpuTimes {
    fn read() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal …: idle and iowait
        // are the idle time.
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some(CpuTimes {
            total: fields.iter().take(8).sum(),
            idle,
        })
    }
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes (0 where
/// unreadable).
fn memory() -> (u64, u64) {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib.saturating_mul(1024))
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The machine's host name, or `localhost`.
fn machine_name() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A random UUID (version 4, RFC 9562 variant), lower-case hex.
pub fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_version_four_uuid_without_dots() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert!(!id.contains('.'));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn exports_are_grouped_by_package_and_version() {
        let grouped = group(&[
            "wasi:keyvalue/store@0.2.0-draft".into(),
            "wasi:keyvalue/atomics@0.2.0-draft".into(),
            "wasi:keyvalue/store@0.2.0-draft".into(),
            "wasi:http/incoming-handler@0.2.6".into(),
            "run".into(),
        ]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].package, "http");
        assert_eq!(grouped[1].package, "keyvalue");
        assert_eq!(grouped[1].version, "0.2.0-draft");
        assert_eq!(grouped[1].interfaces, ["store", "atomics"]);
    }

    #[test]
    fn a_beat_reads_the_machine() {
        let identity = Identity::new(None, BTreeMap::new(), String::new());
        assert!(identity.friendly_name.starts_with("keel-"));
        let beat = Beats::default().beat(&identity, Figures::default());
        assert!(beat.system_memory_total > 0);
        assert!(beat.system_memory_free <= beat.system_memory_total);
        assert!((0.0..=100.0).contains(&beat.system_cpu_usage));
        assert!(!beat.os_kernel.is_empty());
    }
}
