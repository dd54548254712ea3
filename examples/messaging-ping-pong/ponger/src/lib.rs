//! The ponger: handles messages on `ping` (its manifest subscribes it) and
//! answers each request with `pong: <body>`. A message whose body is `fail`
//! makes the handler return an error, which keel logs with the subject.

wit_bindgen::generate!({
    inline: "
        package example:ponger;
        world ponger {
            import wasmcloud:messaging/consumer@0.2.0;
            export wasmcloud:messaging/handler@0.2.0;
        }
    ",
    path: "../../../wit/wasmcloud-messaging-0.2.0",
    generate_all,
});

use exports::wasmcloud::messaging::handler::Guest;
use wasmcloud::messaging::{consumer, types::BrokerMessage};

struct Ponger;

impl Guest for Ponger {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        if msg.body == b"fail" {
            return Err(format!("asked to fail on `{}`", msg.subject));
        }
        let Some(reply_to) = msg.reply_to else {
            return Ok(());
        };
        let mut body = b"pong: ".to_vec();
        body.extend_from_slice(&msg.body);
        consumer::publish(&BrokerMessage { subject: reply_to, body, reply_to: None })
    }
}

export!(Ponger);
