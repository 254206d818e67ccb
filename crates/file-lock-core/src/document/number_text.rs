//! Number tokens of a JSON text that a JavaScript number cannot hold exactly:
//! found when a document is read, put back when it is written, so a value
//! nobody changed keeps its text (`9007199254740993`, a 19-digit snowflake id,
//! `1e400`) instead of what JSON.parse + JSON.stringify make of it.
//!
//! Invariants:
//! - A token is *inexact* exactly when JSON.stringify(JSON.parse(token)) denotes
//!   another value: more significant digits than a double keeps (integers past
//!   2^53, long decimals), overflow to ±Infinity (written `null`), underflow to
//!   0, and negative zero (written `0`). A token that only changes its spelling
//!   (`1.0`, `1E2`, `0.10`) is exact.
//! - Finding none (the common case) is one pass that allocates nothing and
//!   never steps string by string: sixteen units a step with SSE2 (x86-64),
//!   a u64 of them elsewhere (SWAR), the quotes of a step telling which units
//!   are inside strings. Paths are tracked only in a second pass, after an
//!   inexact token was seen. Texts are UTF-8 bytes or a JS string's UTF-16
//!   units as napi copies them (no transcoding), alike.
//! - `splice` changes only the scalar tokens at the requested paths, and only
//!   where the token there is exactly the expected text; every other byte is
//!   copied verbatim. Keys are compared decoded (escapes, surrogate pairs, lone
//!   surrogates as WTF-8), never by spelling.
//! - Nothing here recurses: V8's JSON.parse accepts nesting deeper than a Rust
//!   stack would, so the walk keeps its own stack.
//! - Any input, JSON or not, gives a result or an error, never a panic.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use rustc_hash::FxHashMap;

/// Text that is not the JSON this module was promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError(String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

fn error<T>(message: impl Into<String>) -> Result<T, TextError> {
    Err(TextError(message.into()))
}

/// One step of a path as spelled in the text: a key (the bytes between its
/// quotes, escapes and all) or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawStep {
    Key(usize, usize),
    Index(usize),
}

/// An inexact number token: where it is and its span in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexact {
    pub path: Vec<RawStep>,
    pub token: Range<usize>,
}

/// One step of a requested path: a decoded key (WTF-8) or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Key(Vec<u8>),
    Index(usize),
}

/// Put `token` where the scalar at `path` is, if that scalar is spelled
/// `expected`; `required`: fail the splice when it cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub path: Vec<Step>,
    pub token: String,
    pub expected: String,
    pub required: bool,
}

// Number tokens: what is one, and which are exact (token.rs).
mod token;
pub use token::{is_exact, is_number_token};

// ---------------------------------------------------------------------------
// Scanning

const BOM: &[u8] = "\u{feff}".as_bytes();

/// The index just past the string starting at `text[at]` (a `"`).
fn string_end<U: Unit>(text: &[U], at: usize) -> Result<usize, TextError> {
    let mut i = at + 1;
    loop {
        match quote_or_backslash(text, i) {
            None => return error(format!("unterminated string at unit {at}")),
            Some(found) => {
                if text[found].get() == u32::from(b'"') {
                    return Ok(found + 1);
                }
                i = found + 2; // an escape: the next unit never ends the string
            }
        }
    }
}

/// The first `"` or `\\` of `text` from `i`: sixteen units a step with SSE2,
/// a u64 word of them without.
fn quote_or_backslash<U: Unit>(text: &[U], mut i: usize) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some((quotes, backslashes, _)) = U::masks16(text, i) {
        let found = quotes | backslashes;
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize);
        }
        i += 16;
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    while let Some(chunk) = text.get(i..i + U::LANES) {
        let word = U::word(chunk);
        let found = lanes_equal_exact::<U>(word, b'"') | lanes_equal_exact::<U>(word, b'\\');
        if found != 0 {
            return Some(i + (found.trailing_zeros() / U::BITS) as usize);
        }
        i += U::LANES;
    }
    let rest = text.get(i..)?;
    rest.iter()
        .position(|u| u.get() == u32::from(b'"') || u.get() == u32::from(b'\\'))
        .map(|n| i + n)
}

