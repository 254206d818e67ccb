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

let merge = null
function mergeModule() {
  merge ??= require('./merge.js')
  return merge
}

// Past this many characters of text a document's work is done in slices.
const BIG_TEXT = 1 << 20
// A big text is parsed in pieces of at most this many characters (a few ms
// each), and the event loop let run after every SLICE characters of them.
const PIECE = 1 << 20
const SLICE = 8 << 20

let native = null
function nativeModule() {
  native ??= require('../native.js')
  return native
}

// Slices waiting for their turn: one is let go per turn of the event loop, so
// two big documents (or a document's save and its watch) working at once
// never run their slices back to back in one stall.
const waiting = []

function letOneGo() {
  waiting.shift()()
  if (waiting.length > 0) setImmediate(letOneGo)
}

/** Lets the event loop run (timers, I/O, other windows' messages) before the next slice of work. */
function breathe() {
  return new Promise((resolve) => {
    waiting.push(resolve)
    if (waiting.length === 1) setImmediate(letOneGo)
  })
}

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

/**
 * JSON.parse of a big text, a piece at a time with the event loop let run
 * between slices of them: where to cut is worked out in Rust off the JS
 * thread (src/document/json_chunks.rs), each piece is a JSON.parse of its
 * own, and the value is put together as JSON.parse would make it (members in
 * order, the last of duplicate keys winning, `__proto__` an own member).
 * A text that is not JSON is parsed whole, for JSON.parse's own error.
 */
async function parseInPieces(text) {
  await breathe()
  const plan = await nativeModule().jsonChunksAsync(text, PIECE)
  if (plan === null) return JSON.parse(text)
  const budget = { left: SLICE }
  return fromPieces(text, JSON.parse(plan), budget)
}

async function fromPieces(text, node, budget) {
  const piece = async (from, to, open, close) => {
    budget.left -= to - from
    if (budget.left <= 0) {
      budget.left = SLICE
      await breathe()
    }
    return JSON.parse(open + text.slice(from, to) + close)
  }
  if (Array.isArray(node)) return piece(node[0], node[1], '', '')
  if (Object.hasOwn(node, 'a')) {
    const out = []
    for (const item of node.a) {
      if (Array.isArray(item) && item.length === 3) {
        const part = await piece(item[0], item[1], '[', ']')
        for (let i = 0; i < part.length; i++) out.push(part[i])
      } else {
        out.push(await fromPieces(text, item, budget))
      }
    }
    return out
  }
  const out = {}
  for (const item of node.o) {
    if (typeof item[0] === 'number') {
      const part = await piece(item[0], item[1], '{', '}')
      for (const key of Object.keys(part)) setMember(out, key, part[key])
    } else {
      setMember(out, JSON.parse(item[0]), await fromPieces(text, item[1], budget))
    }
  }
  return out
}

// Containers with more members than this are stringified a range at a time.
const RANGE = 2000

/**
 * JSON.stringify(value) — or JSON.stringify(value, null, 2) when `pretty` —
 * of a big clean value (plain JSON data: what JSON.parse gives), made a range
 * of members at a time with the event loop let run after every SLICE
 * characters: the same text, never one long stall. Containers with more than
 * RANGE members are cut; the rest are stringified whole (JSON strings hold no
 * raw line breaks, so a piece is re-indented by its line breaks).
 */
async function stringifyInPieces(value, pretty) {
  const budget = { left: SLICE }
  const spend = async (text) => {
    budget.left -= text.length
    if (budget.left <= 0) {
      budget.left = SLICE
      await breathe()
    }
    return text
  }
  const indent = (depth) => (pretty ? '\n' + '  '.repeat(depth) : '')
  const whole = (v, depth) => {
    const text = pretty ? JSON.stringify(v, null, 2) : JSON.stringify(v)
    return pretty && depth > 0 ? text.replace(/\n/g, indent(depth)) : text
  }
  const size = (v) => (v === null || typeof v !== 'object' ? 0 : Array.isArray(v) ? v.length : Object.keys(v).length)
  async function text(v, depth) {
    if (size(v) <= RANGE && !hasBigMember(v)) return spend(whole(v, depth))
    const parts = []
    if (Array.isArray(v)) {
      for (let start = 0; start < v.length; ) {
        if (size(v[start]) > RANGE || hasBigMember(v[start])) {
          parts.push(indent(depth + 1) + (await text(v[start], depth + 1)))
          start++
          continue
        }
        let end = start + 1
        while (end < v.length && end - start < RANGE && size(v[end]) <= RANGE && !hasBigMember(v[end])) end++
        // "[" + items + "]" of the range, its brackets (and their line breaks) cut off.
        const range = whole(v.slice(start, end), depth)
        parts.push(await spend(pretty ? range.slice(1, range.length - indent(depth).length - 1) : range.slice(1, -1)))
        start = end
      }
      return `[${parts.join(',')}${indent(depth)}]`
    }
    for (const key of Object.keys(v)) {
      parts.push(`${indent(depth + 1)}${JSON.stringify(key)}:${pretty ? ' ' : ''}${await text(v[key], depth + 1)}`)
    }
    return `{${parts.join(',')}${indent(depth)}}`
  }
  return text(value, 0)
}

