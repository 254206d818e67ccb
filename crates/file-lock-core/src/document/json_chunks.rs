//! Where a big JSON text can be cut so that JS parses it a piece at a time,
//! with the event loop let run between pieces, instead of one `JSON.parse` of
//! 50 MB that freezes an Electron main process for a second.
//!
//! Invariants:
//! - The plan covers the text exactly: building the value from it (merge.js
//!   `fromChunks`, `build` in the tests) gives what `JSON.parse` of the whole
//!   text gives: the same members in the same order, duplicates resolved the
//!   same way (the last one wins, in a later piece or the same one).
//! - Offsets are in UTF-16 code units of the JS string the text came from (a
//!   lone surrogate, which reaches Rust as U+FFFD, is one unit either way).
//! - Only containers larger than `max` units are cut; every piece holds at most
//!   `max` units or one value that is itself not a container. Recursion
//!   follows only such big containers.
//! - Text that is not JSON gets no plan (`None`): the caller parses it whole,
//!   and `JSON.parse` says what is wrong with it.
//!
//! A plan node is `[start, end]`, one value; or `{"a": [item…]}`, an array,
//! an item being `[start, end, count]` (count elements, `[` + text + `]`) or a
//! node for one big element; or `{"o": [item…]}`, an object, an item being
//! `[start, end]` (members, `{` + text + `}`) or `[keyText, node]` for one big
//! member (keyText: the key as JSON text).

use std::fmt::Write as _;

/// The plan for `text` (see the module's doc), as JSON text; `None` when the
/// text is not JSON (or is small: then `[0, len]`).
pub fn plan(text: &str, max: usize) -> Option<String> {
    let mut scanner = Scanner::new(text.as_bytes());
    scanner.ws();
    let mut out = String::new();
    scanner.node(max.max(1), &mut out)?;
    scanner.ws();
    (scanner.at == scanner.bytes.len()).then_some(out)
}

struct Scanner<'t> {
    bytes: &'t [u8],
    at: usize,
    /// UTF-16 units before `counted` (a byte offset at most `at`).
    units: usize,
    counted: usize,
}

impl<'t> Scanner<'t> {
    fn new(bytes: &'t [u8]) -> Self {
        Scanner {
            bytes,
            at: 0,
            units: 0,
            counted: 0,
        }
    }

