//! RESP2, the Redis protocol, as far as this plugin speaks it: commands
//! out as arrays of bulk strings, replies in as one of RESP2's five types.
//! Pure byte handling, no I/O, so it is tested natively.
//!
//! Replies arrive in pieces. [`Scanner`] finds where the reply at the
//! start of a buffer ends, picking up where it stopped each time more
//! bytes come (so a reply of many elements costs its length once, not once
//! per piece), and [`parse`] builds the reply once it is whole. What a reply may
//! claim is bounded by the caller's cap ([`parse`]'s `max`), so a server (or
//! something pretending to be one) cannot make the plugin allocate what a
//! header announces before the bytes arrive.

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR …`: the server refused the command.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` and `n` bytes; `$-1` is `None`.
    Bulk(Option<Vec<u8>>),
    /// `*n` and `n` replies; `*-1` is `None` (an aborted `EXEC`).
    Array(Option<Vec<Reply>>),
}

/// Why bytes are not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not RESP2.
    Protocol(String),
    /// Larger than the cap.
    TooLarge(usize),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Protocol(why) => write!(f, "not a Redis reply: {why}"),
            ParseError::TooLarge(max) => write!(
                f,
                "the Redis reply is larger than {max} bytes (`max_reply_bytes`)"
            ),
        }
    }
}

/// Appends `args` as one command (an array of bulk strings) to `out`.
///
/// `GET k` is `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Deepest nesting of arrays accepted (this plugin's replies nest twice).
const MAX_DEPTH: usize = 8;

/// The reply at the start of `buf` and how many bytes it took, or `None`
/// if `buf` holds only part of it. A reply claiming more than `max` bytes
/// (a bulk string longer, or an array with more elements) is an error.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<(Reply, usize)>, ParseError> {
    parse_at(buf, 0, max, 0)
}

fn parse_at(
    buf: &[u8],
    at: usize,
    max: usize,
    depth: usize,
) -> Result<Option<(Reply, usize)>, ParseError> {
    let Some((kind, line, next)) = line_at(buf, at)? else {
        return Ok(None);
    };
    let text = || {
        String::from_utf8(line.to_vec())
            .map_err(|_| ParseError::Protocol("a status line that is not UTF-8".into()))
    };
    match kind {
        b'+' => Ok(Some((Reply::Status(text()?), next))),
        b'-' => Ok(Some((Reply::Error(text()?), next))),
        b':' => Ok(Some((Reply::Integer(number(line)?), next))),
        b'$' => {
            let Some(len) = length(line, max)? else {
                return Ok(Some((Reply::Bulk(None), next)));
            };
            // `len` is at most `max`, but `max` is configured: no sum may wrap.
            let (Some(end), Some(stop)) = (
                next.checked_add(len),
                next.checked_add(len).and_then(|e| e.checked_add(2)),
            ) else {
                return Err(ParseError::Protocol(
                    "a bulk string longer than memory".into(),
                ));
            };
            if buf.len() < stop {
                return Ok(None);
            }
            if &buf[end..stop] != b"\r\n" {
                return Err(ParseError::Protocol(
                    "a bulk string without its CRLF".into(),
                ));
            }
            Ok(Some((Reply::Bulk(Some(buf[next..end].to_vec())), stop)))
        }
        b'*' => {
            let Some(count) = length(line, max)? else {
                return Ok(Some((Reply::Array(None), next)));
            };
            if depth >= MAX_DEPTH {
                return Err(ParseError::Protocol("arrays nested too deep".into()));
            }
            // Each element takes at least 3 bytes: no allocation beyond
            // what the bytes already received can fill.
            let mut items = Vec::with_capacity(count.min(buf.len().saturating_sub(next) / 3));
            let mut at = next;
            for _ in 0..count {
                match parse_at(buf, at, max, depth + 1)? {
                    Some((item, after)) => {
                        items.push(item);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), at)))
        }
        other => Err(ParseError::Protocol(format!(
            "unknown reply type byte 0x{other:02x}"
        ))),
    }
}

/// Where the reply at the start of a growing buffer ends, found without
/// building it and resumed where the last call stopped.
///
/// Between calls the buffer may only grow at its end; once a reply is
/// taken off its front, start a new scanner.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Where the next element not yet seen whole starts.
    at: usize,
    /// For each array opened and not yet complete, its elements still to come.
    open: Vec<usize>,
}

