//! Which workload a request goes to: by its Host header, with a development
//! default when the host runs a single HTTP workload without a host name.

use crate::spec::WorkloadId;
use crate::spec::WorkloadState;
use crate::workload::Workload;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The routing table of a host's HTTP ingress.
#[derive(Default)]
pub struct Router {
    table: RwLock<Table>,
    /// Turns among the workloads sharing a host name.
    next: AtomicUsize,
}

#[derive(Default)]
struct Table {
    /// Host name → its workload, or the workloads sharing it
    /// ([`HttpSpec::shared`](crate::spec::HttpSpec::shared)).
    by_host: HashMap<String, Vec<Arc<Workload>>>,
    hostless: Vec<Arc<Workload>>,
}

impl Router {
    /// Adds `workload`, replacing any earlier entry with its id.
    pub fn insert(&self, workload: Arc<Workload>) {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        table.remove(workload.id());
        let http = &workload.spec().http;
        if http.host.is_none() {
            table.hostless.push(workload);
            return;
        }
        for name in http.names() {
            table
                .by_host
                .entry(name.clone())
                .or_default()
                .push(workload.clone());
        }
    }

    /// Removes the workload with `id`, if routed.
    pub fn remove(&self, id: &WorkloadId) {
        self.table
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The workload for a request whose Host header (port stripped,
    /// lower-cased) is `host`.
    pub fn route(&self, host: Option<&str>) -> Option<Arc<Workload>> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        if let Some(workloads) = host.and_then(|h| table.by_host.get(h)) {
            return self.pick(workloads);
        }
        let serving = table.hostless.iter().map(|w| w.serves_http());
        development_default(serving).and_then(|i| table.hostless.get(i).cloned())
    }
}

impl Router {
    /// One of the workloads routed by a host name: the only one, or, when
    /// several share it, each running one in turn (one stopping or
    /// starting would answer 503 while another can serve).
    fn pick(&self, workloads: &[Arc<Workload>]) -> Option<Arc<Workload>> {
        if let [only] = workloads {
            return Some(only.clone());
        }
        let running: Vec<&Arc<Workload>> = workloads
            .iter()
            .filter(|w| w.state() == WorkloadState::Running)
            .collect();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        match running.as_slice() {
            [] => workloads.first().cloned(),
            running => running.get(turn % running.len()).map(|w| Arc::clone(w)),
        }
    }
}

/// Which of the workloads without a host name gets the requests no host
/// name matches (the development default), given whether each serves HTTP
/// (`None`: not known yet, because it is starting or failed before linking).
///
/// The one known to serve HTTP, when there is exactly one: a workload still
/// starting next to it does not take its requests away (it would turn them
/// into 404s until every workload had started). When none is known to, the
/// one that may: it answers 503 while starting rather than vanishing into a
/// 404. Two that serve HTTP, or two that may, are ambiguous: none.
fn development_default(serving: impl Iterator<Item = Option<bool>>) -> Option<usize> {
    let (mut known, mut unknown) = ((0, None), (0, None));
    for (i, serves) in serving.enumerate() {
        let count = match serves {
            Some(true) => &mut known,
            None => &mut unknown,
            Some(false) => continue,
        };
        count.0 += 1;
        count.1.get_or_insert(i);
    }
    match (known, unknown) {
        ((1, only), _) | ((0, _), (1, only)) => only,
        _ => None,
    }
}

impl Table {
    fn remove(&mut self, id: &WorkloadId) {
        for workloads in self.by_host.values_mut() {
            workloads.retain(|w| w.id() != id);
        }
        self.by_host.retain(|_, workloads| !workloads.is_empty());
        self.hostless.retain(|w| w.id() != id);
    }
}

/// The host name a request is addressed to: its Host header, or the URI's
/// authority, without port, lower-cased, without a trailing dot. Borrowed
/// from the request when it is already in that form (the usual case), so
/// routing a request allocates nothing.
pub fn request_host<B>(request: &http::Request<B>) -> Option<Cow<'_, str>> {
    let raw = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
    let host = match raw.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => raw,
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(serving: &[Option<bool>]) -> Option<usize> {
        development_default(serving.iter().copied())
    }

    #[test]
    fn the_development_default_is_the_one_workload_serving_http() {
        // Running and serving HTTP, next to workloads still starting.
        assert_eq!(default_of(&[Some(true), None]), Some(0));
        assert_eq!(default_of(&[None, Some(false), Some(true), None]), Some(2));
        // Nothing known yet: the one that may serve HTTP answers (503 while starting).
        assert_eq!(default_of(&[None, Some(false)]), Some(0));
        // Ambiguous, or nothing that serves HTTP.
        assert_eq!(default_of(&[Some(true), Some(true)]), None);
        assert_eq!(default_of(&[None, None]), None);
        assert_eq!(default_of(&[Some(false)]), None);
        assert_eq!(default_of(&[]), None);
    }

    #[test]
    fn host_is_taken_from_the_header_without_port() {
        let req = http::Request::builder()
            .header("host", "API.Example.com.:8080")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("api.example.com"));
        let req = http::Request::builder()
            .uri("http://other.test/x")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("other.test"));
        let req = http::Request::builder().body(()).unwrap();
        assert_eq!(request_host(&req), None);
    }
}
