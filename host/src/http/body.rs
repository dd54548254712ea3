//! Bodies at the ingress: the request-size limit, and the one response body
//! type every answer (the guest's or the host's own) is sent as.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use wasmtime_wasi_http::Error as HttpError;

/// Every response the ingress sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, HttpError>;

/// A response body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An embedder's request body as the handler takes it: errors that are
/// hyper's stay hyper's, any other becomes an internal error with its text.
pub(crate) fn boxed_request_body<B>(body: B) -> UnsyncBoxBody<Bytes, HttpError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    body.map_err(|e| {
        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
        match e.downcast::<hyper::Error>() {
            Ok(hyper) => HttpError::Hyper(*hyper),
            Err(other) => HttpError::InternalError(Some(other.to_string())),
        }
    })
    .boxed_unsync()
}

/// A request body that fails once more than `limit` bytes have arrived, and
/// records that it did, so the ingress can answer 413 whatever the guest
/// makes of the failed read.
pub struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    tripped: Arc<AtomicBool>,
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; `tripped` becomes true when the limit is exceeded.
    pub fn new(inner: B, limit: u64, tripped: Arc<AtomicBool>) -> LimitedBody<B> {
        LimitedBody {
            inner,
            remaining: limit,
            limit,
            tripped,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<HttpError>,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.tripped.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(
                            this.limit,
                        )))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
