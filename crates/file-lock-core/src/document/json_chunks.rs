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
        out.push_str("{\"a\":[");
        let mut first = true;
        let mut run: Option<(usize, usize, usize)> = None; // (from, to, count) in units
        self.ws();
        if self.peek()? == b']' {
            out.push_str("]}");
            return Some(());
        }
        loop {
            self.ws();
            let start = self.at;
            let open = self.peek()?;
            self.skip()?;
            let end = self.at;
            let (from, to) = (self.units_at(start), self.units_at(end));
            let big = to - from > max && matches!(open, b'[' | b'{');
            if big {
                flush_run(&mut run, &mut first, out, true);
                separator(&mut first, out);
                self.at = start;
                // Re-scan the big element as a node (units counted up to `start` only).
                self.units -= to - from;
                self.counted = start;
                self.node(max, out)?;
            } else {
                run = match run {
                    Some((rf, _, n)) if to - rf <= max => Some((rf, to, n + 1)),
                    other => {
                        let mut other = other;
                        flush_run(&mut other, &mut first, out, true);
                        Some((from, to, 1))
                    }
                };
            }
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => break,
                _ => return None,
            }
        }
        flush_run(&mut run, &mut first, out, true);
        out.push_str("]}");
        Some(())
    }

    fn object(&mut self, max: usize, out: &mut String) -> Option<()> {
        out.push_str("{\"o\":[");
        let mut first = true;
        let mut run: Option<(usize, usize, usize)> = None;
        self.ws();
        if self.peek()? == b'}' {
            out.push_str("]}");
            return Some(());
        }
        loop {
            self.ws();
            let key_start = self.at;
            self.string()?;
            let key_end = self.at;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value_start = self.at;
            let open = self.peek()?;
            self.skip()?;
            let end = self.at;
            let from = self.units_at(key_start);
            let value_units_from = self.units_at(value_start);
            let to = self.units_at(end);
            let big = to - value_units_from > max && matches!(open, b'[' | b'{');
            if big {
                flush_run(&mut run, &mut first, out, false);
                separator(&mut first, out);
                let key = std::str::from_utf8(&self.bytes[key_start..key_end]).ok()?;
                write!(out, "[{},", serde_json::to_string(key).ok()?).ok()?;
                self.at = value_start;
                self.units -= to - value_units_from;
                self.counted = value_start;
                self.node(max, out)?;
                out.push(']');
            } else {
                run = match run {
                    Some((rf, _, n)) if to - rf <= max => Some((rf, to, n + 1)),
                    other => {
                        let mut other = other;
                        flush_run(&mut other, &mut first, out, false);
                        Some((from, to, 1))
                    }
                };
            }
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => break,
                _ => return None,
            }
        }
        flush_run(&mut run, &mut first, out, false);
        out.push_str("]}");
        Some(())
    }
}

fn separator(first: &mut bool, out: &mut String) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

fn flush_run(
    run: &mut Option<(usize, usize, usize)>,
    first: &mut bool,
    out: &mut String,
    count: bool,
) {
    if let Some((from, to, n)) = run.take() {
        separator(first, out);
        if count {
            let _ = write!(out, "[{from},{to},{n}]");
        } else {
            let _ = write!(out, "[{from},{to}]");
        }
    }
}

#[cfg(test)]
#[path = "json_chunks_tests.rs"]
mod tests;
