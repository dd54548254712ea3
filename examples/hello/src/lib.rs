//! The smallest keel workload: a `wasi:http` component that greets.

use keel_guest::wasip2::exports::http::incoming_handler::Guest;
use keel_guest::wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = keel_guest::path(&request);
        keel_guest::respond_text(out, 200, &format!("Hello from keel! You asked for {path}\n"));
    }
}

keel_guest::wasip2::http::proxy::export!(Hello);
