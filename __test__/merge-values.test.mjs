// mergeJson / diffJson walk the values in JS (lib/merge/); JsonDocument's merges
// run in Rust on texts (mergeJsonText / diffJsonText). The two must agree to
// the last member's order: thousands of random cases (seeded), compared on
// JSON.stringify of the results, and the texts Rust makes (paths, ids, ties).
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { lcg } from '../testkit/random.mjs'

const require = createRequire(import.meta.url)
const { mergeJson, diffJson } = require('../lib/merge.js')
const { JS_DEPTH } = require('../lib/merge/json-form.js')
const native = require('../native.js')

const rustMerge = (b, m, t, arrayKey = 'id', favor = undefined) => JSON.parse(native.mergeJsonText(JSON.stringify(b), JSON.stringify(m), JSON.stringify(t), arrayKey, favor))
const rustDiff = (before, after, arrayKey = 'id') => JSON.parse(native.diffJsonText(JSON.stringify(before), JSON.stringify(after), arrayKey))
const jsMerge = (b, m, t, arrayKey, favor) => {
  const { merged, conflicts, clean } = mergeJson(b, m, t, { arrayKey, favor })
  if (clean !== (conflicts.length === 0)) throw new Error('clean disagrees with conflicts')
  return { merged, conflicts }
}

function random(seed) {
  const next = lcg(seed)
  const below = (n) => Math.floor(next() * n)
  return { next, below, chance: (p) => next() < p, pick: (list) => list[below(list.length)] }
}

// Small pools, so both sides often touch the same things; with the odd ones:
// keys that are not identifiers, integer-like keys (JS puts them first),
// `__proto__`, inherited names, lone surrogates, U+FDD0 (Rust's own marker),
// characters that sort differently in UTF-16 and UTF-8.
const LONE_HIGH = '\ud83d'
const LONE_LOW = '\ude00'
const KEYS = ['a', 'b', 'c', 'name', 'id', 'key', 'my key', '__proto__', 'constructor', 'odd key', '0', '7', '10', 'é', 'x"y', 'a\\b', 'tab\t', '\u0001', LONE_HIGH, LONE_LOW, `a${LONE_HIGH}`, '😀', '\ufdd0', '\uffff', '\ue000', '$x', '_']
const STRINGS = ['', 'x', 'y', 'Guest', 'Visitor', '10', '2', LONE_HIGH, LONE_LOW, `${LONE_LOW}${LONE_HIGH}`, '😀', '\ufdd0', '\ufdd0\ue000', '\uffff', '\ue7ff', 'é', 'quote"', 'back\\slash', 'nl\n', '\u001f', '1970-01-01T00:00:00.000Z']
const NUMBERS = [0, 1, 2, 10, -1, 1.5, 0.1, 1e21, 1e-7, 0.000001, 1e16, 123.456, 2 ** 53 + 2, 2 ** 64, -(2 ** 63), 2 ** 63, 5e-324, 1.7976931348623157e308, 123456789012]
const IDS = ['a', 'b', 'c', 'd', 'e', 'f', '', LONE_HIGH, '😀', '\ufdd0', '\uffff', 'x"', '1', 1, 2, 3, 10, -1, 1.5, 1e21, 2 ** 64, 0.000001]
const ARRAY_KEYS = ['id', 'key', 'my key']

/** Sets a member as JSON.parse does: `__proto__` an own one. */
function put(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
}

const clone = (value) => JSON.parse(JSON.stringify(value))

function scalar(r) {
  const roll = r.below(10)
  if (roll === 0) return null
  if (roll === 1) return r.chance(0.5)
  if (roll < 6) return r.pick(NUMBERS)
  return r.pick(STRINGS)
}

function randomValue(r, depth, arrayKey) {
  if (depth >= 3 || r.chance(0.3)) return scalar(r)
  const roll = r.below(3)
  if (roll === 0) return randomObject(r, depth, arrayKey)
  if (roll === 1) return idArray(r, depth, arrayKey)
  return Array.from({ length: r.below(4) }, () => randomValue(r, depth + 1, arrayKey))
}

