//! Whether a [`WorkloadSpec`] can run: the checks the manifest loader makes
//! field by field (with file:line:col), made again for specs handed to the
//! library API, so both paths refuse the same things. Each rule lives once,
//! here or in [`crate::policy`]; the loader calls the same functions.

use super::{ByteSize, Limits, PluginSpec, WorkloadSpec};
use crate::policy::authority::{AuthorityPattern, OutgoingAllowlist};
use crate::policy::names::{printable, validate_host_name, validate_name};
use crate::policy::sockets::{SocketAllowlist, SocketPattern};
use std::collections::BTreeSet;
use std::time::Duration;

/// The smallest linear memory an instance may be limited to: one Wasm page.
pub const MIN_MEMORY: ByteSize = ByteSize(64 << 10);

/// A spec that cannot run: the field at fault (as a path, e.g.
/// `limits.memory` or `components[0].source`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct InvalidSpec {
    /// The field, as a dotted path into the spec.
    pub field: String,
    /// What is wrong with it, and what was expected.
    pub message: String,
}

impl InvalidSpec {
    fn new(field: impl Into<String>, message: impl Into<String>) -> InvalidSpec {
        InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl WorkloadSpec {
    /// Checks every field as strictly as the manifest loader does: names,
    /// component files, the HTTP host, allowlists, limits, volumes,
    /// environment and subscriptions. [`Host::start_workload`] calls it.
    ///
    /// [`Host::start_workload`]: crate::Host::start_workload
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        validate_name(&self.id.namespace).map_err(|m| InvalidSpec::new("id.namespace", m))?;
        validate_name(&self.id.name).map_err(|m| InvalidSpec::new("id.name", m))?;
        if let Some(data_name) = &self.data_name {
            validate_name(data_name).map_err(|m| InvalidSpec::new("data_name", m))?;
        }
        if self.components.is_empty() && self.service.is_none() {
            return Err(InvalidSpec::new(
                "components",
                "a workload needs a component or a service",
            ));
        }
        let mut names = BTreeSet::new();
        if let Some(service) = &self.service {
            let field = |f: &str| format!("service.{f}");
            let component = &service.component;
            validate_name(&component.name).map_err(|m| InvalidSpec::new(field("name"), m))?;
            names.insert(&component.name);
            component
                .source
                .check()
                .map_err(|m| InvalidSpec::new(field("source"), m))?;
            if let Some(memory) = service.memory
                && memory < MIN_MEMORY
            {
                return Err(InvalidSpec::new(
                    field("memory"),
                    format!("{memory} is below the smallest memory, {MIN_MEMORY}"),
                ));
            }
        }
        for (i, component) in self.components.iter().enumerate() {
            let field = |f: &str| format!("components[{i}].{f}");
            validate_name(&component.name).map_err(|m| InvalidSpec::new(field("name"), m))?;
            if !names.insert(&component.name) {
                return Err(InvalidSpec::new(
                    field("name"),
                    format!(
                        "component `{}` is declared twice (or names the service)",
                        component.name
                    ),
                ));
            }
            component
                .source
                .check()
                .map_err(|m| InvalidSpec::new(field("source"), m))?;
            component
                .warm
                .check(self.limits.max_instances)
                .map_err(|(f, m)| InvalidSpec::new(field(f), m))?;
        }
        if let Some(host) = &self.http.host {
            check_http_host(host).map_err(|m| InvalidSpec::new("http.host", m))?;
        }
        if !self.http.aliases.is_empty() && self.http.host.is_none() {
            return Err(InvalidSpec::new(
                "http.aliases",
                "aliases need a host name (`http.host`) first",
            ));
        }
        for (i, alias) in self.http.aliases.iter().enumerate() {
            check_http_host(alias)
                .map_err(|m| InvalidSpec::new(format!("http.aliases[{i}]"), m))?;
        }
        OutgoingAllowlist::parse(&self.http.outgoing, self.http.block_private)
            .map_err(|m| InvalidSpec::new("http.outgoing", m))?;
        for pattern in &self.sockets.allow {
            SocketPattern::parse(pattern).map_err(|m| InvalidSpec::new("sockets.allow", m))?;
        }
        for pattern in &self.sockets.listen {
            SocketPattern::parse(pattern).map_err(|m| InvalidSpec::new("sockets.listen", m))?;
        }
        self.limits.check()?;
        for (i, volume) in self.volumes.iter().enumerate() {
            if !volume.guest.starts_with('/') {
                return Err(InvalidSpec::new(
                    format!("volumes[{i}].guest"),
                    format!("volume guest path `{}` must be absolute", volume.guest),
                ));
            }
            if !volume.host.is_dir() {
                return Err(InvalidSpec::new(
                    format!("volumes[{i}].host"),
                    format!("volume folder {} does not exist", volume.host.display()),
                ));
            }
        }
        for (key, value) in &self.env {
            check_env(key, value).map_err(|m| InvalidSpec::new("env", m))?;
        }
        for (i, subscription) in self.subscriptions.iter().enumerate() {
            check_subject(&self.id.namespace, &subscription.subject)
                .map_err(|m| InvalidSpec::new(format!("subscriptions[{i}].subject"), m))?;
            if let Some(queue) = &subscription.queue {
                check_queue(queue)
                    .map_err(|m| InvalidSpec::new(format!("subscriptions[{i}].queue"), m))?;
            }
        }
        Ok(())
    }
}

impl PluginSpec {
    /// Checks a plugin's declaration as strictly as the manifest loader
    /// does: its name, its file, its limits and its grants.
    /// [`Host::add_plugin`](crate::Host::add_plugin) calls it.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        validate_name(&self.name).map_err(|m| InvalidSpec::new("name", m))?;
        if let Some(source) = &self.source {
            source.check().map_err(|m| InvalidSpec::new("source", m))?;
        }
        check_memory(self.memory).map_err(|m| InvalidSpec::new("memory", m))?;
        check_timeout("call_timeout", "call into the plugin", self.call_timeout)
            .map_err(|m| InvalidSpec::new("call_timeout", m))?;
        for pattern in &self.grants.outgoing_http {
            AuthorityPattern::parse(pattern)
                .map_err(|m| InvalidSpec::new("grants.outgoing_http", m))?;
        }
        for pattern in &self.grants.sockets {
            SocketPattern::parse(pattern).map_err(|m| InvalidSpec::new("grants.sockets", m))?;
        }
        for pattern in &self.grants.listen {
            SocketPattern::parse(pattern).map_err(|m| InvalidSpec::new("grants.listen", m))?;
        }
        self.check_config_addresses()?;
        crate::policy::grants::SubjectGrants::parse(&self.grants.subjects)
            .map_err(|m| InvalidSpec::new("grants.subjects", m))?;
        for wrapped in self.wraps.named() {
            validate_name(wrapped).map_err(|m| InvalidSpec::new("wraps", m))?;
        }
        for interface in self.wraps.interfaces.keys() {
            if keel_compose::InterfaceName::parse(interface).is_none() {
                return Err(InvalidSpec::new(
                    "wraps",
                    format!(
                        "`{interface}` is not an interface name (`namespace:package/interface`)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl PluginSpec {
    /// Refuses a shared plugin whose config names a socket address (see
    /// [`is_address_key`](crate::policy::sockets::is_address_key)) its
    /// `sockets` grants do not cover: it could never connect there, and
    /// saying so at start beats an error on its first call. A composed
    /// plugin reaches no sockets at all (see `plugins::composed`).
    fn check_config_addresses(&self) -> Result<(), InvalidSpec> {
        if self.mode != super::LinkMode::Shared {
            return Ok(());
        }
        let grants = SocketAllowlist::parse(&self.grants.sockets, &self.grants.listen)
            .map_err(|m| InvalidSpec::new("grants.sockets", m))?;
        match grants.ungranted_config_address(&self.config) {
            None => Ok(()),
            Some((key, address)) => Err(InvalidSpec::new(
                format!("config.{key}"),
                format!(
                    "plugin `{}` would connect to `{address}`, which its `[plugin.grants] \
                     sockets` does not grant: add \"{address}\" there",
                    self.name
                ),
            )),
        }
    }
}

impl Limits {
    /// Refuses limits under which no invocation could ever succeed.
    pub fn check(&self) -> Result<(), InvalidSpec> {
        check_memory(self.memory).map_err(|m| InvalidSpec::new("limits.memory", m))?;
        check_memory_total(self.memory, self.memory_total())
            .map_err(|m| InvalidSpec::new("limits.memory_total", m))?;
        check_timeout("timeout", "invocation", self.timeout)
            .map_err(|m| InvalidSpec::new("limits.timeout", m))?;
        if self.max_instances == 0 {
            return Err(InvalidSpec::new(
                "limits.max_instances",
                "`max_instances` must be at least 1",
            ));
        }
        if self.max_running == Some(0) {
            return Err(InvalidSpec::new(
                "limits.max_running",
                "`max_running` must be at least 1",
            ));
        }
        Ok(())
    }
}

impl Limits {
    /// Refuses a `max_instances` larger than the invocations the host runs
    /// at once (`capacity`: its instance pool less the shared plugins'
    /// reserve), since the workload could never use them. The library
    /// checks it at start, where the host is known.
    pub fn check_capacity(&self, capacity: u32) -> Result<(), InvalidSpec> {
        if self.max_instances > capacity {
            return Err(InvalidSpec::new(
                "limits.max_instances",
                format!(
                    "`max_instances` ({}) is more than the {capacity} invocations this host runs \
                     at once (its instance pool less the slots kept for shared plugins): \
                     the workload could never use them",
                    self.max_instances
                ),
            ));
        }
        Ok(())
    }
}

/// An instance's memory limit: at least one Wasm page.
pub(crate) fn check_memory(memory: ByteSize) -> Result<(), String> {
    if memory < MIN_MEMORY {
        return Err(format!(
            "`memory` must be at least {} bytes (one Wasm page, 64KiB): no instance can start with less",
            MIN_MEMORY.0
        ));
    }
    Ok(())
}

/// A workload's memory budget: room for at least one instance.
pub(crate) fn check_memory_total(memory: ByteSize, total: ByteSize) -> Result<(), String> {
    if total < memory {
        return Err(format!(
            "`memory_total` ({total}) must be at least `memory` ({memory}), one instance's limit"
        ));
    }
    Ok(())
}

/// A time limit named `key`, on every `what`: more than nothing.
pub(crate) fn check_timeout(key: &str, what: &str, timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() {
        return Err(format!(
            "`{key}` must be more than 0s: every {what} would fail"
        ));
    }
    Ok(())
}

/// The Host header routed to a workload: a lower-case host name.
pub(crate) fn check_http_host(host: &str) -> Result<(), String> {
    validate_host_name(host)?;
    if host.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "`{host}` must be written in lower case (Host headers are compared lower-cased)"
        ));
    }
    Ok(())
}

/// An environment variable: a name without `=` or NUL, a value without NUL.
pub(crate) fn check_env(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
        return Err(format!(
            "environment variable `{}`: a name must be non-empty without `=` or NUL, a value without NUL",
            printable(key)
        ));
    }
    Ok(())
}

/// A subscription subject, as a workload of `namespace` writes it: valid
/// by [`crate::policy::subject`]'s rules as the broker sees it, with the
/// namespace prefixed (which counts towards the length limit).
pub(crate) fn check_subject(namespace: &str, subject: &str) -> Result<(), String> {
    use crate::policy::subject::{Use, check};
    check(&format!("{namespace}.{subject}"), Use::Subscribe).map_err(|e| {
        format!("{e} (dot-separated tokens, `*` for one token, `>` last for the rest)")
    })
}

/// A queue group name: one NATS token without wildcards.
pub(crate) fn check_queue(queue: &str) -> Result<(), String> {
    let valid = !queue.is_empty()
        && queue.len() <= crate::policy::subject::MAX_SUBJECT_BYTES
        && !queue
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '>');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a queue group name: no white space or wildcards",
            printable(queue)
        ))
    }
}

