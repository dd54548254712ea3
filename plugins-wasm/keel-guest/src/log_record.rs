//! The structured log line keel's logging plugin writes to stderr and the
//! host recognises (`keel::workload::stdio`):
//!
//! ```text
//! \u{1e}keel-log {"level":"critical","context":"billing","message":"card declined"}
//! ```
//!
//! An ASCII record separator, `keel-log `, then one JSON object on one line
//! (newlines in the message are escaped). On another runtime the line is
//! still a readable stderr line.

/// What opens a structured log line.
pub const PREFIX: &str = "\u{1e}keel-log ";

/// The name of a `wasi:logging` level, by its position in the WIT enum
/// (`level as u8` of the generated binding): `0` is `trace`, `5` is
/// `critical`.
///
/// ```
/// assert_eq!(keel_guest::log_record::level_name(5), "critical");
/// ```
pub fn level_name(position: u8) -> &'static str {
    const NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "critical"];
    NAMES.get(usize::from(position)).copied().unwrap_or("info")
}

/// The line for one record (without the trailing newline).
///
/// ```
/// let line = keel_guest::log_record::line("info", "ctx", "two\nlines \"quoted\"");
/// assert_eq!(line, "\u{1e}keel-log {\"level\":\"info\",\"context\":\"ctx\",\"message\":\"two\\nlines \\\"quoted\\\"\"}");
/// ```
pub fn line(level: &str, context: &str, message: &str) -> String {
    format!(
        "{PREFIX}{{\"level\":{},\"context\":{},\"message\":{}}}",
        json_string(level),
        json_string(context),
        json_string(message)
    )
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
