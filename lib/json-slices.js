'use strict'
// Big JSON texts and values worked on in slices: parsed a piece at a time
// (cut where Rust says), stringified a range of members at a time, with the
// event loop let run between slices.
//
// Invariants:
// - The result is exactly what JSON.parse / JSON.stringify give (members in
//   order, the last of duplicate keys winning, `__proto__` an own member).
// - No slice runs long (a few ms), and slices wait for their turn: one is let
//   go per turn of the event loop, so two big documents (or a document's save
//   and its watch) working at once never run their slices back to back: in an
//   Electron main process a long stall freezes every window.

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

/**
 * JSON.parse of a big text, a piece at a time with the event loop let run
 * between slices of them: where to cut is worked out in Rust off the JS
 * thread (crates/file-lock-core/src/document/json_chunks.rs), each piece is a JSON.parse of its
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

module.exports = { breathe, parseInPieces, stringifyInPieces, setMember }