impl Scanner {
    /// The length of the reply at the start of `buf` once it is all there,
    /// `None` while it is not; an error where [`parse`] would give one on
    /// the framing (lengths, nesting, CRLFs, type bytes).
    pub fn scan(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>, ParseError> {
        loop {
            let Some((kind, line, next)) = line_at(buf, self.at)? else {
                return Ok(None);
            };
            let end = match kind {
                b'+' | b'-' => next,
                b':' => {
                    number(line)?;
                    next
                }
                b'$' => match length(line, max)? {
                    None => next,
                    Some(len) => {
                        let stop = next
                            .checked_add(len)
                            .and_then(|e| e.checked_add(2))
                            .ok_or_else(|| {
                                ParseError::Protocol("a bulk string longer than memory".into())
                            })?;
                        if buf.len() < stop {
                            return Ok(None);
                        }
                        if &buf[stop - 2..stop] != b"\r\n" {
                            return Err(ParseError::Protocol(
                                "a bulk string without its CRLF".into(),
                            ));
                        }
                        stop
                    }
                },
                b'*' => match length(line, max)? {
                    None => next,
                    Some(count) => {
                        if self.open.len() >= MAX_DEPTH {
                            return Err(ParseError::Protocol("arrays nested too deep".into()));
                        }
                        if count > 0 {
                            self.open.push(count);
                            self.at = next;
                            continue;
                        }
                        next
                    }
                },
                other => {
                    return Err(ParseError::Protocol(format!(
                        "unknown reply type byte 0x{other:02x}"
                    )));
                }
            };
            self.at = end;
            // One element done: close every array it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(end)),
                    Some(left) if *left > 1 => {
                        *left -= 1;
                        break;
                    }
                    Some(_) => {
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// One header line: its type byte, the rest of it, and where the next
/// line starts.
type Line<'a> = (u8, &'a [u8], usize);

/// The line at `at`; `None` if it is not complete yet.
fn line_at(buf: &[u8], at: usize) -> Result<Option<Line<'_>>, ParseError> {
    let Some(rest) = buf.get(at..) else {
        return Ok(None);
    };
    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
        // A header line is short; a long one without its end is not RESP.
        if rest.len() > 64 * 1024 {
            return Err(ParseError::Protocol("a line without its CRLF".into()));
        }
        return Ok(None);
    };
    let Some((&kind, line)) = rest[..end].split_first() else {
        return Err(ParseError::Protocol("an empty line".into()));
    };
    Ok(Some((kind, line, at + end + 2)))
}

fn number(line: &[u8]) -> Result<i64, ParseError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ParseError::Protocol(format!("`{}` is not a number", line.escape_ascii())))
}

