//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied unless the request's
//! authority is on the workload's allowlist.

use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One allowlist entry: `host`, `host:port`, `*.domain` or `*.domain:port`.
/// Without a port, any port matches. Host names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl AuthorityPattern {
    /// Parses an allowlist entry.
    ///
    /// ```
    /// use keel::http::outgoing::AuthorityPattern;
    /// let p = AuthorityPattern::parse("*.example.com:8443").unwrap();
    /// assert!(p.allows("api.example.com", Some(8443)));
    /// assert!(!p.allows("example.com", Some(8443)));
    /// assert!(!p.allows("api.example.com", Some(80)));
    /// ```
    pub fn parse(text: &str) -> Result<AuthorityPattern, String> {
        let bad = |why: &str| format!("`{text}` is not an outgoing HTTP pattern: {why}");
        if text.contains("://") || text.contains('/') {
            return Err(bad("give a host (and port), not a URL"));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) if host.ends_with(']') || !host.contains(':') => (
                host,
                Some(
                    port.parse::<u16>()
                        .map_err(|_| bad("the port is not a number"))?,
                ),
            ),
            _ => (text, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(bad("`*` may only start the pattern, as in `*.example.com`"));
        }
        Ok(AuthorityPattern {
            host: host.to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    /// Whether a request to `host` on `port` matches.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| Some(p) == port)
    }
}

/// The `wasi:http` hooks of one invocation: outgoing requests pass only when
/// their authority is allowed.
#[derive(Debug, Clone, Default)]
pub struct OutgoingHooks {
    allow: Arc<Vec<AuthorityPattern>>,
    workload: Arc<str>,
}

impl OutgoingHooks {
    /// Hooks enforcing `allow` for `workload` (used in log lines).
    pub fn new(workload: &str, allow: Arc<Vec<AuthorityPattern>>) -> OutgoingHooks {
        OutgoingHooks {
            allow,
            workload: workload.into(),
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        self.allow.iter().any(|p| p.allows(host, port))
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutgoingHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !self.allows(request.uri()) {
            tracing::warn!(
                workload = %self.workload,
                uri = %request.uri(),
                "outgoing HTTP request denied: its authority is not in the workload's `http.outgoing` allowlist"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts_and_ports() {
        let exact = AuthorityPattern::parse("Example.com").unwrap();
        assert!(exact.allows("example.com", Some(443)));
        assert!(!exact.allows("api.example.com", Some(443)));
        let port = AuthorityPattern::parse("127.0.0.1:9000").unwrap();
        assert!(port.allows("127.0.0.1", Some(9000)));
        assert!(!port.allows("127.0.0.1", Some(9001)));
        let v6 = AuthorityPattern::parse("[::1]:80").unwrap();
        assert!(v6.allows("::1", Some(80)));
        assert!(AuthorityPattern::parse("http://x").is_err());
        assert!(AuthorityPattern::parse("a.*.com").is_err());
        assert!(AuthorityPattern::parse("x:notaport").is_err());
    }
}