// Whether one of a container's own members is a container cut in ranges.
function hasBigMember(v) {
  if (v === null || typeof v !== 'object') return false
  const members = Array.isArray(v) ? v : Object.values(v)
  if (members.length > RANGE) return false // cut anyway
  for (const member of members) {
    if (member !== null && typeof member === 'object' && ((Array.isArray(member) ? member.length : Object.keys(member).length) > RANGE || hasBigMember(member))) return true
  }
  return false
}

/** Sets a member as JSON.parse does: an own one, also for "__proto__" (never the prototype). */
function setMember(object, key, value) {
  if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
  else object[key] = value
}

/**
 * A private copy of a big frozen value, made ahead in slices, for the next
 * edit()/update() to change without copying it then (edit() is synchronous:
 * it cannot be sliced). `ours` holds every object of the copy: what fn puts
 * in from elsewhere is told apart (and copied, never frozen in place).
 * Resolves with null when `current()` is no longer `of` (it changed meanwhile).
 */
async function makeSpare(of, current) {
  // Speculative work: it waits while a merge or diff holds a core (its parse
  // would run slower, and the merge too), and gives up once `of` is outdated.
  const when = async () => {
    await mergeModule().nativeIdle()
    await breathe()
    return current() === of
  }
  if (!(await when())) return null
  const text = await jsonTextOf(of, 'the value', true)
  if (!(await when())) return null
  const copy = await parseInPieces(text)
  if (!(await when())) return null
  const ours = new WeakSet()
  const pending = [copy]
  let count = 0
  while (pending.length > 0) {
    const object = pending.pop()
    ours.add(object)
    // A slice of its own every so many objects (a 50 MB document has ~600,000).
    if (++count % 100_000 === 0) {
      await breathe()
      if (current() !== of) return null
    }
    for (const key in object) {
      const child = object[key]
      if (child !== null && typeof child === 'object') pending.push(child)
    }
  }
  return { of, copy, ours, count }
}

/**
 * The value an edit's fn left in a spare copy (`result`: the copy, or what fn
 * returned), taken as the document's value in place: checked to be plain JSON
 * data all the way down (what JSON.parse could give: plain objects, arrays
 * without holes, strings, finite numbers but -0, booleans, null; no toJSON;
 * nesting within the limit), objects not of the copy shallow-copied as they
 * are reached (a caller's object is never frozen), then frozen and marked
 * clean. Returns null when anything else is found: then documentValue(result)
 * decides (copying, converting, or refusing with its coded error).
 */
function adoptSpare(result, spare) {
  const steps = adopting(result, spare)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
  }
}

/** adoptSpare, with the event loop let run every 100,000 objects (update() may wait; edit() may not). */
async function adoptSpareSliced(result, spare) {
  const steps = adopting(result, spare)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
    await breathe()
  }
}

function* adopting(result, { ours, count }) {
  const limit = maxJsonDepth()
  // Objects reached more often than this: something shared over and over, or
  // a cycle (which only the nesting limit would end): documentValue says which.
  let budget = 2 * count + 100_000
  let root = result
  if (!isPlainContainer(root)) return null
  if (!ours.has(root)) root = shallowCopy(root)
  if (root === null) return null
  const values = [root]
  const depths = [1]
  let visited = 0
  while (values.length > 0) {
    const value = values.pop()
    const depth = depths.pop()
    if (depth > limit || --budget < 0) return null
    if (++visited % 100_000 === 0) yield
    const keys = Array.isArray(value) ? null : Object.keys(value)
    const length = keys === null ? value.length : keys.length
    for (let i = 0; i < length; i++) {
      const key = keys === null ? i : keys[i]
      let child = value[key]
      if (child === null || typeof child === 'string' || typeof child === 'boolean') continue
      if (typeof child === 'number') {
        if (!Number.isFinite(child) || Object.is(child, -0)) return null
        continue
      }
      if (typeof child !== 'object' || !isPlainContainer(child)) return null
      if (!ours.has(child)) {
        child = shallowCopy(child)
        if (child === null) return null
        value[key] = child
      }
      values.push(child)
      depths.push(depth + 1)
    }
  }
  freezeWithin(root)
  return markClean(root)
}

// A plain object or array put in by fn, copied one level (its members are
// checked as the walk reaches them); null when JSON would not take it as it is.
function shallowCopy(value) {
  if (Array.isArray(value)) return value.slice()
  if (typeof value.toJSON === 'function') return null
  return { ...value }
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

// Structural equality of JSON values.
function deepEqual(a, b) {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const key of keys) if (!Object.hasOwn(b, key) || !deepEqual(a[key], b[key])) return false
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
  makeSpare,
  adoptSpare,
  adoptSpareSliced,
  jsonTextOf,
  mergeTextOf,
  parseFrozen,
  withoutBom,
  deepFreeze,
  documentValue,
  documentValueSliced,
  parseJson,
  deepEqual,
  maxJsonDepth,
  tooDeepText,
}
