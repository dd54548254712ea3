//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied unless the request's
//! authority is on the guest's allowlist. keel resolves the host itself and
//! checks every address before connecting to one of them: for a name
//! granted only by pattern (`*.example.com`), internal addresses are refused
//! unless the allowlist says otherwise (see [`OutgoingAllowlist`]).

use crate::outgoing::connect::{self, Destination, Timeouts};
use crate::outgoing::resolve::Resolver;
use crate::policy::authority::{Grant, OutgoingAllowlist};
use std::net::SocketAddr;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The headers a guest never sees nor sets: Wasmtime's default list, made
/// once.
static FORBIDDEN_HEADERS: [http::HeaderName; 9] = wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS;

/// A request's target as the allowlist sees it.
struct Target {
    host: String,
    port: u16,
    tls: bool,
    grant: Grant,
}

/// The `wasi:http` hooks of one invocation: outgoing requests pass only when
/// their authority is allowed, and reach only addresses that were checked.
#[derive(Debug, Clone, Default)]
pub struct OutgoingHooks {
    allow: Arc<OutgoingAllowlist>,
    resolver: Resolver,
    workload: Arc<str>,
}

impl OutgoingHooks {
    /// Hooks enforcing `allow` for `workload` (used in log lines), resolving
    /// host names with `resolver`.
    pub fn new(
        workload: Arc<str>,
        allow: Arc<OutgoingAllowlist>,
        resolver: Resolver,
    ) -> OutgoingHooks {
        OutgoingHooks {
            allow,
            resolver,
            workload,
        }
    }

    /// The request's target, if the allowlist grants it.
    fn target(&self, uri: &http::Uri) -> Option<Target> {
        let host = uri.host()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tls = uri.scheme_str() == Some("https");
        let default_port = if tls { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        let grant = self.allow.grant(host, port, default_port)?;
        Some(Target {
            host: host.to_string(),
            port,
            tls,
            grant,
        })
    }

    /// Resolves `target` and checks every address it resolved to: one
    /// refused address refuses the request, so that an answer mixing public
    /// and internal addresses cannot steer the connection inward.
    async fn checked(&self, target: Target) -> Result<Destination, HttpError> {
        let addresses = self.resolver.lookup(&target.host).await.map_err(|e| {
            tracing::debug!(workload = %self.workload, host = %target.host, "outgoing HTTP: resolving failed: {e}");
            HttpError::DnsError {
                rcode: Some("address not available".to_string()),
                info_code: None,
            }
        })?;
        for ip in &addresses {
            if let Some(range) = self.allow.refuses(target.grant, *ip) {
                tracing::warn!(
                    workload = %self.workload,
                    host = %target.host,
                    address = %ip,
                    "outgoing HTTP request denied: a name granted only by a `*.` pattern resolved to a {range} address, blocked by the allowlist's `block_private`"
                );
                return Err(HttpError::DestinationIpProhibited);
            }
        }
        Ok(Destination {
            host: target.host,
            addresses: addresses
                .into_iter()
                .map(|ip| SocketAddr::new(ip, target.port))
                .collect(),
            tls: target.tls,
        })
    }
}

type SendResult = wasmtime_wasi_http::Result<(http::Response<WasiBody>, connect::ConnectionTask)>;

impl WasiHttpHooks for OutgoingHooks {
    // Wasmtime's default makes a reference-counted filter for each header
    // it checks (several per request, incoming and outgoing); the same
    // list, checked in place.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let Some(target) = self.target(request.uri()) else {
            tracing::warn!(
                workload = %self.workload,
                uri = %request.uri(),
                "outgoing HTTP request denied: its authority is not in the allowlist"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let hooks = self.clone();
        Box::new(async move {
            let timeouts = Timeouts::of(options);
            let connect_by = tokio::time::Instant::now() + timeouts.connect;
            let destination = tokio::time::timeout_at(connect_by, hooks.checked(target))
                .await
                .map_err(|_| HttpError::ConnectionTimeout)??;
            connect::send(request, destination, timeouts, connect_by).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forbidden_headers_are_wasmtimes_own() {
        let mut hooks = OutgoingHooks::default();
        for name in wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS {
            assert!(hooks.is_forbidden_header(&name), "{name}");
        }
        for name in [http::header::CONTENT_TYPE, http::header::AUTHORIZATION] {
            assert!(!hooks.is_forbidden_header(&name), "{name}");
        }
    }
}
