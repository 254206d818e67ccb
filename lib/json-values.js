'use strict'
// The JSON values a JsonDocument holds: checked, frozen, and worked on in
// slices when they are big, so no single step stalls the event loop for long.
//
// Invariants:
// - A document's value is a plain object or array whose JSON form exists, nested
//   at most MAX_JSON_DEPTH levels, frozen all the way down (documentValue is
//   the one check, for every way in).
// - A value marked clean is exactly what JSON.parse of some text gives; a
//   remembered text is JSON.stringify's form of its value (what the native
//   merge is given), never a text with other numbers in it.
// - Big values (their document's text past BIG_TEXT) are parsed, checked,
//   frozen and turned into text one whole pass at a time, with the event loop
//   let run between passes (`breathe`): in an Electron main process a long
//   stall freezes every window. Small ones never wait for a turn of the loop.

const { jsonOf, withBigInts } = require('./exact-numbers.js')
const { invalidValue, mustBe, received } = require('./args.js')
const { breathe, parseInPieces, stringifyInPieces, setMember } = require('./json-slices.js')

let merge = null
function mergeModule() {
  merge ??= require('./merge.js')
  return merge
}

// Past this many characters of text a document's work is done in slices.
const BIG_TEXT = 1 << 20
const clean = new WeakSet() // frozen values that are exactly what JSON.parse of a text gives
const texts = new WeakMap() // frozen value → its JSON.stringify text, once known

/** `value` (frozen) is what JSON.parse of a text gives; `text`, when given, is its JSON.stringify form. */
function markClean(value, text) {
  clean.add(value)
  if (text !== undefined && !texts.has(value)) texts.set(value, text)
  return value
}

/**
 * A private, unfrozen copy of a document value, for an update's fn to
 * change: a parse of its remembered text (faster than structuredClone on big
 * values), else structuredClone (which keeps BigInts).
 */
function copyOf(value) {
  const text = texts.get(value)
  return text === undefined ? structuredClone(value) : JSON.parse(text)
}

/** copyOf for a big value, the parse in pieces. */
async function copyOfInPieces(value) {
  const text = texts.get(value)
  return text === undefined ? structuredClone(value) : parseInPieces(text)
}

function isClean(value) {
  return clean.has(value)
}

/**
 * The JSON.stringify text of a frozen document value (remembered), for the
 * native merge and diff. A value with no JSON form (a BigInt in it) is a
 * TypeError, code ERR_INVALID_ARG_VALUE, as mergeJson gives.
 */
async function jsonTextOf(value, name, big) {
  const known = texts.get(value)
  if (known !== undefined) return known
  if (big) await breathe()
  // Plain JSON data (clean) has a text: a big one is made a range at a time.
  const text = big && clean.has(value) ? await stringifyInPieces(value, false) : mergeModule().toJson(name, value)
  if (Object.isFrozen(value)) texts.set(value, text)
  return text
}

/**
 * The text a merge or diff is given for a document value: jsonTextOf's, or
 * for a value holding BigInts (unsaved edits may), JSON.stringify's with each
 * BigInt as a string of its digits, and where they are (`bigints`, for
 * putBigIntsBack; null when there is none).
 */
async function mergeTextOf(value, name, big) {
  try {
    return { text: await jsonTextOf(value, name, big), bigints: null }
  } catch (error) {
    if (!/BigInt/.test(error?.message)) throw error
  }
  const json = jsonOf(value)
  return { text: json.text, bigints: json.bigints }
}

/**
 * JSON.parse of a text read from a file (past a byte order mark), checked for
 * nesting and frozen; in two slices when `big`. Throws what JSON.parse throws,
 * or a RangeError for nesting past the limit.
 */
async function parseFrozen(text, big) {
  const value = big ? await parseInPieces(withoutBom(text)) : JSON.parse(withoutBom(text))
  if (big) await breathe()
  return freezeWithin(value)
}

// A byte order mark (Notepad writes one) is not part of the JSON.
function withoutBom(text) {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

// Freezes a value as JSON.parse makes it, all the way down, in one iterative
// pass that also checks the nesting limit (RangeError past it).
function freezeWithin(root) {
  if (root === null || typeof root !== 'object') return root
  const limit = maxJsonDepth()
  const values = [root]
  const depths = [1]
  while (values.length > 0) {
    const value = values.pop()
    const depth = depths.pop()
    if (depth > limit) throw new RangeError(`it ${tooDeepText()}`)
    Object.freeze(value)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const child = value[i]
        if (child !== null && typeof child === 'object') {
          values.push(child)
          depths.push(depth + 1)
        }
      }
    } else {
      for (const key in value) {
        const child = value[key]
        if (child !== null && typeof child === 'object') {
          values.push(child)
          depths.push(depth + 1)
        }
      }
    }
  }
  return root
}

