//! The pinger: `GET /?msg=hello` sends `hello` to subject `ping` as a
//! request and answers with the reply; `GET /publish?subject=S&msg=M`
//! publishes without waiting.

wit_bindgen::generate!({
    inline: "
        package example:pinger;
        world imports {
            import wasmcloud:messaging/consumer@0.2.0;
        }
    ",
    path: "../../../wit/wasmcloud-messaging-0.2.0",
    generate_all,
});

use keel_guest::wasip2::exports::http::incoming_handler::Guest;
use keel_guest::wasip2::http::types::{IncomingRequest, ResponseOutparam};
use keel_guest::{query_param, respond_text};
use wasmcloud::messaging::{consumer, types::BrokerMessage};

struct Pinger;

impl Guest for Pinger {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let msg = query_param(&request, "msg").unwrap_or_else(|| "ping".to_string());
        if keel_guest::path(&request) == "/publish" {
            let subject = query_param(&request, "subject").unwrap_or_default();
            let message = BrokerMessage { subject, body: msg.into_bytes(), reply_to: None };
            match consumer::publish(&message) {
                Ok(()) => respond_text(out, 200, "published\n"),
                Err(e) => respond_text(out, 502, &format!("{e}\n")),
            }
            return;
        }
        let subject = query_param(&request, "subject").unwrap_or_else(|| "ping".to_string());
        match consumer::request(&subject, msg.as_bytes(), 2000) {
            Ok(reply) => respond_text(out, 200, &format!("{}\n", String::from_utf8_lossy(&reply.body))),
            Err(e) => respond_text(out, 502, &format!("{e}\n")),
        }
    }
}

keel_guest::wasip2::http::proxy::export!(Pinger);
