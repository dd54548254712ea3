//! Splits a guest's output into lines in one pass, keeping at most a
//! line's cap of each.
//!
//! Every byte is looked at once, whatever the writes' sizes, and nothing is
//! moved but the kept part of the current partial line: a megabyte of
//! newlines costs as little as a megabyte of text. A line longer than the
//! cap keeps its first `cap` bytes; the rest is only counted, so the host
//! holds at most `cap` bytes per stream.

/// One complete line: the bytes kept, and how many more the guest wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's first bytes (at most the cap), without its line ending.
    pub text: &'a [u8],
    /// Bytes of the line past the cap, not kept.
    pub cut: usize,
    /// Bytes the guest wrote for this line, line ending included.
    pub written: usize,
}

/// A stream's partial line between writes.
#[derive(Debug)]
pub struct LineSplitter {
    cap: usize,
    kept: Vec<u8>,
    cut: usize,
    /// Bytes of the partial line written so far (kept and cut).
    written: usize,
}

impl LineSplitter {
    /// A splitter keeping at most `cap` bytes of a line.
    pub fn new(cap: usize) -> LineSplitter {
        LineSplitter {
            cap,
            kept: Vec::new(),
            cut: 0,
            written: 0,
        }
    }

    /// Takes `bytes` in, handing every line it completes to `each`.
    pub fn push(&mut self, mut bytes: &[u8], mut each: impl FnMut(Line<'_>)) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.keep(&bytes[..end]);
            self.written += 1;
            self.finish(&mut each);
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
    }

    /// Hands the partial line, if any, to `each` (the stream ends or is
    /// flushed).
    pub fn flush(&mut self, mut each: impl FnMut(Line<'_>)) {
        if self.written > 0 {
            self.finish(&mut each);
        }
    }

    fn keep(&mut self, part: &[u8]) {
        let room = self.cap.saturating_sub(self.kept.len());
        let (kept, cut) = part.split_at(room.min(part.len()));
        self.kept.extend_from_slice(kept);
        self.cut += cut.len();
        self.written += part.len();
    }

    fn finish(&mut self, each: &mut impl FnMut(Line<'_>)) {
        let mut text = self.kept.as_slice();
        // A CRLF line ending, when the line was short enough to keep it.
        if self.cut == 0
            && let Some(stripped) = text.strip_suffix(b"\r")
        {
            text = stripped;
        }
        each(Line {
            text,
            cut: self.cut,
            written: self.written,
        });
        self.kept.clear();
        // A huge line's buffer is not kept for the next, short one.
        if self.kept.capacity() > 4096 {
            self.kept.shrink_to(4096);
        }
        self.cut = 0;
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(cap: usize, writes: &[&[u8]], flush: bool) -> Vec<(String, usize, usize)> {
        let mut splitter = LineSplitter::new(cap);
        let mut out = Vec::new();
        let mut take = |l: Line<'_>| {
            out.push((
                String::from_utf8_lossy(l.text).into_owned(),
                l.cut,
                l.written,
            ))
        };
        for write in writes {
            splitter.push(write, &mut take);
        }
        if flush {
            splitter.flush(&mut take);
        }
        out
    }

    #[test]
    fn lines_span_writes_and_lose_their_endings() {
        assert_eq!(
            lines(100, &[b"one\r\ntw", b"o\n\nthr", b"ee"], true),
            vec![
                ("one".into(), 0, 5),
                ("two".into(), 0, 4),
                (String::new(), 0, 1),
                ("three".into(), 0, 5),
            ]
        );
        assert!(lines(100, &[b"partial"], false).is_empty());
    }

    #[test]
    fn long_lines_keep_their_first_bytes_and_count_the_rest() {
        assert_eq!(
            lines(4, &[b"abcdefgh", b"ij\nxy\n"], false),
            vec![("abcd".into(), 6, 11), ("xy".into(), 0, 3)]
        );
    }

    #[test]
    fn many_newlines_take_linear_time() {
        // Quadratic splitting took seconds for this; linear takes
        // milliseconds even unoptimised.
        let flood = vec![b'\n'; 4 << 20];
        let mut splitter = LineSplitter::new(16);
        let mut count = 0usize;
        splitter.push(&flood, |_| count += 1);
        assert_eq!(count, 4 << 20);
    }
}
