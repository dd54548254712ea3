//! The http-blobstore example: the request path names an object in the
//! `wasi:blobstore` container `files` (created on first use).
//!
//! - `PUT /name` stores the body (streamed through an `outgoing-value`);
//! - `GET /name` returns it; a `Range: bytes=a-b`, `bytes=a-` or `bytes=-n`
//!   header gets `206 Partial Content` with just those bytes (read with
//!   `get-data`'s range, so the rest never leaves the store), or `416` when
//!   the range starts past the end; a header with several ranges is ignored
//!   and the whole object sent;
//! - `DELETE /name` removes it.

wit_bindgen::generate!({
    inline: "
        package keel:http-blobstore;
        world app {
            import wasi:blobstore/blobstore@0.2.0-draft;
        }
    ",
    path: "../../wit/wasi-blobstore-0.2.0-draft",
    with: {
        "wasi:io/streams@0.2.2": keel_guest::wasip2::io::streams,
        "wasi:io/error@0.2.2": keel_guest::wasip2::io::error,
        "wasi:io/poll@0.2.2": keel_guest::wasip2::io::poll,
    },
    generate_all,
});

use keel_guest::wasip2::exports::http::incoming_handler::Guest;
use keel_guest::wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use keel_guest::wasip2::io::streams::StreamError;
use keel_guest::{read_body, respond, respond_text};
use wasi::blobstore::blobstore::{self, Container};
use wasi::blobstore::types::{IncomingValue, OutgoingValue};

const CONTAINER: &str = "files";

struct Files;

fn container() -> Result<Container, String> {
    if blobstore::container_exists(CONTAINER)? {
        blobstore::get_container(CONTAINER)
    } else {
        blobstore::create_container(CONTAINER)
    }
}

fn store(container: &Container, name: &str, body: &[u8]) -> Result<(), String> {
    let value = OutgoingValue::new_outgoing_value();
    let stream = value.outgoing_value_write_body().map_err(|()| "no body stream".to_string())?;
    for chunk in body.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|e| format!("{e:?}"))?;
    }
    drop(stream);
    container.write_data(name, &value)?;
    OutgoingValue::finish(value)
}

fn load(container: &Container, name: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let stream = IncomingValue::incoming_value_consume_async(container.get_data(name, start, end)?)?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(65536) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
}

/// The first and last byte a `Range` header asks for in an object of
/// `size` bytes: `None` to send everything, `Err` if unsatisfiable.
fn range(header: Option<String>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.as_deref().and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = match (first.trim().parse::<u64>(), last.trim().parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Ok(a), Err(_)) if last.trim().is_empty() => (a, size.saturating_sub(1)),
        (Err(_), Ok(n)) if first.trim().is_empty() && n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Ok(None),
    };
    if start >= size { Err(()) } else { Ok(Some((start, end))) }
}

fn header(request: &IncomingRequest, name: &str) -> Option<String> {
    let values = request.headers().get(name);
    values.first().map(|v| String::from_utf8_lossy(v).into_owned())
}

fn serve(request: &IncomingRequest, out: ResponseOutparam) -> Result<(), (ResponseOutparam, String)> {
    let path = keel_guest::path(request);
    let name = path.trim_start_matches('/').to_string();
    if name.is_empty() {
        respond_text(out, 400, "name an object: /<name>\n");
        return Ok(());
    }
    let container = match container() {
        Ok(c) => c,
        Err(e) => return Err((out, e)),
    };
    match request.method() {
        Method::Put => {
            let body = read_body(request).unwrap_or_default();
            match store(&container, &name, &body) {
                Ok(()) => respond_text(out, 200, &format!("stored {} bytes as {name}\n", body.len())),
                Err(e) => return Err((out, e)),
            }
        }
        Method::Get => {
            if !container.has_object(&name).unwrap_or(false) {
                respond_text(out, 404, &format!("no object {name}\n"));
                return Ok(());
            }
            let size = match container.object_info(&name) {
                Ok(info) => info.size,
                Err(e) => return Err((out, e)),
            };
            match range(header(request, "range"), size) {
                Err(()) => respond(out, 416, &[("content-range", &format!("bytes */{size}"))], b""),
                Ok(None) => match load(&container, &name, 0, u64::MAX) {
                    Ok(bytes) => respond(out, 200, &[("accept-ranges", "bytes")], &bytes),
                    Err(e) => return Err((out, e)),
                },
                Ok(Some((start, end))) => match load(&container, &name, start, end) {
                    Ok(bytes) => {
                        let content_range = format!("bytes {start}-{end}/{size}");
                        respond(out, 206, &[("content-range", &content_range)], &bytes)
                    }
                    Err(e) => return Err((out, e)),
                },
            }
        }
        Method::Delete => match container.delete_object(&name) {
            Ok(()) => respond_text(out, 200, &format!("deleted {name}\n")),
            Err(e) => return Err((out, e)),
        },
        _ => respond_text(out, 405, "use PUT, GET or DELETE\n"),
    }
    Ok(())
}

impl Guest for Files {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        if let Err((out, e)) = serve(&request, out) {
            respond_text(out, 500, &format!("blobstore error: {e}\n"));
        }
    }
}

keel_guest::wasip2::http::proxy::export!(Files);
