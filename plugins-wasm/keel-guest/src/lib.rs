//! Helpers shared by every guest component keel builds (plugins, examples,
//! test fixtures), so that `wasi:http` plumbing and the keyvalue counter
//! encoding ([`counter`]) are written once.
//!
//! The helpers are deliberately small: they read a whole request body, write a
//! whole response, and make one outgoing request. Guests that stream use the
//! `wasip2` types directly.

#[cfg(feature = "talc")]
mod allocator;
pub mod baked;
pub mod counter;
pub mod log_record;
pub mod metadata;
pub mod quota;

use std::io::Read;

pub use wasip2;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

/// The path of a request without its query string (`/a/b?x=1` → `/a/b`).
pub fn path(req: &IncomingRequest) -> String {
    let full = req.path_with_query().unwrap_or_else(|| "/".to_string());
    match full.split_once('?') {
        Some((path, _)) => path.to_string(),
        None => full,
    }
}

/// The value of query parameter `name`, percent-decoded (`/x?a=1&b=%C3%A9`,
/// `b` → `é`; `+` is a space). Invalid escapes are kept as written.
pub fn query_param(req: &IncomingRequest, name: &str) -> Option<String> {
    let full = req.path_with_query()?;
    let (_, query) = full.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// Decodes `%XX` escapes and `+` (as a space).
///
/// ```
/// assert_eq!(keel_guest::percent_decode("a%20b+c%zz"), "a b c%zz");
/// ```
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, other) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request method as an upper-case string (`GET`, `PUT`, …).
pub fn method(req: &IncomingRequest) -> String {
    match req.method() {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    }
}

/// The first value of header `name` as a string, if present and UTF-8.
pub fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    let values = req.headers().get(name);
    values
        .first()
        .and_then(|v| String::from_utf8(v.clone()).ok())
}

/// Reads the whole request body. Fails when the host cuts the body off
/// (for example at the workload's body size limit).
pub fn read_body(req: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = req
        .consume()
        .map_err(|()| "request body already consumed".to_string())?;
    read_incoming(body)
}

fn read_incoming(body: IncomingBody) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut stream = body
            .stream()
            .map_err(|()| "body stream already taken".to_string())?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading body: {e}"))?;
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Sends a complete response: status, headers and body.
pub fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let fields = Fields::new();
    for (name, value) in headers {
        // A header the host refuses is dropped rather than failing the response.
        let _ = fields.append(name, value.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    write_outgoing(outgoing, body);
}

/// Writes all of `bytes` to `stream`, in the pieces the stream accepts
/// (`check-write`), waiting while it accepts none. Unlike `Write for
/// OutputStream`, which writes 4 KiB at a time, this hands a host pipe
/// large writes in one call.
pub fn write_all(
    stream: &wasip2::io::streams::OutputStream,
    bytes: &[u8],
) -> Result<(), wasip2::io::streams::StreamError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let budget = stream.check_write()?;
        if budget == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        stream.write(&rest[..n])?;
        rest = &rest[n..];
    }
    Ok(())
}

/// Reads what `stream` holds now, `piece` bytes at most per read, handing
/// each read to `each`, without waiting for more: `true` once the writer
/// has closed it and everything was read, `false` when it is merely empty
/// for now. How a plugin takes in a value its caller writes into a pipe.
pub fn read_available(
    stream: &wasip2::io::streams::InputStream,
    piece: u64,
    mut each: impl FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<bool, String> {
    use wasip2::io::streams::StreamError;
    loop {
        match stream.read(piece) {
            Ok(bytes) if bytes.is_empty() => return Ok(false),
            Ok(bytes) => each(bytes)?,
            Err(StreamError::Closed) => return Ok(true),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

/// Sends a `text/plain` response.
pub fn respond_text(out: ResponseOutparam, status: u16, text: &str) {
    respond(
        out,
        status,
        &[("content-type", "text/plain; charset=utf-8")],
        text.as_bytes(),
    );
}

fn write_outgoing(outgoing: OutgoingBody, body: &[u8]) {
    if let Ok(stream) = outgoing.write() {
        // As much per call as the host accepts, not `Write`'s 4 KiB.
        if write_all(&stream, body).is_ok() {
            let _ = stream.blocking_flush();
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The answer to an outgoing request: status and whole body.
#[derive(Debug)]
pub struct FetchedResponse {
    /// HTTP status code.
    pub status: u16,
    /// The whole response body.
    pub body: Vec<u8>,
}

/// Makes a `GET` request through `wasi:http/outgoing-handler` and waits for the
/// whole answer. `url` is `http://authority/path`. The error is the host's
/// `error-code` rendered as text (e.g. `HttpRequestDenied`).
pub fn fetch(url: &str) -> Result<FetchedResponse, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("unsupported URL {url}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority".to_string())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_string())?;
    let body = request.body().map_err(|()| "request body".to_string())?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    let future =
        wasip2::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        Some(Err(())) => return Err("response already taken".into()),
        None => return Err("response not ready".into()),
    };
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| "response body".to_string())?;
    Ok(FetchedResponse {
        status,
        body: read_incoming(body)?,
    })
}
