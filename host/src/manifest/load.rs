//! Reading a manifest file: TOML parsing, validation, path resolution, and
//! errors that point at `file:line:column`.

use super::{Manifest, raw};
use crate::spec::validate::{
    check_component_file, check_env, check_http_host, check_memory, check_memory_total,
    check_queue, check_subject, check_timeout,
};
use crate::spec::{
    ComponentSource, ComponentSpec, HttpSpec, Limits, LinkMode, Location, NatsSpec, PluginGrants,
    PluginSpec, SocketsSpec, SubscriptionSpec, VolumeSpec, WorkloadId, WorkloadSpec, validate_name,
};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

mod service;

/// The largest manifest file read.
pub const MAX_MANIFEST_SIZE: u64 = 1 << 20;

/// A manifest that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read at all.
    #[error("{}: cannot read the manifest: {source}", file.display())]
    Read {
        /// The manifest file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the problem is.
        location: Location,
        /// What was expected.
        message: String,
    },
}

impl ManifestError {
    /// Where the problem is, when it is inside the file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Invalid { location, .. } => Some(location),
        }
    }
}

/// Maps byte offsets in the manifest text to [`Location`]s.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            location: self.locate(span.start),
            message: message.into(),
        }
    }
}

impl Manifest {
    /// Reads and validates the manifest at `path`. Relative paths inside it
    /// are resolved against the manifest's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Manifest::load_as(path.as_ref(), false)
    }

    /// Reads a host configuration at `path`: a manifest with `[nats]`,
    /// `[[plugin]]` and `[[registry]]` tables and no `[[workload]]` (what
    /// `keel host` runs comes from its control plane).
    pub fn load_host_config(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Manifest::load_as(path.as_ref(), true)
    }

    fn load_as(path: &Path, host_config: bool) -> Result<Manifest, ManifestError> {
        let read_error = |source| ManifestError::Read {
            file: path.to_path_buf(),
            source,
        };
        // Checked before reading: `/dev/zero` or a FIFO would never end.
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if !metadata.is_file() || metadata.len() > MAX_MANIFEST_SIZE {
            return Err(read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a manifest must be a regular file of at most {MAX_MANIFEST_SIZE} bytes"),
            )));
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Manifest::parse_as(path, &text, host_config)
    }

    /// Validates manifest `text` as if it had been read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse_as(path, text, false)
    }

    /// [`Manifest::parse`]; a host configuration has no workloads, a
    /// manifest at least one.
    fn parse_as(path: &Path, text: &str, host_config: bool) -> Result<Manifest, ManifestError> {
        let source = Source { file: path, text };
        let raw: raw::Manifest = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            source.error(e.span().unwrap_or(0..0), message)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let nats = match raw.nats {
            Some(nats) => {
                let url = nats.url.get_ref().trim().to_string();
                if crate::spec::NatsSpec::url(url.clone()).servers().is_err() {
                    return Err(source.error(
                        nats.url.span(),
                        "`url` must be nats://host:port or tls://host:port, several separated by commas",
                    ));
                }
                Some(NatsSpec {
                    url,
                    credentials: nats.credentials.map(|p| base.join(p)),
                    tls_ca: nats.tls_ca.map(|p| base.join(p)),
                    tls_client: match (nats.tls_cert, nats.tls_key) {
                        (Some(cert), Some(key)) => Some((base.join(cert), base.join(key))),
                        (None, None) => None,
                        _ => {
                            return Err(source.error(
                                nats.url.span(),
                                "`tls_cert` and `tls_key` go together: a client certificate needs its key",
                            ));
                        }
                    },
                    name: nats.name,
                    max_streams_per_namespace: nats
                        .max_streams_per_namespace
                        .unwrap_or(crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE),
                    subjects: nats.subjects.unwrap_or_default(),
                })
            }
            None => None,
        };
        let mut registries: Vec<crate::spec::RegistrySpec> = Vec::new();
        for registry in raw.registry {
            let spec = crate::spec::RegistrySpec {
                host: registry.host.get_ref().trim().to_string(),
                insecure: registry.insecure,
                credentials: registry.credentials.map(|p| base.join(p)),
                username_env: registry.username_env,
                password_env: registry.password_env,
            };
            spec.validate()
                .map_err(|m| source.error(registry.host.span(), m))?;
            if registries.iter().any(|r| r.host == spec.host) {
                return Err(source.error(
                    registry.host.span(),
                    format!("registry `{}` is declared twice", spec.host),
                ));
            }
            registries.push(spec);
        }
        let mut plugins: Vec<PluginSpec> = Vec::new();
        for plugin in raw.plugin {
            let spec = plugin_spec(&source, &base, &plugin)?;
            if plugins.iter().any(|p| p.name == spec.name) {
                return Err(source.error(
                    plugin.name.span(),
                    format!("plugin `{}` is declared twice", spec.name),
                ));
            }
            plugins.push(spec);
        }
        let mut seen = BTreeSet::new();
        let mut hosts = BTreeSet::new();
        let mut workloads = Vec::new();
        for workload in raw.workload {
            for (interface, plugin) in &workload.plugins {
                if !plugins.iter().any(|p| &p.name == plugin.get_ref()) {
                    return Err(source.error(
                        plugin.span(),
                        format!(
                            "`{interface}` is given to plugin `{}`, which no `[[plugin]]` declares",
                            plugin.get_ref()
                        ),
                    ));
                }
            }
            let spec = workload_spec(&source, &base, workload)?;
            if !seen.insert(spec.id.clone()) {
                return Err(ManifestError::Invalid {
                    location: spec_location(&spec, path),
                    message: format!("workload `{}` is declared twice", spec.id),
                });
            }
            if let Some(host) = &spec.http.host
                && !hosts.insert(host.clone())
            {
                return Err(ManifestError::Invalid {
                    location: spec
                        .http
                        .host_origin
                        .clone()
                        .unwrap_or_else(|| spec_location(&spec, path)),
                    message: format!("HTTP host `{host}` is routed to two workloads"),
                });
            }
            workloads.push(spec);
        }
        if workloads.is_empty() && !host_config {
            return Err(source.error(0..0, "the manifest declares no `[[workload]]`"));
        }
        if !workloads.is_empty() && host_config {
            return Err(source.error(
                0..0,
                "a host configuration declares no `[[workload]]`: the control plane starts them",
            ));
        }
        Ok(Manifest {
            source: Some(path.to_path_buf()),
            nats,
            plugins,
            workloads,
            registries,
        })
    }
}