/// A component file: it must exist and be a regular file (not a folder, a
/// device such as `/dev/zero`, or a pipe), checked before anything reads it.
pub(crate) fn check_component_file(path: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!(
            "component path {} is not a regular file",
            path.display()
        )),
        Err(e) => Err(format!("component file {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{WorkloadId, WorkloadSpec};

    fn spec() -> WorkloadSpec {
        // Tests run in the crate's folder, where Cargo.toml stands in for a component.
        WorkloadSpec::single(WorkloadId::new("team-a", "api"), "Cargo.toml")
    }

    fn field_of(spec: &WorkloadSpec) -> String {
        spec.validate().expect_err("invalid").field
    }

    #[test]
    fn a_plain_spec_is_valid() {
        spec().validate().unwrap();
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let mut s = spec();
        s.id.namespace = "a.b".into();
        assert_eq!(field_of(&s), "id.namespace");
        let mut s = spec();
        s.http.host = Some("*.example.com".into());
        assert_eq!(field_of(&s), "http.host");
        let mut s = spec();
        s.http.host = Some("api\u{7}.example.com".into());
        assert_eq!(field_of(&s), "http.host");
        let mut s = spec();
        s.http.outgoing = vec!["a:b:c".into()];
        assert_eq!(field_of(&s), "http.outgoing");
        let mut s = spec();
        s.limits.memory = ByteSize(0);
        assert_eq!(field_of(&s), "limits.memory");
        let mut s = spec();
        s.limits.timeout = Duration::ZERO;
        assert_eq!(field_of(&s), "limits.timeout");
        let mut s = spec();
        s.limits.max_instances = 0;
        assert_eq!(field_of(&s), "limits.max_instances");
        let mut s = spec();
        s.components[0].source = std::path::PathBuf::from("/dev/zero").into();
        assert_eq!(field_of(&s), "components[0].source");
        s.components[0].source = b"\0asm\x01\0\0\0".to_vec().into();
        assert_eq!(field_of(&s), "components[0].source");
        let mut s = spec();
        s.env.insert("A=B".into(), "x".into());
        assert_eq!(field_of(&s), "env");
        let mut s = spec();
        s.subscriptions.push(crate::spec::SubscriptionSpec {
            subject: "x".repeat(crate::policy::subject::MAX_SUBJECT_BYTES),
            queue: None,
        });
        assert_eq!(field_of(&s), "subscriptions[0].subject");
    }

    #[test]
    fn a_plugin_spec_is_checked_and_the_field_named() {
        use crate::spec::LinkMode;
        let plugin = || PluginSpec::new("tally", None, LinkMode::Shared);
        plugin().validate().unwrap();
        let mut p = plugin();
        p.memory = ByteSize(0);
        assert_eq!(p.validate().unwrap_err().field, "memory");
        let mut p = plugin();
        p.call_timeout = Duration::ZERO;
        assert_eq!(p.validate().unwrap_err().field, "call_timeout");
        let mut p = plugin();
        p.source = Some(std::path::PathBuf::from("/dev/zero").into());
        assert_eq!(p.validate().unwrap_err().field, "source");
        let mut p = plugin();
        p.grants.subjects = vec!["a..b".into()];
        assert_eq!(p.validate().unwrap_err().field, "grants.subjects");
    }

    #[test]
    fn a_shared_plugin_configured_with_an_ungranted_address_is_refused() {
        use crate::spec::LinkMode;
        let mut p = PluginSpec::new("kv", None, LinkMode::Shared);
        p.config.insert("address".into(), "127.0.0.1:6380".into());
        let refused = p.validate().unwrap_err();
        assert_eq!(refused.field, "config.address");
        assert!(
            refused.message.contains("add \"127.0.0.1:6380\""),
            "{refused}"
        );
        p.grants.sockets = vec!["127.0.0.1:6380".into()];
        p.validate().unwrap();
        // Composed, it reaches no sockets: its config is its own business.
        let mut p = PluginSpec::new("kv", None, LinkMode::Composed);
        p.config.insert("address".into(), "127.0.0.1:6380".into());
        p.validate().unwrap();
    }

    #[test]
    fn max_instances_must_fit_the_host() {
        let mut s = spec();
        s.limits.max_instances = 9;
        assert!(s.limits.check_capacity(9).is_ok());
        let refused = s.limits.check_capacity(8).expect_err("too many");
        assert_eq!(refused.field, "limits.max_instances");
        assert!(refused.message.contains("(9)"), "{}", refused.message);
    }

    #[test]
    fn subjects_follow_nats_rules() {
        for good in ["orders", "orders.*", "orders.>", "*.new", "_INBOX.x"] {
            assert!(check_subject("ns", good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", "a.>.b", ">.a", "a b", "a\tb"] {
            assert!(check_subject("ns", bad).is_err(), "{bad:?}");
        }
    }
}
