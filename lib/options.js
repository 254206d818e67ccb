'use strict'
// The options of the public API, checked and with their defaults filled in.
//
// Invariant: every option is checked here, at the call, before any lock, file
// or native call (lib/args.js errors); what leaves this file is complete and
// valid, so nothing further in may meet a bad or missing option.

const { constants: { MAX_STRING_LENGTH } } = require('node:buffer')
const { invalidType, invalidValue, outOfRange, checkBoolean, checkObject, checkMs, checkInteger, checkChoice } = require('./args.js')
const { documentValue } = require('./json-values.js')

const DEFAULTS = Object.freeze({
  timeoutMs: 5000,
  retries: 3,
  leaseMs: 30000,
  staleMs: 30000,
  strategy: 'auto',
  exposePids: false,
  networkTimeoutFactor: 3,
  auditLogMaxBytes: 10 * 1024 * 1024,
})

// A lease must be able to cover the hand-over of the lock: 0 (or less) would
// expire every lock before its holder gets it. Huge finite values are fine:
// the native side treats a deadline past what its clock can represent as no
// lease at all (src/binding/convert.rs, `duration_from_ms`; `checked_add`).
function checkLeaseMs(name, value) {
  if (typeof value !== 'number') throw invalidType(name, 'a number of milliseconds', value)
  if (Number.isNaN(value) || value < 1) throw outOfRange(name, 'a number of milliseconds of at least 1 (or Infinity for no lease)', value)
  return value
}

const checkRetries = (name, value) => checkInteger(name, value, 1, 1000, 'the number of attempts')

/** new FileLockManager(options). */
function managerOptions(options) {
  const o = checkObject('options', options)
  const strategy = checkChoice('options.strategy', o.strategy ?? DEFAULTS.strategy, ['auto', 'os', 'lockfile'])
  if (o.auditLog !== undefined && (typeof o.auditLog !== 'string' || o.auditLog.length === 0)) {
    throw invalidType('options.auditLog', 'a non-empty path string', o.auditLog)
  }
  if (o.auditLogMaxBytes !== undefined) {
    if (typeof o.auditLogMaxBytes !== 'number') throw invalidType('options.auditLogMaxBytes', 'a number', o.auditLogMaxBytes)
    if (!Number.isFinite(o.auditLogMaxBytes) || o.auditLogMaxBytes < 4096) {
      throw outOfRange('options.auditLogMaxBytes', 'a finite number of bytes, at least 4096', o.auditLogMaxBytes)
    }
  }
  if (o.logger !== undefined && typeof o.logger !== 'function') throw invalidType('options.logger', 'a function', o.logger)
  const networkTimeoutFactor = o.networkTimeoutFactor ?? DEFAULTS.networkTimeoutFactor
  if (typeof networkTimeoutFactor !== 'number') throw invalidType('options.networkTimeoutFactor', 'a number', networkTimeoutFactor)
  if (!Number.isFinite(networkTimeoutFactor) || networkTimeoutFactor < 1 || networkTimeoutFactor > 100) {
    throw outOfRange('options.networkTimeoutFactor', 'a number from 1 to 100', networkTimeoutFactor)
  }
  checkBoolean('options.exposePids', o.exposePids)
  return {
    timeoutMs: checkMs('options.timeoutMs', o.timeoutMs ?? DEFAULTS.timeoutMs),
    retries: checkRetries('options.retries', o.retries ?? DEFAULTS.retries),
    leaseMs: checkLeaseMs('options.leaseMs', o.leaseMs ?? DEFAULTS.leaseMs),
    staleMs: checkMs('options.staleMs', o.staleMs ?? DEFAULTS.staleMs),
    strategy,
    exposePids: o.exposePids ?? DEFAULTS.exposePids,
    networkTimeoutFactor,
    auditLog: o.auditLog,
    auditLogMaxBytes: o.auditLogMaxBytes ?? DEFAULTS.auditLogMaxBytes,
    logger: o.logger,
  }
}