fn spec_location(spec: &WorkloadSpec, file: &Path) -> Location {
    spec.components
        .first()
        .and_then(|c| c.origin.clone())
        .unwrap_or(Location {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
        })
}

fn checked_name(
    source: &Source<'_>,
    name: &toml::Spanned<String>,
) -> Result<String, ManifestError> {
    validate_name(name.get_ref()).map_err(|m| source.error(name.span(), m))?;
    Ok(name.get_ref().clone())
}

fn workload_spec(
    source: &Source<'_>,
    base: &Path,
    raw: raw::Workload,
) -> Result<WorkloadSpec, ManifestError> {
    let namespace = match &raw.namespace {
        Some(ns) => checked_name(source, ns)?,
        None => "default".to_string(),
    };
    let id = WorkloadId::new(namespace, checked_name(source, &raw.name)?);
    let name_span = raw.name.span();
    if raw.component.is_empty() && raw.service.is_none() {
        return Err(source.error(
            raw.name.span(),
            format!(
                "workload `{id}` has no `[[workload.component]]` (nor `[workload.service]`): add one with a `path`"
            ),
        ));
    }
    let mut components = Vec::new();
    let mut names = BTreeSet::new();
    for component in &raw.component {
        let spec = component_spec(source, base, component)?;
        if !names.insert(spec.name.clone()) {
            let span = component
                .name
                .as_ref()
                .map_or(component.path.span(), |n| n.span());
            return Err(source.error(
                span,
                format!("component `{}` is declared twice in `{id}`", spec.name),
            ));
        }
        components.push(spec);
    }
    let http = http_spec(source, raw.http)?;
    let sockets = sockets_spec(source, raw.sockets)?;
    let mut volumes = Vec::new();
    for volume in raw.volume {
        let span = volume.span();
        let volume = volume.into_inner();
        let host = base.join(&volume.host);
        if !host.is_dir() {
            return Err(source.error(
                span,
                format!("volume folder {} does not exist", host.display()),
            ));
        }
        if !volume.guest.starts_with('/') {
            return Err(source.error(
                span,
                format!("volume guest path `{}` must be absolute", volume.guest),
            ));
        }
        volumes.push(VolumeSpec {
            host,
            guest: volume.guest,
            read_only: volume.read_only,
        });
    }
    let defaults = Limits::default();
    let max_instances = match raw.limits.max_instances {
        Some(n) if *n.get_ref() == 0 => {
            return Err(source.error(n.span(), "`max_instances` must be at least 1"));
        }
        Some(n) => n.into_inner(),
        None => defaults.max_instances,
    };
    let memory = match raw.limits.memory {
        Some(memory) => {
            check_memory(*memory.get_ref()).map_err(|m| source.error(memory.span(), m))?;
            memory.into_inner()
        }
        None => defaults.memory,
    };
    let timeout = match raw.limits.timeout {
        Some(timeout) => {
            check_timeout("timeout", "invocation", timeout.get_ref().0)
                .map_err(|m| source.error(timeout.span(), m))?;
            timeout.into_inner().0
        }
        None => defaults.timeout,
    };
    let memory_total = match raw.limits.memory_total {
        Some(total) => {
            check_memory_total(memory, *total.get_ref())
                .map_err(|m| source.error(total.span(), m))?;
            Some(total.into_inner())
        }
        None => None,
    };
    let limits = Limits {
        memory,
        memory_total,
        timeout,
        max_instances,
        queue_timeout: raw.limits.queue_timeout.unwrap_or(defaults.queue_timeout),
        max_request_body: raw
            .limits
            .max_request_body
            .unwrap_or(defaults.max_request_body),
        log_rate: raw.limits.log_rate.unwrap_or(defaults.log_rate),
        max_running: raw.limits.max_running,
    };
    let plugins = raw
        .plugins
        .into_iter()
        .map(|(interface, plugin)| (interface, plugin.into_inner()))
        .collect();
    let mut subscriptions = Vec::new();
    for subscription in raw.subscription {
        let subject = subscription.subject.get_ref();
        check_subject(&id.namespace, subject)
            .map_err(|m| source.error(subscription.subject.span(), m))?;
        if let Some(queue) = &subscription.queue {
            check_queue(queue).map_err(|m| source.error(subscription.subject.span(), m))?;
        }
        subscriptions.push(SubscriptionSpec {
            subject: subject.clone(),
            queue: subscription.queue,
        });
    }
    for (key, value) in &raw.env {
        check_env(key, value).map_err(|m| source.error(raw.name.span(), m))?;
    }
    let service = raw
        .service
        .map(|raw| service::service_spec(source, base, raw))
        .transpose()?;
    let data_name = raw
        .data_name
        .as_ref()
        .map(|name| checked_name(source, name))
        .transpose()?;
    let spec = WorkloadSpec {
        id,
        components,
        env: raw.env,
        http,
        sockets,
        volumes,
        limits,
        plugins,
        subscriptions,
        data_name,
        service,
    };
    // Every field was checked where it is written; this is the library's
    // check of the whole spec, so the two can never drift apart.
    spec.validate()
        .map_err(|e| source.error(name_span, e.to_string()))?;
    Ok(spec)
}

