//! Texts in, text out: what JS hands the merge (`merge_texts`, `diff_texts`,
//! `merge_texts_sharing`). Every text `JSON.stringify` writes is accepted,
//! lone UTF-16 surrogates included (marked on the way in, restored on the way
//! out); nesting is counted on the text before anything recursive runs
//! (`MAX_DEPTH`), and deep values are walked on a thread whose stack fits
//! them; numbers are taken as JavaScript takes them (`1.0` is `1`).

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::merge::run_merge;
use super::{diff, recipe, MergeOutcome, Side};
/// How deeply values may nest: arrays and objects inside each other, `[]` and
/// `{}` being one level and a scalar none. The one limit of the whole package
/// (`merge.js` and `document.js` use the same number): far above what a
/// document needs, and low enough that `JSON.stringify` and `structuredClone`
/// on the JS side (about 3,000 levels with Node's default stack) always cope.
pub const MAX_DEPTH: usize = 1000;

/// Values nested at most this deep are walked on the caller's thread: the JS
/// thread, whose stack may be small (1 MiB main threads on Windows, V8 using
/// part of it) — 32 levels take under 80 KiB (release). Deeper ones are walked
/// on a thread of ours with `DEEP_STACK` bytes of stack (spawning one costs
/// tens of µs, nothing beside a merge of that size).
const INLINE_DEPTH: usize = 32;

/// Stack for walking `MAX_DEPTH` levels. Parse, merge, serialize and drop
/// recurse once per level: measured with `stack_probe` (merge with a conflict
/// at the bottom, favoring, diff, canonical JSON) at ~2.2 KiB per level in a
/// release build, ~4.2 KiB in a debug build, so 16 MiB is 7× (4×) what the
/// limit needs. `deep_values_fit_the_stack` runs it all on half of this.
/// Reserved, not committed: untouched pages cost no memory.
const DEEP_STACK: usize = 16 << 20;

/// Marks a lone surrogate inside a string while texts are merged: `MARK`, then
/// the surrogate's code unit as a private-use character (U+D800 + n as
/// U+E000 + n); a `MARK` that was in the text is doubled. A noncharacter, so
/// rare, and escaped anyway: the marked text means exactly the original.
const MARK: char = '\u{FDD0}';
const MARK_UTF8: &[u8] = "\u{FDD0}".as_bytes();

/// A JSON text refused by `merge_texts` / `diff_texts`.
#[derive(Debug)]
pub struct TextError {
    /// Which of the texts (0-based), when the fault is one text's.
    pub input: Option<usize>,
    pub kind: TextErrorKind,
}

#[derive(Debug)]
pub enum TextErrorKind {
    /// Arrays and objects nested more than `MAX_DEPTH` levels.
    TooDeep,
    /// Not JSON.
    Invalid(serde_json::Error),
    /// No thread could be started to walk a deep value.
    Thread(std::io::Error),
}

impl fmt::Display for TextErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextErrorKind::TooDeep => write!(
                f,
                "is nested more than {MAX_DEPTH} levels deep (arrays and objects inside each other; the limit is {MAX_DEPTH})"
            ),
            TextErrorKind::Invalid(e) => write!(f, "is not valid JSON: {e}"),
            TextErrorKind::Thread(e) => {
                write!(f, "could not be merged: no thread for a deep value ({e})")
            }
        }
    }
}

/// `merge` (or `merge_favoring`) of the JSON texts `[base, mine, theirs]`, as
/// the JSON text of the `MergeOutcome`. Lone surrogates survive; more than
/// `MAX_DEPTH` levels is refused.
pub fn merge_texts(
    texts: [&str; 3],
    array_key: &str,
    favor: Option<Side>,
) -> Result<String, TextError> {
    on_texts(texts, array_key, |[base, mine, theirs], key| {
        run_merge(base, mine, theirs, key, favor)
    })
}

