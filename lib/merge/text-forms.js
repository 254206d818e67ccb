'use strict'
// The texts the Rust merge names and sorts things by, made in JS from values:
// paths (`$.roles[id="admin"].name`), element ids, canonical JSON, and the
// order of strings (crates/file-lock-core/src/json_merge/types.rs).
//
// Invariant: every text here is the one Rust makes for the same value, and
// compareAsRust orders strings as Rust orders its own: by UTF-8 bytes, which
// is by code point, with a lone surrogate counted as Rust holds it while it
// merges (texts.rs: U+FDD0 then U+E000 + its offset from U+D800; U+FDD0
// itself doubled). So every tie between the sides is broken alike.

// serde_json escapes `"`, `\` and control characters, nothing else: non-ASCII
// characters stay raw, and so do lone surrogates (texts.rs restores them raw).
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/
const SHORT_ESCAPES = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' }

/** A string as serde_json writes it, quotes included. */
function quote(text) {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`
  let out = '"'
  for (const char of text) {
    const code = char.charCodeAt(0)
    if (SHORT_ESCAPES[char] !== undefined) out += SHORT_ESCAPES[char]
    else if (code < 0x20) out += `\\u00${code.toString(16).padStart(2, '0')}`
    else out += char
  }
  return `${out}"`
}

// Rust holds a JSON number as an integer when JSON.stringify wrote digits
// that fit a u64 (or, negative, an i64), else as a double (texts.rs).
const U64_END = 2 ** 64
const I64_START = -(2 ** 63)

/** A number as serde_json writes it: integers as digits, doubles as zmij lays out their shortest digits. */
function numberText(number) {
  if (Number.isInteger(number) && number > I64_START && number < U64_END) return String(number)
  const [mantissa, exponentText] = number.toExponential().split('e') // the shortest digits, as JS and zmij find them
  const sign = mantissa[0] === '-' ? '-' : ''
  const digits = mantissa.replace('-', '').replace('.', '')
  const exponent = Number(exponentText)
  // zmij writes exponents -5 to 15 without one: 1234.0, 12.34, 0.001234.
  if (exponent >= -5 && exponent <= 15) {
    if (digits.length - 1 <= exponent) return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`
    if (exponent >= 0) return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
    return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : ''
  return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${Math.abs(exponent)}`
}

/** An element id (a string or a number) as Rust names and sorts it: `"admin"`, `7`. */
function idText(id) {
  return typeof id === 'string' ? quote(id) : numberText(id)
}

/**
 * Compares two strings as Rust compares its strings (see the invariant):
 * negative, 0 or positive. The common case, a first difference below the
 * surrogates, is decided there; anything else compares code point lists.
 */
function compareAsRust(a, b) {
  if (a === b) return 0
  const shorter = Math.min(a.length, b.length)
  let i = 0
  while (i < shorter && a.charCodeAt(i) === b.charCodeAt(i)) i++
  const unitA = i < a.length ? a.charCodeAt(i) : -1
  const unitB = i < b.length ? b.charCodeAt(i) : -1
  // Neither unit ends a surrogate pair, so the equal prefix maps alike in both.
  if (unitA < 0xd800 && unitB < 0xd800) return unitA - unitB
  return compareLists(rustCodePoints(a), rustCodePoints(b), (x, y) => x - y)
}

// The code points of a string as Rust holds it while it merges.
function rustCodePoints(text) {
  const points = []
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    const next = text.charCodeAt(i + 1) // NaN past the end
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      points.push(0x10000 + ((unit - 0xd800) << 10) + (next - 0xdc00))
      i++
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      points.push(0xfdd0, 0xe000 + (unit - 0xd800))
    } else if (unit === 0xfdd0) {
      points.push(0xfdd0, 0xfdd0)
    } else {
      points.push(unit)
    }
  }
  return points
}

/** Lexicographic order of two lists (a prefix first), as Rust's `Vec` compares. */
function compareLists(a, b, compare) {
  const shorter = Math.min(a.length, b.length)
  for (let i = 0; i < shorter; i++) {
    if (a[i] === b[i]) continue
    const order = compare(a[i], b[i])
    if (order !== 0) return order
  }
  return a.length - b.length
}

/** Element ids in Rust's order: by their texts, so every string id before every number id. */
function compareIds(a, b) {
  return compareAsRust(idText(a), idText(b))
}

/** JSON text with object keys sorted at every level, as Rust's canonical_json: equal values, equal text. */
function canonicalJson(value) {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string':
      return quote(value)
    case 'number':
      return numberText(value)
    case 'boolean':
      return String(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort(compareAsRust)
  return `{${keys.map((key) => `${quote(key)}:${canonicalJson(value[key])}`).join(',')}}`
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/**
 * A path as Rust writes it: `$` the root, `.name` an identifier-like key,
 * `["odd key"]` any other, `[id="admin"]` / `[id=7]` an id array's element
 * (the array key's name in place of `id`, quoted if not identifier-like).
 * `segments`: keys (strings) and `{ id }` for elements.
 */
function pathText(segments, arrayKey) {
  let text = '$'
  for (const segment of segments) {
    if (typeof segment === 'string') {
      text += IDENTIFIER.test(segment) ? `.${segment}` : `[${quote(segment)}]`
    } else {
      text += `[${IDENTIFIER.test(arrayKey) ? arrayKey : quote(arrayKey)}=${idText(segment.id)}]`
    }
  }
  return text
}

module.exports = { compareAsRust, compareLists, compareIds, canonicalJson, pathText }
