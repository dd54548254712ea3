//! Reading a manifest file: TOML parsing, validation, path resolution, and
//! errors that point at `file:line:column`.

mod plugin;
mod service;
mod workload;

use super::{Manifest, raw};
use crate::spec::{Location, NatsSpec, PluginSpec, WorkloadSpec, validate_name};
use plugin::plugin_spec;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use workload::workload_spec;

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

#[cfg(test)]
mod tests;