/// `merge_texts`, with `merged` told as a recipe against `theirs`
/// (`recipe.rs`): what the caller, who holds theirs as a value, builds the
/// merged value from without parsing all of it.
pub fn merge_texts_sharing(
    texts: [&str; 3],
    array_key: &str,
    favor: Option<Side>,
) -> Result<String, TextError> {
    on_texts(texts, array_key, |[base, mine, theirs], key| {
        let outcome = run_merge(base, mine, theirs, key, favor);
        MergeOutcome {
            merged: recipe::recipe(&outcome.merged, theirs, key),
            conflicts: outcome.conflicts,
        }
    })
}

/// `diff` of the JSON texts `[before, after]`, as the JSON text of the changes.
pub fn diff_texts(texts: [&str; 2], array_key: &str) -> Result<String, TextError> {
    on_texts(texts, array_key, |[before, after], key| {
        diff(before, after, key)
    })
}

/// Parses `texts`, runs `walk` on the values and returns its outcome as JSON
/// text; on a stack that fits the values' depth, with lone surrogates marked
/// on the way in and restored on the way out (only when there are any).
fn on_texts<const N: usize, T: Serialize>(
    texts: [&str; N],
    array_key: &str,
    walk: impl FnOnce(&[Value; N], &str) -> T + Send,
) -> Result<String, TextError> {
    let mut depth = 0;
    let mut marked = false;
    for (i, text) in texts.iter().enumerate() {
        let scan = scan(text.as_bytes()).map_err(|kind| TextError {
            input: Some(i),
            kind,
        })?;
        depth = depth.max(scan.depth);
        marked |= scan.lone_surrogates;
    }
    let text = on_stack_for(depth, move || walk_texts(texts, array_key, marked, walk)).map_err(
        |e| TextError {
            input: None,
            kind: TextErrorKind::Thread(e),
        },
    )??;
    Ok(if marked { unmark(text) } else { text })
}

/// `on_texts` on the current stack: parse (marked, if `marked`), walk,
/// serialize; the values are dropped here too.
fn walk_texts<const N: usize, T: Serialize>(
    texts: [&str; N],
    array_key: &str,
    marked: bool,
    walk: impl FnOnce(&[Value; N], &str) -> T,
) -> Result<String, TextError> {
    let marked_texts;
    let (texts, key): ([&str; N], std::borrow::Cow<'_, str>) = if marked {
        marked_texts = texts.map(mark);
        (
            std::array::from_fn(|i| marked_texts[i].as_str()),
            array_key.replace(MARK, "\u{FDD0}\u{FDD0}").into(),
        )
    } else {
        (texts, array_key.into())
    };
    let mut values = Vec::with_capacity(N);
    for (i, text) in texts.iter().enumerate() {
        let mut value = parse(text).map_err(|e| TextError {
            input: Some(i),
            kind: TextErrorKind::Invalid(e),
        })?;
        as_js_numbers(&mut value);
        values.push(value);
    }
    let values: [Value; N] = values.try_into().expect("one value per text");
    let outcome = walk(&values, &key);
    serde_json::to_string(&outcome).map_err(|e| TextError {
        input: None,
        kind: TextErrorKind::Invalid(e),
    })
}