/// Where the number token starting at `text[at]` ends.
fn number_end<U: Unit>(text: &[U], at: usize) -> usize {
    let mut end = at;
    while text
        .get(end)
        .and_then(|u| u8::try_from(u.get()).ok())
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        end += 1;
    }
    end
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// What a text is made of, for the fast pass: bytes (UTF-8) or UTF-16 code
/// units (a JS string as napi hands it over with one plain copy; UTF-8 costs
/// V8 a transcoding pass, 3-5x slower for a string with characters past
/// U+00FF). A u64 holds `LANES` units; the SWAR tests work on lanes.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))] // tests use it there
trait Unit: Copy {
    const LANES: usize;
    const BITS: u32;
    /// 1 in each lane.
    const ONES: u64;
    /// The top bit of each lane.
    const TOPS: u64;
    /// Each lane's largest value below its top bit (0x7f, 0x7fff).
    const BELOW_TOP: u64;
    fn word(chunk: &[Self]) -> u64;
    /// For the 16 units from `text[i]`: the bits (bit k: unit i + k) of
    /// quotes, backslashes and `-./0123456789`; None past the end.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    fn masks16(text: &[Self], i: usize) -> Option<(u32, u32, u32)>;
    fn get(self) -> u32;
    /// Whether the number token `units` is exact (`is_exact`).
    fn exact(units: &[Self]) -> bool {
        Self::ascii(units, is_exact)
    }
    /// Whether `units` are JSON number syntax (`is_number_token`).
    fn number_token(units: &[Self]) -> bool {
        Self::ascii(units, is_number_token)
    }
    /// `f` of `units` as bytes (a number token's units are ASCII).
    fn ascii(units: &[Self], f: fn(&[u8]) -> bool) -> bool;
    fn from_ascii(byte: u8) -> Self;
    /// Text that was read as UTF-8 / UTF-16 (a key, a token), as a string.
    fn text(units: &[Self]) -> Cow<'_, str>;
}

impl Unit for u8 {
    const LANES: usize = 8;
    const BITS: u32 = 8;
    const ONES: u64 = ONES;
    const TOPS: u64 = HIGHS;
    const BELOW_TOP: u64 = 0x7f;

    #[inline]
    fn word(chunk: &[u8]) -> u64 {
        u64::from_le_bytes(chunk.try_into().unwrap_or_default())
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn masks16(text: &[u8], i: usize) -> Option<(u32, u32, u32)> {
        let chunk = text.get(i..i + 16)?;
        // SAFETY: 16 readable bytes (checked above); an unaligned load.
        let bytes = unsafe { sse2::_mm_loadu_si128(chunk.as_ptr().cast()) };
        Some(sse2::masks(bytes))
    }

    #[inline]
    fn get(self) -> u32 {
        u32::from(self)
    }

    fn ascii(units: &[u8], f: fn(&[u8]) -> bool) -> bool {
        f(units)
    }

    fn from_ascii(byte: u8) -> u8 {
        byte
    }

    fn text(units: &[u8]) -> Cow<'_, str> {
        String::from_utf8_lossy(units)
    }
}

impl Unit for u16 {
    const LANES: usize = 4;
    const BITS: u32 = 16;
    const ONES: u64 = 0x0001_0001_0001_0001;
    const TOPS: u64 = 0x8000_8000_8000_8000;
    const BELOW_TOP: u64 = 0x7fff;

    #[inline]
    fn word(chunk: &[u16]) -> u64 {
        let [a, b, c, d]: [u16; 4] = chunk.try_into().unwrap_or_default();
        u64::from(a) | u64::from(b) << 16 | u64::from(c) << 32 | u64::from(d) << 48
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn masks16(text: &[u16], i: usize) -> Option<(u32, u32, u32)> {
        let chunk = text.get(i..i + 16)?;
        // SAFETY: 16 readable units (checked above); unaligned loads.
        let (low, high) = unsafe {
            (
                sse2::_mm_loadu_si128(chunk.as_ptr().cast()),
                sse2::_mm_loadu_si128(chunk[8..].as_ptr().cast()),
            )
        };
        Some(sse2::masks(sse2::narrow(low, high)))
    }

    #[inline]
    fn get(self) -> u32 {
        u32::from(self)
    }

    fn ascii(units: &[u16], f: fn(&[u8]) -> bool) -> bool {
        // A number token is ASCII (number_end stops at anything else); most
        // are short: copied to the stack.
        let mut short = [0u8; 32];
        if let Some(bytes) = short.get_mut(..units.len()) {
            for (byte, &unit) in bytes.iter_mut().zip(units) {
                *byte = unit as u8;
            }
            return f(bytes);
        }
        f(&units.iter().map(|&u| u as u8).collect::<Vec<u8>>())
    }

    fn from_ascii(byte: u8) -> u16 {
        u16::from(byte)
    }

    fn text(units: &[u16]) -> Cow<'_, str> {
        Cow::Owned(String::from_utf16_lossy(units))
    }
}

