//! A tutorial written in Markdown, read as steps a test can follow: the
//! files it has its reader write, and the commands it has them run with the
//! output it shows.
//!
//! The conventions (those of `docs/plugins.md`):
//! - a fenced block whose info string holds `file=PATH` (```` ```rust
//!   file=greeter/src/lib.rs ````) is a file the reader writes, whole, at
//!   PATH under the folder they work in;
//! - a ```` ```console ```` block holds commands after `$ `, each followed
//!   by the output the page shows for it. An output line `...` stands for
//!   lines left out; `...` inside a line for text that changes between
//!   runs (timestamps, digests);
//! - commands appear nowhere else: a `sh`, `bash` or `shell` block is
//!   refused, so that nothing a reader is told to run escapes the test.

use anyhow::{Result, bail};

/// One thing the reader does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Writes `text` to `path` (relative to the folder they work in).
    File {
        /// Where, relative to the reader's folder.
        path: String,
        /// The whole file.
        text: String,
    },
    /// Runs `line` and sees (at least) `expected`.
    Command {
        /// The command as written after `$ `.
        line: String,
        /// The output lines shown after it (patterns, see [`matches`]).
        expected: Vec<String>,
    },
}

/// The steps of `markdown`, in the page's order.
pub fn steps(markdown: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = Vec::new();
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            if inner.starts_with("```") {
                closed = true;
                break;
            }
            body.push(inner);
        }
        if !closed {
            bail!("line {}: a code block is not closed", number + 1);
        }
        let mut words = info.split_whitespace();
        let language = words.next().unwrap_or_default();
        let file = words.find_map(|w| w.strip_prefix("file="));
        match (language, file) {
            (_, Some(path)) => steps.push(Step::File {
                path: path.to_string(),
                text: body.iter().map(|l| format!("{l}\n")).collect(),
            }),
            ("console", None) => commands(&body, &mut steps),
            ("sh" | "bash" | "shell", None) => bail!(
                "line {}: a `{language}` block: write commands in `console` blocks (`$ ` first), \
                 which the tutorial's test runs",
                number + 1
            ),
            _ => {}
        }
    }
    Ok(steps)
}

/// The commands of a `console` block, each with the output lines after it.
fn commands(body: &[&str], steps: &mut Vec<Step>) {
    for line in body {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step::Command {
                line: command.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(Step::Command { expected, .. }) = steps.last_mut() {
            expected.push(line.to_string());
        }
    }
}

/// Whether `line` matches `pattern`, in which each `...` stands for any
/// text (possibly none).
pub fn matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("...");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks that `actual` holds lines matching the `expected` patterns in
/// order (other lines may come between them); a pattern that is only
/// `...` or empty stands for whatever is left out. The error names the
/// first pattern not found.
pub fn shows(expected: &[String], actual: &str) -> Result<(), String> {
    let mut lines = actual.lines();
    for pattern in expected
        .iter()
        .filter(|p| !p.trim().is_empty() && p.trim() != "...")
    {
        if !lines.by_ref().any(|line| matches(pattern, line)) {
            return Err(format!(
                "no line matching {pattern:?} (after the lines matched before it) in:\n{actual}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stand_for_any_text() {
        assert!(matches("a...c", "abbbc"));
        assert!(matches("... x=1 ...", "2026 INFO x=1 y=2"));
        assert!(matches("oci://r/a:1@sha256:...", "oci://r/a:1@sha256:00ff"));
        assert!(!matches("a...c", "abcd"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("exact", "exact"));
        assert!(!matches("ab...ba", "aba"));
    }

    #[test]
    fn shown_lines_must_come_in_order() {
        let out = "one\ntwo\nthree\n";
        assert!(shows(&["one".into(), "...".into(), "three".into()], out).is_ok());
        assert!(shows(&["three".into(), "one".into()], out).is_err());
    }

    #[test]
    fn files_and_commands_are_read_in_order() {
        let page = "text\n```rust file=a/b.rs\nfn main() {}\n```\n\n```console\n$ cd a\n$ ls\nb.rs\n```\n```toml\nignored = 1\n```\n";
        assert_eq!(
            steps(page).unwrap(),
            vec![
                Step::File {
                    path: "a/b.rs".into(),
                    text: "fn main() {}\n".into()
                },
                Step::Command {
                    line: "cd a".into(),
                    expected: vec![]
                },
                Step::Command {
                    line: "ls".into(),
                    expected: vec!["b.rs".into()]
                },
            ]
        );
        assert!(steps("```sh\nrm -rf /\n```\n").is_err());
    }
}
