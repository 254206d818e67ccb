//! Three-way merge and diff of JSON documents: a document edited here meets a
//! change another process made on disk (issue "JsonDocument": external changes).
//!
//! Invariants:
//! - The outcome does not depend on which side runs the merge: `merge(b, m, t)`
//!   and `merge(b, t, m)` give the same `merged` and the same conflicts, in the
//!   same order, with mine and theirs swapped. Every tie is broken by content
//!   (canonical JSON text, id lists), never by a side's name.
//! - A conflict never picks a side: `merged` keeps the base value there; for
//!   `both-added`, which has no base, the value whose canonical JSON sorts first.
//!   Only `merge_favoring`, asked to, decides conflicts for one side; it
//!   reports the same conflicts, and favoring mine with the sides swapped is
//!   favoring theirs.
//! - Arrays whose elements are all objects with a string or number id under the
//!   array key, no id twice, are merged element by element by id; any other
//!   array, and every scalar, is one atomic value.
//! - Paths name elements of id arrays by id (`[id="admin"]`), never by index, so
//!   one path means the same element in base, mine, theirs and the result.
//! - Object key order: keys keep the order they have in the documents (the
//!   crate enables serde_json's `preserve_order`); keys added on one side land
//!   after their nearest preceding key, by the same rules as id arrays.
//! - Texts in, text out (`merge_texts`, `diff_texts`, what JS calls): every
//!   text `JSON.stringify` writes is accepted, lone UTF-16 surrogates included
//!   (`"\ud83d"` is legal JSON but no Rust string can hold it): they come back
//!   exactly as they went in. Values nest at most `MAX_DEPTH` levels, checked
//!   on the text before anything recursive runs; deep values are walked on a
//!   thread of our own whose stack fits `MAX_DEPTH` levels, never on the
//!   caller's (the JS thread, of whatever size the embedder gave it).
//! - Numbers in texts are taken as JavaScript takes them: `1.0`, `1e2` and
//!   `100.0` are the integers `1` and `100`, as `JSON.stringify` writes them, so
//!   a file another program wrote merges with values this side stringified
//!   without a number seen as changed.

// Fx hashing: ids and keys come from the documents being merged, not from an
// attacker, and SipHash was a third of the merge time on 5000 roles.
mod recipe;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::fmt::{self, Write as _};
use std::hash::Hash;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// The result of a three-way merge; clean iff `conflicts` is empty.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeOutcome {
    /// The merged value; at each conflict it holds the base value (see
    /// [`ConflictKind`]), or with `merge_favoring` the favored side's.
    pub merged: Value,
    /// In document order of the merged value, a container's own `order`
    /// conflict before those inside it (with `merge_favoring`, conflicts at
    /// what the favored side deleted come last in their container).
    pub conflicts: Vec<Conflict>,
}

impl MergeOutcome {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// One place where both sides changed the same thing differently. `base`,
/// `mine` and `theirs` are omitted from the JSON form where the value is
/// absent on that side (the key or element does not exist there).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub path: JsonPath,
    pub kind: ConflictKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mine: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theirs: Option<Value>,
    /// For `delete-modify`: the side that deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<Side>,
}

impl Conflict {
    /// The same conflict as seen by the other side.
    pub fn mirrored(&self) -> Conflict {
        Conflict {
            path: self.path.clone(),
            kind: self.kind,
            base: self.base.clone(),
            mine: self.theirs.clone(),
            theirs: self.mine.clone(),
            deleted_by: self.deleted_by.map(Side::other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Both sides changed the value differently; `merged` keeps the base value.
    BothModified,
    /// One side deleted what the other changed; `merged` keeps the base value.
    DeleteModify,
    /// Absent in base, added with different values on both sides (and not two
    /// objects or id arrays, which merge member by member); `merged` holds the
    /// value whose canonical JSON sorts first.
    BothAdded,
    /// Both sides reordered the elements of an id array differently. `base`,
    /// `mine` and `theirs` are the id lists of the three versions; `merged`
    /// keeps the base order, or the favored side's (the other changes to the
    /// array still merge).
    Order,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Mine,
    Theirs,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Mine => Side::Theirs,
            Side::Theirs => Side::Mine,
        }
    }
}

/// One difference between two versions. `before` is omitted from the JSON form
/// for `added`, `after` for `removed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub path: JsonPath,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    /// A different value, not two objects or two id arrays (those are
    /// reported member by member).
    Changed,
    /// The elements both versions of an id array have are in a different
    /// relative order; `before` and `after` are the two id lists. Reported at
    /// the array's path, before the changes of its elements.
    Reordered,
}

/// An element id: the canonical JSON text of the id value (`"admin"`, `7`), so a
/// string id never equals a number id and ids sort deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    fn of(value: &Value) -> Option<Id> {
        match value {
            Value::String(s) => Some(Id(quote(s))),
            Value::Number(n) => Some(Id(n.to_string())),
            _ => None,
        }
    }

    /// The id as JSON text: `"admin"` for a string id, `7` for a number.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("an id is the JSON text of a string or number")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A member of an object.
    Key(String),
    /// The element of an id array whose `key` member is `id`.
    Id { key: String, id: Id },
}

/// Where a value sits in a document. Displayed (and serialized) JSONPath-like:
/// `$` is the root, `.name` an identifier-like key, `["odd key"]` any other key,
/// `[id="admin"]` / `[id=7]` the element of an id array with that id (the
/// array key's name in place of `id`, quoted if not identifier-like).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathSegment>);

impl JsonPath {
    /// The value at this path in `root`, if there is one.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(root, |value, segment| match segment {
                PathSegment::Key(key) => value.as_object()?.get(key),
                PathSegment::Id { key, id } => value
                    .as_array()?
                    .iter()
                    .find(|element| element.get(key).and_then(Id::of).as_ref() == Some(id)),
            })
    }

    /// Whether `self` is `prefix` or inside it.
    pub fn starts_with(&self, prefix: &JsonPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('$')?;
        for segment in &self.0 {
            match segment {
                PathSegment::Key(key) if is_identifier(key) => write!(f, ".{key}")?,
                PathSegment::Key(key) => write!(f, "[{}]", quote(key))?,
                PathSegment::Id { key, id } if is_identifier(key) => write!(f, "[{key}={}]", id.0)?,
                PathSegment::Id { key, id } => write!(f, "[{}={}]", quote(key), id.0)?,
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Three-way merge of `base` with the two edited versions `mine` and `theirs`.
/// `array_key` names the id member of the elements of id arrays (`"id"`).
pub fn merge(base: &Value, mine: &Value, theirs: &Value, array_key: &str) -> MergeOutcome {
    run_merge(base, mine, theirs, array_key, None)
}

/// `merge`, with every conflict decided for `favor`: its value (its deletion,
/// its order of an id array) wins where both sides changed the same thing;
/// everything else merges as with `merge`. `conflicts` still lists what was
/// decided that way. For "keep mine" / "keep theirs" after a conflict.
pub fn merge_favoring(
    base: &Value,
    mine: &Value,
    theirs: &Value,
    array_key: &str,
    favor: Side,
) -> MergeOutcome {
    run_merge(base, mine, theirs, array_key, Some(favor))
}

fn run_merge(
    base: &Value,
    mine: &Value,
    theirs: &Value,
    array_key: &str,
    favor: Option<Side>,
) -> MergeOutcome {
    let mut merger = Merger {
        array_key,
        favor,
        path: Vec::new(),
        conflicts: Vec::new(),
    };
    let merged = merger
        .value(Some(base), Some(mine), Some(theirs))
        .expect("with all three present, the merge keeps a value");
    MergeOutcome {
        merged,
        conflicts: merger.conflicts,
    }
}

/// What changed from `before` to `after`, in document order: objects and id
/// arrays member by member, anything else as one `changed` value.
pub fn diff(before: &Value, after: &Value, array_key: &str) -> Vec<Change> {
    let mut differ = Differ {
        array_key,
        path: Vec::new(),
        changes: Vec::new(),
    };
    differ.value(before, after);
    differ.changes
}

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

/// JSON text with object keys sorted at every level: equal values give equal
/// text whatever their key order, so it can break ties between the sides.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(key));
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// What identifies a member across versions: an object key or an element id.
trait Key: Clone + Eq + Hash + Ord {
    /// Whether the order of members means something (and can conflict).
    const ORDERED: bool;
    fn segment(&self, array_key: &str) -> PathSegment;
    fn to_value(&self) -> Value;
}

impl Key for &str {
    const ORDERED: bool = false;

    fn segment(&self, _: &str) -> PathSegment {
        PathSegment::Key((*self).to_owned())
    }

    fn to_value(&self) -> Value {
        Value::String((*self).to_owned())
    }
}

impl Key for Id {
    const ORDERED: bool = true;

    fn segment(&self, array_key: &str) -> PathSegment {
        PathSegment::Id {
            key: array_key.to_owned(),
            id: self.clone(),
        }
    }

    fn to_value(&self) -> Value {
        Id::to_value(self)
    }
}

/// The members of an object or the elements of an id array: their keys in
/// document order and the value under each key.
struct Keyed<'v, K> {
    order: Vec<K>,
    values: HashMap<K, &'v Value>,
}

impl<'v, K: Key> Keyed<'v, K> {
    fn get(&self, key: &K) -> Option<&'v Value> {
        self.values.get(key).copied()
    }

    fn contains(&self, key: &K) -> bool {
        self.values.contains_key(key)
    }

    fn keys_value(&self) -> Value {
        Value::Array(self.order.iter().map(K::to_value).collect())
    }
}

fn members(map: &Map<String, Value>) -> Keyed<'_, &str> {
    Keyed {
        order: map.keys().map(String::as_str).collect(),
        values: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    }
}