/// The top bit of each lane of `word` holding one of `-./0123456789` (exact
/// per lane: no carry or borrow crosses a lane).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))] // tests use it there
#[inline]
fn number_lanes<U: Unit>(word: u64) -> u64 {
    let below = U::ONES * (U::BELOW_TOP + u64::from(b':'));
    let above = U::ONES * (U::BELOW_TOP - u64::from(b','));
    let low = word & (U::ONES * U::BELOW_TOP);
    below.wrapping_sub(low) & !word & low.wrapping_add(above) & U::TOPS
}

/// The top bit of each lane of `word` equal to `unit`, exactly (no borrow
/// crosses a lane: a lane's low bits plus its largest value below the top
/// bit cannot carry out of it).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))] // tests use it there
#[inline]
fn lanes_equal_exact<U: Unit>(word: u64, unit: u8) -> u64 {
    let x = word ^ (U::ONES * u64::from(unit));
    let below_top = U::ONES * U::BELOW_TOP;
    !(((x & below_top).wrapping_add(below_top)) | x) & U::TOPS
}

/// Each lane's top bit becomes the XOR of the top bits of itself and every
/// lane below it: from a mask of quotes, the lanes inside a string (an
/// opening quote's lane included, a closing one's not).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))] // tests use it there
#[inline]
fn prefix_xor<U: Unit>(mut lanes: u64) -> u64 {
    let mut shift = U::BITS;
    while shift < 64 {
        lanes ^= lanes << shift;
        shift *= 2;
    }
    lanes
}

/// Where the number token starting at `text[at]` ends, and whether it is exact.
fn number_at<U: Unit>(text: &[U], at: usize) -> (usize, bool) {
    let end = number_end(text, at);
    (end, U::exact(&text[at..end]))
}

/// Where the scan goes on after a number-like unit at `at` outside strings;
/// `None` when an inexact number starts there.
fn past_number<U: Unit>(text: &[U], at: usize) -> Option<usize> {
    if text[at].get() == u32::from(b'.') || text[at].get() == u32::from(b'/') {
        return Some(at + 1); // not JSON here, and no number
    }
    let (end, exact) = number_at(text, at);
    exact.then_some(end)
}

/// Whether some number token of `text` is inexact, in one pass that tracks
/// nothing but whether it is inside a string. A word at a time (SWAR), with
/// no step per string: the quotes of a word give the lanes inside strings
/// (a prefix XOR), and only a number outside them stops the pass. A word
/// holding a backslash (an escape) goes unit by unit.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))] // tests use it there
fn any_inexact_swar<U: Unit>(text: &[U]) -> Result<bool, TextError> {
    fast_pass(text, U::LANES, |i, in_string| {
        let chunk = text.get(i..i + U::LANES)?;
        let word = U::word(chunk);
        if lanes_equal_exact::<U>(word, b'\\') != 0 {
            return Some(Block::Escaped);
        }
        let mut inside = prefix_xor::<U>(lanes_equal_exact::<U>(word, b'"'));
        if in_string {
            inside ^= U::TOPS;
        }
        let numbers = number_lanes::<U>(word) & !inside;
        Some(if numbers == 0 {
            Block::NoNumber {
                ends_in_string: inside >> 63 == 1,
            }
        } else {
            Block::NumberAt((numbers.trailing_zeros() / U::BITS) as usize)
        })
    })
}