function randomObject(r, depth, arrayKey) {
  const object = {}
  for (let n = r.below(5); n > 0; n--) put(object, r.pick(KEYS), randomValue(r, depth + 1, arrayKey))
  return object
}

function element(r, depth, arrayKey, id) {
  const item = randomObject(r, depth + 1, arrayKey)
  // Mostly under the array key in use; sometimes another, so the array is
  // keyed under one key and atomic under the others.
  put(item, r.chance(0.95) ? arrayKey : r.pick(ARRAY_KEYS), id)
  return item
}

function idArray(r, depth, arrayKey, size = r.below(6)) {
  const ids = new Set()
  for (let n = size; n > 0; n--) ids.add(r.pick(IDS))
  return [...ids].map((id) => element(r, depth, arrayKey, id))
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** One random edit of `value` (a fresh copy of it may be changed in place); returns the edited value. */
function edit(r, value, arrayKey, depth = 0) {
  if (r.chance(depth === 1 ? 0.03 : 0.1)) return randomValue(r, depth, arrayKey) // replaced, maybe by another type
  if (isObject(value)) {
    const keys = Object.keys(value)
    const roll = r.below(4)
    if (roll === 0 || keys.length === 0) put(value, r.pick(KEYS), randomValue(r, depth + 1, arrayKey))
    else if (roll === 1) delete value[r.pick(keys)]
    else {
      const key = r.pick(keys)
      put(value, key, edit(r, value[key], arrayKey, depth + 1))
    }
    return value
  }
  if (Array.isArray(value)) {
    const roll = r.below(20)
    const at = r.below(value.length + 1)
    if (roll < 5) value.splice(at, 0, element(r, depth, arrayKey, newId(r, value, arrayKey)))
    else if (roll < 8 && value.length > 0) value.splice(Math.min(at, value.length - 1), 1)
    else if (roll < 13 && value.length > 1) value.splice(at, 0, ...value.splice(r.below(value.length), 1)) // a move
    else if (roll === 13) value.reverse()
    else if (roll === 14 && value.length > 0 && isObject(value[0])) delete value[0][arrayKey] // an element without id: atomic
    else if (roll === 15) value.push(scalar(r)) // atomic, unless it was a plain array
    else if (value.length > 0) {
      const i = Math.min(at, value.length - 1)
      const item = value[i]
      // Edit an element, its id mostly kept (changing it is a remove and an add).
      const id = isObject(item) && Object.hasOwn(item, arrayKey) ? item[arrayKey] : undefined
      value[i] = edit(r, item, arrayKey, depth + 1)
      if (id !== undefined && isObject(value[i]) && r.chance(0.9)) put(value[i], arrayKey, id)
    }
    return value
  }
  return scalar(r)
}

// An id not in `items` yet, mostly; sometimes one twice (the array is atomic then).
function newId(r, items, arrayKey) {
  const taken = new Set(items.map((item) => (isObject(item) ? item[arrayKey] : undefined)))
  const fresh = IDS.filter((id) => !taken.has(id))
  return fresh.length > 0 && r.chance(0.85) ? r.pick(fresh) : r.pick(IDS)
}

/** Up to 5 edits, half of them on the document's roles, so both sides often add, remove, move and edit the same roles. */
function edits(r, base, arrayKey) {
  let value = clone(base)
  for (let n = r.below(6); n > 0; n--) {
    if (isObject(value) && Array.isArray(value.roles) && r.chance(0.5)) put(value, 'roles', edit(r, value.roles, arrayKey, 1))
    else value = edit(r, value, arrayKey)
  }
  // A move on top, now and then: reorders on both sides are what the order rules are about.
  const roles = isObject(value) && value.roles
  if (Array.isArray(roles) && roles.length > 1 && r.chance(0.3)) roles.splice(r.below(roles.length), 0, ...roles.splice(r.below(roles.length), 1))
  return value
}

/** A document: mostly an object with an id array, as documents are. */
function document(r, arrayKey) {
  const doc = randomObject(r, 1, arrayKey)
  put(doc, 'roles', idArray(r, 1, arrayKey, 3 + r.below(6)))
  return r.chance(0.9) ? doc : randomValue(r, 0, arrayKey)
}

/** base, mine, theirs: often one side unchanged, or both the same edit, or one the other's plus more. */
function triple(r, arrayKey) {
  const base = document(r, arrayKey)
  const mine = r.chance(0.15) ? clone(base) : edits(r, base, arrayKey)
  const roll = r.below(10)
  const theirs = roll === 0 ? clone(mine) : roll === 1 ? edits(r, mine, arrayKey) : edits(r, base, arrayKey)
  if (isObject(base) && isObject(mine) && isObject(theirs) && r.chance(0.15)) {
    // Both add the same key: equal, or merged member by member, or both-added.
    const key = r.pick(KEYS.filter((k) => !Object.hasOwn(base, k)))
    put(mine, key, randomValue(r, 1, arrayKey))
    put(theirs, key, r.chance(0.2) ? clone(mine[key]) : randomValue(r, 1, arrayKey))
  }
  return r.chance(0.5) ? [base, mine, theirs] : [base, theirs, mine]
}

/**
 * The value with some parts put as values JSON.stringify turns into the same
 * JSON (toJSON, boxed primitives, Dates, members it leaves out, -0, NaN in
 * place of null): what is merged must not change.
 */
function disguise(r, value, inArray = false) {
  if (!r.chance(0.25)) return disguiseInside(r, value)
  if (value === null) return inArray ? r.pick([undefined, () => 1, Symbol('s'), NaN]) : r.pick([NaN, Infinity, -Infinity])
  if (value === 0) return -0
  if (typeof value === 'number') return new Number(value)
  if (typeof value === 'boolean') return new Boolean(value)
  if (value === '1970-01-01T00:00:00.000Z') return new Date(0)
  if (typeof value === 'string') return new String(value)
  const inner = disguiseInside(r, value)
  const roll = r.below(3)
  if (roll === 0) return { toJSON: () => inner }
  if (roll === 1 && isObject(inner)) return withMembers(Object.create(null), inner)
  if (isObject(inner)) return withMembers(new (class Instance {})(), inner)
  return { toJSON: () => inner }
}

// `target` with the members of `object`, `__proto__` an own one.
function withMembers(target, object) {
  for (const key of Object.keys(object)) put(target, key, object[key])
  return target
}

function disguiseInside(r, value) {
  if (Array.isArray(value)) return value.map((item) => disguise(r, item, true))
  if (!isObject(value)) return value
  const out = {}
  for (const key of Object.keys(value)) put(out, key, disguise(r, value[key]))
  if (r.chance(0.2)) put(out, r.pick(['gone', 'f', 'sym']), r.pick([undefined, () => 1, Symbol('s')]))
  return out
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze(value[key])
  }
  return value
}

