//! keel's messaging plugin: `wasmcloud:messaging/consumer@0.2.0` (publish,
//! request with a timeout) over `keel:core/messaging`, which the core serves
//! with its in-process bus, or NATS when configured. Composed into each
//! workload component; it keeps no state.

wit_bindgen::generate!({
    inline: "
        package keel:messaging-plugin;
        world plugin {
            import keel:core/messaging@0.1.0;
            export wasmcloud:messaging/consumer@0.2.0;
        }
    ",
    path: ["../../wit/keel-core", "../../wit/wasmcloud-messaging-0.2.0"],
    generate_all,
});

// The plugin's metadata (see `keel-plugin.toml`), written the way any
// plugin can without a crate of keel's: a custom section named
// `keel-plugin` holding the TOML.
#[used]
#[unsafe(link_section = "keel-plugin")]
static KEEL_PLUGIN: [u8; include_bytes!("../keel-plugin.toml").len()] =
    *include_bytes!("../keel-plugin.toml");

use exports::wasmcloud::messaging::consumer::{BrokerMessage, Guest};
use keel::core::messaging::{self as core, Error};

fn describe(error: Error) -> String {
    match error {
        Error::NoResponders => "no responders".to_string(),
        Error::Timeout => "timed out waiting for a reply".to_string(),
        // Says which subject and why.
        Error::InvalidSubject(why) => why,
        Error::Other(message) => message,
    }
}

struct Plugin;

impl Guest for Plugin {
    fn request(subject: String, body: Vec<u8>, timeout_ms: u32) -> Result<BrokerMessage, String> {
        let reply = core::request(&subject, &body, timeout_ms).map_err(describe)?;
        Ok(BrokerMessage {
            subject: reply.subject,
            body: reply.body,
            reply_to: reply.reply_to,
        })
    }

    fn publish(message: BrokerMessage) -> Result<(), String> {
        core::publish(&core::Message {
            subject: message.subject,
            body: message.body,
            reply_to: message.reply_to,
        })
        .map_err(describe)
    }
}

export!(Plugin);
