//! Which workload a request goes to: by its Host header, with a development
//! default when the host runs a single HTTP workload without a host name.

use crate::manifest::WorkloadId;
use crate::workload::Workload;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The routing table of a host's HTTP ingress.
#[derive(Default)]
pub struct Router {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    by_host: HashMap<String, Arc<Workload>>,
    hostless: Vec<Arc<Workload>>,
}

impl Router {
    /// Adds `workload`, replacing any earlier entry with its id.
    pub fn insert(&self, workload: Arc<Workload>) {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        table.remove(workload.id());
        match &workload.spec().http.host {
            Some(host) => {
                table.by_host.insert(host.clone(), workload);
            }
            None => table.hostless.push(workload),
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
        if let Some(workload) = host.and_then(|h| table.by_host.get(h)) {
            return Some(workload.clone());
        }
        // The development default: exactly one workload without a host name
        // that serves HTTP, or may (it is starting, or failed to start, and
        // then answers 503 rather than vanishing into a 404).
        let mut candidates = table
            .hostless
            .iter()
            .filter(|w| w.serves_http() != Some(false));
        match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }
}

impl Table {
    fn remove(&mut self, id: &WorkloadId) {
        self.by_host.retain(|_, w| w.id() != id);
        self.hostless.retain(|w| w.id() != id);
    }
}

/// The host name a request is addressed to: its Host header, or the URI's
/// authority, without port, lower-cased, without a trailing dot.
pub fn request_host<B>(request: &http::Request<B>) -> Option<String> {
    let raw = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()))?;
    let host = match raw.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => raw.as_str(),
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

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
