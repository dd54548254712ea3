//! The config-greeting example: a `wasi:http` component that takes its
//! greeting and a feature flag from `wasi:config`, and logs through
//! `wasi:logging` at several levels. keel serves both interfaces with its
//! built-in plugins, composed in, configured from `app.toml`.

wit_bindgen::generate!({
    inline: "
        package example:config-greeting;
        world imports {
            import wasi:config/store@0.2.0-rc.1;
            import wasi:logging/logging@0.1.0-draft;
        }
    ",
    path: ["../../wit/wasi-config-0.2.0-rc.1", "../../wit/wasi-logging-0.1.0-draft"],
    generate_all,
});

use keel_guest::wasip2::exports::http::incoming_handler::Guest;
use keel_guest::wasip2::http::types::{IncomingRequest, ResponseOutparam};
use wasi::config::store;
use wasi::logging::logging::{Level, log};

struct Greeter;

fn setting(key: &str, default: &str) -> String {
    store::get(key).ok().flatten().unwrap_or_else(|| default.to_string())
}

impl Guest for Greeter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        if keel_guest::path(&request) == "/alarm" {
            log(Level::Error, "alarm", "someone pressed the alarm");
            log(Level::Critical, "alarm", "the building is on fire");
            keel_guest::respond_text(out, 200, "alarm raised\n");
            return;
        }
        let greeting = setting("greeting", "Hello");
        let shout = setting("shout", "false") == "true";
        log(Level::Debug, "config", &format!("greeting={greeting:?} shout={shout}"));
        let name = match keel_guest::query_param(&request, "name") {
            Some(name) if !name.is_empty() => name,
            _ => {
                log(Level::Warn, "request", "no ?name= given; greeting the world");
                "world".to_string()
            }
        };
        let mut text = format!("{greeting}, {name}!");
        if shout {
            text = text.to_uppercase();
        }
        log(Level::Info, "request", &format!("greeted {name}"));
        keel_guest::respond_text(out, 200, &format!("{text}\n"));
    }
}

keel_guest::wasip2::http::proxy::export!(Greeter);