// Values handed out by get() are frozen: changing them would change the
// document's state behind its back (and not be saved); use update()/edit().
// Iterative: JSON.parse accepts nesting far deeper than a recursion would
// survive. A frozen object is taken as frozen all the way down (ours are).
function deepFreeze(value) {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value
  const pending = [value]
  while (pending.length > 0) {
    const object = pending.pop()
    if (Object.isFrozen(object)) continue // reached twice
    Object.freeze(object)
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const child = object[i]
        if (child !== null && typeof child === 'object' && !Object.isFrozen(child)) pending.push(child)
      }
    } else {
      for (const key of Object.keys(object)) {
        const child = object[key]
        if (child !== null && typeof child === 'object' && !Object.isFrozen(child)) pending.push(child)
      }
    }
  }
  return value
}

// The package's one nesting limit (arrays and objects inside each other),
// from the native side: merges, documents, values and defaultValue alike.
let maxDepth = 0
function maxJsonDepth() {
  maxDepth ||= mergeModule().MAX_JSON_DEPTH
  return maxDepth
}

function tooDeepText() {
  return `is nested more than ${maxJsonDepth()} levels deep (arrays and objects inside each other; the limit is ${maxJsonDepth()})`
}

// Whether a JSON value (as JSON.parse makes them) nests more than `limit`
// levels; iterative, and it stops at the first level too many.
function nestedDeeperThan(root, limit) {
  if (root === null || typeof root !== 'object') return false
  const values = [root]
  const depths = [1]
  while (values.length > 0) {
    const value = values.pop()
    const depth = depths.pop()
    if (depth > limit) return true
    const children = Array.isArray(value) ? value : Object.values(value)
    for (let i = 0; i < children.length; i++) {
      const child = children[i]
      if (child !== null && typeof child === 'object') {
        values.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

// A plain object (of any realm, or without prototype) or an array: what a
// document's value can be. Not a Date, Map, class instance, function…
function isPlainContainer(value) {
  if (Array.isArray(value)) return true
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === null || Object.getPrototypeOf(proto) === null
}

// A member JSON.stringify would drop silently, data the caller meant to keep.
function refuseFunctions(key, value) {
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`${key === '' ? 'it' : `its member ${JSON.stringify(key)}`} is a ${typeof value}`)
  }
  return value
}

/**
 * What a document holds, checked once for every way in (set, update, edit,
 * defaultValue): a plain object or an array, whose JSON form exists (BigInts
 * kept, written as their digits; no cycle, no throwing toJSON), holds no function or symbol, and nests at
 * most MAX_JSON_DEPTH levels. Returns a frozen copy of that JSON form, as it
 * will be on disk (undefined members left out, Dates as strings); anything
 * else is a TypeError with code ERR_INVALID_ARG_VALUE, and nothing is kept.
 */
function documentValue(value, name = 'the value') {
  if (!isPlainContainer(value)) throw invalidValue(name, mustBe('a plain object or an array', value))
  const plain = plainDataCopy(value)
  // Its text is made when first needed (the write's, or a merge's).
  if (plain !== undefined) return markClean(plain)
  let text
  let bigints // null, or where BigInts are: written as their exact digits (exact-numbers.js)
  try {
    ;({ text, bigints } = jsonOf(value, refuseFunctions))
  } catch (cause) {
    // A RangeError is the stack running out: thousands of levels.
    const deep = cause instanceof RangeError && /call stack/i.test(cause.message)
    throw invalidValue(name, deep ? tooDeepText() : `cannot be saved as JSON: ${cause.message}`, cause)
  }
  const copy = text === undefined ? undefined : JSON.parse(text)
  // A top-level toJSON() may turn it into something else.
  if (copy === null || typeof copy !== 'object') throw invalidValue(name, `must be a plain object or an array; its JSON form is ${received(copy)}`)
  // BigInts go in before the freeze (their places hold the digits' placeholders).
  if (bigints !== null) withBigInts(copy, bigints)
  try {
    freezeWithin(copy)
  } catch {
    throw invalidValue(name, tooDeepText())
  }
  if (bigints !== null) return copy // not what JSON.parse gives: not clean
  return markClean(copy, text)
}

// documentValue's fast path, for what update(fn) and set() are given nearly
// always: plain data (plain objects and arrays of strings, numbers, booleans,
// null, undefined members) copied and frozen in one walk, exactly as
// JSON.parse(JSON.stringify(value)) gives it (non-finite numbers null, -0 0,
// undefined members left out, in arrays null) — a sixth of the time of that
// round trip. undefined for anything else (a toJSON, a class instance, a
// function, a symbol, a BigInt, a cycle, nesting past the limit, a throwing
// getter), which the general path takes, with its errors.
const NOT_PLAIN = Symbol('not plain data')

function plainDataCopy(value) {
  try {
    const copy = plainContainerCopy(value, 1, maxJsonDepth())
    return copy === NOT_PLAIN ? undefined : copy
  } catch {
    return undefined // a getter or a proxy threw, or the stack ran out: the general path says what
  }
}

function plainContainerCopy(value, depth, limit) {
  if (depth > limit) return NOT_PLAIN
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return NOT_PLAIN
    const copy = []
    for (let i = 0; i < value.length; i++) {
      const member = plainMemberCopy(value[i], depth, limit)
      if (member === NOT_PLAIN) return NOT_PLAIN
      copy.push(member === undefined ? null : member)
    }
    return Object.freeze(copy)
  }
  const proto = Object.getPrototypeOf(value)
  if ((proto !== Object.prototype && proto !== null) || typeof value.toJSON === 'function') return NOT_PLAIN
  const copy = {}
  const keys = Object.keys(value)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const member = plainMemberCopy(value[key], depth, limit)
    if (member === NOT_PLAIN) return NOT_PLAIN
    if (member === undefined) continue
    // JSON.parse makes "__proto__" an own member; an assignment would set the prototype.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: member, enumerable: true, writable: true, configurable: true })
    else copy[key] = member
  }
  return Object.freeze(copy)
}

