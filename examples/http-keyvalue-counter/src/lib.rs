//! The http-keyvalue-counter example: every request increments a counter
//! named after its path, in the `wasi:keyvalue` bucket `counters`. Under
//! `keel run` without NATS the built-in in-memory plugin serves it, shared by
//! every request; the bucket belongs to this workload alone.
//!
//! It needs nothing of keel's but WIT: `wit-bindgen` generates the
//! `wasi:keyvalue` bindings from the package `keel wit export` writes (the
//! repository's `wit/` has the same layout), and the `wasip2` crate brings
//! `wasi:http`.

wit_bindgen::generate!({
    world: "wasi:keyvalue/imports@0.2.0-draft",
    path: "../../wit/wasi-keyvalue-0.2.0-draft",
});

use wasi::keyvalue::{atomics, store};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Counter;

fn count(path: &str) -> Result<u64, store::Error> {
    let bucket = store::open("counters")?;
    atomics::increment(&bucket, path, 1)
}

/// Answers `status` with `text` as a plain-text body.
fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        // Short texts only: one call writes at most 4 KiB.
        let _ = stream.blocking_write_and_flush(text.as_bytes());
    }
    let _ = OutgoingBody::finish(body, None);
}

impl Guest for Counter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let path = full.split_once('?').map_or(full.as_str(), |(p, _)| p);
        match count(path) {
            Ok(n) => respond(out, 200, &format!("{path} has been visited {n} times\n")),
            Err(e) => respond(out, 500, &format!("keyvalue error: {e:?}\n")),
        }
    }
}

wasip2::http::proxy::export!(Counter);
