'use strict'
// What JSON.stringify makes of a value, as JSON data (what JSON.parse of its
// text gives), made without the text where the value already is such data:
// the merge in JS (walk.js) works on it.
//
// Invariants:
// - jsonForm(value) is structurally JSON.parse(JSON.stringify(value)): members
//   in the same order; toJSON() honoured (called with its key, as
//   JSON.stringify calls it); undefined, functions and symbols left out
//   (null in arrays); non-finite numbers null, -0 0; boxed primitives, Dates
//   and class instances as JSON.stringify has them.
// - Parts that already are JSON data (objects and arrays as JSON.parse makes
//   them, strings, finite numbers, booleans, null) are the value's own, not
//   copies; a container is copied only when something inside it is not such
//   data.
//   The value itself is never modified.
// - Whatever this walk does not take on — a value with no JSON form, a
//   BigInt, a cycle, a throwing toJSON or getter, nesting past JS_DEPTH — it
//   leaves to the caller (undefined): the text path (JSON.stringify and the
//   Rust merge) then gives the result or the error it always gave.

const { setMember } = require('../json-slices.js')

// Levels of nesting the JS merge takes. Deeper values (rare in documents)
// are merged as text by Rust, which walks up to MAX_JSON_DEPTH levels on a
// stack of its own and refuses deeper ones; the JS walk recurses, and the
// caller's stack may be small or mostly used.
const JS_DEPTH = 200

// Thrown inside the walk to give a value up to the text path.
const GIVE_UP = Symbol('not made in JS')

/** The JSON data `value` stands for, or undefined where the text path must make it (see the invariants). */
function jsonForm(value) {
  try {
    return formOf(value, '', 0)
  } catch {
    // GIVE_UP, or anything a getter, proxy or toJSON threw (the text path
    // throws it again, as the error mergeJson always gave for it).
    return undefined
  }
}

// The form of `value`, the member `key` (a string, or an array index) of a
// container `depth` levels deep; undefined for a member JSON.stringify leaves out.
function formOf(value, key, depth) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return Number.isFinite(value) ? value + 0 : null // -0 + 0 is 0
    case 'undefined':
    case 'symbol':
      return undefined
    case 'object':
      if (value === null) return null
      if (typeof value.toJSON !== 'function') {
        if (Array.isArray(value)) {
          if (Object.getPrototypeOf(value) === Array.prototype) return arrayForm(value, depth + 1)
        } else {
          // (Not one without prototype: the form is what JSON.parse makes, an Object.)
          if (Object.getPrototypeOf(value) === Object.prototype) return objectForm(value, depth + 1)
        }
      }
      return formByStringify(value, key, depth)
    default:
      // A function (a toJSON on it counts) or a BigInt (BigInt.prototype.toJSON may exist).
      return formByStringify(value, key, depth)
  }
}

// Whether a member's form is the member itself (an undefined member has
// none; -0's form 0 is not -0; NaN's form is null).
function unchanged(form, member) {
  return form !== undefined && Object.is(form, member)
}

function objectForm(object, depth) {
  if (depth > JS_DEPTH) throw GIVE_UP
  const keys = Object.keys(object)
  let copy = null
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const member = object[key]
    const form = typeof member === 'string' ? member : formOf(member, key, depth)
    if (copy === null) {
      if (unchanged(form, member)) continue
      // The members before this one were data already (read again: a getter
      // runs twice, where JSON.stringify would run it once).
      copy = {}
      for (let j = 0; j < i; j++) setMember(copy, keys[j], object[keys[j]])
    }
    if (form !== undefined) setMember(copy, key, form)
  }
  return copy ?? object
}

function arrayForm(array, depth) {
  if (depth > JS_DEPTH) throw GIVE_UP
  const length = array.length
  let copy = null
  for (let i = 0; i < length; i++) {
    const item = array[i]
    const form = typeof item === 'string' ? item : formOf(item, i, depth)
    if (copy === null) {
      if (unchanged(form, item)) continue
      copy = array.slice(0, i) // no hole before i: a hole starts the copy
    }
    copy.push(form === undefined ? null : form) // a hole, undefined, a function: null, as JSON.stringify writes
  }
  return copy ?? array
}

// JSON.stringify's form of a member that is not plain data, by
// JSON.stringify itself (toJSON is called with the member's key), then
// walked for its depth.
function formByStringify(value, key, depth) {
  const name = String(key)
  const text = JSON.stringify({ [name]: value })
  const holder = JSON.parse(text)
  if (!Object.hasOwn(holder, name)) return undefined
  return formOf(holder[name], name, depth)
}

module.exports = { jsonForm, JS_DEPTH }