/// What a fast pass found in one block of units (outside the strings it
/// knows of).
enum Block {
    /// A backslash: the block goes unit by unit.
    Escaped,
    /// No number outside strings: the pass moves on, inside a string at the
    /// block's end or not.
    NoNumber { ends_in_string: bool },
    /// The first number-like unit outside strings, this many units in.
    NumberAt(usize),
}

/// The loop both fast passes share: from past a byte order mark, `classify`
/// looks at the block of `width` units at `i` (told whether `i` is inside a
/// string) and gives `None` for the last few units, which go unit by unit.
#[inline(always)]
fn fast_pass<U: Unit>(
    text: &[U],
    width: usize,
    mut classify: impl FnMut(usize, bool) -> Option<Block>,
) -> Result<bool, TextError> {
    let mut i = bom_units(text);
    let mut in_string = false;
    while i < text.len() {
        let Some(block) = classify(i, in_string) else {
            // The last few units.
            return one_by_one(text, i, text.len(), &mut in_string).map(|(_, inexact)| inexact);
        };
        match block {
            Block::Escaped => {
                let (next, inexact) = one_by_one(text, i, i + width, &mut in_string)?;
                if inexact {
                    return Ok(true);
                }
                i = next;
            }
            Block::NoNumber { ends_in_string } => {
                in_string = ends_in_string;
                i += width;
            }
            Block::NumberAt(offset) => {
                // Outside any string from here.
                in_string = false;
                match past_number(text, i + offset) {
                    Some(next) => i = next,
                    None => return Ok(true),
                }
            }
        }
    }
    if in_string {
        return error("unterminated string");
    }
    Ok(false)
}

/// Units of a byte order mark at the start of `text`: one in UTF-16, three
/// bytes in UTF-8.
fn bom_units<U: Unit>(text: &[U]) -> usize {
    if U::BITS == 16 {
        usize::from(text.first().is_some_and(|u| u.get() == 0xfeff))
    } else if text.len() >= BOM.len() && (0..BOM.len()).all(|k| text[k].get() == u32::from(BOM[k]))
    {
        BOM.len()
    } else {
        0
    }
}

/// Whether some number token of `text` is inexact (the fast pass): with
/// SSE2 (every x86-64 CPU) sixteen units a step, else eight bytes or four
/// UTF-16 units a step in a u64 (SWAR). Both give the same answer.
fn any_inexact<U: Unit>(text: &[U]) -> Result<bool, TextError> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return any_inexact_sse2(text);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return any_inexact_swar(text);
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::_mm_packus_epi16;
    pub use std::arch::x86_64::{__m128i, _mm_loadu_si128};
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
        _mm_set1_epi8,
    };

    /// Bits of the quotes, backslashes and `-./0123456789` of 16 bytes.
    #[inline]
    pub fn masks(bytes: __m128i) -> (u32, u32, u32) {
        // SAFETY: SSE2 is enabled (the cfg of this module): part of every
        // x86-64 CPU. The intrinsics only compute on registers.
        let (quotes, backslashes, numbers) = unsafe {
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8))),
                _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8))),
                // Signed compares: bytes past 0x7f are negative, below ','.
                _mm_movemask_epi8(_mm_and_si128(
                    _mm_cmpgt_epi8(bytes, _mm_set1_epi8(b',' as i8)),
                    _mm_cmplt_epi8(bytes, _mm_set1_epi8(b':' as i8)),
                )),
            )
        };
        (quotes as u32, backslashes as u32, numbers as u32)
    }

    /// Sixteen UTF-16 units as bytes, saturating: a unit past U+00FF becomes
    /// 0x00 or 0xff, neither of which is a byte looked for.
    #[inline]
    pub fn narrow(low: __m128i, high: __m128i) -> __m128i {
        // SAFETY: as in `masks`.
        unsafe { _mm_packus_epi16(low, high) }
    }
}

