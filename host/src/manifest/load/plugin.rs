//! A `[[plugin]]` table into a [`PluginSpec`]: where its component comes
//! from (a file, a registry, or the built-in of its name), its grants and
//! what it wraps.

use super::{ManifestError, Source, checked_name, raw};
use crate::spec::{ComponentSource, LinkMode, PluginGrants, PluginSpec};
use std::path::Path;

pub(super) fn plugin_spec(
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