    /// The UTF-16 offset of byte offset `to` (never before one asked already).
    fn units_at(&mut self, to: usize) -> usize {
        for &b in &self.bytes[self.counted..to] {
            if b & 0xC0 != 0x80 {
                self.units += if b >= 0xF0 { 2 } else { 1 };
            }
        }
        self.counted = to;
        self.units
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Past one value, iteratively (containers by bracket depth).
    fn skip(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.ws();
            match self.peek()? {
                b'"' => self.string()?,
                b'[' | b'{' => {
                    depth += 1;
                    self.at += 1;
                    continue;
                }
                b']' | b'}' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                }
                b',' | b':' if depth > 0 => {
                    self.at += 1;
                    continue;
                }
                _ => self.scalar()?,
            }
            if depth == 0 {
                return Some(());
            }
        }
    }

    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
    }

    fn scalar(&mut self) -> Option<()> {
        let start = self.at;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// The node for the value at `at` (after whitespace), appended to `out`.
    fn node(&mut self, max: usize, out: &mut String) -> Option<()> {
        let start = self.at;
        let open = self.peek()?;
        self.skip()?;
        let end = self.at;
        let (from, to) = (self.units_at(start), self.units_at(end));
        if to - from <= max || !matches!(open, b'[' | b'{') {
            write!(out, "[{from},{to}]").ok()?;
            return Some(());
        }
        // Big: cut it, from its start again.
        let mut inner = Scanner {
            bytes: &self.bytes[..end],
            at: start + 1,
            units: from,
            counted: start,
        };
        inner.units_at(start + 1);
        if open == b'[' {
            inner.array(max, out)?;
        } else {
            inner.object(max, out)?;
        }
        self.units = inner.units;
        self.counted = inner.counted;
        self.units_at(end);
        Some(())
    }

    fn array(&mut self, max: usize, out: &mut String) -> Option<()> {
        self.members("{\"a\":[", b']', true, out, |scanner, pieces, out| {
            let start = scanner.at;
            let open = scanner.peek()?;
            scanner.skip()?;
            let end = scanner.at;
            let (from, to) = (scanner.units_at(start), scanner.units_at(end));
            if to - from > max && matches!(open, b'[' | b'{') {
                pieces.stand_alone(out);
                scanner.rescan_as_node(start, to - from, max, out)
            } else {
                pieces.add_small(from, to, max, out);
                Some(())
            }
        })
    }

    fn object(&mut self, max: usize, out: &mut String) -> Option<()> {
        self.members("{\"o\":[", b'}', false, out, |scanner, pieces, out| {
            let key_start = scanner.at;
            scanner.string()?;
            let key_end = scanner.at;
            scanner.ws();
            scanner.eat(b':')?;
            scanner.ws();
            let value_start = scanner.at;
            let open = scanner.peek()?;
            scanner.skip()?;
            let end = scanner.at;
            let from = scanner.units_at(key_start);
            let value_units_from = scanner.units_at(value_start);
            let to = scanner.units_at(end);
            if to - value_units_from > max && matches!(open, b'[' | b'{') {
                pieces.stand_alone(out);
                let key = std::str::from_utf8(&scanner.bytes[key_start..key_end]).ok()?;
                write!(out, "[{},", serde_json::to_string(key).ok()?).ok()?;
                scanner.rescan_as_node(value_start, to - value_units_from, max, out)?;
                out.push(']');
            } else {
                pieces.add_small(from, to, max, out);
            }
            Some(())
        })
    }

    /// The members of a container whose opening bracket is behind (an
    /// array's elements, an object's members), each scanned by `member`
    /// (whitespace before it skipped), up to `close`: written after `head`
    /// as pieces (`count`: runs carry their count of members).
    fn members(
        &mut self,
        head: &str,
        close: u8,
        count: bool,
        out: &mut String,
        mut member: impl FnMut(&mut Self, &mut Pieces, &mut String) -> Option<()>,
    ) -> Option<()> {
        out.push_str(head);
        let mut pieces = Pieces::new(count);
        self.ws();
        if self.peek()? != close {
            loop {
                self.ws();
                member(self, &mut pieces, out)?;
                self.ws();
                match self.peek()? {
                    b',' => self.at += 1,
                    c if c == close => break,
                    _ => return None,
                }
            }
        }
        pieces.flush(out);
        out.push_str("]}");
        Some(())
    }

    /// Scans the big value at `start` again as a node of its own: its
    /// `units` (already counted, up to its end) are taken back, so the node
    /// counts them itself.
    fn rescan_as_node(
        &mut self,
        start: usize,
        units: usize,
        max: usize,
        out: &mut String,
    ) -> Option<()> {
        self.at = start;
        self.units -= units;
        self.counted = start;
        self.node(max, out)
    }
}

/// The pieces of one container as they are written: neighbouring small
/// members gather into a run of at most `max` units; a big member stands
/// alone (and ends the run before it).
struct Pieces {
    first: bool,
    /// (from, to, count) in units.
    run: Option<(usize, usize, usize)>,
    /// Runs carry their member count (arrays).
    count: bool,
}

impl Pieces {
    fn new(count: bool) -> Self {
        Pieces {
            first: true,
            run: None,
            count,
        }
    }

    fn add_small(&mut self, from: usize, to: usize, max: usize, out: &mut String) {
        self.run = match self.run.take() {
            Some((run_from, _, n)) if to - run_from <= max => Some((run_from, to, n + 1)),
            other => {
                self.run = other;
                self.flush(out);
                Some((from, to, 1))
            }
        };
    }

    /// Ends the run before a big member, whose node comes next.
    fn stand_alone(&mut self, out: &mut String) {
        self.flush(out);
        separator(&mut self.first, out);
    }

    fn flush(&mut self, out: &mut String) {
        if let Some((from, to, n)) = self.run.take() {
            separator(&mut self.first, out);
            if self.count {
                let _ = write!(out, "[{from},{to},{n}]");
            } else {
                let _ = write!(out, "[{from},{to}]");
            }
        }
    }
}

fn separator(first: &mut bool, out: &mut String) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

#[cfg(test)]
#[path = "json_chunks_tests.rs"]
mod tests;
