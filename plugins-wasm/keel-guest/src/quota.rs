//! Per-namespace quotas of the in-memory plugins.
//!
//! A shared plugin instance has a fixed amount of linear memory; a tenant
//! that filled it would make the next allocation fail, which traps the
//! instance and restarts it empty. So the in-memory plugins count what
//! each namespace stores and refuse, with an error value, a write that
//! would take it over its quota.
//!
//! ```
//! use keel_guest::quota::{Quota, Usage};
//! let quota = Quota { max_bytes: 10, max_entries: 2, entries_key: "max_keys_per_namespace" };
//! let mut usage = Usage::default();
//! assert!(usage.apply(&quota, "ns", 8, 1).is_ok());
//! assert!(usage.apply(&quota, "ns", 3, 1).unwrap_err().starts_with("quota"));
//! assert!(usage.apply(&quota, "ns", -8, -1).is_ok());
//! assert_eq!(usage, Usage { bytes: 0, entries: 0 });
//! ```

/// The bounds on one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of keys, names and values.
    pub max_bytes: u64,
    /// Keys, objects, buckets or containers.
    pub max_entries: u64,
    /// The config key of `max_entries`, for error messages.
    pub entries_key: &'static str,
}

/// Config key of the byte quota.
pub const MAX_BYTES: &str = "max_bytes_per_namespace";

/// A namespace's byte quota when the config names none: a quarter of a
/// shared instance's default memory (256 MiB), which leaves room for the
/// maps' own overhead and for the copies a call makes of the values it
/// passes.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// A namespace's entry quota when the config names none.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

impl Quota {
    /// The quota `pairs` (the plugin's baked config) set: `max_bytes_per_namespace`
    /// and `entries_key`, each a plain number, defaults where missing or
    /// unreadable.
    pub fn from_config(pairs: &[(String, String)], entries_key: &'static str) -> Quota {
        let read = |key: &str, default: u64| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Quota {
            max_bytes: read(MAX_BYTES, DEFAULT_MAX_BYTES),
            max_entries: read(entries_key, DEFAULT_MAX_ENTRIES),
            entries_key,
        }
    }
}

/// What one namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of keys, names and values.
    pub bytes: u64,
    /// Entries.
    pub entries: u64,
}

impl Usage {
    /// Adds `bytes` and `entries` (either may be negative) unless that
    /// takes `namespace` over `quota`: then nothing changes, and the error
    /// says which bound. A change that shrinks both always applies.
    pub fn apply(
        &mut self,
        quota: &Quota,
        namespace: &str,
        bytes: i64,
        entries: i64,
    ) -> Result<(), String> {
        let new_bytes = self.bytes.saturating_add_signed(bytes);
        let new_entries = self.entries.saturating_add_signed(entries);
        if bytes > 0 && new_bytes > quota.max_bytes {
            return Err(format!(
                "quota exceeded: namespace `{namespace}` would hold {new_bytes} bytes, over its \
                 {MAX_BYTES} of {}",
                quota.max_bytes
            ));
        }
        if entries > 0 && new_entries > quota.max_entries {
            return Err(format!(
                "quota exceeded: namespace `{namespace}` would hold {new_entries} entries, over \
                 its {} of {}",
                quota.entries_key, quota.max_entries
            ));
        }
        self.bytes = new_bytes;
        self.entries = new_entries;
        Ok(())
    }
}

/// A length as a signed byte count (lengths in a 32-bit guest always fit).
pub fn len(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
