//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied unless the request's
//! authority is on the workload's allowlist.

use crate::policy::authority::AuthorityPattern;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

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
        let default_port = match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        };
        let port = uri.port_u16().unwrap_or(default_port);
        self.allow
            .iter()
            .any(|p| p.allows(host, port, default_port))
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
