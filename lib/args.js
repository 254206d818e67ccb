'use strict'
// The argument checks of every JS module, and the errors they throw.
//
// Invariant: a caller's mistake is thrown at once (before any lock, read or
// native call) as Node's own errors are: a TypeError with code
// ERR_INVALID_ARG_TYPE (the wrong kind of thing), a TypeError with code
// ERR_INVALID_ARG_VALUE (the right kind, but unusable: no JSON form, nested
// too deep), or a RangeError with code ERR_OUT_OF_RANGE (a number or a choice
// outside what is allowed); its message is always "<name> <problem>", the
// problem most often "must be <expected>; got <what was given>".

function argError(ErrorClass, code, name, problem, cause) {
  // A null name: the problem names the argument itself (the engine's messages do).
  const error = new ErrorClass(name === null ? problem : `${name} ${problem}`, cause === undefined ? undefined : { cause })
  error.code = code
  return error
}

/** What was given, as a message shows it: `null`, `number NaN`, `a string ("…")`, `an instance of Date`. */
function received(value) {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'an object'}`
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  return typeof value
}

/** The problem "must be <expected>; got <value>". */
function mustBe(expected, value) {
  return `must be ${expected}; got ${received(value)}`
}

function invalidType(name, expected, value) {
  return argError(TypeError, 'ERR_INVALID_ARG_TYPE', name, mustBe(expected, value))
}

function outOfRange(name, expected, value) {
  return argError(RangeError, 'ERR_OUT_OF_RANGE', name, mustBe(expected, value))
}

/** `problem`: what is wrong with the value (`mustBe(…)`, or a statement: "is nested more than …"). */
function invalidValue(name, problem, cause) {
  return argError(TypeError, 'ERR_INVALID_ARG_VALUE', name, problem, cause)
}

function checkFunction(name, value) {
  if (typeof value !== 'function') throw invalidType(name, 'a function', value)
  return value
}

/** An optional boolean: undefined, or true/false. */
function checkBoolean(name, value) {
  if (value !== undefined && typeof value !== 'boolean') throw invalidType(name, 'a boolean', value)
  return value
}

/** An optional options object: `{}` for undefined. */
function checkObject(name, value) {
  if (value !== undefined && (value === null || typeof value !== 'object')) throw invalidType(name, 'an object', value)
  return value ?? {}
}

function checkPath(value) {
  if (typeof value !== 'string') throw invalidType('filePath', 'a string', value)
  return value
}

function checkMs(name, value) {
  if (typeof value !== 'number') throw invalidType(name, 'a number of milliseconds', value)
  if (Number.isNaN(value) || value < 0) throw outOfRange(name, 'a non-negative number of milliseconds (or Infinity)', value)
  return value
}

/** An integer from `min` to `max` (`what`: what it counts, for the message). */
function checkInteger(name, value, min, max, what) {
  if (typeof value !== 'number') throw invalidType(name, 'a number', value)
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer from ${min} to ${max}${what ? ` (${what})` : ''}`, value)
  return value
}

/** One of `choices` (strings), shown quoted in the message. */
function checkChoice(name, value, choices) {
  if (choices.includes(value)) return value
  const shown = choices.map((choice) => `'${choice}'`)
  throw outOfRange(name, `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`, value)
}

module.exports = { invalidType, invalidValue, outOfRange, mustBe, received, checkFunction, checkBoolean, checkObject, checkPath, checkMs, checkInteger, checkChoice }