/** acquireLock / withLock options, over the manager's (`defaults`). */
function requestOptions(options, defaults) {
  if (options === undefined) return { exclusive: true, timeoutMs: defaults.timeoutMs, retries: defaults.retries, signal: undefined }
  const o = checkObject('options', options)
  checkBoolean('options.exclusive', o.exclusive)
  const signal = o.signal ?? undefined
  if (signal !== undefined && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function')) {
    throw invalidType('options.signal', 'an AbortSignal', signal)
  }
  return {
    exclusive: o.exclusive ?? true,
    timeoutMs: o.timeoutMs === undefined ? defaults.timeoutMs : checkMs('options.timeoutMs', o.timeoutMs),
    retries: o.retries === undefined ? defaults.retries : checkRetries('options.retries', o.retries),
    signal,
  }
}

// An integer from min to max; anything else (a string too) is out of range.
function checkCount(name, value, min, max, what) {
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer from ${min} to ${max}${what}`, value)
  return value
}

/** openDocument(filePath, options): what the JsonDocument is made with. */
function documentOptions(options) {
  const o = checkObject('options', options)
  const durability = checkChoice('options.durability', o.durability ?? 'fsync', ['fsync', 'none'])
  const backups = checkCount('options.backups', o.backups ?? 5, 1, 1000, '')
  checkBoolean('options.recoverFromBackup', o.recoverFromBackup)
  const arrayKey = o.arrayKey ?? 'id'
  if (typeof arrayKey !== 'string' || arrayKey.length === 0) throw invalidType('options.arrayKey', 'a non-empty string', arrayKey)
  // Merges run in Rust, where a lone surrogate in the key could not be matched.
  if (/\p{Cs}/u.test(arrayKey)) throw invalidValue('options.arrayKey', 'must not contain a lone UTF-16 surrogate')
  const onConflict = checkChoice('options.onConflict', o.onConflict ?? 'ask', ['ask', 'mine', 'theirs', 'merged'])
  // Infinity: edits are saved by save()/close() only, as without the option.
  // A finite delay must fit a Node timer (2^31 - 1 ms, ~24.8 days): a longer one would fire at once.
  const saveDelayMs = o.saveDelayMs === undefined ? undefined : checkMs('options.saveDelayMs', o.saveDelayMs)
  if (saveDelayMs > 2 ** 31 - 1 && saveDelayMs !== Infinity) {
    throw outOfRange('options.saveDelayMs', "at most 2147483647 ms (2^31 - 1, a Node timer's limit), or Infinity to save only on save()/close()", saveDelayMs)
  }
  checkBoolean('options.watch', o.watch)
  // 256 MiB by default; at most V8's longest string, or the text could not be held (README: maxBytes).
  const maxBytes = checkCount('options.maxBytes', o.maxBytes ?? 256 * 1024 * 1024, 1, MAX_STRING_LENGTH, ' (bytes)')
  // Checked and copied as set() checks a value (TypeError ERR_INVALID_ARG_VALUE):
  // a plain object or an array that JSON can hold; nothing is written otherwise.
  const defaultValue = o.defaultValue === undefined ? undefined : documentValue(o.defaultValue, 'options.defaultValue')
  return {
    defaultValue,
    durability,
    backups,
    recoverFromBackup: o.recoverFromBackup === true,
    arrayKey,
    onConflict,
    saveDelayMs,
    watch: o.watch !== false,
    timeoutMs: o.timeoutMs === undefined ? undefined : checkMs('options.timeoutMs', o.timeoutMs),
    maxBytes,
  }
}

/** watch(filePath, listener, options). */
function watchOptions(options) {
  const o = checkObject('options', options)
  for (const name of ['debounceMs', 'maxDelayMs', 'pollIntervalMs']) {
    if (o[name] !== undefined) {
      const ms = checkMs(`options.${name}`, o[name])
      if (!Number.isInteger(ms) || ms > 3_600_000) throw outOfRange(`options.${name}`, 'a whole number of ms up to an hour', ms)
    }
  }
  for (const name of ['poll', 'persistent']) checkBoolean(`options.${name}`, o[name])
  return o
}

module.exports = { DEFAULTS, managerOptions, requestOptions, documentOptions, watchOptions }