/// `None` unless every element is an object with a string or number under
/// `array_key` and no id repeats: only then can elements be matched by id.
fn elements<'v>(items: &'v [Value], array_key: &str) -> Option<Keyed<'v, Id>> {
    let mut order = Vec::with_capacity(items.len());
    let mut values = HashMap::with_capacity_and_hasher(items.len(), Default::default());
    for item in items {
        let id = Id::of(item.as_object()?.get(array_key)?)?;
        if values.insert(id.clone(), item).is_some() {
            return None;
        }
        order.push(id);
    }
    Some(Keyed { order, values })
}

struct Merger<'k> {
    array_key: &'k str,
    /// The side that wins conflicts; `None`: base (or a content pick) stays.
    favor: Option<Side>,
    /// Where the value being merged sits; only rendered into a conflict.
    path: Vec<PathSegment>,
    conflicts: Vec<Conflict>,
}

impl Merger<'_> {
    /// Merges one value; `None` (in and out) is an absent value: a key or
    /// element that was deleted or never there.
    fn value(
        &mut self,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        if mine == theirs {
            mine.cloned()
        } else if mine == base {
            theirs.cloned()
        } else if theirs == base {
            mine.cloned()
        } else {
            self.both_changed(base, mine, theirs)
        }
    }

    /// Both sides changed the value, and not the same way.
    fn both_changed(
        &mut self,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        let (Some(m), Some(t)) = (mine, theirs) else {
            // One side deleted; the other changed it (had it kept it as in
            // base, the deletion would have won above).
            let deleted_by = if mine.is_none() {
                Side::Mine
            } else {
                Side::Theirs
            };
            self.conflict(
                ConflictKind::DeleteModify,
                base,
                mine,
                theirs,
                Some(deleted_by),
            );
            return self.favored(mine, theirs).unwrap_or(base).cloned();
        };
        let array_key = self.array_key;
        match (base, m, t) {
            // Absent in base: both added it, so merge against an empty object.
            (None | Some(Value::Object(_)), Value::Object(m), Value::Object(t)) => {
                let empty = Map::new();
                let b = base.and_then(Value::as_object).unwrap_or(&empty);
                let merged = self.keyed(&members(b), &members(m), &members(t));
                return Some(Value::Object(
                    merged.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ));
            }
            (None | Some(Value::Array(_)), Value::Array(m), Value::Array(t)) => {
                let b = base
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                if let (Some(b), Some(m), Some(t)) = (
                    elements(b, array_key),
                    elements(m, array_key),
                    elements(t, array_key),
                ) {
                    let merged = self.keyed(&b, &m, &t);
                    return Some(Value::Array(merged.into_iter().map(|(_, v)| v).collect()));
                }
            }
            _ => {}
        }
        let kind = match base {
            Some(_) => ConflictKind::BothModified,
            None => ConflictKind::BothAdded,
        };
        self.conflict(kind, base, mine, theirs, None);
        match (self.favored(mine, theirs), base) {
            (Some(favored), _) => favored.cloned(),
            (None, Some(b)) => Some(b.clone()),
            // Both added: the same pick whichever side runs the merge.
            (None, None) if canonical_json(m) <= canonical_json(t) => Some(m.clone()),
            (None, None) => Some(t.clone()),
        }
    }

    /// The favored side's value (`Some(None)`: it deleted), if a side is favored.
    fn favored<'v>(
        &self,
        mine: Option<&'v Value>,
        theirs: Option<&'v Value>,
    ) -> Option<Option<&'v Value>> {
        self.favor.map(|side| match side {
            Side::Mine => mine,
            Side::Theirs => theirs,
        })
    }

    /// Merges an object or an id array member by member, then orders the
    /// result with `merge_order`.
    fn keyed<K: Key>(
        &mut self,
        base: &Keyed<'_, K>,
        mine: &Keyed<'_, K>,
        theirs: &Keyed<'_, K>,
    ) -> Vec<(K, Value)> {
        let start = self.conflicts.len();
        // How many conflicts each member added, to put them in result order below.
        let mut spans: Vec<(K, usize)> = Vec::new();
        let mut merged: HashMap<K, Value> = HashMap::with_capacity_and_hasher(
            mine.order.len().max(theirs.order.len()),
            Default::default(),
        );
        let mut seen: HashSet<&K> =
            HashSet::with_capacity_and_hasher(base.order.len(), Default::default());
        for key in base.order.iter().chain(&mine.order).chain(&theirs.order) {
            if !seen.insert(key) {
                continue;
            }
            let (b, m, t) = (base.get(key), mine.get(key), theirs.get(key));
            let before = self.conflicts.len();
            // The cheap cases inline: most members of a big document are one of them.
            let value = if m == t {
                m.cloned()
            } else if m == b {
                t.cloned()
            } else if t == b {
                m.cloned()
            } else {
                self.path.push(key.segment(self.array_key));
                let value = self.both_changed(b, m, t);
                self.path.pop();
                value
            };
            if self.conflicts.len() > before {
                spans.push((key.clone(), self.conflicts.len() - before));
            }
            if let Some(value) = value {
                merged.insert(key.clone(), value);
            }
        }

        let (order, clash) =
            merge_order(base, mine, theirs, self.favor, |k| merged.contains_key(k));
        let order_conflict = (K::ORDERED && clash).then(|| Conflict {
            path: JsonPath(self.path.clone()),
            kind: ConflictKind::Order,
            base: Some(base.keys_value()),
            mine: Some(mine.keys_value()),
            theirs: Some(theirs.keys_value()),
            deleted_by: None,
        });
        // Members were merged in base-mine-theirs order, which is not symmetric;
        // the result order is, so conflicts follow it.
        if spans.len() > 1 || order_conflict.is_some() {
            let rank: HashMap<&K, usize> = order.iter().enumerate().map(|(i, k)| (k, i)).collect();
            let mut tail = self.conflicts.split_off(start).into_iter();
            let mut chunks: Vec<(usize, Vec<Conflict>)> = spans
                .iter()
                .map(|(key, n)| {
                    let rank = rank.get(key).copied().unwrap_or(usize::MAX);
                    (rank, tail.by_ref().take(*n).collect())
                })
                .collect();
            chunks.sort_by_key(|(rank, _)| *rank);
            self.conflicts.extend(order_conflict);
            for (_, chunk) in chunks {
                self.conflicts.extend(chunk);
            }
        }
        order
            .into_iter()
            .filter_map(|k| merged.remove(&k).map(|v| (k, v)))
            .collect()
    }

    fn conflict(
        &mut self,
        kind: ConflictKind,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
        deleted_by: Option<Side>,
    ) {
        self.conflicts.push(Conflict {
            path: JsonPath(self.path.clone()),
            kind,
            base: base.cloned(),
            mine: mine.cloned(),
            theirs: theirs.cloned(),
            deleted_by,
        });
    }
}