// `any_inexact_swar` with bit masks of 16 units from SSE2.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn any_inexact_sse2<U: Unit>(text: &[U]) -> Result<bool, TextError> {
    fast_pass(text, 16, |i, in_string| {
        let (quotes, backslashes, numbers) = U::masks16(text, i)?;
        if backslashes != 0 {
            return Some(Block::Escaped);
        }
        // Bit k set: unit k is inside a string (prefix XOR of the quotes).
        let mut inside = quotes;
        inside ^= inside << 1;
        inside ^= inside << 2;
        inside ^= inside << 4;
        inside ^= inside << 8;
        if in_string {
            inside ^= 0xffff;
        }
        let numbers = numbers & !inside & 0xffff;
        Some(if numbers == 0 {
            Block::NoNumber {
                ends_in_string: inside & 0x8000 != 0,
            }
        } else {
            Block::NumberAt(numbers.trailing_zeros() as usize)
        })
    })
}

// `any_inexact` one unit at a time over text[i..end) (the pass may end a
// little past `end`, inside an escape or a number): where it stopped, and
// whether it met an inexact number.
fn one_by_one<U: Unit>(
    text: &[U],
    mut i: usize,
    end: usize,
    in_string: &mut bool,
) -> Result<(usize, bool), TextError> {
    while i < end {
        let u = text[i].get();
        if *in_string {
            if u == u32::from(b'\\') {
                i += 2;
                continue;
            }
            *in_string = u != u32::from(b'"');
            i += 1;
        } else if u == u32::from(b'"') {
            *in_string = true;
            i += 1;
        } else if u == u32::from(b'-') || (u32::from(b'0')..=u32::from(b'9')).contains(&u) {
            let (next, exact) = number_at(text, i);
            if !exact {
                return Ok((next, true));
            }
            i = next;
        } else {
            i += 1;
        }
    }
    if *in_string && i >= text.len() {
        return error("unterminated string");
    }
    Ok((i, false))
}

/// Every inexact number token of `text` with its path, in document order.
/// Empty (without building any path) when all are exact; then the grammar
/// is not checked either (the text is one JSON.parse accepted): an error
/// comes only from the walk that follows paths.
pub fn inexact_numbers(text: &str) -> Result<Vec<Inexact>, TextError> {
    found(text.as_bytes())
}

fn found<U: Unit>(text: &[U]) -> Result<Vec<Inexact>, TextError> {
    if !any_inexact(text)? {
        return Ok(Vec::new());
    }
    let mut collect = Collect { found: Vec::new() };
    walk(text, &mut collect)?;
    Ok(collect.found)
}

/// The inexact numbers of `text` as the JSON text `[[path, token], …]` (a
/// path is an array of keys, spelled as in `text`, and indices), or `None`
/// when there are none.
pub fn inexact_numbers_json(text: &str) -> Result<Option<String>, TextError> {
    found_json(text.as_bytes())
}

/// `inexact_numbers_json` of a JS string's UTF-16 code units, as they are
/// (nothing is converted but the keys and tokens reported).
pub fn inexact_numbers_utf16_json(text: &[u16]) -> Result<Option<String>, TextError> {
    found_json(text)
}

fn found_json<U: Unit>(text: &[U]) -> Result<Option<String>, TextError> {
    let found = found(text)?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut out = String::from("[");
    for (n, inexact) in found.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("[[");
        for (s, step) in inexact.path.iter().enumerate() {
            if s > 0 {
                out.push(',');
            }
            match *step {
                // Copied from valid JSON: a valid JSON string still.
                RawStep::Key(start, end) => {
                    out.push('"');
                    out.push_str(&U::text(&text[start..end]));
                    out.push('"');
                }
                RawStep::Index(index) => out.push_str(&index.to_string()),
            }
        }
        out.push_str("],\"");
        out.push_str(&U::text(&text[inexact.token.clone()]));
        out.push_str("\"]");
    }
    out.push(']');
    Ok(Some(out))
}

struct Collect {
    found: Vec<Inexact>,
}

impl<U: Unit> Visit<U> for Collect {
    fn open(&mut self, _: &[U], _: &[Frame]) -> bool {
        true
    }

    fn close(&mut self) {}

    fn scalar(&mut self, text: &[U], stack: &[Frame], kind: Kind, span: Range<usize>) {
        if kind == Kind::Number && !U::exact(&text[span.clone()]) {
            let path = stack.iter().filter_map(Frame::step).collect();
            self.found.push(Inexact { path, token: span });
        }
    }
}

// ---------------------------------------------------------------------------
// The walk: containers, keys and scalars, with the path of each