/** What JSON.parse could have made: no -0, no undefined, no holes, plain Objects and Arrays. */
function problemInData(value, path = '$') {
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? null : `${path}: ${value}`
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null
  if (typeof value !== 'object') return `${path}: ${typeof value}`
  const proto = Array.isArray(value) ? Array.prototype : Object.prototype
  if (Object.getPrototypeOf(value) !== proto) return `${path}: not a plain ${Array.isArray(value) ? 'Array' : 'Object'}`
  const keys = Object.keys(value)
  if (Array.isArray(value) && keys.length !== value.length) return `${path}: holes`
  for (const key of keys) {
    const problem = problemInData(value[key], `${path}.${key}`)
    if (problem) return problem
  }
  return null
}

const FAVORS = [undefined, 'mine', 'theirs']

describe('mergeJson and diffJson in JS agree with the Rust merge', () => {
  it('on thousands of random documents edited on both sides, with favor, arrayKeys and disguised values', () => {
    const r = random(20240607)
    const failures = []
    let withConflicts = 0
    let disguised = 0
    const kinds = {}
    const cases = 4000
    for (let n = 0; n < cases && failures.length < 3; n++) {
      const arrayKey = r.pick(ARRAY_KEYS)
      let sides = triple(r, arrayKey)
      const texts = sides.map((side) => JSON.stringify(side))
      if (r.chance(0.3)) {
        sides = sides.map((side) => disguise(r, side))
        disguised++
        // A disguise that changed the JSON is the test's own bug.
        if (sides.some((side, i) => JSON.stringify(side) !== texts[i])) throw new Error(`case ${n}: a disguise changed the JSON`)
      } else {
        sides.forEach(deepFreeze) // and nothing given is changed
      }
      for (const favor of FAVORS) {
        const expected = JSON.stringify(rustMerge(...sides, arrayKey, favor))
        const actual = jsMerge(...sides, arrayKey, favor)
        const problem = problemInData(actual.merged) ?? actual.conflicts.map((c) => problemInData([c.base ?? null, c.mine ?? null, c.theirs ?? null])).find(Boolean)
        if (JSON.stringify(actual) !== expected || problem) failures.push({ n, arrayKey, favor, texts, expected, actual: JSON.stringify(actual), problem })
        if (favor === undefined) {
          for (const c of actual.conflicts) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1
          if (actual.conflicts.length > 0) withConflicts++
        }
      }
      for (const [before, after] of [sides.slice(0, 2), sides.slice(1, 3)]) {
        const expected = JSON.stringify(rustDiff(before, after, arrayKey))
        const actual = JSON.stringify(diffJson(before, after, { arrayKey }))
        if (actual !== expected) failures.push({ n, arrayKey, diff: true, texts, expected, actual })
      }
      if (sides.some((side, i) => JSON.stringify(side) !== texts[i])) failures.push({ n, changedAnInput: true, texts })
    }
    expect(failures).toEqual([])
    // The generator reaches what it is for: every kind of conflict, clean merges too.
    expect(withConflicts).toBeGreaterThan(cases / 3)
    expect(withConflicts).toBeLessThan((cases * 2) / 3)
    for (const kind of ['both-modified', 'delete-modify', 'both-added', 'order']) expect(kinds[kind]).toBeGreaterThan(cases / 50)
    expect(disguised).toBeGreaterThan(cases / 5)
  })

  it('names number ids as Rust writes them (integers as digits, other numbers as zmij lays them out)', () => {
    const r = random(7)
    const words = new Uint32Array(2)
    const view = new Float64Array(words.buffer)
    const numbers = [...NUMBERS, 2 ** 64 - 2048, 2 ** 53, -(2 ** 63) + 1024, -(2 ** 64), 1e15, 1e16 + 2, 123456789.123, 1e-5, 1.5e-5, 1e-6, 0.5, -0.5, 1e300, 9007199254740993.5]
    for (let e = -30; e <= 30; e++) numbers.push(10 ** e, 1.25 * 10 ** e, -(7 * 10 ** e))
    while (numbers.length < 4000) {
      words[0] = r.next() * 2 ** 32
      words[1] = r.next() * 2 ** 32
      const roll = r.below(3)
      const number = roll === 0 ? view[0] : roll === 1 ? Math.round((r.next() - 0.5) * 2 ** r.below(70)) : Number((r.next() * 10 ** r.below(25)).toPrecision(1 + r.below(17)))
      if (Number.isFinite(number)) numbers.push(number)
    }
    const ids = [...new Set(numbers)] // no id twice, or the array is one atomic value
    const before = ids.map((id, i) => ({ id, i }))
    const after = ids.map((id, i) => ({ id, i: i + 1 }))
    const paths = diffJson(before, after).map((c) => c.path)
    expect(paths).toHaveLength(ids.length)
    expect(paths).toEqual(rustDiff(before, after).map((c) => c.path))
  })

  it("breaks ties between the sides by Rust's order of strings (UTF-8, lone surrogates as Rust marks them)", () => {
    const r = random(11)
    const units = ['a', 'z', '"', '\\', '\n', '\u007f', 'é', '\ud7ff', LONE_HIGH, LONE_LOW, '😀', '\ue000', '\ue7ff', '\ufdcf', '\ufdd0', '\ufdd1', '\uffff', '\ud800', '\udfff']
    const word = () => Array.from({ length: 1 + r.below(4) }, () => r.pick(units)).join('')
    const failures = []
    for (let n = 0; n < 2000; n++) {
      const [a, b] = [word(), word()]
      // Both added: the value whose canonical JSON sorts first; the key order of a both-added object.
      const added = [{}, { x: a, [a]: 1, [b]: 2 }, { x: b, [b]: 3, [a]: 4 }]
      // New elements after the same one: placed by the order of the id lists.
      const ids = [{ l: [{ id: 'p' }] }, { l: [{ id: 'p' }, { id: a }] }, { l: [{ id: 'p' }, { id: b }] }]
      for (const sides of [added, ids]) {
        const expected = JSON.stringify(rustMerge(...sides))
        const actual = JSON.stringify(jsMerge(...sides))
        if (actual !== expected) failures.push({ a, b, expected, actual })
      }
    }
    expect(failures.slice(0, 3)).toEqual([])
  })
})

