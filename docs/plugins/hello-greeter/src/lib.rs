//! `hello-greeter`: a `wasi:http` workload. `GET /greet?name=Ada` answers
//! what the plugin serving `acme:greeter/greet` says.

wit_bindgen::generate!({
    world: "acme:greeter/client@0.1.0",
    path: "wit",
});

use acme::greeter::greet::greet;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (status, text) = match target.split_once('?') {
            Some(("/greet", query)) => {
                let name = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("name="))
                    .unwrap_or_default();
                match greet(name) {
                    Ok(greeting) => (200, greeting),
                    Err(refusal) => (403, refusal),
                }
            }
            _ => (404, "try /greet?name=Ada".to_string()),
        };
        respond(out, status, &format!("{text}\n"));
    }
}

/// Sends `text` with `status`.
fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(text.as_bytes());
    }
    let _ = OutgoingBody::finish(body, None);
}

wasip2::http::proxy::export!(Hello);
