//! The floor for keel's HTTP benchmarks: a plain hyper server answering the
//! same bytes as `examples/hello` (`Hello from keel! You asked for {path}\n`,
//! `text/plain; charset=utf-8`), with nothing between the socket and the
//! answer. One thread (the benchmark pins it to one core anyway).
//!
//! `hello-floor --listen 127.0.0.1:18083`

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = match (args.next().as_deref(), args.next()) {
        (Some("--listen"), Some(addr)) => addr.parse().context("--listen: not an address")?,
        _ => bail!("usage: hello-floor --listen ADDR"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(listen))
}

async fn serve(listen: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors or a connection reset before accept: the
            // next accept may succeed.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

async fn hello(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("Hello from keel! You asked for {}\n", request.uri().path());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