/// The order of the merged members (`survives`: the key is in the result) and
/// whether both sides reordered differently.
///
/// A side reordered if the members all three versions have are in another
/// relative order there than in base. The primary list is the side that
/// reordered, if only one did; the list that sorts first, if neither did or
/// both did the same way; if they reordered differently (a clash), base, or
/// the favored side's list if a side is favored. The result is the primary
/// list without the members that did not survive, plus the other lists'
/// members (for a clash without favor both sides', the list that sorts first
/// first), each inserted right after its nearest preceding member in its own
/// list that is already in the result, or at the start if none is. Every
/// choice depends on content (or on the favored side) only, so swapping the
/// sides gives the same order.
fn merge_order<K: Key>(
    base: &Keyed<'_, K>,
    mine: &Keyed<'_, K>,
    theirs: &Keyed<'_, K>,
    favor: Option<Side>,
    survives: impl Fn(&K) -> bool,
) -> (Vec<K>, bool) {
    let in_all = |k: &K| base.contains(k) && mine.contains(k) && theirs.contains(k);
    let (common_base, common_mine, common_theirs) =
        (only(base, in_all), only(mine, in_all), only(theirs, in_all));
    let mine_moved = common_mine != common_base;
    let theirs_moved = common_theirs != common_base;
    let (first, second) = if mine.order <= theirs.order {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let (primary, others, clash) = match (mine_moved, theirs_moved, favor) {
        (true, false, _) => (mine, [Some(theirs), None], false),
        (false, true, _) => (theirs, [Some(mine), None], false),
        (true, true, _) if common_mine == common_theirs => (first, [Some(second), None], false),
        (true, true, None) => (base, [Some(first), Some(second)], true),
        (true, true, Some(Side::Mine)) => (mine, [Some(theirs), None], true),
        (true, true, Some(Side::Theirs)) => (theirs, [Some(mine), None], true),
        (false, false, _) => (first, [Some(second), None], false),
    };

    let mut list = Splice::default();
    for key in primary.order.iter().filter(|k| survives(k)) {
        list.insert_after(list.last, key);
    }
    for other in others.into_iter().flatten() {
        // Every surviving member before this one in `other` is already in
        // the list by now (from the primary list or inserted earlier here).
        let mut previous = None;
        for key in other.order.iter().filter(|k| survives(k)) {
            previous = Some(match list.index.get(key) {
                Some(&at) => at,
                None => list.insert_after(previous, key),
            });
        }
    }
    (list.into_keys(), clash)
}

/// The keys of `side` that pass `keep`, in order.
fn only<'s, K: Key>(side: &'s Keyed<'_, K>, keep: impl Fn(&K) -> bool) -> Vec<&'s K> {
    side.order.iter().filter(|k| keep(k)).collect()
}

/// A singly linked list over an arena: O(1) insertion right after any member,
/// so merging big arrays stays linear.
struct Splice<'a, K> {
    keys: Vec<&'a K>,
    next: Vec<Option<usize>>,
    head: Option<usize>,
    last: Option<usize>,
    index: HashMap<&'a K, usize>,
}

impl<K> Default for Splice<'_, K> {
    fn default() -> Self {
        Splice {
            keys: Vec::new(),
            next: Vec::new(),
            head: None,
            last: None,
            index: HashMap::default(),
        }
    }
}

impl<'a, K: Key> Splice<'a, K> {
    /// Inserts `key` after the member at `after` (at the start for `None`).
    fn insert_after(&mut self, after: Option<usize>, key: &'a K) -> usize {
        let at = self.keys.len();
        self.keys.push(key);
        self.index.insert(key, at);
        match after {
            None => {
                self.next.push(self.head);
                self.head = Some(at);
            }
            Some(before) => {
                self.next.push(self.next[before]);
                self.next[before] = Some(at);
            }
        }
        if self.next[at].is_none() {
            self.last = Some(at);
        }
        at
    }

    fn into_keys(self) -> Vec<K> {
        let mut out = Vec::with_capacity(self.keys.len());
        let mut at = self.head;
        while let Some(i) = at {
            out.push(self.keys[i].clone());
            at = self.next[i];
        }
        out
    }
}

struct Differ<'k> {
    array_key: &'k str,
    path: Vec<PathSegment>,
    changes: Vec<Change>,
}

