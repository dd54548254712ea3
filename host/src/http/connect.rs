//! Sending one outgoing HTTP/1.1 request to addresses keel has already
//! checked: TCP to one of them, TLS when the scheme is `https` (the host
//! name as SNI and certificate name, the Mozilla roots of `webpki-roots`,
//! as `wasmtime-wasi-http` uses), then a hyper connection. Nothing here
//! resolves a name: a second resolution could answer differently from the
//! one that was checked.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::rustls;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// The connection task: drives the connection after the response head
/// arrived, until the body is read (what `WasiHttpHooks::send_request`
/// hands back next to the response).
pub type ConnectionTask = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// How long each step may take. A guest sets them through
/// `wasi:http/types.request-options`; unset ones default to 10 minutes, as
/// in `wasmtime-wasi-http`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Resolution, TCP connect and TLS handshake together.
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// Between two frames of the response body.
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The guest's options, with defaults for what it left unset.
    pub fn of(options: Option<RequestOptions>) -> Timeouts {
        const DEFAULT: Duration = Duration::from_secs(600);
        let options = options.unwrap_or_default();
        Timeouts {
            connect: options.connect_timeout.unwrap_or(DEFAULT),
            first_byte: options.first_byte_timeout.unwrap_or(DEFAULT),
            between_bytes: options.between_bytes_timeout.unwrap_or(DEFAULT),
        }
    }
}

/// Where a request goes, once its addresses were checked.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The host as the request names it (a name or an IP literal): the TLS
    /// server name.
    pub host: String,
    /// The checked addresses, tried in order.
    pub addresses: Vec<SocketAddr>,
    /// Whether to speak TLS (`https`).
    pub tls: bool,
}

/// A byte stream to the server, with or without TLS.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// Sends `request` to `to`; connecting (TCP and TLS) must finish by
/// `connect_by`. Returns the response and the task that drives the rest of
/// the connection.
pub async fn send(
    mut request: http::Request<WasiBody>,
    to: Destination,
    timeouts: Timeouts,
    connect_by: Instant,
) -> Result<(http::Response<WasiBody>, ConnectionTask), HttpError> {
    let transport = tokio::time::timeout_at(connect_by, open(&to))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let (mut sender, mut connection) = tokio::time::timeout_at(
        connect_by,
        hyper::client::conn::http1::handshake(TokioIo::new(transport)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // The request line carries only the path: a full URI there is for
    // proxies (the Host header names the authority).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path
        .parse()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    // The connection must be polled while waiting for the response head: it
    // is what writes the request and reads the answer.
    let response = tokio::time::timeout(timeouts.first_byte, async {
        let mut head = std::pin::pin!(sender.send_request(request));
        let mut connection_done = false;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = head.as_mut().poll(cx) {
                return Poll::Ready(result.map_err(HttpError::from));
            }
            if !connection_done && let Poll::Ready(ended) = Pin::new(&mut connection).poll(cx) {
                connection_done = true;
                if let Err(e) = ended {
                    return Poll::Ready(Err(HttpError::from(e)));
                }
                // Closed cleanly: the response head is complete or the
                // sender reports why not.
                return head.as_mut().poll(cx).map_err(HttpError::from);
            }
            Poll::Pending
        })
        .await
        .map(|response| (response, connection_done))
    })
    .await
    .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let (response, connection_done) = response;

    let task: ConnectionTask = Box::new(async move {
        if connection_done {
            return Ok(());
        }
        connection.await.map_err(|e| match e.is_timeout() {
            true => HttpError::HttpResponseTimeout,
            false => HttpError::from(e),
        })
    });
    let gap = timeouts.between_bytes;
    let response = response.map(|body| {
        TimedBody {
            body,
            gap,
            deadline: Box::pin(tokio::time::sleep(gap)),
        }
        .boxed_unsync()
    });
    Ok((response, task))
}

/// A TCP connection to the first address that accepts, with TLS on top
/// when asked for.
async fn open(to: &Destination) -> Result<Box<dyn Transport>, HttpError> {
    let mut last = None;
    let mut tcp = None;
    for address in &to.addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(tcp), _) => tcp,
        (None, Some(e)) => return Err(HttpError::Connect(e)),
        (None, None) => return Err(HttpError::DestinationNotFound),
    };
    if !to.tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(to.host.as_str())
        .map_err(HttpError::InvalidDnsNameError)?
        .to_owned();
    let connector = tokio_rustls::TlsConnector::from(tls_config()?);
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(HttpError::Tls)?;
    Ok(Box::new(stream))
}

/// The TLS client configuration, built once: the `ring` provider and the
/// `webpki-roots` trust anchors.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    Arc::new(
                        builder
                            .with_root_certificates(roots)
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| HttpError::InternalError(Some(format!("TLS configuration: {e}"))))
}

/// A response body that fails when no frame arrives for `gap`.
struct TimedBody {
    body: Incoming,
    gap: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.gap;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
