'use strict'
// Exact number text for JsonDocument: a number JSON.parse cannot hold exactly
// (an integer past 2^53 such as a 19-digit snowflake id, a decimal with more
// digits than a double keeps, 1e400, 1e-400, -0) is written back with its own
// text when nobody changed it, and a BigInt is written as its exact digits.
// The scan and the splice are in Rust (crates/file-lock-core/src/document/number_text.rs).
//
// Invariants:
// - Reads give what JSON.parse gives: JS numbers. Writing is JSON.stringify's
//   text with tokens put back at paths; nothing else of it changes.
// - The text of an inexact number read from the file is written only at the
//   place it was read from, and only while the value there is still the
//   number JS made of it (Object.is), or that number's JSON form: values that
//   went through JSON (update/set/edit copies, merges) hold null for ±Infinity
//   and 0 for -0, so those cannot tell "untouched" from "set to null / 0",
//   and count as untouched. A place is found again: in objects by key; in id
//   arrays (every element an object with a unique string or number under
//   `arrayKey`, as the merge has them) by id; in other arrays by the elements'
//   JSON texts (a diff: unique elements anchor, equal ones before and after a
//   changed stretch, one element changed in place). An element whose place
//   is uncertain loses its number's text rather than ever lend it to another.
// - A BigInt is written as its digits at its own path: its placeholder in
//   JSON.stringify's text is replaced by path, so no string, whatever it
//   looks like, is ever taken for one.
// - Cost: a document whose numbers are all exact (the common case) costs one
//   native pass over the text at read and nothing at write (plain
//   JSON.stringify, no replacer, no native call).

const { Places } = require('./places.js')

let native = null
function nativeModule() {
  native ??= require('../native.js')
  return native
}

class ExactNumbers {
  // The inexact numbers of the version last read or written: { value, entries:
  // [{ path, token, lossy }] } (path: keys and indices in `value`), or null.
  #read = null
  #spliced = false

  /**
   * A text was read and parsed into `value` (frozen): keep its inexact
   * numbers. Never fails the read: a text the scan cannot follow (it always
   * can what JSON.parse accepted) just keeps nothing.
   */
  read(text, value) {
    this.#spliced = false
    this.#scan(text, value, Object.is)
  }

  /** read(), the scan of the text done off the JS thread (a big text). */
  async readOffThread(text, value) {
    this.#spliced = false
    let found
    try {
      found = await nativeModule().inexactNumberTokensAsync(text)
    } catch {
      found = null
    }
    this.#read = found === null ? null : recordOf(JSON.parse(found), value, Object.is)
  }

  /**
   * JSON.stringify(value, null, 2), with the kept numbers' texts and BigInts'
   * digits in place. Throws what JSON.stringify throws for anything else.
   */
  stringify(value, arrayKey) {
    this.#spliced = false
    const json = jsonOf(value, undefined, 2)
    let keep = json.bigints === null ? [] : json.bigints.map(({ path, digits }) => [encodePath(path), digits, JSON.stringify(digits), true])
    if (this.#read !== null && json.text !== undefined) keep = this.#kept(value, arrayKey, keep)
    if (keep.length === 0) return json.text
    const text = nativeModule().spliceNumberTokens(json.text, JSON.stringify(keep))
    this.#spliced = true
    return text
  }

  /** Whether the version last read or written holds no inexact number (its text means what JS holds). */
  get exact() {
    return this.#read === null
  }

  /**
   * A text made without stringify() is about to be written: the value has no
   * BigInt and the version read no inexact number (`exact`), so it is what
   * stringify() would have made, with nothing put in.
   */
  plainText() {
    this.#spliced = false
  }

  /** Whether the last stringify() put number texts in (its text is not JSON.stringify's). */
  get spliced() {
    return this.#spliced
  }

  /** `text`, made by the last stringify(), is now the file; `value` what it holds. */
  wrote(text, value) {
    // A plain JSON.stringify text has no inexact numbers; a spliced one is
    // read again, so the document keeps what a reader of the file would.
    if (this.#spliced) this.#scan(text, value, Object.is)
    else this.#read = null
    this.#spliced = false
  }

  #scan(text, value, same) {
    let found
    try {
      found = nativeModule().inexactNumberTokens(text)
    } catch {
      found = null
    }
    this.#read = found === null ? null : recordOf(JSON.parse(found), value, same)
  }

  #kept(value, arrayKey, keep) {
    const { value: read, entries } = this.#read
    const places = new Places(arrayKey)
    for (const entry of entries) {
      const path = places.find(read, value, entry.path)
      if (path !== null && sameJson(path.value, entry.lossy)) {
        keep.push([encodePath(path.steps), entry.token, JSON.stringify(entry.lossy), false])
      }
    }
    return keep
  }
}