/// What may come next inside a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Right after `{` / `[`: a member or element, or the end.
    FirstOrEnd,
    /// After `,`: a member or element.
    Another,
    /// After a key: `:`.
    Colon,
    /// After `:`: the member's value.
    Value,
    /// After a value: `,` or the end.
    CommaOrEnd,
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    /// `key`: the span of the current key's content (between its quotes).
    Object {
        key: Option<(usize, usize)>,
        next: Next,
    },
    Array {
        index: usize,
        next: Next,
    },
}

impl Frame {
    /// The step to the value this frame is at.
    fn step(&self) -> Option<RawStep> {
        match *self {
            Frame::Object { key, .. } => key.map(|(start, end)| RawStep::Key(start, end)),
            Frame::Array { index, .. } => Some(RawStep::Index(index)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Literal,
}

trait Visit<U> {
    /// A container starts as the value at `stack`'s position; false skips it whole.
    fn open(&mut self, text: &[U], stack: &[Frame]) -> bool;
    /// The container last opened (and not skipped) ends.
    fn close(&mut self);
    fn scalar(&mut self, text: &[U], stack: &[Frame], kind: Kind, span: Range<usize>);
}

/// The unit at `i` as a byte, where the grammar is ASCII: a unit past 0xff
/// is 0xff, which the grammar has no place for (outside strings).
fn byte_at<U: Unit>(text: &[U], i: usize) -> Option<u8> {
    text.get(i).map(|u| u8::try_from(u.get()).unwrap_or(0xff))
}

fn skip_whitespace<U: Unit>(text: &[U], mut i: usize) -> usize {
    while matches!(byte_at(text, i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the container starting at `text[at]` (its inside is
/// not checked: it is skipped because no path goes there).
fn container_end<U: Unit>(text: &[U], at: usize) -> Result<usize, TextError> {
    let mut depth = 0usize;
    let mut i = at;
    while let Some(b) = byte_at(text, i) {
        match b {
            b'"' => {
                i = string_end(text, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    error(format!("unterminated container at byte {at}"))
}

struct Walk {
    stack: Vec<Frame>,
    /// The root value was read.
    done: bool,
}

impl Walk {
    // Whether a value may start here: the root, an element, a member's value.
    fn expects_value(&self) -> bool {
        match self.stack.last() {
            None => !self.done,
            Some(Frame::Array { next, .. }) => matches!(next, Next::FirstOrEnd | Next::Another),
            Some(Frame::Object { next, .. }) => *next == Next::Value,
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            None => self.done = true,
            Some(Frame::Array { next, .. } | Frame::Object { next, .. }) => {
                *next = Next::CommaOrEnd
            }
        }
    }
}

fn walk<U: Unit>(text: &[U], visit: &mut impl Visit<U>) -> Result<(), TextError> {
    let mut w = Walk {
        stack: Vec::new(),
        done: false,
    };
    let mut i = bom_units(text);
    loop {
        i = skip_whitespace(text, i);
        let Some(b) = byte_at(text, i) else { break };
        let unexpected = || error(format!("unexpected '{}' at byte {i}", b.escape_ascii()));
        match b {
            b'{' | b'[' => {
                if !w.expects_value() {
                    return unexpected();
                }
                if visit.open(text, &w.stack) {
                    w.stack.push(if b == b'{' {
                        Frame::Object {
                            key: None,
                            next: Next::FirstOrEnd,
                        }
                    } else {
                        Frame::Array {
                            index: 0,
                            next: Next::FirstOrEnd,
                        }
                    });
                    i += 1;
                } else {
                    i = container_end(text, i)?;
                    w.value_done();
                }
            }
            b'}' | b']' => {
                let closes = match w.stack.last() {
                    Some(Frame::Object { next, .. }) => {
                        b == b'}' && matches!(next, Next::FirstOrEnd | Next::CommaOrEnd)
                    }
                    Some(Frame::Array { next, .. }) => {
                        b == b']' && matches!(next, Next::FirstOrEnd | Next::CommaOrEnd)
                    }
                    None => false,
                };
                if !closes {
                    return unexpected();
                }
                w.stack.pop();
                visit.close();
                w.value_done();
                i += 1;
            }
            b',' => {
                match w.stack.last_mut() {
                    Some(Frame::Array { index, next }) if *next == Next::CommaOrEnd => {
                        *index += 1;
                        *next = Next::Another;
                    }
                    Some(Frame::Object { key, next }) if *next == Next::CommaOrEnd => {
                        *key = None;
                        *next = Next::Another;
                    }
                    _ => return unexpected(),
                }
                i += 1;
            }
            b':' => {
                match w.stack.last_mut() {
                    Some(Frame::Object { next, .. }) if *next == Next::Colon => *next = Next::Value,
                    _ => return unexpected(),
                }
                i += 1;
            }
            b'"' => {
                let end = string_end(text, i)?;
                match w.stack.last_mut() {
                    Some(Frame::Object { key, next })
                        if matches!(next, Next::FirstOrEnd | Next::Another) =>
                    {
                        *key = Some((i + 1, end - 1));
                        *next = Next::Colon;
                    }
                    _ => {
                        if !w.expects_value() {
                            return unexpected();
                        }
                        visit.scalar(text, &w.stack, Kind::String, i..end);
                        w.value_done();
                    }
                }
                i = end;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                if !w.expects_value() {
                    return unexpected();
                }
                let (end, kind) = if b.is_ascii_alphabetic() {
                    let mut end = i;
                    while byte_at(text, end).is_some_and(|b| b.is_ascii_alphabetic()) {
                        end += 1;
                    }
                    let literal = &text[i..end];
                    let is = |word: &[u8]| {
                        literal.len() == word.len()
                            && literal
                                .iter()
                                .zip(word)
                                .all(|(u, &b)| u.get() == u32::from(b))
                    };
                    if !(is(b"true") || is(b"false") || is(b"null")) {
                        return unexpected();
                    }
                    (end, Kind::Literal)
                } else {
                    let end = number_end(text, i);
                    if !U::number_token(&text[i..end]) {
                        return error(format!("a malformed number at unit {i}"));
                    }
                    (end, Kind::Number)
                };
                visit.scalar(text, &w.stack, kind, i..end);
                w.value_done();
                i = end;
            }
            _ => return unexpected(),
        }
    }
    if !w.done {
        return error("the text ends before its value does");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Keys

fn hex4(raw: &[u8], at: usize) -> Result<u16, TextError> {
    let digits = raw
        .get(at..at + 4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| TextError(format!("a short \\u escape at byte {at} of a key")))?;
    u16::from_str_radix(digits, 16)
        .map_err(|_| TextError(format!("a bad \\u escape at byte {at} of a key")))
}

fn push_code_point(out: &mut Vec<u8>, c: u32) {
    // UTF-8, generalised to lone surrogates (WTF-8): every UTF-16 string has
    // exactly one spelling, so decoded keys compare by their bytes.
    match c {
        0..=0x7f => out.push(c as u8),
        0x80..=0x7ff => out.extend([0xc0 | (c >> 6) as u8, 0x80 | (c & 0x3f) as u8]),
        0x800..=0xffff => out.extend([
            0xe0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ]),
        _ => out.extend([
            0xf0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3f) as u8,
            0x80 | ((c >> 6) & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ]),
    }
}

/// The content of a JSON string (between its quotes) decoded to WTF-8.
pub fn decode_key(raw: &[u8]) -> Result<Cow<'_, [u8]>, TextError> {
    if !raw.contains(&b'\\') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let simple = match raw.get(i + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let unit = hex4(raw, i + 2)?;
                i += 6;
                let mut c = u32::from(unit);
                if (0xd800..0xdc00).contains(&unit) && raw.get(i..i + 2) == Some(b"\\u") {
                    let low = hex4(raw, i + 2)?;
                    if (0xdc00..0xe000).contains(&low) {
                        c = 0x10000 + ((c - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                        i += 6;
                    }
                }
                push_code_point(&mut out, c);
                continue;
            }
            _ => return error(format!("a bad escape at byte {i} of a key")),
        };
        out.push(simple);
        i += 2;
    }
    Ok(Cow::Owned(out))
}

// Splicing tokens back in at paths (splice.rs).
mod splice;
pub use splice::{parse_replacements, splice, splice_utf16};

#[cfg(test)]
#[path = "number_text_tests.rs"]
mod tests;
