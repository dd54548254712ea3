//! A `[[workload]]` table into a [`WorkloadSpec`]: its components, HTTP,
//! sockets, volumes, limits and subscriptions, each checked where it is
//! written so an error points at its line.

use super::{ManifestError, Source, checked_name, raw};
use crate::spec::validate::{
    check_component_file, check_env, check_http_host, check_memory, check_memory_total,
    check_queue, check_subject, check_timeout,
};
use crate::spec::{
    ComponentSource, ComponentSpec, HttpSpec, Limits, SocketsSpec, SubscriptionSpec, VolumeSpec,
    WorkloadId, WorkloadSpec, validate_name,
};
use std::collections::BTreeSet;
use std::path::Path;

pub(super) fn workload_spec(
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
        .map(|raw| super::service::service_spec(source, base, raw))
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

pub(super) fn component_spec(
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