describe('mergeJson and diffJson in JS', () => {
  const nest = (levels, leaf) => {
    let value = leaf
    for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value }
    return value
  }

  it('leave values nested past what they walk to Rust, with its results and its limit', () => {
    for (const levels of [JS_DEPTH - 1, JS_DEPTH + 50, 999]) {
      const sides = [nest(levels, 1), nest(levels, 2), nest(levels, 3)]
      expect(JSON.stringify(jsMerge(...sides))).toBe(JSON.stringify(rustMerge(...sides)))
      expect(JSON.stringify(diffJson(sides[0], sides[1]))).toBe(JSON.stringify(rustDiff(sides[0], sides[1])))
    }
    const tooDeep = nest(1001, 1)
    expect(() => mergeJson({}, tooDeep, {})).toThrow(/^mine is nested more than 1000 levels deep/)
  })

  it('merge with whatever stack the caller left them (the stack running out: the text path)', () => {
    const sides = [nest(JS_DEPTH, 1), nest(JS_DEPTH, 2), nest(JS_DEPTH, 3)]
    const expected = JSON.stringify(rustMerge(...sides))
    const outcomes = new Set()
    // Called ever higher up a stack that ran out, until a call completes.
    const nearTheEnd = () => {
      try {
        return nearTheEnd()
      } catch {
        try {
          const result = JSON.stringify(jsMerge(...sides))
          outcomes.add(result === expected ? 'same' : result)
          return result
        } catch (error) {
          outcomes.add(error.constructor.name)
          throw error
        }
      }
    }
    expect(nearTheEnd()).toBe(expected)
    expect([...outcomes].filter((outcome) => outcome !== 'same' && outcome !== 'RangeError' && outcome !== 'TypeError')).toEqual([])
  })

  it("call toJSON with the member's key, as JSON.stringify does", () => {
    const key = { toJSON: (k) => `at ${k}` }
    const mine = { a: key, list: [key, key], nested: { __proto__: null, b: key } }
    expect(mergeJson({}, mine, {}).merged).toEqual(JSON.parse(JSON.stringify(mine)))
    expect(mergeJson({}, mine, {}).merged).toEqual({ a: 'at a', list: ['at 0', 'at 1'], nested: { b: 'at b' } })
  })

  it('share what the merge kept as it was, and leave the inputs as they were', () => {
    const base = { roles: [{ id: 'a', n: 1 }, { id: 'b', n: 1 }], meta: { v: 1 } }
    const mine = { roles: [{ id: 'a', n: 2 }, { id: 'b', n: 1 }], meta: { v: 1 } }
    const theirs = { roles: [{ id: 'a', n: 1 }, { id: 'b', n: 3 }], meta: { v: 1 } }
    const texts = [base, mine, theirs].map((v) => JSON.stringify(v))
    const { merged } = mergeJson(base, mine, theirs)
    expect(merged).toEqual({ roles: [{ id: 'a', n: 2 }, { id: 'b', n: 3 }], meta: { v: 1 } })
    expect(merged.roles[0]).toBe(mine.roles[0])
    expect(merged.roles[1]).toBe(theirs.roles[1])
    expect([base, mine, theirs].map((v) => JSON.stringify(v))).toEqual(texts)
  })
})
