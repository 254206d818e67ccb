'use strict'
// Three-way merge and diff of JSON documents, for a document edited here that
// meets a change another process made on disk. The work is done in Rust
// (src/conflict.rs, through src/binding/conflict.rs).
//
// Invariants:
// - Values cross to Rust as JSON text, one string each way: for large documents
//   JSON.stringify + JSON.parse is much faster than napi's object conversion.
// - What is merged is exactly what JSON.stringify makes of the values, which is
//   what JsonDocument writes to disk: members that are undefined, functions or
//   symbols are left out (null in arrays), toJSON() is honoured. A value with
//   no JSON form at all (undefined, a function or symbol as the whole value, a
//   BigInt anywhere, a cycle) throws a TypeError, code ERR_INVALID_ARG_VALUE.
// - The result does not depend on which side calls: mergeJson(b, m, t) and
//   mergeJson(b, t, m) give the same `merged` and mirrored conflicts (with
//   `favor`, favoring 'mine' with the sides swapped is favoring 'theirs').

const { mergeJsonText, diffJsonText } = require('./native.js')

function mergeJson(base, mine, theirs, options) {
  const arrayKey = arrayKeyOf(options)
  const favor = options?.favor
  if (favor !== undefined && favor !== 'mine' && favor !== 'theirs') {
    throw invalidValue(`options.favor must be 'mine' or 'theirs', got ${typeof favor === 'string' ? `'${favor}'` : typeof favor}`)
  }
  const text = callNative(() => mergeJsonText(toJson('base', base), toJson('mine', mine), toJson('theirs', theirs), arrayKey, favor))
  const { merged, conflicts } = JSON.parse(text)
  return { merged, conflicts, clean: conflicts.length === 0 }
}

function diffJson(before, after, options) {
  const arrayKey = arrayKeyOf(options)
  return JSON.parse(callNative(() => diffJsonText(toJson('before', before), toJson('after', after), arrayKey)))
}

function arrayKeyOf(options) {
  if (options === undefined) return 'id'
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options)
  const { arrayKey = 'id' } = options
  if (typeof arrayKey !== 'string') throw invalidType('options.arrayKey', 'a non-empty string', arrayKey)
  if (arrayKey === '') {
    const error = new TypeError('options.arrayKey must be a non-empty string, got an empty string')
    error.code = 'ERR_INVALID_ARG_TYPE'
    throw error
  }
  return arrayKey
}

function toJson(name, value) {
  let text
  try {
    text = JSON.stringify(value)
  } catch (cause) {
    // BigInt, a cycle, or a throwing toJSON().
    throw invalidValue(`${name} is not representable as JSON: ${cause.message}`, cause)
  }
  if (text === undefined) throw invalidValue(`${name} is not representable as JSON: got ${typeof value}`)
  return text
}

// Text JSON.stringify produced can still be refused by Rust: nesting deeper
// than serde_json's limit (128 levels) or a string with a lone UTF-16 surrogate.
function callNative(call) {
  try {
    return call()
  } catch (error) {
    if (typeof error?.message === 'string' && error.message.startsWith('EINVAL: ')) {
      const reason = error.message.slice('EINVAL: '.length)
      throw invalidValue(`${reason} (nesting deeper than 128 levels and strings with a lone UTF-16 surrogate are not supported)`, error)
    }
    throw error
  }
}

function invalidType(name, expected, value) {
  const error = new TypeError(`${name} must be ${expected}, got ${value === null ? 'null' : typeof value}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

function invalidValue(message, cause) {
  const error = new TypeError(message, cause === undefined ? undefined : { cause })
  error.code = 'ERR_INVALID_ARG_VALUE'
  return error
}

module.exports = { mergeJson, diffJson }
