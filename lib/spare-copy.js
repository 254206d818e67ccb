'use strict'
// A spare copy of a big document's value, made ahead in slices, for the next
// edit()/update() to change in place (edit() is synchronous: it could not
// copy a big value without a long stall).
//
// Invariants:
// - A spare copy is private: nothing else holds it, and it is given up (null)
//   as soon as the value it copies is no longer current.
// - What fn leaves in a copy is taken as the document's value only if it is
//   plain JSON data all the way down, as documentValue would make it; a
//   caller's own objects are copied, never frozen in place.

const { breathe, jsonTextOf, parseInPieces, maxJsonDepth, isPlainContainer, freezeWithin, markClean } = require('./json-values.js')

let merge = null
function mergeModule() {
  merge ??= require('./merge.js')
  return merge
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

module.exports = { makeSpare, adoptSpare, adoptSpareSliced }