function plainMemberCopy(member, depth, limit) {
  switch (typeof member) {
    case 'string':
    case 'boolean':
      return member
    case 'number':
      return Number.isFinite(member) ? member + 0 : null // -0 + 0 is 0
    case 'undefined':
      return undefined
    case 'object':
      return member === null ? null : plainContainerCopy(member, depth + 1, limit)
    default:
      return NOT_PLAIN // a function, a symbol (refused by the general path) or a BigInt (kept as digits there)
  }
}

/**
 * documentValue, in slices when `big`: the JSON form, its parse, and the
 * check and freeze, each a pass of its own with the event loop let run between.
 */
async function documentValueSliced(value, name, big) {
  if (!big) return documentValue(value, name)
  if (!isPlainContainer(value)) throw invalidValue(name, mustBe('a plain object or an array', value))
  let json
  try {
    json = jsonOf(value, refuseFunctions)
  } catch (cause) {
    const deep = cause instanceof RangeError && /call stack/i.test(cause.message)
    throw invalidValue(name, deep ? tooDeepText() : `cannot be saved as JSON: ${cause.message}`, cause)
  }
  if (json.text === undefined) throw invalidValue(name, 'must be a plain object or an array; its JSON form is undefined')
  const copy = await parseInPieces(json.text)
  if (copy === null || typeof copy !== 'object') throw invalidValue(name, `must be a plain object or an array; its JSON form is ${received(copy)}`)
  await breathe()
  if (json.bigints !== null) withBigInts(copy, json.bigints)
  try {
    freezeWithin(copy)
  } catch {
    throw invalidValue(name, tooDeepText())
  }
  if (json.bigints !== null) return copy
  return markClean(copy, json.text)
}

// JSON.parse, past a leading byte order mark (Notepad writes one). A value
// nested past the package's limit is refused like a text that does not parse.
function parseJson(text) {
  const value = JSON.parse(withoutBom(text))
  if (nestedDeeperThan(value, maxJsonDepth())) throw new RangeError(`it ${tooDeepText()}`)
  return value
}

// Structural equality of JSON values, as Rust's: object members in any
// order, arrays in order (documents, and mergeJson's walk: lib/merge/walk.js).
function deepEqual(a, b) {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  for (let i = 0; i < keysA.length; i++) {
    const key = keysA[i]
    // Keys in the same order (the usual case) need no look-up of their own.
    if (key !== keysB[i] && !Object.hasOwn(b, key)) return false
    if (!deepEqual(a[key], b[key])) return false
  }
  return true
}

module.exports = {
  BIG_TEXT,
  breathe,
  markClean,
  isClean,
  copyOf,
  copyOfInPieces,
  parseInPieces,
  stringifyInPieces,
  setMember,
  jsonTextOf,
  mergeTextOf,
  parseFrozen,
  withoutBom,
  deepFreeze,
  freezeWithin,
  isPlainContainer,
  documentValue,
  documentValueSliced,
  parseJson,
  deepEqual,
  maxJsonDepth,
  tooDeepText,
}