impl Differ<'_> {
    fn value(&mut self, before: &Value, after: &Value) {
        if before == after {
            return;
        }
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => self.keyed(&members(b), &members(a)),
            (Value::Array(b), Value::Array(a)) => {
                match (elements(b, self.array_key), elements(a, self.array_key)) {
                    (Some(b), Some(a)) => self.keyed(&b, &a),
                    _ => self.record(ChangeKind::Changed, Some(before), Some(after)),
                }
            }
            _ => self.record(ChangeKind::Changed, Some(before), Some(after)),
        }
    }

    fn keyed<K: Key>(&mut self, before: &Keyed<'_, K>, after: &Keyed<'_, K>) {
        if K::ORDERED {
            let common_before = only(before, |k| after.contains(k));
            if common_before != only(after, |k| before.contains(k)) {
                self.changes.push(Change {
                    path: JsonPath(self.path.clone()),
                    kind: ChangeKind::Reordered,
                    before: Some(before.keys_value()),
                    after: Some(after.keys_value()),
                });
            }
        }
        for key in &before.order {
            let (b, a) = (before.get(key), after.get(key));
            if b == a {
                continue;
            }
            self.path.push(key.segment(self.array_key));
            match (b, a) {
                (Some(b), Some(a)) => self.value(b, a),
                _ => self.record(ChangeKind::Removed, b, None),
            }
            self.path.pop();
        }
        for key in after.order.iter().filter(|k| !before.contains(k)) {
            self.path.push(key.segment(self.array_key));
            self.record(ChangeKind::Added, None, after.get(key));
            self.path.pop();
        }
    }

    fn record(&mut self, kind: ChangeKind, before: Option<&Value>, after: Option<&Value>) {
        self.changes.push(Change {
            path: JsonPath(self.path.clone()),
            kind,
            before: before.cloned(),
            after: after.cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Merges both ways round and checks the outcome is symmetric.
    fn merged(base: Value, mine: Value, theirs: Value) -> MergeOutcome {
        merged_by(base, mine, theirs, "id")
    }

    fn merged_by(base: Value, mine: Value, theirs: Value, key: &str) -> MergeOutcome {
        let outcome = merge(&base, &mine, &theirs, key);
        let swapped = merge(&base, &theirs, &mine, key);
        assert_eq!(outcome.merged, swapped.merged, "merged depends on the side");
        let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
        assert_eq!(outcome.conflicts, mirrored, "conflicts depend on the side");
        outcome
    }

    /// The JSON form of the conflicts, as JS sees it.
    fn conflicts(outcome: &MergeOutcome) -> Value {
        serde_json::to_value(&outcome.conflicts).unwrap()
    }

    fn roles() -> Value {
        json!({
            "version": 1,
            "roles": [
                { "id": "admin", "name": "Admin", "permissions": ["read", "write", "delete"] },
                { "id": "editor", "name": "Editor", "permissions": ["read", "write"] },
                { "id": "viewer", "name": "Viewer", "permissions": ["read"] }
            ]
        })
    }

    /// `roles()` with `edit` applied to it.
    fn edited(edit: impl FnOnce(&mut Value)) -> Value {
        let mut value = roles();
        edit(&mut value);
        value
    }

    fn role<'v>(doc: &'v mut Value, id: &str) -> &'v mut Value {
        doc["roles"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["id"] == id)
            .unwrap()
    }

    fn remove_role(doc: &mut Value, id: &str) {
        doc["roles"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["id"] != id);
    }

    fn ids(doc: &Value) -> Vec<&str> {
        doc["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn one_side_unchanged_takes_the_other() {
        let theirs = edited(|d| d["version"] = json!(2));
        let outcome = merged(roles(), roles(), theirs.clone());
        assert_eq!(outcome.merged, theirs);
        assert!(outcome.is_clean());
    }

    #[test]
    fn identical_edits_are_not_conflicts() {
        let both = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            d.as_object_mut().unwrap().remove("version");
            remove_role(d, "viewer");
        });
        let outcome = merged(roles(), both.clone(), both.clone());
        assert_eq!(outcome.merged, both);
        assert!(outcome.is_clean());

        // Same edit inside otherwise different edits.
        let mine = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            remove_role(d, "viewer");
        });
        let theirs = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            remove_role(d, "viewer");
            d["version"] = json!(2);
        });
        let outcome = merged(roles(), mine, theirs.clone());
        assert_eq!(outcome.merged, theirs);
        assert!(outcome.is_clean());
    }

    #[test]
    fn disjoint_field_edits_of_one_role_merge() {
        let mine = edited(|d| role(d, "editor")["name"] = json!("Writer"));
        let theirs = edited(|d| {
            role(d, "editor")["permissions"] = json!(["read", "write", "publish"]);
            d["version"] = json!(2);
        });
        let outcome = merged(roles(), mine, theirs);
        assert_eq!(
            outcome.merged,
            edited(|d| {
                role(d, "editor")["name"] = json!("Writer");
                role(d, "editor")["permissions"] = json!(["read", "write", "publish"]);
                d["version"] = json!(2);
            })
        );
        assert!(outcome.is_clean());
    }

    #[test]
    fn adds_of_different_ids_merge_in_place() {
        let mine = edited(|d| {
            let roles = d["roles"].as_array_mut().unwrap();
            roles.insert(
                1,
                json!({ "id": "owner", "name": "Owner", "permissions": [] }),
            );
        });
        let theirs = edited(|d| {
            let roles = d["roles"].as_array_mut().unwrap();
            roles.push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
            roles.insert(
                0,
                json!({ "id": "root", "name": "Root", "permissions": [] }),
            );
        });
        let outcome = merged(roles(), mine, theirs);
        assert!(outcome.is_clean());
        assert_eq!(
            ids(&outcome.merged),
            ["root", "admin", "owner", "editor", "viewer", "guest"]
        );
        assert_eq!(
            outcome.merged["roles"][2],
            json!({ "id": "owner", "name": "Owner", "permissions": [] })
        );
    }

    #[test]
    fn reorder_on_one_side_keeps_edits_of_the_other() {
        let mine = edited(|d| d["roles"].as_array_mut().unwrap().reverse());
        let theirs = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            remove_role(d, "editor");
            d["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
        });
        let outcome = merged(roles(), mine, theirs);
        assert!(outcome.is_clean());
        // Mine's order (reversed), the guest after its predecessor in theirs (viewer).
        assert_eq!(ids(&outcome.merged), ["viewer", "guest", "admin"]);
        assert_eq!(outcome.merged["roles"][2]["name"], "Administrator");
    }

    #[test]
    fn same_field_changed_differently_keeps_base() {
        let mine = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            d["version"] = json!(2);
        });
        let theirs = edited(|d| role(d, "admin")["name"] = json!("Superuser"));
        let outcome = merged(roles(), mine, theirs);
        assert_eq!(outcome.merged, edited(|d| d["version"] = json!(2)));
        assert_eq!(
            conflicts(&outcome),
            json!([{
                "path": "$.roles[id=\"admin\"].name",
                "kind": "both-modified",
                "base": "Admin",
                "mine": "Administrator",
                "theirs": "Superuser"
            }])
        );
    }

    #[test]
    fn delete_against_modify_keeps_base_and_names_the_deleter() {
        let mine = edited(|d| remove_role(d, "editor"));
        let theirs = edited(|d| role(d, "editor")["name"] = json!("Writer"));
        let outcome = merged(roles(), mine.clone(), theirs.clone());
        assert_eq!(outcome.merged, roles());
        let expected = json!([{
            "path": "$.roles[id=\"editor\"]",
            "kind": "delete-modify",
            "base": { "id": "editor", "name": "Editor", "permissions": ["read", "write"] },
            "theirs": { "id": "editor", "name": "Writer", "permissions": ["read", "write"] },
            "deletedBy": "mine"
        }]);
        assert_eq!(conflicts(&outcome), expected);

        // The other direction, on an object member.
        let mine = edited(|d| d["version"] = json!(2));
        let theirs = edited(|d| {
            d.as_object_mut().unwrap().remove("version");
        });
        let outcome = merged(roles(), mine, theirs);
        assert_eq!(outcome.merged, roles());
        assert_eq!(
            conflicts(&outcome),
            json!([{
                "path": "$.version",
                "kind": "delete-modify",
                "base": 1,
                "mine": 2,
                "deletedBy": "theirs"
            }])
        );
    }

    #[test]
    fn delete_against_unchanged_deletes() {
        let mine = edited(|d| remove_role(d, "editor"));
        let theirs = edited(|d| role(d, "admin")["name"] = json!("Administrator"));
        let outcome = merged(roles(), mine, theirs);
        assert!(outcome.is_clean());
        assert_eq!(ids(&outcome.merged), ["admin", "viewer"]);
        assert_eq!(outcome.merged["roles"][0]["name"], "Administrator");
    }

    #[test]
    fn nested_objects_merge_member_by_member() {
        let base = json!({ "ui": { "theme": { "dark": false, "accent": "blue" }, "lang": "en" } });
        let mine = json!({ "ui": { "theme": { "dark": true, "accent": "blue" }, "lang": "en" } });
        let theirs = json!({ "ui": { "theme": { "dark": false, "accent": "red", "font": 12 }, "lang": "de" } });
        let outcome = merged(base, mine, theirs);
        assert!(outcome.is_clean());
        assert_eq!(
            outcome.merged,
            json!({ "ui": { "theme": { "dark": true, "accent": "red", "font": 12 }, "lang": "de" } })
        );
    }

    #[test]
    fn plain_arrays_are_atomic() {
        let base = json!({ "tags": ["a", "b"], "matrix": [[1], [2]] });
        // One side changes: clean.
        let outcome = merged(
            base.clone(),
            json!({ "tags": ["a", "b", "c"], "matrix": [[1], [2]] }),
            base.clone(),
        );
        assert!(outcome.is_clean());
        assert_eq!(outcome.merged["tags"], json!(["a", "b", "c"]));
        // Both change differently, even "compatibly": conflict, base kept.
        let outcome = merged(
            base.clone(),
            json!({ "tags": ["a", "b", "c"], "matrix": [[1], [2]] }),
            json!({ "tags": ["z", "a", "b"], "matrix": [[1], [2]] }),
        );
        assert_eq!(outcome.merged, base);
        assert_eq!(
            conflicts(&outcome),
            json!([{
                "path": "$.tags",
                "kind": "both-modified",
                "base": ["a", "b"],
                "mine": ["a", "b", "c"],
                "theirs": ["z", "a", "b"]
            }])
        );
    }

    #[test]
    fn arrays_with_repeated_or_missing_ids_are_atomic() {
        let base = json!([{ "id": 1, "v": 0 }, { "id": 2, "v": 0 }]);
        let dup = json!([{ "id": 1, "v": 0 }, { "id": 1, "v": 1 }]);
        let missing = json!([{ "id": 1, "v": 0 }, { "v": 2 }]);
        let outcome = merged(base.clone(), dup, missing);
        assert_eq!(outcome.merged, base);
        assert_eq!(outcome.conflicts[0].kind, ConflictKind::BothModified);
        assert_eq!(outcome.conflicts[0].path.to_string(), "$");
    }

    #[test]
    fn both_added_same_id_merges_fields_and_conflicts_on_differences() {
        let mine = edited(|d| {
            d["roles"].as_array_mut().unwrap().push(
                json!({ "id": "guest", "name": "Visitor", "permissions": ["read"], "color": "grey" }),
            )
        });
        let theirs = edited(|d| {
            d["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "id": "guest", "name": "Guest", "permissions": ["read"] }))
        });
        let outcome = merged(roles(), mine, theirs);
        assert_eq!(
            outcome.merged["roles"][3],
            // "Guest" < "Visitor": the symmetric pick.
            json!({ "id": "guest", "name": "Guest", "permissions": ["read"], "color": "grey" })
        );
        assert_eq!(
            conflicts(&outcome),
            json!([{
                "path": "$.roles[id=\"guest\"].name",
                "kind": "both-added",
                "mine": "Visitor",
                "theirs": "Guest"
            }])
        );

        let outcome = merged(json!({}), json!({ "n": 2 }), json!({ "n": 10 }));
        assert_eq!(outcome.merged, json!({ "n": 10 })); // "10" < "2" as text
        assert_eq!(
            conflicts(&outcome),
            json!([{ "path": "$.n", "kind": "both-added", "mine": 2, "theirs": 10 }])
        );
    }

    #[test]
    fn both_added_id_arrays_merge_by_id() {
        let outcome = merged(
            json!({}),
            json!({ "list": [{ "id": 1 }, { "id": 2 }] }),
            json!({ "list": [{ "id": 1 }, { "id": 3 }] }),
        );
        assert!(outcome.is_clean());
        assert_eq!(
            outcome.merged,
            json!({ "list": [{ "id": 1 }, { "id": 3 }, { "id": 2 }] })
        );
    }

    #[test]
    fn both_reordering_differently_is_an_order_conflict() {
        let mine = edited(|d| {
            d["roles"].as_array_mut().unwrap().swap(0, 1);
            role(d, "viewer")["name"] = json!("Reader");
        });
        let theirs = edited(|d| {
            d["roles"].as_array_mut().unwrap().swap(1, 2);
            d["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
        });
        let outcome = merged(roles(), mine, theirs);
        // Base order, with the edit and the addition still merged (the guest
        // after its predecessor in theirs, the editor).
        assert_eq!(ids(&outcome.merged), ["admin", "editor", "guest", "viewer"]);
        assert_eq!(outcome.merged["roles"][3]["name"], "Reader");
        assert_eq!(
            conflicts(&outcome),
            json!([{
                "path": "$.roles",
                "kind": "order",
                "base": ["admin", "editor", "viewer"],
                "mine": ["editor", "admin", "viewer"],
                "theirs": ["admin", "viewer", "editor", "guest"]
            }])
        );
    }

    #[test]
    fn order_clash_places_both_sides_additions_symmetrically() {
        let base = json!([{ "id": "a" }, { "id": "b" }, { "id": "c" }]);
        // Both reorder differently and both add right after "a".
        let mine = json!([{ "id": "a" }, { "id": "x" }, { "id": "c" }, { "id": "b" }]);
        let theirs = json!([{ "id": "a" }, { "id": "y" }, { "id": "b" }, { "id": "c" }]);
        let theirs = json!([theirs[2], theirs[0], theirs[1], theirs[3]]);
        let outcome = merged(base, mine, theirs);
        // Base order. Mine's id list sorts first (it starts with "a", theirs with
        // "b"), so mine's x is inserted first, then theirs' y right after a.
        assert_eq!(
            outcome.merged,
            json!([{ "id": "a" }, { "id": "y" }, { "id": "x" }, { "id": "b" }, { "id": "c" }])
        );
        assert_eq!(outcome.conflicts.len(), 1);
        assert_eq!(outcome.conflicts[0].kind, ConflictKind::Order);
    }

    #[test]
    fn favoring_a_side_decides_each_conflict_for_it() {
        let mine = edited(|d| {
            d["roles"].as_array_mut().unwrap().swap(0, 1); // [editor, admin, viewer]
            role(d, "admin")["name"] = json!("Administrator");
            d.as_object_mut().unwrap().remove("version");
        });
        let theirs = edited(|d| {
            d["roles"].as_array_mut().unwrap().reverse(); // [viewer, editor, admin]
            role(d, "admin")["name"] = json!("Superuser");
            role(d, "viewer")["permissions"] = json!([]);
            d["version"] = json!(2);
        });
        let plain = merged(roles(), mine.clone(), theirs.clone());
        let kinds = |o: &MergeOutcome| {
            let mut kinds: Vec<_> = o
                .conflicts
                .iter()
                .map(|c| (c.path.to_string(), c.kind))
                .collect();
            kinds.sort_by(|a, b| a.0.cmp(&b.0));
            kinds
        };
        assert_eq!(
            kinds(&plain),
            [
                ("$.roles".to_owned(), ConflictKind::Order),
                (
                    r#"$.roles[id="admin"].name"#.to_owned(),
                    ConflictKind::BothModified
                ),
                ("$.version".to_owned(), ConflictKind::DeleteModify),
            ]
        );
        let admin = |name: &str| json!({ "id": "admin", "name": name, "permissions": ["read", "write", "delete"] });
        let editor = json!({ "id": "editor", "name": "Editor", "permissions": ["read", "write"] });
        let viewer = json!({ "id": "viewer", "name": "Viewer", "permissions": [] });

        let for_mine = merge_favoring(&roles(), &mine, &theirs, "id", Side::Mine);
        assert_eq!(kinds(&for_mine), kinds(&plain));
        assert_eq!(
            for_mine.merged,
            json!({ "roles": [editor, admin("Administrator"), viewer] })
        );
        let for_theirs = merge_favoring(&roles(), &mine, &theirs, "id", Side::Theirs);
        assert_eq!(kinds(&for_theirs), kinds(&plain));
        assert_eq!(
            for_theirs.merged,
            json!({ "version": 2, "roles": [viewer, editor, admin("Superuser")] })
        );
        // Favoring mine with the sides swapped is favoring theirs.
        let swapped = merge_favoring(&roles(), &theirs, &mine, "id", Side::Mine);
        assert_eq!(swapped.merged, for_theirs.merged);
    }

    #[test]
    fn both_reordering_the_same_way_is_clean() {
        let mine = edited(|d| {
            d["roles"].as_array_mut().unwrap().reverse();
            role(d, "viewer")["name"] = json!("Reader");
        });
        let theirs = edited(|d| {
            d["roles"].as_array_mut().unwrap().reverse();
            role(d, "admin")["name"] = json!("Root");
        });
        let outcome = merged(roles(), mine, theirs);
        assert!(outcome.is_clean());
        assert_eq!(ids(&outcome.merged), ["viewer", "editor", "admin"]);
        assert_eq!(outcome.merged["roles"][0]["name"], "Reader");
        assert_eq!(outcome.merged["roles"][2]["name"], "Root");
    }

    #[test]
    fn additions_go_after_their_nearest_surviving_predecessor() {
        let base = json!([{ "id": "a" }, { "id": "b" }, { "id": "c" }]);
        // Theirs adds x after b, which mine deleted: x goes after a.
        let outcome = merged(
            base.clone(),
            json!([{ "id": "a" }, { "id": "c" }]),
            json!([{ "id": "a" }, { "id": "b" }, { "id": "x" }, { "id": "y" }, { "id": "c" }]),
        );
        assert!(outcome.is_clean());
        assert_eq!(
            outcome.merged,
            json!([{ "id": "a" }, { "id": "x" }, { "id": "y" }, { "id": "c" }])
        );
        // No surviving predecessor: at the start.
        let outcome = merged(
            base,
            json!([{ "id": "b" }, { "id": "c" }]),
            json!([{ "id": "x" }, { "id": "a" }, { "id": "b" }, { "id": "c" }]),
        );
        assert_eq!(
            outcome.merged,
            json!([{ "id": "x" }, { "id": "b" }, { "id": "c" }])
        );
    }

    #[test]
    fn paths_quote_odd_keys_and_use_the_array_key() {
        let base = json!({ "odd key": { "list": [{ "_k": 7, "v": 1 }] } });
        let mine = json!({ "odd key": { "list": [{ "_k": 7, "v": 2 }] } });
        let theirs = json!({ "odd key": { "list": [{ "_k": 7, "v": 3 }] } });
        let outcome = merged_by(base.clone(), mine.clone(), theirs.clone(), "_k");
        assert_eq!(
            outcome.conflicts[0].path.to_string(),
            "$[\"odd key\"].list[_k=7].v"
        );
        let outcome = merged_by(
            json!({ "l": [{ "my key": "x\"y", "v": 1 }] }),
            json!({ "l": [{ "my key": "x\"y", "v": 2 }] }),
            json!({ "l": [{ "my key": "x\"y", "v": 3 }] }),
            "my key",
        );
        assert_eq!(
            outcome.conflicts[0].path.to_string(),
            r#"$.l["my key"="x\"y"].v"#
        );
        // With another array key, `id` arrays are plain arrays.
        let outcome = merged_by(
            json!([{ "id": 1, "v": 1 }]),
            json!([{ "id": 1, "v": 2 }]),
            json!([{ "id": 1, "w": 2 }]),
            "key",
        );
        assert_eq!(outcome.conflicts[0].path.to_string(), "$");
        // String and number ids are different ids.
        let outcome = merged(json!([]), json!([{ "id": 1 }]), json!([{ "id": "1" }]));
        assert!(outcome.is_clean());
        assert_eq!(outcome.merged.as_array().unwrap().len(), 2);
    }

    #[test]
    fn conflicts_come_in_document_order() {
        let base = json!([{ "id": "a", "v": 0 }, { "id": "b", "v": 0 }, { "id": "c", "v": 0 }]);
        let mine = json!([{ "id": "c", "v": 1 }, { "id": "b", "v": 1 }, { "id": "a", "v": 1 }]);
        let theirs = json!([{ "id": "c", "v": 2 }, { "id": "b", "v": 2 }, { "id": "a", "v": 2 }]);
        let outcome = merged(base, mine, theirs);
        let paths: Vec<_> = outcome
            .conflicts
            .iter()
            .map(|c| c.path.to_string())
            .collect();
        assert_eq!(
            paths,
            [r#"$[id="c"].v"#, r#"$[id="b"].v"#, r#"$[id="a"].v"#]
        );
    }

    #[test]
    fn type_changes_are_atomic() {
        let outcome = merged(
            json!({ "a": { "x": 1 } }),
            json!({ "a": [1] }),
            json!({ "a": { "x": 2 } }),
        );
        assert_eq!(outcome.merged, json!({ "a": { "x": 1 } }));
        assert_eq!(outcome.conflicts[0].kind, ConflictKind::BothModified);
        // Base not an object: two objects do not merge member by member.
        let outcome = merged(json!(1), json!({ "x": 1 }), json!({ "y": 1 }));
        assert_eq!(outcome.merged, json!(1));
        assert_eq!(outcome.conflicts[0].path.to_string(), "$");
    }

    #[test]
    fn diff_reports_members_and_elements() {
        let after = edited(|d| {
            role(d, "admin")["name"] = json!("Administrator");
            remove_role(d, "viewer");
            d["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
            d["version"] = json!(2);
            d["odd key"] = json!(true);
        });
        let changes = serde_json::to_value(diff(&roles(), &after, "id")).unwrap();
        assert_eq!(
            changes,
            json!([
                { "path": "$.version", "kind": "changed", "before": 1, "after": 2 },
                { "path": "$.roles[id=\"admin\"].name", "kind": "changed", "before": "Admin", "after": "Administrator" },
                { "path": "$.roles[id=\"viewer\"]", "kind": "removed",
                  "before": { "id": "viewer", "name": "Viewer", "permissions": ["read"] } },
                { "path": "$.roles[id=\"guest\"]", "kind": "added",
                  "after": { "id": "guest", "name": "Guest", "permissions": [] } },
                { "path": "$[\"odd key\"]", "kind": "added", "after": true }
            ])
        );
        assert!(diff(&roles(), &roles(), "id").is_empty());
    }

    #[test]
    fn diff_reports_a_reorder_once_at_the_array() {
        let after = edited(|d| {
            d["roles"].as_array_mut().unwrap().swap(0, 2);
            role(d, "editor")["permissions"] = json!(["read"]);
        });
        let changes = serde_json::to_value(diff(&roles(), &after, "id")).unwrap();
        assert_eq!(
            changes,
            json!([
                { "path": "$.roles", "kind": "reordered",
                  "before": ["admin", "editor", "viewer"], "after": ["viewer", "editor", "admin"] },
                { "path": "$.roles[id=\"editor\"].permissions", "kind": "changed",
                  "before": ["read", "write"], "after": ["read"] }
            ])
        );
        // Additions and removals alone are no reorder.
        let after = json!([{ "id": 0 }, { "id": 1 }, { "id": 3 }]);
        let changes = diff(
            &json!([{ "id": 1 }, { "id": 2 }, { "id": 3 }]),
            &after,
            "id",
        );
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| (c.path.to_string(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("$[id=2]".to_owned(), ChangeKind::Removed),
                ("$[id=0]".to_owned(), ChangeKind::Added)
            ]
        );
        // Different types, plain arrays: one change.
        let changes = diff(&json!({ "a": [1, 2] }), &json!({ "a": [2, 1] }), "id");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Changed);
        let changes = diff(&json!(1), &json!("1"), "id");
        assert_eq!(changes[0].path.to_string(), "$");
    }

    #[test]
    fn lookup_follows_paths() {
        let doc = roles();
        let path = &diff(
            &doc,
            &edited(|d| role(d, "editor")["name"] = json!("W")),
            "id",
        )[0]
        .path;
        assert_eq!(path.lookup(&doc), Some(&json!("Editor")));
        assert_eq!(JsonPath::default().lookup(&doc), Some(&doc));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let value: Value = serde_json::from_str(r#"{"b":[1,{"d":null,"c":"x"}],"a":1.5}"#).unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"a":1.5,"b":[1,{"c":"x","d":null}]}"#
        );
    }

    /// xorshift64*: a tiny deterministic generator for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    // Small key and id spaces, so both sides often touch the same things.
    const KEYS: [&str; 6] = ["a", "b", "c", "name", "odd key", "perm"];

    fn random_id(rng: &mut Rng) -> Value {
        match rng.below(7) {
            0 => json!("admin"),
            1 => json!("editor"),
            2 => json!("viewer"),
            3 => json!("guest"),
            n => json!(n),
        }
    }

    fn scalar(rng: &mut Rng) -> Value {
        match rng.below(7) {
            0 => Value::Null,
            1 => json!(rng.chance(50)),
            2 => json!(rng.below(3)),
            3 => json!(1.5),
            4 => json!("x"),
            5 => json!("y"),
            _ => json!(""),
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        if depth == 0 {
            return scalar(rng);
        }
        match rng.below(6) {
            0 | 1 => scalar(rng),
            2 => random_object(rng, depth - 1),
            3 | 4 => id_array(rng, depth - 1),
            _ => Value::Array((0..rng.below(3)).map(|_| scalar(rng)).collect()),
        }
    }

    fn random_object(rng: &mut Rng, depth: usize) -> Value {
        let mut map = Map::new();
        for _ in 0..rng.below(4) {
            map.insert(rng.pick(&KEYS).to_string(), random_value(rng, depth));
        }
        Value::Object(map)
    }

    fn element(rng: &mut Rng, depth: usize, id: Value) -> Value {
        let mut element = random_object(rng, depth);
        element["id"] = id;
        element
    }

    fn id_array(rng: &mut Rng, depth: usize) -> Value {
        let mut items: Vec<Value> = Vec::new();
        for _ in 0..rng.below(7) {
            let id = random_id(rng);
            if !items.iter().any(|e| e["id"] == id) {
                items.push(element(rng, depth, id));
            }
        }
        Value::Array(items)
    }

    /// One random edit somewhere in `value`; `in_element` protects the id of an
    /// id-array element (changing it is a remove plus an add, tested anyway
    /// through whole-value replacements).
    fn random_edit(rng: &mut Rng, value: &mut Value, in_element: bool) {
        if rng.chance(8) {
            *value = random_value(rng, 2);
            return;
        }
        let id_array = value
            .as_array()
            .is_some_and(|items| !items.is_empty() && elements(items, "id").is_some());
        match value {
            Value::Object(map) => {
                let keys: Vec<String> = map
                    .keys()
                    .filter(|k| !(in_element && *k == "id"))
                    .cloned()
                    .collect();
                match rng.below(4) {
                    0 | 1 if !keys.is_empty() => {
                        let key = rng.pick(&keys).clone();
                        random_edit(rng, map.get_mut(&key).unwrap(), false);
                    }
                    2 if !keys.is_empty() => {
                        map.remove(rng.pick(&keys).as_str());
                    }
                    _ => {
                        map.insert(rng.pick(&KEYS).to_string(), random_value(rng, 2));
                    }
                }
            }
            Value::Array(items) if id_array => match rng.below(5) {
                0 | 1 => {
                    let i = rng.below(items.len());
                    random_edit(rng, &mut items[i], true);
                }
                2 => {
                    items.remove(rng.below(items.len()));
                }
                3 => {
                    let id = random_id(rng);
                    if !items.iter().any(|e| e["id"] == id) {
                        let at = rng.below(items.len() + 1);
                        items.insert(at, element(rng, 1, id));
                    }
                }
                _ if rng.chance(30) => items.reverse(),
                _ => {
                    let moved = items.remove(rng.below(items.len()));
                    items.insert(rng.below(items.len() + 1), moved);
                }
            },
            Value::Array(items) => {
                if items.is_empty() || rng.chance(50) {
                    items.push(scalar(rng));
                } else {
                    items.pop();
                }
            }
            _ => *value = scalar(rng),
        }
    }

    /// Up to `max` edits; half of them on the roles array, so that both sides
    /// often add, remove, move and edit roles at once.
    fn random_edits(rng: &mut Rng, base: &Value, max: usize) -> Value {
        let mut value = base.clone();
        for _ in 0..rng.below(max + 1) {
            match value.get_mut("roles") {
                Some(roles) if rng.chance(50) => random_edit(rng, roles, false),
                _ => random_edit(rng, &mut value, false),
            }
        }
        value
    }

    fn overlaps(a: &JsonPath, b: &JsonPath) -> bool {
        a.starts_with(b) || b.starts_with(a)
    }

    /// Every change of `side` that the other side did not touch at, above or
    /// below its path is in the merged value as on `side`.
    fn check_untouched_changes_reflected(
        base: &Value,
        side: &Value,
        other: &Value,
        merged: &Value,
    ) {
        let others = diff(base, other, "id");
        for change in diff(base, side, "id") {
            if others.iter().any(|o| overlaps(&o.path, &change.path)) {
                continue;
            }
            assert_eq!(
                change.path.lookup(merged),
                change.path.lookup(side),
                "change at {} lost",
                change.path
            );
        }
    }

    fn sorted(conflicts: &[Conflict]) -> Vec<Conflict> {
        let mut sorted = conflicts.to_vec();
        sorted.sort_by_cached_key(|c| (c.path.to_string(), format!("{:?}", c.kind)));
        sorted
    }

    /// `merge_favoring` reports the conflicts of `merge`, puts the favored
    /// side's value at each, is `merge` when that is clean, and is symmetric.
    fn check_favoring(
        base: &Value,
        mine: &Value,
        theirs: &Value,
        plain: &MergeOutcome,
        context: &str,
    ) {
        for favor in [Side::Mine, Side::Theirs] {
            let outcome = merge_favoring(base, mine, theirs, "id", favor);
            let swapped = merge_favoring(base, theirs, mine, "id", favor.other());
            assert_eq!(outcome.merged, swapped.merged, "{favor:?} {context}");
            let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
            assert_eq!(outcome.conflicts, mirrored, "{favor:?} {context}");
            assert_eq!(
                sorted(&outcome.conflicts),
                sorted(&plain.conflicts),
                "{favor:?} {context}"
            );
            if plain.is_clean() {
                assert_eq!(outcome.merged, plain.merged, "{context}");
            }
            for conflict in outcome
                .conflicts
                .iter()
                .filter(|c| c.kind != ConflictKind::Order)
            {
                let expected = match favor {
                    Side::Mine => conflict.mine.as_ref(),
                    Side::Theirs => conflict.theirs.as_ref(),
                };
                assert_eq!(
                    conflict.path.lookup(&outcome.merged),
                    expected,
                    "{favor:?} {context}"
                );
            }
            check_untouched_changes_reflected(base, mine, theirs, &outcome.merged);
            check_untouched_changes_reflected(base, theirs, mine, &outcome.merged);
        }
    }

    #[test]
    fn property_random_documents_and_edits() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut clean, mut conflicted) = (0, 0);
        let mut kinds: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for case in 0..4000 {
            let mut base = random_object(&mut rng, 3);
            base["roles"] = id_array(&mut rng, 2);
            let mut mine = random_edits(&mut rng, &base, 3);
            let mut theirs = if rng.chance(15) {
                random_edits(&mut rng, &mine, 1)
            } else {
                random_edits(&mut rng, &base, 3)
            };
            // Reorders on both sides are what the order rules are about.
            for side in [&mut mine, &mut theirs] {
                if let Some(Value::Array(roles)) = side.get_mut("roles") {
                    if roles.len() > 1 && rng.chance(30) {
                        let moved = roles.remove(rng.below(roles.len()));
                        roles.insert(rng.below(roles.len() + 1), moved);
                    }
                }
            }
            let context = format!("case {case}\nbase {base}\nmine {mine}\ntheirs {theirs}");

            for x in [&mine, &theirs] {
                let same = merge(&base, x, x, "id");
                assert_eq!((&same.merged, same.is_clean()), (x, true), "{context}");
                let only_theirs = merge(&base, &base, x, "id");
                assert_eq!(
                    (&only_theirs.merged, only_theirs.is_clean()),
                    (x, true),
                    "{context}"
                );
                let only_mine = merge(&base, x, &base, "id");
                assert_eq!(
                    (&only_mine.merged, only_mine.is_clean()),
                    (x, true),
                    "{context}"
                );
            }

            let outcome = merge(&base, &mine, &theirs, "id");
            let swapped = merge(&base, &theirs, &mine, "id");
            assert_eq!(outcome.merged, swapped.merged, "{context}");
            let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
            assert_eq!(outcome.conflicts, mirrored, "{context}");

            for conflict in &outcome.conflicts {
                *kinds.entry(format!("{:?}", conflict.kind)).or_default() += 1;
                let expected = match conflict.kind {
                    ConflictKind::Order => continue,
                    ConflictKind::BothAdded => {
                        let (m, t) = (conflict.mine.as_ref(), conflict.theirs.as_ref());
                        let (m, t) = (m.unwrap(), t.unwrap());
                        Some(if canonical_json(m) <= canonical_json(t) {
                            m
                        } else {
                            t
                        })
                    }
                    _ => conflict.base.as_ref(),
                };
                assert_eq!(conflict.path.lookup(&outcome.merged), expected, "{context}");
            }
            check_untouched_changes_reflected(&base, &mine, &theirs, &outcome.merged);
            check_untouched_changes_reflected(&base, &theirs, &mine, &outcome.merged);
            check_favoring(&base, &mine, &theirs, &outcome, &context);

            if outcome.is_clean() {
                clean += 1;
            } else {
                conflicted += 1;
            }
        }
        // The generator exercises every outcome.
        eprintln!("clean {clean}, conflicted {conflicted}, conflicts {kinds:?}");
        assert!(
            clean > 1000 && conflicted > 300,
            "clean {clean}, conflicted {conflicted}"
        );
        assert!(
            kinds.len() == 4 && kinds.values().all(|&n| n > 15),
            "{kinds:?}"
        );
    }

    /// Nested arrays `depth` deep around `inner`.
    fn nested(depth: usize, inner: &str) -> String {
        format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
    }

    fn merged_text(base: &str, mine: &str, theirs: &str) -> Value {
        let text = merge_texts([base, mine, theirs], "id", None).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn texts_merge_like_values() {
        let (base, mine, theirs) = (r#"{"a":1,"b":1}"#, r#"{"a":2,"b":1}"#, r#"{"a":1,"b":3}"#);
        assert_eq!(
            merged_text(base, mine, theirs),
            json!({ "merged": { "a": 2, "b": 3 }, "conflicts": [] })
        );
        let text = diff_texts([base, theirs], "id").unwrap();
        assert_eq!(
            text,
            r#"[{"path":"$.b","kind":"changed","before":1,"after":3}]"#
        );
    }

    #[test]
    fn scan_counts_nesting_outside_strings_only() {
        let depth = |text: &str| scan(text.as_bytes()).map(|s| s.depth).ok();
        assert_eq!(depth("1"), Some(0));
        assert_eq!(depth("[]"), Some(1));
        assert_eq!(depth(r#"{"a":[{"b":[]}],"c":{}}"#), Some(4));
        assert_eq!(depth(r#"["[[[{{{", "\"[[", "\\"]"#), Some(1));
        assert_eq!(depth(&nested(MAX_DEPTH, "1")), Some(MAX_DEPTH));
        assert_eq!(depth(&nested(MAX_DEPTH + 1, "1")), None);
        // Far deeper than any stack: refused by counting, nothing recursed.
        assert_eq!(depth(&"[".repeat(1_000_000)), None);
    }

    #[test]
    fn nesting_limit_is_exact_for_every_input() {
        let ok = nested(MAX_DEPTH, "1");
        let deep = nested(MAX_DEPTH + 1, "1");
        let two = nested(MAX_DEPTH, "2");
        let text = merge_texts([&ok, &ok, &two], "id", None).unwrap();
        assert_eq!(text, format!(r#"{{"merged":{two},"conflicts":[]}}"#));
        for at in 0..3 {
            let mut texts = ["[]", "[]", "[]"];
            texts[at] = &deep;
            let error = merge_texts(texts, "id", None).unwrap_err();
            assert_eq!(error.input, Some(at));
            assert!(matches!(error.kind, TextErrorKind::TooDeep));
            assert_eq!(
                error.kind.to_string(),
                "is nested more than 1000 levels deep (arrays and objects inside each other; the limit is 1000)"
            );
        }
        let error = diff_texts(["{}", &nested(MAX_DEPTH + 1, "{}")], "id").unwrap_err();
        assert_eq!(error.input, Some(1));
        // Objects count like arrays.
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        let changes = diff_texts([&objects, "{}"], "id").unwrap();
        assert!(changes.starts_with(r#"[{"path":"$.a","kind":"removed""#));
    }

    /// Ids all the way down: `{"id":"x","a":[{"id":"x","a":[…inner…]}]}`,
    /// `levels` deep (even).
    fn id_tower(levels: usize, inner: &str) -> String {
        let n = levels / 2;
        format!(
            "{}{inner}{}",
            r#"{"id":"x","a":["#.repeat(n),
            "]}".repeat(n)
        )
    }

    /// Everything recursive, at the limit, on the current stack: parse, a
    /// merge that recurses to the bottom (objects and id arrays alternating, a
    /// conflict there), favoring, diff, canonical JSON, serialize, drop.
    fn walk_at_the_limit() -> usize {
        let base = id_tower(MAX_DEPTH, "1");
        let (mine, theirs) = (id_tower(MAX_DEPTH, "2"), id_tower(MAX_DEPTH, "3"));
        let texts = [base.as_str(), &mine, &theirs];
        let merge = |favor| {
            walk_texts(texts, "id", false, |[b, m, t], key| {
                run_merge(b, m, t, key, favor)
            })
            .unwrap()
        };
        let outcome = merge(None);
        assert!(outcome.contains(r#""kind":"both-modified""#));
        merge(Some(Side::Theirs));
        let diff = walk_texts([texts[0], texts[2]], "id", false, |[b, a], key| {
            diff(b, a, key)
        });
        let canonical = walk_texts([texts[0]], "id", false, |[v], _| canonical_json(v));
        outcome.len() + diff.unwrap().len() + canonical.unwrap().len()
    }

    #[test]
    fn deep_values_fit_the_stack() {
        // On half the stack the deep thread gets (a debug build needs about
        // twice what a release build does: ~4.2 MiB).
        let probe = std::thread::Builder::new()
            .stack_size(DEEP_STACK / 2)
            .spawn(walk_at_the_limit)
            .unwrap();
        assert!(probe.join().unwrap() > 0);
        // `INLINE_DEPTH` levels take little stack: a 256 KiB thread suffices.
        let shallow = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let text = id_tower(INLINE_DEPTH, "1");
                merge_texts([&text, &id_tower(INLINE_DEPTH, "2"), &text], "id", None).unwrap()
            })
            .unwrap();
        assert!(shallow.join().unwrap().contains(r#""merged""#));
        // Deeper, `merge_texts` moves to its own thread: a 256 KiB caller copes.
        let caller = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (deep, other) = (id_tower(MAX_DEPTH, "1"), id_tower(MAX_DEPTH, "2"));
                merge_texts([&deep, &other, &deep], "id", None).unwrap();
                diff_texts([&deep, &other], "id").unwrap()
            })
            .unwrap();
        assert!(caller.join().unwrap().contains(r#""kind":"changed""#));
    }

    /// Not a test: finds the stack `walk_at_the_limit` needs (run with
    /// `FLM_STACK_KIB=n cargo test [--release] --lib stack_probe -- --ignored`;
    /// a stack overflow aborts the process).
    #[test]
    #[ignore]
    fn stack_probe() {
        let kib: usize = std::env::var("FLM_STACK_KIB").map_or(16384, |v| v.parse().unwrap());
        let probe = std::thread::Builder::new()
            .stack_size(kib << 10)
            .spawn(walk_at_the_limit)
            .unwrap();
        assert!(probe.join().unwrap() > 0);
    }

    #[test]
    fn numbers_are_taken_as_javascript_takes_them() {
        // Another program wrote 1.0 and 1e2; JSON.stringify writes 1 and 100.
        let merged = merge_texts(
            [
                r#"{"a":1.0,"b":1,"c":1e2,"ids":[{"id":2.0,"n":1}]}"#,
                r#"{"a":1,"b":2,"c":100,"ids":[{"id":2,"n":1}]}"#,
                r#"{"a":1,"b":1,"c":1E+2,"ids":[{"id":2,"n":5}]}"#,
            ],
            "id",
            None,
        )
        .unwrap();
        assert_eq!(
            merged,
            r#"{"merged":{"a":1,"b":2,"c":100,"ids":[{"id":2,"n":5}]},"conflicts":[]}"#
        );
        let changes = diff_texts([r#"[1.0,2.5,-0.0,1e300]"#, r#"[1,2.5,0,1e300]"#], "id");
        assert_eq!(changes.unwrap(), "[]");
    }

    #[test]
    fn lone_surrogates_come_back_as_they_went_in() {
        // What JSON.stringify writes for '🔑 Keymaster'.slice(0, 1) and friends.
        let base = r#"{"name":"🔑 Keymaster","n":1}"#;
        let mine = r#"{"name":"\ud83d","n":1}"#;
        let theirs = r#"{"name":"🔑 Keymaster","n":2}"#;
        let text = merge_texts([base, mine, theirs], "id", None).unwrap();
        assert_eq!(text, r#"{"merged":{"name":"\ud83d","n":2},"conflicts":[]}"#);
        // Lone lows, highs before non-lows, pairs (escaped or raw) untouched.
        let odd = r#"["\udc00x\ud800","\ud83d\ude00","a\\ud800","\ud800\ud800\udfff\udc00"]"#;
        let text = merge_texts(["[]", odd, "[]"], "id", None).unwrap();
        assert_eq!(
            text,
            r#"{"merged":["\udc00x\ud800","😀","a\\ud800","\ud800𐏿\udc00"],"conflicts":[]}"#
        );
        // Conflicts carry them, keys and ids may hold them, paths name them.
        let base = r#"{"k\udfff":{"v":"a"},"roles":[{"id":"\ud83d","name":"x"}]}"#;
        let mine = r#"{"k\udfff":{"v":"\ud800"},"roles":[{"id":"\ud83d","name":"\udbff"}]}"#;
        let theirs = r#"{"k\udfff":{"v":"b"},"roles":[{"id":"\ud83d","name":"z"}]}"#;
        let outcome = merge_texts([base, mine, theirs], "id", None).unwrap();
        assert_eq!(
            outcome,
            concat!(
                r#"{"merged":{"k\udfff":{"v":"a"},"roles":[{"id":"\ud83d","name":"x"}]},"conflicts":["#,
                r#"{"path":"$[\"k\udfff\"].v","kind":"both-modified","base":"a","mine":"\ud800","theirs":"b"},"#,
                r#"{"path":"$.roles[id=\"\ud83d\"].name","kind":"both-modified","base":"x","mine":"\udbff","theirs":"z"}]}"#
            )
        );
        let changes = diff_texts([base, mine], "id").unwrap();
        assert!(changes.contains(r#""after":"\ud800""#), "{changes}");
        // Equal lone surrogates are equal; different ones differ.
        let same = merge_texts(
            [r#"["\ud800"]"#, r#"["\ud800"]"#, r#"["\ud801"]"#],
            "id",
            None,
        )
        .unwrap();
        assert_eq!(same, r#"{"merged":["\ud801"],"conflicts":[]}"#);
    }

    #[test]
    fn the_marker_itself_survives_marking() {
        // U+FDD0 raw and escaped, next to a stand-in character, with lone
        // surrogates elsewhere (the marked path) and without (the plain path).
        let (m, e03d) = (MARK, '\u{E03D}');
        for extra in [r#","\ud800""#, ""] {
            let mine =
                format!(r#"["a{m}b","\ufdd0\uFDD0{m}{m}","{m}\ue03d","{e03d}{m}{e03d}"{extra}]"#);
            let text = merge_texts(["[]", &mine, "[]"], "id", None).unwrap();
            let expected = format!(
                r#"{{"merged":["a{m}b","{m}{m}{m}{m}","{m}{e03d}","{e03d}{m}{e03d}"{extra}],"conflicts":[]}}"#
            );
            assert_eq!(text, expected);
            // In keys and the array key too.
            let mine = format!(r#"{{"k{m}":[{{"{m}":1,"v":1}}]{extra}}}"#)
                .replace(",\"\\ud800\"", ",\"x\":\"\\ud800\"");
            let theirs = mine.replace("\"v\":1", "\"v\":2");
            let text = merge_texts([&mine, &mine, &theirs], &m.to_string(), None).unwrap();
            assert!(
                text.contains(&format!(r#""k{m}":[{{"{m}":1,"v":2}}]"#)),
                "{text}"
            );
        }
        assert_eq!(unmark(format!("x{m}")), format!("x{m}"));
        assert_eq!(unmark(format!("{m}{m}{m}{e03d}")), format!("{m}\\ud83d"));
    }

    #[test]
    fn bad_texts_are_refused_not_panicked_on() {
        for text in [
            "{",
            r#""\u12"#,
            "\"\\\u{e9}\"",
            "\"\\",
            r#"["\ud800"#,
            "[\"\u{FDD0}",
            "\"\\uZZZZ\"",
        ] {
            for texts in [[text, "[]", "[]"], ["[]", "[\"\\ud800\"]", text]] {
                let error = merge_texts(texts, "id", None).unwrap_err();
                assert!(
                    matches!(error.kind, TextErrorKind::Invalid(_)),
                    "{text}: {error:?}"
                );
            }
        }
    }
}
