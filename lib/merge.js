'use strict'
// Three-way merge and diff of JSON documents, for a document edited here that
// meets a change another process made on disk. Two implementations of one set
// of rules: mergeJson/diffJson walk the values in JS (lib/merge/), JsonDocument's
// mergeTexts/diffTexts hand JSON texts to Rust (crates/file-lock-core/src/json_merge/,
// through src/binding/json_merge.rs), off the JS thread.
//
// Invariants:
// - Both give the same result for the same values: merged value (member and
//   element order included), conflicts, changes, paths
//   (__test__/merge-values.test.mjs compares them on thousands of random cases).
// - What is merged is exactly what JSON.stringify makes of the values, which is
//   what JsonDocument writes to disk: members that are undefined, functions or
//   symbols are left out (null in arrays), toJSON() is honoured. A value with
//   no JSON form at all (undefined, a function or symbol as the whole value, a
//   BigInt anywhere, a cycle) throws a TypeError, code ERR_INVALID_ARG_VALUE.
// - mergeJson/diffJson never copy what needs no copy: parts of the values that
//   are JSON data already are merged in place, and the result shares with the
//   inputs what the merge took as it was. Values they cannot take in JS (no
//   JSON form, nested past lib/merge/json-form.js's JS_DEPTH) take the text
//   path: JSON.stringify, Rust, JSON.parse, with its results and errors.
// - Texts crossing to Rust are one string each way: for large documents
//   JSON.stringify + JSON.parse is much faster than napi's object conversion.
// - Every text JSON.stringify writes is accepted, lone UTF-16 surrogates
//   included ('🔑'.slice(0, 1), in values and keys): they come back exactly as
//   they went in. Nesting is limited to MAX_JSON_DEPTH (1000) levels, the
//   package's one limit: deeper is a TypeError, code ERR_INVALID_ARG_VALUE,
//   saying so (never a stack overflow, here or in Rust).
// - The result does not depend on which side calls: mergeJson(b, m, t) and
//   mergeJson(b, t, m) give the same `merged` and mirrored conflicts (with
//   `favor`, favoring 'mine' with the sides swapped is favoring 'theirs').

const { setMember } = require('./json-values.js')
const { fromNative } = require('./errors.js')
const { invalidType, invalidValue, mustBe, checkObject } = require('./args.js')
const { mergeJsonText, diffJsonText, mergeJsonTextAsync, diffJsonTextAsync, MAX_JSON_DEPTH } = require('../native.js')
const { jsonForm } = require('./merge/json-form.js')
const { mergeValues, diffValues } = require('./merge/walk.js')

function mergeJson(base, mine, theirs, options) {
  const arrayKey = arrayKeyOf(options)
  const favor = options?.favor
  if (favor !== undefined && favor !== 'mine' && favor !== 'theirs') throw invalidValue('options.favor', mustBe("'mine' or 'theirs'", favor))
  const forms = jsonForms(base, mine, theirs)
  const result = forms && inJs(() => mergeValues(forms[0], forms[1], forms[2], arrayKey, favor))
  if (result) return result
  const text = callNative(() => mergeJsonText(toJson('base', base), toJson('mine', mine), toJson('theirs', theirs), arrayKey, favor))
  const { merged, conflicts } = JSON.parse(text)
  return { merged, conflicts, clean: conflicts.length === 0 }
}

function diffJson(before, after, options) {
  const arrayKey = arrayKeyOf(options)
  const forms = jsonForms(before, after)
  const changes = forms && inJs(() => diffValues(forms[0], forms[1], arrayKey))
  if (changes) return changes
  return JSON.parse(callNative(() => diffJsonText(toJson('before', before), toJson('after', after), arrayKey)))
}

// The JSON data of each value, or null if one must take the text path (which
// then looks at them from the first again, as it always did).
function jsonForms(...values) {
  const forms = []
  for (const value of values) {
    const form = jsonForm(value)
    if (form === undefined) return null
    forms.push(form)
  }
  return forms
}

// A walk in JS, or undefined if the stack ran out under it (a caller deep in
// its own recursion): the text path then does the work, as it always did
// (JSON.stringify needs less stack a level, Rust brings its own for deep values).
function inJs(walk) {
  try {
    return walk()
  } catch (error) {
    if (error instanceof RangeError) return undefined
    throw error
  }
}

// For JsonDocument: the merge and diff of values already in JSON text, done
// off the JS thread (a big document's merge takes seconds). The result is
// parsed here, the one pass on this thread. Options are the document's,
// checked when it was opened.
// Merges and diffs running on the thread pool: on a 2-core machine each takes
// a core, so work that can wait (a spare copy, json-values.js) waits for none.
let inFlight = 0
let idleWaiters = []

