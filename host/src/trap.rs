//! What the host logs when a guest fails: a bounded summary.
//!
//! A trap's error carries the whole Wasm backtrace (every frame, demangled,
//! with file and line when debug info is on), and its `Debug` form adds the
//! host's native backtrace when `RUST_BACKTRACE` is set: tens of kilobytes
//! a request, which a guest can make the host write as often as it is
//! called. The log line gets [`summary`] instead: the first line of each
//! message in the error's chain and the top [`MAX_FRAMES`] Wasm frames, at
//! most [`MAX_SUMMARY`] bytes. The full error is logged at debug level.

/// The most bytes of a summary.
pub const MAX_SUMMARY: usize = 512;

/// The Wasm frames a summary names (the innermost ones).
pub const MAX_FRAMES: usize = 3;

/// The most bytes kept of one message or one frame.
const MAX_PART: usize = 160;

/// How Wasmtime's backtrace context begins.
const BACKTRACE_HEADER: &str = "error while executing at wasm backtrace:";

/// The summary of a Wasmtime error (a trap, a host error, a deadline).
pub fn summary(error: &wasmtime::Error) -> String {
    summarize(error.chain().map(|e| e.to_string()))
}

/// The summary of an error that may wrap a Wasmtime error.
pub fn summary_anyhow(error: &anyhow::Error) -> String {
    summarize(error.chain().map(|e| e.to_string()))
}

/// The composed plugin in which the guest failed, if it failed inside
/// one: the innermost frame of a core module that composition named after
/// a plugin (`keel_compose::module_names`). A plugin's frames are on the
/// stack only while a call into it runs, so any such frame means the
/// failure came from inside that call; with a plugin composed beneath a
/// layer, the innermost names the deepest.
pub fn plugin_of(error: &wasmtime::Error) -> Option<String> {
    error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(plugin_in)
}

/// [`plugin_of`] for an error that may wrap a Wasmtime error.
pub fn plugin_of_anyhow(error: &anyhow::Error) -> Option<String> {
    error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(plugin_in)
}

fn plugin_in(trace: &wasmtime::WasmBacktrace) -> Option<String> {
    trace.frames().iter().find_map(|frame| {
        frame
            .module()
            .name()
            .and_then(keel_compose::module_names::plugin_of)
            .map(str::to_string)
    })
}

/// The summary of an error chain, given each message (outermost first):
/// the trap's message, then the first frames of its backtrace.
pub fn summarize(messages: impl IntoIterator<Item = String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut frames: Vec<String> = Vec::new();
    let mut more_frames = 0;
    for message in messages {
        if let Some(trace) = message.strip_prefix(BACKTRACE_HEADER) {
            // Frame lines start with their number; detail lines ("at
            // file:line", inlined callers) are left out.
            let numbered = trace.lines().map(str::trim).filter(|line| {
                line.split_once(':')
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            for frame in numbered {
                if frames.len() < MAX_FRAMES {
                    frames.push(cut(frame, MAX_PART));
                } else {
                    more_frames += 1;
                }
            }
            continue;
        }
        let mut lines = message.lines();
        let first = lines.next().unwrap_or_default();
        let mut part = cut(first, MAX_PART);
        if lines.next().is_some() && !part.ends_with('…') {
            part.push('…');
        }
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    let mut text = parts.join(": ");
    if !frames.is_empty() {
        if more_frames > 0 {
            frames.push(format!("{more_frames} more frames"));
        }
        text.push_str(&format!(" [at {}]", frames.join("; ")));
    }
    cut(&text, MAX_SUMMARY)
}

/// `text`, cut to at most `max` bytes (on a character boundary) with `…`
/// marking a cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = '…'.len_utf8();
    let mut end = max.saturating_sub(ellipsis);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trap_comes_first_then_a_few_frames() {
        let chain = [
            "error while executing at wasm backtrace:\n    0: 0x1 - f\n    1: 0x2 - g\n    2: 0x3 - h\n    3: 0x4 - i".to_string(),
            "wasm trap: wasm `unreachable` instruction executed".to_string(),
        ];
        assert_eq!(
            summarize(chain),
            "wasm trap: wasm `unreachable` instruction executed [at 0: 0x1 - f; 1: 0x2 - g; 2: 0x3 - h; 1 more frames]"
        );
    }

    #[test]
    fn a_huge_error_is_cut_to_the_cap_on_a_character_boundary() {
        let chain = [
            format!("{BACKTRACE_HEADER}\n{}", "   7: 0x9 - é\n".repeat(10_000)),
            "ü".repeat(10_000),
            "context\nwith a second line".to_string(),
        ];
        let text = summarize(chain);
        assert!(text.len() <= MAX_SUMMARY, "{} bytes", text.len());
        assert!(text.starts_with("üü"), "{text}");
        assert!(text.contains("context…"), "{text}");
        assert!(text.contains("9997 more frames"), "{text}");
    }

    #[test]
    fn frames_detail_lines_are_left_out() {
        let chain = [
            format!(
                "{BACKTRACE_HEADER}\n    0: 0x1 - f\n                    at src/lib.rs:3:5\n    1: 0x2 - g"
            ),
            "boom".to_string(),
        ];
        assert_eq!(summarize(chain), "boom [at 0: 0x1 - f; 1: 0x2 - g]");
    }
}
