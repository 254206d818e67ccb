'use strict'
// Where a place of a value read from the file is in a newer value (after an
// update, a set, a merge): how exact number texts and BigInts find their way
// back (exact-numbers.js).
//
// Invariant: a place is found again only when it can be told for sure: in
// objects by key; in id arrays (every element an object with a unique string
// or number under `arrayKey`, as the merge has them) by id; in other arrays by
// the elements' JSON texts (a diff: unique elements anchor, equal ones before
// and after a changed stretch, one element changed in place). An element
// whose place is uncertain is not found (null), never confused with another.

// Where a place of the value read is in a new value (see the invariants).
class Places {
  #arrayKey
  #arrays = new Map() // array read → { array: new array, position(i) }

  constructor(arrayKey) {
    this.#arrayKey = arrayKey
  }

  // { steps, value } in `now` for `path` in `read`, or null when it is gone
  // or cannot be told.
  find(read, now, path) {
    const steps = []
    for (const step of path) {
      // toJSON() writes something else than the members seen here.
      if (now === null || typeof now !== 'object' || typeof now.toJSON === 'function') return null
      if (typeof step === 'number') {
        if (!Array.isArray(now)) return null
        const at = this.#position(read, now, step)
        if (at === -1) return null
        steps.push(at)
        read = read[step]
        now = now[at]
      } else {
        if (Array.isArray(now) || !Object.hasOwn(now, step)) return null
        steps.push(step)
        read = read[step]
        now = now[step]
      }
    }
    return { steps, value: now }
  }

  #position(read, now, index) {
    let known = this.#arrays.get(read)
    if (known === undefined || known.array !== now) {
      known = { array: now, position: this.#positions(read, now) }
      this.#arrays.set(read, known)
    }
    return known.position(index)
  }

  #positions(read, now) {
    const ids = idsOf(read, this.#arrayKey)
    if (ids !== null) {
      const at = new Map()
      now.forEach((item, i) => {
        if (item === null || typeof item !== 'object' || !Object.hasOwn(item, this.#arrayKey)) return
        const id = item[this.#arrayKey]
        at.set(id, at.has(id) ? -1 : i) // an id twice: neither is the element
      })
      return (index) => at.get(ids[index]) ?? -1
    }
    return aligned(read, now)
  }
}

// Where each element of an array read is in the array now, for arrays
// without ids: elements are told by their JSON text. An element found once in
// each, in the same order relative to the other such elements, is itself
// (patience diff anchors). Between anchors, elements the same before or after
// a changed stretch are themselves, as is a lone element changed in place;
// where equal elements make the changed stretch's place uncertain (removing
// one of two equal ids), nothing in it is matched. -1: not found, or not sure.
function aligned(read, now) {
  const at = new Int32Array(read.length).fill(-1)
  const readKeys = read.map(keyOf)
  const nowKeys = now.map(keyOf)
  const seen = new Map() // key → { read: count, readAt, now: count, nowAt }
  readKeys.forEach((key, i) => {
    if (key === null) return
    const s = seen.get(key) ?? { read: 0, readAt: -1, now: 0, nowAt: -1 }
    s.read++
    s.readAt = i
    seen.set(key, s)
  })
  nowKeys.forEach((key, i) => {
    const s = key === null ? undefined : seen.get(key)
    if (s === undefined) return
    s.now++
    s.nowAt = i
  })
  const pairs = []
  for (const s of seen.values()) if (s.read === 1 && s.now === 1) pairs.push([s.readAt, s.nowAt])
  pairs.sort((x, y) => x[0] - y[0])
  let [r0, n0] = [0, 0]
  for (const [r, n] of increasing(pairs)) {
    between(readKeys, nowKeys, r0, r, n0, n, at)
    at[r] = n
    r0 = r + 1
    n0 = n + 1
  }
  between(readKeys, nowKeys, r0, read.length, n0, now.length, at)
  return (index) => at[index]
}

function keyOf(value) {
  try {
    return JSON.stringify(value) ?? null
  } catch {
    return null // a BigInt inside: equal to nothing read
  }
}

// The longest run of pairs whose second members increase too (patience sorting).
function increasing(pairs) {
  const tails = [] // index into pairs of the last pair of the best run of each length
  const previous = new Int32Array(pairs.length).fill(-1)
  pairs.forEach(([, n], i) => {
    let lo = 0
    let hi = tails.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (pairs[tails[mid]][1] < n) lo = mid + 1
      else hi = mid
    }
    if (lo > 0) previous[i] = tails[lo - 1]
    tails[lo] = i
  })
  const run = []
  for (let i = tails.length === 0 ? -1 : tails[tails.length - 1]; i !== -1; i = previous[i]) run.push(pairs[i])
  return run.reverse()
}

// Matches read[r0, r1) to now[n0, n1), into `at`, where every explanation
// by one changed stretch agrees: the one with it as late as possible (equal
// elements matched from the front first) and as early as possible.
function between(readKeys, nowKeys, r0, r1, n0, n1, at) {
  if (r0 >= r1 || n0 >= n1) return
  const late = stretch(readKeys, nowKeys, r0, r1, n0, n1, true)
  const early = stretch(readKeys, nowKeys, r0, r1, n0, n1, false)
  for (let i = r0; i < r1; i++) {
    const a = late(i)
    if (a === early(i)) at[i] = a
  }
}

function stretch(readKeys, nowKeys, r0, r1, n0, n1, frontFirst) {
  const same = (i, j) => readKeys[i] !== null && readKeys[i] === nowKeys[j]
  const prefix = (limit) => {
    let k = 0
    while (k < limit && same(r0 + k, n0 + k)) k++
    return k
  }
  const suffix = (limit) => {
    let k = 0
    while (k < limit && same(r1 - 1 - k, n1 - 1 - k)) k++
    return k
  }
  const most = Math.min(r1 - r0, n1 - n0)
  let before
  let after
  if (frontFirst) {
    before = prefix(most)
    after = suffix(most - before)
  } else {
    after = suffix(most)
    before = prefix(most - after)
  }
  const inPlace = r1 - r0 - before - after === 1 && n1 - n0 - before - after === 1
  return (i) => {
    if (i < r0 + before) return n0 + (i - r0)
    if (i >= r1 - after) return n1 - (r1 - i)
    return inPlace ? n0 + before : -1
  }
}

// The ids of an id array (as the merge sees one), or null. Values read are
// frozen, so the answer is kept.
const idsKnown = new WeakMap()
function idsOf(array, arrayKey) {
  const known = idsKnown.get(array)
  if (known !== undefined && known.arrayKey === arrayKey) return known.ids
  let ids = []
  const seen = new Set()
  for (const item of array) {
    const id = item !== null && typeof item === 'object' && !Array.isArray(item) && Object.hasOwn(item, arrayKey) ? item[arrayKey] : undefined
    if ((typeof id !== 'string' && typeof id !== 'number') || seen.has(id)) {
      ids = null
      break
    }
    seen.add(id)
    ids.push(id)
  }
  if (Object.isFrozen(array)) idsKnown.set(array, { arrayKey, ids })
  return ids
}

module.exports = { Places }