fn plugin_spec(
    source: &Source<'_>,
    base: &Path,
    raw: &raw::Plugin,
) -> Result<PluginSpec, ManifestError> {
    let name = checked_name(source, &raw.name)?;
    let (component, default_mode, at) = match &raw.path {
        Some(path) if crate::spec::ImageRef::is_reference(path.get_ref()) => {
            let reference = crate::spec::ImageRef::parse(path.get_ref())
                .map_err(|e| source.error(path.span(), e.to_string()))?;
            (
                Some(ComponentSource::from(reference)),
                LinkMode::Composed,
                path.span(),
            )
        }
        Some(path) => {
            let file = base.join(path.get_ref());
            if !file.is_file() {
                return Err(source.error(
                    path.span(),
                    format!("plugin file {} does not exist", file.display()),
                ));
            }
            (
                Some(ComponentSource::Path(file)),
                LinkMode::Composed,
                path.span(),
            )
        }
        None => match crate::spec::builtin::builtin(&name) {
            Some((mode, _)) => (None, mode, raw.name.span()),
            None => {
                let known: Vec<&str> = crate::spec::builtin::names().collect();
                return Err(source.error(
                    raw.name.span(),
                    format!(
                        "plugin `{name}` needs a `path`: no built-in plugin has that name (built-ins: {})",
                        known.join(", ")
                    ),
                ));
            }
        },
    };
    let mut grants = PluginGrants {
        name_lookup: raw.grants.name_lookup,
        ..PluginGrants::default()
    };
    if let Some(block) = raw.grants.outgoing_block_private {
        grants.outgoing_block_private = block;
    }
    for pattern in &raw.grants.outgoing_http {
        crate::policy::authority::AuthorityPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        grants.outgoing_http.push(pattern.get_ref().clone());
    }
    for pattern in &raw.grants.sockets {
        crate::policy::sockets::SocketPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        grants.sockets.push(pattern.get_ref().clone());
    }
    for pattern in &raw.grants.listen {
        crate::policy::sockets::SocketPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        grants.listen.push(pattern.get_ref().clone());
    }
    for pattern in &raw.grants.subjects {
        crate::policy::grants::SubjectGrants::parse(&[pattern.get_ref()])
            .map_err(|m| source.error(pattern.span(), m))?;
        grants.subjects.push(pattern.get_ref().clone());
    }
    let spec = PluginSpec {
        name,
        source: component,
        mode: raw.mode.unwrap_or(default_mode),
        config: raw.config.clone(),
        grants,
        scope: raw.scope,
        forwarder: raw.forwarder,
        memory: raw.memory.unwrap_or(PluginSpec::DEFAULT_MEMORY),
        call_timeout: raw.call_timeout.unwrap_or(PluginSpec::DEFAULT_CALL_TIMEOUT),
        wraps: match &raw.wraps {
            None => crate::spec::Wraps::default(),
            Some(raw::Wraps::One(plugin)) => crate::spec::Wraps {
                plugin: Some(plugin.clone()),
                ..crate::spec::Wraps::default()
            },
            Some(raw::Wraps::Each(interfaces)) => crate::spec::Wraps {
                plugin: None,
                interfaces: interfaces.clone(),
            },
        },
        origin: Some(source.locate(at.start)),
    };
    // The library's check of the whole declaration (limits included).
    spec.validate()
        .map_err(|e| source.error(raw.name.span(), e.to_string()))?;
    Ok(spec)
}