/// Runs `f` where `depth` levels of recursion fit: here for shallow values,
/// else on a thread with `DEEP_STACK` bytes of stack (a panic there is
/// resumed here).
fn on_stack_for<T: Send>(depth: usize, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    if depth <= INLINE_DEPTH {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("flm-deep-json".into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(scope, f)?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Integral floats as integers, as a JS number prints: `1.0` is `1`. Beyond
/// 2^53 a float stays one (JSON.stringify writes `1e+21`, which is a float
/// here too). Recursive: called where the value's depth fits the stack.
fn as_js_numbers(value: &mut Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < EXACT {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(as_js_numbers),
        Value::Object(members) => members.values_mut().for_each(as_js_numbers),
        _ => {}
    }
}

/// serde_json's own limit (128 levels) lifted: `scan` has bounded the depth.
fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.disable_recursion_limit();
    let value = Value::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// What `scan` found in a text.
struct Scan {
    /// The deepest nesting of arrays and objects.
    depth: usize,
    /// Whether a string has a `\uXXXX` escape of a lone surrogate.
    lone_surrogates: bool,
}

/// One pass over the text, no allocation. Counts nesting the way a parser
/// does (brackets outside strings) and stops past `MAX_DEPTH`. Text that is
/// not JSON is left for the parser to refuse.
fn scan(text: &[u8]) -> Result<Scan, TextErrorKind> {
    let (mut depth, mut deepest, mut lone_surrogates) = (0usize, 0usize, false);
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TextErrorKind::TooDeep);
                }
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        let (len, unit) = escape_at(text, i);
                        lone_surrogates |= matches!(unit, Unit::Lone(_));
                        i += len;
                    } else {
                        i += 1;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(Scan {
        depth: deepest,
        lone_surrogates,
    })
}

/// What a backslash escape in a string stands for, as far as marking cares.
#[derive(Debug, PartialEq)]
enum Unit {
    /// `\uD800`–`\uDFFF` not part of a high-low pair.
    Lone(u16),
    /// `\uFDD0`: the marker itself, escaped.
    Mark,
    Other,
}

/// The escape starting at `text[i] == b'\\'`: its length in bytes and what it
/// is. A surrogate pair (`\uD83D\uDE00`) is one 12-byte escape. Never ends
/// inside a multi-byte character (a bad escape is the parser's to refuse).
fn escape_at(text: &[u8], i: usize) -> (usize, Unit) {
    let hex = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(text.get(at..at + 4)?).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(digits, 16).ok()
    };
    match text.get(i + 1) {
        Some(b'u') => match hex(i + 2) {
            Some(high @ 0xD800..=0xDBFF) => {
                let pair = text.get(i + 6..i + 8) == Some(b"\\u")
                    && matches!(hex(i + 8), Some(0xDC00..=0xDFFF));
                if pair {
                    (12, Unit::Other)
                } else {
                    (6, Unit::Lone(high))
                }
            }
            Some(low @ 0xDC00..=0xDFFF) => (6, Unit::Lone(low)),
            Some(0xFDD0) => (6, Unit::Mark),
            Some(_) => (6, Unit::Other),
            None => (2, Unit::Other),
        },
        Some(b) if b.is_ascii() => (2, Unit::Other),
        _ => (1, Unit::Other),
    }
}

/// The text with each lone surrogate escape in a string replaced by `MARK` and
/// its private-use stand-in, and each `MARK` (raw or escaped) doubled.
fn mark(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                in_string = !in_string;
                i += 1;
            }
            b'\\' if in_string => {
                let (len, unit) = escape_at(bytes, i);
                let replacement = match unit {
                    Unit::Lone(unit) => Some(stand_in(unit)),
                    Unit::Mark => Some(MARK),
                    Unit::Other => None,
                };
                if let Some(second) = replacement {
                    out.push_str(&text[copied..i]);
                    out.push(MARK);
                    out.push(second);
                    copied = i + len;
                }
                i += len;
            }
            0xEF if in_string && bytes[i..].starts_with(MARK_UTF8) => {
                i += MARK_UTF8.len();
                out.push_str(&text[copied..i]);
                out.push(MARK);
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The private-use character standing for the surrogate `unit`.
fn stand_in(unit: u16) -> char {
    char::from_u32(0xE000 + u32::from(unit - 0xD800)).expect("U+E000..U+E7FF are characters")
}

/// `mark` undone in JSON text written by serde_json (which leaves both
/// characters raw): `MARK MARK` is `MARK`, `MARK` and a stand-in the
/// surrogate's `\uXXXX` escape, which JS's `JSON.parse` reads as that lone
/// code unit.
fn unmark(text: String) -> String {
    if !text.contains(MARK) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let mut after = rest[at + MARK.len_utf8()..].chars();
        match after.next() {
            Some(MARK) => out.push(MARK),
            Some(c @ '\u{E000}'..='\u{E7FF}') => {
                let unit = 0xD800 + (c as u32 - 0xE000);
                write!(out, "\\u{unit:04x}").expect("writing to a String");
            }
            // Not made by `mark`: left as it is.
            other => {
                out.push(MARK);
                out.extend(other);
            }
        }
        rest = after.as_str();
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "texts_tests.rs"]
mod tests;