// What the scan found, checked against the parsed value: a token whose value
// is not at its path (a duplicate key that a later one overrode) is dropped.
function recordOf(found, value, same) {
  const entries = []
  for (const [path, token] of found) {
    const lossy = JSON.parse(token)
    if (same(valueAt(value, path), lossy)) entries.push({ path, token, lossy })
  }
  return entries.length === 0 ? null : { value, entries }
}

function valueAt(value, path) {
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined
    if (typeof step === 'number' ? !Array.isArray(value) || step >= value.length : Array.isArray(value) || !Object.hasOwn(value, step)) return undefined
    value = value[step]
  }
  return value
}

// Keys cross to Rust as their JSON text: a lone surrogate survives as its escape.
function encodePath(path) {
  return path.map((step) => (typeof step === 'number' ? step : JSON.stringify(step)))
}

// A number as JSON has it, as the document's values hold it once they went
// through JSON (update()/set()/edit() copies, merges): ±Infinity is null,
// -0 is 0. A value read from the file still holds Infinity / -0 there.
function jsonForm(value) {
  if (typeof value !== 'number') return value
  return Number.isFinite(value) ? value + 0 : null
}

function sameJson(a, b) {
  return Object.is(jsonForm(a), jsonForm(b))
}

function isBigIntError(error) {
  return error instanceof TypeError && /BigInt/.test(error.message)
}

/**
 * JSON.stringify(value, replacer, space), also for a value holding BigInts:
 * `{ text, bigints }`, where each BigInt (or BigInt object) is in `text` as a
 * string of its digits and `bigints` says where: [{ path, digits }]; null
 * when there is none (then `text` is plain JSON.stringify's, made once).
 * Throws what JSON.stringify throws for anything else (a cycle, a throwing
 * toJSON, what `replacer` throws).
 */
function jsonOf(value, replacer, space) {
  try {
    return { text: JSON.stringify(value, replacer, space), bigints: null }
  } catch (error) {
    if (!isBigIntError(error)) throw error
  }
  // Each object's place, as a link to its holder's ({ up, key }): a path is
  // only spelled out for a BigInt.
  const places = new Map()
  const bigints = []
  const ROOT = { up: null, key: null }
  let root = true
  const text = JSON.stringify(
    value,
    function (key, member) {
      if (replacer !== undefined) member = replacer.call(this, key, member)
      if (typeof member !== 'object' && typeof member !== 'bigint') return member // most members: nothing to note
      if (member !== null && typeof member === 'object') member = bigIntObjectValue(member) ?? member
      let place = ROOT
      if (root) root = false
      else place = { up: places.get(this), key: Array.isArray(this) ? Number(key) : key }
      if (typeof member === 'bigint') {
        const path = []
        for (let at = place; at !== ROOT; at = at.up) {
          if (at === undefined) throw new TypeError('Do not know where this BigInt is') // cannot happen
          path.push(at.key)
        }
        const digits = member.toString()
        bigints.push({ path: path.reverse(), digits })
        return digits
      }
      // Its members are serialised next, with it as their holder.
      if (member !== null && typeof member === 'object') places.set(member, place)
      return member
    },
    space,
  )
  return { text, bigints: bigints.length === 0 ? null : bigints }
}

// The bigint inside a BigInt object (Object(5n)), as JSON.stringify unwraps
// it; undefined for any other object (a brand check, not a tag check).
function bigIntObjectValue(object) {
  if (Object.prototype.toString.call(object) !== '[object BigInt]') return undefined // cheap, and no throw for plain objects
  try {
    return BigInt.prototype.valueOf.call(object)
  } catch {
    return undefined
  }
}

/** Puts the BigInts `jsonOf` found back into JSON.parse of its text; returns `copy`. */
function withBigInts(copy, bigints) {
  for (const { path, digits } of bigints) {
    if (path.length === 0) return BigInt(digits)
    let holder = copy
    for (let i = 0; i < path.length - 1; i++) holder = holder[path[i]]
    holder[path[path.length - 1]] = BigInt(digits)
  }
  return copy
}

/**
 * After a merge: the BigInts `jsonOf` found in `source` (written into the
 * merge's text as strings of their digits) put back where the merge kept
 * them in `merged`: at the same place (found as ExactNumbers finds places:
 * keys, ids, content), holding that very string, in a container the merge
 * made (a frozen one was shared from the file, whose string it is). Returns
 * `merged` (a BigInt as the whole value is not a document).
 */
function putBigIntsBack(merged, source, bigints, arrayKey) {
  const places = new Places(arrayKey)
  for (const { path, digits } of bigints) {
    if (path.length === 0) continue
    const place = places.find(source, merged, path)
    if (place === null || place.value !== digits) continue
    let holder = merged
    for (const step of place.steps.slice(0, -1)) holder = holder[step]
    if (!Object.isFrozen(holder)) holder[place.steps[place.steps.length - 1]] = BigInt(digits)
  }
  return merged
}

module.exports = { ExactNumbers, jsonOf, withBigInts, putBigIntsBack }
