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
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;

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
    let stream = connector.connect(name, tcp).await.map_err(HttpError::Tls)?;
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
                    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback server answering each connection with `reply` (once the
    /// request head arrived, if `after_head`), then holding the connection
    /// open until the client leaves (so only a timeout ends a wait on it).
    async fn server_with(reply: &'static [u8], after_head: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while after_head && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(reply).await;
                    // Hold the connection: read until the client leaves.
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn server(reply: &'static [u8]) -> SocketAddr {
        server_with(reply, true).await
    }

    fn request(to: SocketAddr) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<bytes::Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::builder()
            .uri(format!("http://{to}/path?q=1"))
            .header(http::header::HOST, to.to_string())
            .body(body)
            .unwrap()
    }

    fn plain(addresses: Vec<SocketAddr>) -> Destination {
        Destination {
            host: "127.0.0.1".into(),
            addresses,
            tls: false,
        }
    }

    fn timeouts(first_byte: u64, between_bytes: u64) -> Timeouts {
        Timeouts::of(Some(RequestOptions {
            connect_timeout: None,
            first_byte_timeout: Some(Duration::from_millis(first_byte)),
            between_bytes_timeout: Some(Duration::from_millis(between_bytes)),
        }))
    }

    async fn call(
        to: Destination,
        timeouts: Timeouts,
    ) -> Result<(http::Response<WasiBody>, ConnectionTask), HttpError> {
        let by = Instant::now() + Duration::from_secs(30);
        send(
            request(to.addresses[to.addresses.len() - 1]),
            to,
            timeouts,
            by,
        )
        .await
    }

    #[tokio::test]
    async fn a_refused_address_falls_through_to_the_next_checked_one() {
        let up = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let (response, task) = call(plain(vec![closed, up]), timeouts(30_000, 30_000))
            .await
            .unwrap();
        tokio::spawn(Box::into_pin(task));
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_hits_the_first_byte_timeout() {
        let silent = server(b"").await;
        let err = call(plain(vec![silent]), timeouts(50, 30_000))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }

    #[tokio::test]
    async fn a_stalled_body_hits_the_between_bytes_timeout() {
        let stalls = server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab").await;
        let (response, task) = call(plain(vec![stalls]), timeouts(30_000, 50))
            .await
            .unwrap();
        tokio::spawn(Box::into_pin(task));
        let err = response.into_body().collect().await.err().unwrap();
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }

    #[tokio::test]
    async fn https_speaks_tls_to_the_checked_address() {
        // A plain HTTP server answering at once: the TLS handshake must
        // fail on its answer, not fall back to plain HTTP.
        let plain_http =
            server_with(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false).await;
        let to = Destination {
            host: "localhost".into(),
            addresses: vec![plain_http],
            tls: true,
        };
        let err = call(to, timeouts(30_000, 30_000)).await.err().unwrap();
        assert!(matches!(err, HttpError::Tls(_)), "{err:?}");
    }
}
