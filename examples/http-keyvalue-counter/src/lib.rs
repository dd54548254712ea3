//! The http-keyvalue-counter example: every request increments a counter
//! named after its path, in the `wasi:keyvalue` bucket `counters`. Under
//! `keel run` without NATS the built-in in-memory plugin serves it, shared by
//! every request; the bucket belongs to this workload alone.

wit_bindgen::generate!({
    world: "wasi:keyvalue/imports@0.2.0-draft",
    path: "../../wit/wasi-keyvalue-0.2.0-draft",
});

use keel_guest::wasip2::exports::http::incoming_handler::Guest;
use keel_guest::wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wasi::keyvalue::{atomics, store};

struct Counter;

fn count(path: &str) -> Result<u64, store::Error> {
    let bucket = store::open("counters")?;
    atomics::increment(&bucket, path, 1)
}

impl Guest for Counter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = keel_guest::path(&request);
        match count(&path) {
            Ok(n) => keel_guest::respond_text(out, 200, &format!("{path} has been visited {n} times\n")),
            Err(e) => keel_guest::respond_text(out, 500, &format!("keyvalue error: {e:?}\n")),
        }
    }
}

keel_guest::wasip2::http::proxy::export!(Counter);