/// A bulk string's or array's length: `None` for `-1`, an error if it is
/// negative otherwise or over `max`.
fn length(line: &[u8], max: usize) -> Result<Option<usize>, ParseError> {
    match number(line)? {
        -1 => Ok(None),
        n if n < 0 => Err(ParseError::Protocol(format!("a length of {n}"))),
        n => match usize::try_from(n) {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(ParseError::TooLarge(max)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"GET", b"k"]);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn every_reply_type_parses_once_complete() {
        let cases: [(&[u8], Reply); 7] = [
            (b"+OK\r\n", Reply::Status("OK".into())),
            (b"-ERR no\r\n", Reply::Error("ERR no".into())),
            (b":-7\r\n", Reply::Integer(-7)),
            (b"$3\r\na\r\n\r\n", Reply::Bulk(Some(b"a\r\n".to_vec()))),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*2\r\n$1\r\n5\r\n*1\r\n$0\r\n\r\n",
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"5".to_vec())),
                    Reply::Array(Some(vec![Reply::Bulk(Some(Vec::new()))])),
                ])),
            ),
        ];
        for (bytes, reply) in cases {
            for cut in 0..bytes.len() {
                assert_eq!(
                    parse(&bytes[..cut], 1 << 20),
                    Ok(None),
                    "{bytes:?} cut at {cut}"
                );
            }
            let mut more = bytes.to_vec();
            more.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(parse(&more, 1 << 20), Ok(Some((reply, bytes.len()))));
        }
    }

    #[test]
    fn announced_sizes_past_the_cap_are_refused_before_the_bytes_come() {
        assert_eq!(parse(b"$1000\r\n", 999), Err(ParseError::TooLarge(999)));
        assert_eq!(parse(b"*1000\r\n", 999), Err(ParseError::TooLarge(999)));
        assert_eq!(
            parse(b"$99999999999999999999\r\n", 10),
            Err(ParseError::Protocol(
                "`99999999999999999999` is not a number".into()
            ))
        );
        assert!(matches!(
            parse(b"$-2\r\n", 10),
            Err(ParseError::Protocol(_))
        ));
        assert!(matches!(parse(b"?x\r\n", 10), Err(ParseError::Protocol(_))));
        assert!(matches!(
            parse(b"$1\r\nabc", 10),
            Err(ParseError::Protocol(_))
        ));
    }

    #[test]
    fn a_length_near_the_address_space_is_refused_not_wrapped() {
        // With the cap as large as it goes, a bulk length whose end would
        // wrap past usize::MAX is an error, never an index that panics.
        let line = format!("${}\r\n", usize::MAX - 3);
        assert!(matches!(
            parse(line.as_bytes(), usize::MAX),
            Err(ParseError::Protocol(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = b"*1\r\n".repeat(20);
        assert!(matches!(parse(&deep, 100), Err(ParseError::Protocol(_))));
    }
    #[test]
    fn the_scanner_finds_every_reply_end_as_bytes_arrive() {
        let replies: [&[u8]; 6] = [
            b"+OK\r\n",
            b"$3\r\na\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n$1\r\n5\r\n*1\r\n$0\r\n\r\n:7\r\n",
            b"*2\r\n*2\r\n+a\r\n$-1\r\n*1\r\n-e\r\n",
        ];
        for bytes in replies {
            let mut more = bytes.to_vec();
            more.extend_from_slice(b"+NEXT\r\n");
            let mut scanner = Scanner::default();
            // One byte more each call, as the slowest server would send.
            for cut in 0..bytes.len() {
                assert_eq!(
                    scanner.scan(&more[..cut], 1 << 20),
                    Ok(None),
                    "{bytes:?} at {cut}"
                );
            }
            assert_eq!(scanner.scan(&more, 1 << 20), Ok(Some(bytes.len())));
            let parsed = parse(&more[..bytes.len()], 1 << 20);
            assert!(matches!(parsed, Ok(Some((_, used))) if used == bytes.len()));
        }
    }

    #[test]
    fn the_scanner_resumes_after_the_elements_it_has_seen() {
        // An array of many elements arriving in halves: the second call
        // starts after the elements the first one saw whole.
        let mut reply = b"*1000\r\n".to_vec();
        for i in 0..1000 {
            reply.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        }
        let half = reply.len() / 2;
        let mut scanner = Scanner::default();
        assert_eq!(scanner.scan(&reply[..half], 1 << 20), Ok(None));
        assert!(
            scanner.at > half - 16,
            "stopped at {} of {half}",
            scanner.at
        );
        assert_eq!(
            scanner.open,
            vec![1000 - count_elements(&reply[..scanner.at])]
        );
        assert_eq!(scanner.scan(&reply, 1 << 20), Ok(Some(reply.len())));
    }

    /// Bulk strings whose ends lie within `bytes` (a helper for the test above).
    fn count_elements(bytes: &[u8]) -> usize {
        bytes.windows(2).filter(|w| w == b"\n$").count()
    }

    #[test]
    fn the_scanner_refuses_what_parse_refuses() {
        let bad: [&[u8]; 5] = [
            b"$1000\r\n",
            b"*1000\r\n",
            b"$-2\r\n",
            b"?x\r\n",
            b"$1\r\nabc",
        ];
        for bytes in bad {
            assert!(Scanner::default().scan(bytes, 999).is_err(), "{bytes:?}");
            assert!(parse(bytes, 999).is_err(), "{bytes:?}");
        }
        let deep = b"*1\r\n".repeat(20);
        assert!(Scanner::default().scan(&deep, 100).is_err());
    }
}