function running(promise) {
  inFlight++
  return promise.then(
    (text) => {
      settled()
      return text
    },
    (error) => {
      settled()
      throw nativeFailure(error)
    },
  )
}

function settled() {
  if (--inFlight > 0) return
  const waiters = idleWaiters
  idleWaiters = []
  for (const resolve of waiters) resolve()
}

/** Resolves when no merge or diff of a document runs on the thread pool. */
function nativeIdle() {
  return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))
}

// `theirsValue`, when given, is the value `theirs` is the text of: the merged
// value is then built from it, sharing every part the merge left as it was
// (crates/file-lock-core/src/json_merge/recipe.rs), not parsed whole. `breathe`, when given, is
// awaited before the parse of a result (the native promise settles outside the
// document's turn-taking: json-values.js).
async function mergeTexts(base, mine, theirs, { arrayKey, favor, breathe, theirsValue }) {
  const sharing = theirsValue !== undefined
  const text = await running(mergeJsonTextAsync(base, mine, theirs, arrayKey, favor, sharing))
  if (breathe !== undefined) await breathe()
  const result = JSON.parse(text)
  if (sharing) result.merged = fromRecipe(result.merged, theirsValue)
  return result
}

// The merged value from its recipe against `theirs` (see recipe.rs): `1` is
// theirs' counterpart as it is, `{v}` a value, `{o}` an object's members,
// `{a}` an array's items (`[start, end]`: theirs' elements as they are; a node
// with `j`: told against theirs' element j).
function fromRecipe(node, theirs) {
  if (node === 1) return theirs
  if (Object.hasOwn(node, 'v')) return node.v
  if (Object.hasOwn(node, 'o')) {
    const out = {}
    for (const [key, child] of node.o) {
      setMember(out, key, fromRecipe(child, theirs !== null && typeof theirs === 'object' && Object.hasOwn(theirs, key) ? theirs[key] : undefined))
    }
    return out
  }
  const out = []
  for (const item of node.a) {
    if (Array.isArray(item)) {
      for (let i = item[0]; i < item[1]; i++) out.push(theirs[i])
    } else {
      out.push(fromRecipe(item, Object.hasOwn(item, 'j') ? theirs[item.j] : undefined))
    }
  }
  return out
}

async function diffTexts(before, after, arrayKey, breathe) {
  const text = await running(diffJsonTextAsync(before, after, arrayKey))
  if (breathe !== undefined) await breathe()
  return JSON.parse(text)
}

function arrayKeyOf(options) {
  const { arrayKey = 'id' } = checkObject('options', options)
  if (typeof arrayKey !== 'string' || arrayKey === '') throw invalidType('options.arrayKey', 'a non-empty string', arrayKey)
  // Strings reach Rust as UTF-8: a lone surrogate in the key would not survive.
  if (LONE_SURROGATE.test(arrayKey)) throw invalidValue('options.arrayKey', 'must not contain a lone UTF-16 surrogate')
  return arrayKey
}

const LONE_SURROGATE = /\p{Cs}/u

function toJson(name, value) {
  let text
  try {
    text = JSON.stringify(value)
  } catch (cause) {
    // BigInt, a cycle, a throwing toJSON(), or nesting deeper than the stack
    // (thousands of levels, past MAX_JSON_DEPTH anyway).
    if (cause instanceof RangeError) throw invalidValue(name, tooDeep, cause)
    throw invalidValue(name, `is not representable as JSON: ${cause.message}`, cause)
  }
  if (text === undefined) throw invalidValue(name, `is not representable as JSON: got ${typeof value}`)
  return text
}

const tooDeep = `is nested more than ${MAX_JSON_DEPTH} levels deep (arrays and objects inside each other; the limit is ${MAX_JSON_DEPTH})`

// Rust refuses text nested more than MAX_JSON_DEPTH levels (EINVAL, "mine is
// nested …"); EAGAIN: no thread could be started to merge a deep value.
function callNative(call) {
  try {
    return call()
  } catch (error) {
    throw nativeFailure(error)
  }
}

// The engine's EINVAL is the caller's mistake: Node's own code for it (its
// message names the argument: "mine is nested …").
function nativeFailure(error) {
  if (error?.code === 'EINVAL') return invalidValue(null, error.message, error)
  return fromNative(error)
}

module.exports = { mergeJson, diffJson, mergeTexts, diffTexts, nativeIdle, toJson, MAX_JSON_DEPTH }