fn component_spec(
    source: &Source<'_>,
    base: &Path,
    raw: &raw::Component,
) -> Result<ComponentSpec, ManifestError> {
    let span = raw.path.span();
    let (derived, component) = if crate::spec::ImageRef::is_reference(raw.path.get_ref()) {
        let reference = crate::spec::ImageRef::parse(raw.path.get_ref())
            .map_err(|e| source.error(span.clone(), e.to_string()))?;
        // `oci://r/acme/my_api:1` is named like a file `my_api.wasm`.
        let last = reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        (
            default_component_name(Path::new(last)),
            ComponentSource::from(reference),
        )
    } else {
        let path = base.join(raw.path.get_ref());
        check_component_file(&path).map_err(|m| source.error(span.clone(), m))?;
        (default_component_name(&path), ComponentSource::Path(path))
    };
    let name = match &raw.name {
        Some(name) => checked_name(source, name)?,
        None => derived.ok_or_else(|| {
            source.error(
                span.clone(),
                "cannot derive a component name from this path: add `name`",
            )
        })?,
    };
    Ok(ComponentSpec {
        name,
        source: component,
        origin: Some(source.locate(span.start)),
        config: raw.config.clone(),
        config_env: raw.config_env,
        warm: crate::spec::WarmSpec {
            pool_size: raw.pool_size.unwrap_or(0),
            max_invocations: raw.max_invocations,
            max_concurrency: raw.max_concurrency.unwrap_or(1),
        },
    })
}

/// `my_api.wasm` → `my-api`; `None` when nothing valid remains.
fn default_component_name(path: &Path) -> Option<String> {
    let stem = path
        .file_stem()?
        .to_str()?
        .to_ascii_lowercase()
        .replace('_', "-");
    validate_name(&stem).is_ok().then_some(stem)
}

fn http_spec(source: &Source<'_>, raw: raw::Http) -> Result<HttpSpec, ManifestError> {
    let mut spec = HttpSpec::default();
    if let Some(host) = raw.host {
        let name = host.get_ref().trim().to_ascii_lowercase();
        check_http_host(&name).map_err(|m| source.error(host.span(), m))?;
        spec.host_origin = Some(source.locate(host.span().start));
        spec.host = Some(name);
    }
    for pattern in raw.outgoing {
        crate::policy::authority::AuthorityPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        spec.outgoing.push(pattern.into_inner());
    }
    if let Some(block) = raw.block_private {
        spec.block_private = block;
    }
    Ok(spec)
}

fn sockets_spec(source: &Source<'_>, raw: raw::Sockets) -> Result<SocketsSpec, ManifestError> {
    let mut spec = SocketsSpec {
        allow: Vec::new(),
        listen: Vec::new(),
        name_lookup: raw.name_lookup,
    };
    for pattern in raw.allow {
        crate::policy::sockets::SocketPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        spec.allow.push(pattern.into_inner());
    }
    for pattern in raw.listen {
        crate::policy::sockets::SocketPattern::parse(pattern.get_ref())
            .map_err(|m| source.error(pattern.span(), m))?;
        spec.listen.push(pattern.into_inner());
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
