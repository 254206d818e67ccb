'use strict'
// The public JS surface of file-lock-manager, over the native core (native.js).
//
// This file is the edge: it validates arguments, fills in defaults, turns
// native outcomes into coded Errors, wires AbortSignals, re-emits native events
// on an EventEmitter, and adds what only JS can do: `withLock` re-entry
// detection through AsyncLocalStorage, `Symbol.asyncDispose`, and a
// FinalizationRegistry that releases (and reports) a Lock dropped unreleased.
// Invariant: the native side owns all lock state; nothing here can hold a lock
// the native side does not know about.

const { EventEmitter } = require('node:events')
const { AsyncLocalStorage } = require('node:async_hooks')
const path = require('node:path')
const { NativeLockManager } = require('../native.js')
const { JsonDocument, documentValue } = require('./document/document.js')
const { Watcher } = require('./watcher.js')
const { FileLockError, fromNative } = require('./errors.js')
const { emitSafely } = require('./emit.js')

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

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// canonical path → Lock, for the enclosing `withLock` calls of this async chain.
const heldInChain = new AsyncLocalStorage()

// Managers with waiting requests: kept reachable until every request settles
// (the native callbacks only hold them weakly).
const busyManagers = new Set()

function onNativeEvent(event) {
  this.deref()?._onNativeEvent(event)
}

function onNativeCompletion(outcome) {
  this.deref()?._onComplete(outcome)
}

// Managers still open, closed synchronously when the process exits normally.
const openManagers = new Set()
let exitHookInstalled = false

function closeAllOnExit() {
  for (const ref of openManagers) ref.deref()?.close()
  openManagers.clear()
}

// Signals that would kill the process without an 'exit' event. Only when the
// app does not handle one itself: clean up (lock files, sidecars), then die of
// the signal as if we had never listened (signal-exit's approach).
const FATAL_SIGNALS = process.platform === 'win32' ? ['SIGINT'] : ['SIGINT', 'SIGTERM', 'SIGHUP']

function onFatalSignal(signal) {
  if (process.listenerCount(signal) > 1) return // the app handles it; our exit hook runs later
  closeAllOnExit()
  for (const name of FATAL_SIGNALS) process.removeListener(name, onFatalSignal)
  process.kill(process.pid, signal)
}

function installExitHooks() {
  process.once('exit', closeAllOnExit)
  for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal)
}


function abortError(filePath, signal) {
  const error = new Error(`the wait for the lock on ${filePath} was aborted`, { cause: signal?.reason })
  error.name = 'AbortError'
  error.code = 'ABORT_ERR'
  error.filePath = filePath
  return error
}

function invalidType(name, expected, value) {
  const error = new TypeError(`${name} must be ${expected}, got ${value === null ? 'null' : typeof value}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

function outOfRange(name, expected, value) {
  const error = new RangeError(`${name} must be ${expected}, got ${value}`)
  error.code = 'ERR_OUT_OF_RANGE'
  return error
}

function checkMs(name, value) {
  if (typeof value !== 'number') throw invalidType(name, 'a number of milliseconds', value)
  if (Number.isNaN(value) || value < 0) {
    throw outOfRange(name, 'a non-negative number of milliseconds (or Infinity)', value)
  }
  return value
}

// A lease must be able to cover the hand-over of the lock: 0 (or less) would
// expire every lock before its holder gets it. Huge finite values are fine:
// the native side treats a deadline past what its clock can represent as no
// lease at all (src/binding/convert.rs, `duration_from_ms`; `checked_add`).
function checkLeaseMs(name, value) {
  if (typeof value !== 'number') throw invalidType(name, 'a number of milliseconds', value)
  if (Number.isNaN(value) || value < 1) {
    throw outOfRange(name, 'a number of milliseconds of at least 1 (or Infinity for no lease)', value)
  }
  return value
}

function checkRetries(name, value) {
  if (typeof value !== 'number') throw invalidType(name, 'a number', value)
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw outOfRange(name, 'an integer from 1 to 1000 (the number of attempts)', value)
  }
  return value
}

function checkPath(value) {
  if (typeof value !== 'string') throw invalidType('filePath', 'a string', value)
  return value
}

function checkObject(name, value) {
  if (value !== undefined && (value === null || typeof value !== 'object')) {
    throw invalidType(name, 'an object', value)
  }
  return value ?? {}
}

function normalizeManagerOptions(options) {
  const o = checkObject('options', options)
  const strategy = o.strategy ?? DEFAULTS.strategy
  if (strategy !== 'auto' && strategy !== 'os' && strategy !== 'lockfile') {
    throw outOfRange('options.strategy', "'auto', 'os' or 'lockfile'", strategy)
  }
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
  if (o.exposePids !== undefined && typeof o.exposePids !== 'boolean') {
    throw invalidType('options.exposePids', 'a boolean', o.exposePids)
  }
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

// Releases locks whose Lock object was garbage-collected without release().
const droppedLocks = new FinalizationRegistry(({ native, id }) => {
  native.release(id, 'garbage-collected')
})

class Lock {
  #manager
  #id
  #released = false
  #lostReason = null
  #controller = null

  constructor(manager, grant) {
    this.#manager = manager
    this.#id = grant.id
    /** Canonical path of the locked data file. */
    this.filePath = grant.filePath
    this.exclusive = grant.exclusive
    this.strategy = grant.strategy
    /** Why that strategy (configured, local disk, network share, OS locks refused). */
    this.strategyReason = grant.strategyReason
    this.fencingToken = grant.fencingToken
  }

  /** Aborts when the lock is lost while held (lease expired, manager closed). */
  get signal() {
    if (this.#controller === null) {
      this.#controller = new AbortController()
      if (this.#lostReason !== null) this.#controller.abort(this.#lostReason)
    }
    return this.#controller.signal
  }

  /** True once the lock is no longer held, for whatever reason. */
  get released() {
    return this.#released
  }

  async release() {
    this._finish()
  }

  // Releases; false when the native side had already let go behind our back
  // (lease expiry, close) and we were not told yet.
  _finish() {
    if (this.#released) return this.#lostReason === null
    this.#released = true
    return this.#manager._releaseLock(this, this.#id)
  }

  [asyncDispose]() {
    return this.release()
  }

  // The native side let go of this lock (lease expiry, close): tell its holder.
  _lose(error) {
    this.#released = true
    this.#lostReason = error
    this.#controller?.abort(error)
  }

  get _lost() {
    return this.#lostReason
  }
}

class FileLockManager extends EventEmitter {
  #native
  #options
  #closed = false
  #nextRequest = 0
  #live = new Map() // lock id → WeakRef<Lock>, to reach a Lock its holder still has
  #selfRef
  #waiting = new Map() // request id → { resolve, reject, signal }
  #keepAlive = null // a timer ref'd only while requests wait: the native callbacks are weak
  #watchers = new Set() // open watchers: held here so a dropped handle keeps watching, closed with the manager

  constructor(options) {
    super()
    this.#options = normalizeManagerOptions(options)
    this.#native = newNativeManager(
      {
        timeoutMs: this.#options.timeoutMs,
        retries: this.#options.retries,
        leaseMs: this.#options.leaseMs,
        exposePids: this.#options.exposePids,
        networkTimeoutFactor: this.#options.networkTimeoutFactor,
        strategy: this.#options.strategy,
        staleMs: this.#options.staleMs,
        auditLog: this.#options.auditLog,
        auditLogMaxBytes: this.#options.auditLogMaxBytes,
      },
      // Weak: the native side must not keep a dropped manager alive (it is
      // kept alive while requests wait, through `busyManagers`).
      onNativeEvent.bind(new WeakRef(this)),
      onNativeCompletion.bind(new WeakRef(this)),
      this.#options.logger === undefined ? undefined : auditToLogger(this.#options.logger),
    )
    // Building `waiting` events reads the holder record: only while someone
    // listens. (Also refreshed per request, should removeAllListeners() drop these hooks.)
    this.on('newListener', (name) => {
      if (name === 'waiting') this.#native.setWaitingInterest(true)
    })
    this.on('removeListener', (name) => {
      if (name === 'waiting' && this.listenerCount('waiting') === 0) this.#native.setWaitingInterest(false)
    })
    this.#selfRef = new WeakRef(this.#native)
    openManagers.add(this.#selfRef)
    if (!exitHookInstalled) {
      exitHookInstalled = true
      installExitHooks()
    }
  }

  /** The options in force, defaults filled in. */
  get options() {
    return { ...this.#options }
  }

  get closed() {
    return this.#closed
  }

  async acquireLock(filePath, options) {
    checkPath(filePath)
    const request = this.#requestOptions(options)
    if (this.#closed) throw closedError()
    if (request.signal?.aborted) throw abortError(filePath, request.signal)
    const chain = heldInChain.getStore()
    if (chain !== undefined) this.#refuseReentry(filePath, chain)
    let grant
    try {
      grant = this.#native.tryAcquire(filePath, request.exclusive)
    } catch (error) {
      throw fromNative(error, { filePath })
    }
    if (grant === null) grant = await this.#wait(filePath, request)
    return this.#handOver(grant)
  }

  async withLock(filePath, fn, options) {
    if (typeof fn !== 'function') throw invalidType('fn', 'a function', fn)
    const lock = await this.acquireLock(filePath, options)
    const chain = new Map(heldInChain.getStore())
    chain.set(lock.filePath, lock)
    let result
    try {
      result = await heldInChain.run(chain, fn, lock)
    } catch (error) {
      lock._finish()
      throw error
    }
    // The lease may have run out while fn blocked the event loop: the native side
    // then released the lock before its event could reach us.
    if (!lock._finish()) {
      throw lock._lost ?? new FileLockError('ECOMPROMISED', `the lock on ${lock.filePath} was lost (its lease expired or its lock file was deleted) while withLock() ran`, { filePath: lock.filePath })
    }
    return result
  }

  /**
   * Opens `filePath` as a JSON document shared safely with other processes
   * (see document.js). Missing file: created from `defaultValue`, else ENOENT.
   */
  async openDocument(filePath, options) {
    checkPath(filePath)
    const o = checkObject('options', options)
    const durability = o.durability ?? 'fsync'
    if (durability !== 'fsync' && durability !== 'none') throw outOfRange('options.durability', "'fsync' or 'none'", durability)
    const backups = o.backups ?? 5
    if (!Number.isInteger(backups) || backups < 1 || backups > 1000) throw outOfRange('options.backups', 'an integer from 1 to 1000', backups)
    if (o.recoverFromBackup !== undefined && typeof o.recoverFromBackup !== 'boolean') {
      throw invalidType('options.recoverFromBackup', 'a boolean', o.recoverFromBackup)
    }
    const arrayKey = o.arrayKey ?? 'id'
    if (typeof arrayKey !== 'string' || arrayKey.length === 0) throw invalidType('options.arrayKey', 'a non-empty string', arrayKey)
    // Merges run in Rust, where a lone surrogate in the key could not be matched.
    if (/\p{Cs}/u.test(arrayKey)) throw Object.assign(new TypeError('options.arrayKey must not contain a lone UTF-16 surrogate'), { code: 'ERR_INVALID_ARG_VALUE' })
    const onConflict = o.onConflict ?? 'ask'
    if (!['ask', 'mine', 'theirs', 'merged'].includes(onConflict)) throw outOfRange('options.onConflict', "'ask', 'mine', 'theirs' or 'merged'", onConflict)
    // Infinity: edits are saved by save()/close() only, as without the option.
    // A finite delay must fit a Node timer (2^31 - 1 ms, ~24.8 days): a longer one would fire at once.
    const saveDelayMs = o.saveDelayMs === undefined ? undefined : checkMs('options.saveDelayMs', o.saveDelayMs)
    if (saveDelayMs > 2 ** 31 - 1 && saveDelayMs !== Infinity) {
      throw outOfRange('options.saveDelayMs', 'at most 2147483647 ms (2^31 - 1, a Node timer\'s limit), or Infinity to save only on save()/close()', saveDelayMs)
    }
    if (o.watch !== undefined && typeof o.watch !== 'boolean') throw invalidType('options.watch', 'a boolean', o.watch)
    const maxBytes = o.maxBytes ?? 256 * 1024 * 1024 // 256 MiB; at most V8's longest string, or the text could not be held (README: maxBytes)
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > require('node:buffer').constants.MAX_STRING_LENGTH) throw outOfRange('options.maxBytes', `an integer from 1 to ${require('node:buffer').constants.MAX_STRING_LENGTH} (bytes)`, maxBytes)
    // Checked and copied as set() checks a value (TypeError ERR_INVALID_ARG_VALUE):
    // a plain object or an array that JSON can hold; nothing is written otherwise.
    const defaultValue = o.defaultValue === undefined ? undefined : documentValue(o.defaultValue, 'options.defaultValue')
    if (this.#closed) throw closedError()
    const document = new JsonDocument(this, this.#native, path.resolve(filePath), {
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
    })
    await document._open()
    return document
  }

  /**
   * Calls `listener` with each settled change of `filePath` ({ kind, external, … });
   * see watcher.js. Returns a Watcher (EventEmitter: 'change', 'error'; close()).
   */
  watch(filePath, listener, options) {
    checkPath(filePath)
    if (typeof listener !== 'function') throw invalidType('listener', 'a function', listener)
    const o = checkObject('options', options)
    for (const name of ['debounceMs', 'maxDelayMs', 'pollIntervalMs']) {
      if (o[name] !== undefined) {
        const ms = checkMs(`options.${name}`, o[name])
        if (!Number.isInteger(ms) || ms > 3_600_000) throw outOfRange(`options.${name}`, 'a whole number of ms up to an hour', ms)
      }
    }
    for (const name of ['poll', 'persistent']) {
      if (o[name] !== undefined && typeof o[name] !== 'boolean') throw invalidType(`options.${name}`, 'a boolean', o[name])
    }
    if (this.#closed) throw closedError()
    const watcher = new Watcher(
      (onChange) => {
        try {
          return this.#native.watch(
            filePath,
            { debounceMs: o.debounceMs, maxDelayMs: o.maxDelayMs, pollIntervalMs: o.pollIntervalMs, forcePoll: o.poll },
            onChange,
          )
        } catch (error) {
          throw fromNative(error, { filePath })
        }
      },
      {
        persistent: o.persistent !== false,
        onClose: (w) => this.#watchers.delete(w),
        onUnheardError: (error) => this.#emitIfHeard('error', error),
      },
    )
    watcher.on('change', listener)
    this.#watchers.add(watcher)
    return watcher
  }

  /** @internal: documents' external-change / merged / conflict events, re-emitted here. */
  _documentEvent(name, payload) {
    this.#emitIfHeard(name, payload)
  }

  async inspect(filePath) {
    checkPath(filePath)
    if (this.#closed) throw closedError()
    const outcome = await this.#native.inspect(filePath)
    if (outcome.failure) throw failureError(outcome.failure)
    return outcome.holder ?? null
  }

  async close() {
    if (this.#closed) return
    this.#closed = true
    openManagers.delete(this.#selfRef)
    for (const watcher of this.#watchers) watcher.close()
    this.#native.close()
    if (this.#waiting.size === 0) this.#holdProcessOpen(false)
    for (const ref of this.#live.values()) {
      const lock = ref.deref()
      if (lock === undefined || lock.released) continue
      lock._lose(new FileLockError('ECLOSED', `the lock manager was closed while ${lock.filePath} was locked`, { filePath: lock.filePath }))
      droppedLocks.unregister(lock)
      this.#emitIfHeard('released', { filePath: lock.filePath, exclusive: lock.exclusive, fencingToken: lock.fencingToken, reason: 'manager-closed' })
    }
    this.#live.clear()
  }

  /** How many locks this manager holds right now. */
  get heldCount() {
    return this.#native.heldCount
  }

  _releaseLock(lock, id) {
    droppedLocks.unregister(lock)
    this.#live.delete(id)
    const wasHeld = this.#native.release(id)
    if (wasHeld) {
      this.#emitIfHeard('released', { filePath: lock.filePath, exclusive: lock.exclusive, fencingToken: lock.fencingToken, reason: 'released' })
    }
    return wasHeld
  }

  // Turns a grant (from either path of acquireLock) into the Lock its caller
  // gets, but only if the native side still holds it: a short lease can run
  // out between the grant and here (a blocked event loop, a slow `acquired`
  // listener, the microtask gap after a waiting acquisition). A grant the
  // native side no longer holds has already been removed from its held set,
  // so refusing it leaks nothing; its 'lease-expired' event still follows.
  #handOver(grant) {
    if (this.#closed) {
      // close() ran between the grant and here (it released every lock already).
      this.#native.release(grant.id)
      throw closedError()
    }
    if (!this.#native.isHeld(grant.id)) throw lostBeforeHandOver(grant)
    const heard = this.listenerCount('acquired') > 0
    const lock = this.#adopt(grant)
    // Checked again when `acquired` listeners ran in between (they may block):
    // the Lock is resolved right after, with nothing else running in between.
    if (heard && !this.#native.isHeld(grant.id)) {
      this.#live.delete(grant.id)
      droppedLocks.unregister(lock)
      const error = lostBeforeHandOver(grant)
      lock._lose(error)
      throw error
    }
    return lock
  }

  #adopt(grant) {
    const lock = new Lock(this, grant)
    droppedLocks.register(lock, { native: this.#native, id: grant.id }, lock)
    this.#live.set(grant.id, new WeakRef(lock))
    this.#emitIfHeard('acquired', { filePath: grant.filePath, exclusive: grant.exclusive, fencingToken: grant.fencingToken, strategy: grant.strategy })
    return lock
  }

  #wait(filePath, request) {
    return new Promise((resolve, reject) => {
      const requestId = (this.#nextRequest = (this.#nextRequest + 1) >>> 0)
      const { signal } = request
      const onAbort = signal === undefined ? undefined : () => this.#native.cancel(requestId)
      this.#waiting.set(requestId, { resolve, reject, signal, onAbort })
      if (this.#waiting.size === 1) this.#holdProcessOpen(true)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#native.setWaitingInterest(this.listenerCount('waiting') > 0)
      try {
        this.#native.acquire(filePath, request.exclusive, request.timeoutMs, request.retries, requestId)
      } catch (error) {
        this.#settled(requestId)
        reject(fromNative(error, { filePath }))
      }
    })
  }

  // The native side decided a waiting request (on whichever thread decided it).
  _onComplete(outcome) {
    const waiter = this.#settled(outcome.requestId)
    const { grant, failure } = outcome
    if (waiter === undefined) {
      // Nobody waits for it any more (cannot happen unless the manager was torn down): let go.
      if (grant) this.#native.release(grant.id)
      return
    }
    if (grant) {
      // The grant may have reached us after the lock was already taken back.
      if (this.#closed) {
        this.#native.release(grant.id)
        return waiter.reject(closedError())
      }
      if (!this.#native.isHeld(grant.id)) return waiter.reject(lostBeforeHandOver(grant))
      // Checked again by #handOver, after the microtask gap before acquireLock resumes.
      return waiter.resolve(grant)
    }
    if (failure.code === 'ABORT_ERR') return waiter.reject(abortError(failure.filePath, waiter.signal))
    waiter.reject(failureError(failure))
    if (failure.code === 'ELOCKTIMEOUT') {
      this.#emitIfHeard('timeout', {
        filePath: failure.filePath,
        waitedMs: failure.waitedMs,
        attempts: failure.attempts,
        holder: failure.holder ?? null,
        network: failure.network,
        message: failure.message,
      })
    }
  }

  #settled(requestId) {
    const waiter = this.#waiting.get(requestId)
    if (waiter === undefined) return undefined
    this.#waiting.delete(requestId)
    waiter.signal?.removeEventListener('abort', waiter.onAbort)
    if (this.#waiting.size === 0) this.#holdProcessOpen(false)
    return waiter
  }

  // Toggling ref() on one long timer is cheaper than creating and clearing one per wait.
  #holdProcessOpen(wanted) {
    if (wanted) busyManagers.add(this)
    else busyManagers.delete(this)
    if (this.#keepAlive === null) this.#keepAlive = setInterval(noop, 1 << 30)
    if (wanted) this.#keepAlive.ref()
    else if (this.#closed) {
      clearInterval(this.#keepAlive)
      this.#keepAlive = null
    } else this.#keepAlive.unref()
  }

  #requestOptions(options) {
    if (options === undefined) return { exclusive: true, timeoutMs: this.#options.timeoutMs, retries: this.#options.retries, signal: undefined }
    const o = checkObject('options', options)
    if (o.exclusive !== undefined && typeof o.exclusive !== 'boolean') throw invalidType('options.exclusive', 'a boolean', o.exclusive)
    const signal = o.signal ?? undefined
    if (signal !== undefined && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function')) {
      throw invalidType('options.signal', 'an AbortSignal', signal)
    }
    return {
      exclusive: o.exclusive ?? true,
      timeoutMs: o.timeoutMs === undefined ? this.#options.timeoutMs : checkMs('options.timeoutMs', o.timeoutMs),
      retries: o.retries === undefined ? this.#options.retries : checkRetries('options.retries', o.retries),
      signal,
    }
  }

  // A lock requested inside `withLock` on the same file would wait for itself.
  #refuseReentry(filePath, chain) {
    let canonical
    try {
      canonical = this.#native.resolvePath(filePath)
    } catch {
      return // the acquisition itself will report the bad path
    }
    if (chain.get(canonical)?.released === false) {
      throw new FileLockError(
        'EDEADLOCK',
        `${canonical} is already locked by an enclosing withLock() of this call chain; waiting would deadlock`,
        { filePath: canonical },
      )
    }
  }

  _onNativeEvent(event) {
    const payload = { ...event }
    delete payload.event
    for (const key of Object.keys(payload)) if (payload[key] === undefined || payload[key] === null) delete payload[key]
    switch (event.event) {
      case 'lease-expired':
      case 'compromised': {
        const lock = this.#live.get(event.lockId)?.deref()
        this.#live.delete(event.lockId)
        if (lock !== undefined) {
          droppedLocks.unregister(lock)
          lock._lose(new FileLockError('ECOMPROMISED', event.message, { filePath: event.filePath, reason: event.reason, heldMs: event.heldMs }))
        }
        this.#emitIfHeard(event.event, payload)
        this.#emitIfHeard('released', payload)
        break
      }
      case 'released':
        this.#live.delete(event.lockId)
        process.emitWarning(`file-lock-manager: ${event.message} without release(); it was released by the garbage collector`, { code: 'FILE_LOCK_DROPPED' })
        this.#emitIfHeard('released', payload)
        break
      default:
        this.#emitIfHeard(event.event, payload)
    }
  }

  // A listener that throws must not break our bookkeeping (lib/emit.js).
  #emitIfHeard(name, payload) {
    emitSafely(this, name, payload)
  }
}

function noop() {}

function newNativeManager(...args) {
  try {
    return new NativeLockManager(...args)
  } catch (error) {
    throw fromNative(error, { filePath: args[0].auditLog })
  }
}

// The logger gets each audit entry as an object; one that throws is reported
// on its own tick and never disturbs the lock being audited.
function auditToLogger(logger) {
  return (jsonLine) => {
    try {
      logger(JSON.parse(jsonLine))
    } catch (error) {
      process.nextTick(() => {
        throw error
      })
    }
  }
}

// A grant whose lease ran out before the Lock could be handed to its caller.
function lostBeforeHandOver(grant) {
  return new FileLockError('ECOMPROMISED', `the lock on ${grant.filePath} was granted but its lease expired before it could be handed over (the event loop was blocked, or leaseMs is too short)`, { filePath: grant.filePath, reason: 'lease-expired' })
}

function closedError() {
  return new FileLockError('ECLOSED', 'the lock manager is closed')
}


function failureError(failure) {
  return new FileLockError(failure.code, failure.message, {
    filePath: failure.filePath,
    waitedMs: failure.waitedMs,
    attempts: failure.attempts,
    holder: failure.holder,
    network: failure.network,
  })
}

const { mergeJson, diffJson, MAX_JSON_DEPTH } = require('./merge.js')

module.exports = { FileLockManager, Lock, FileLockError, JsonDocument, Watcher, DEFAULTS, mergeJson, diffJson, MAX_JSON_DEPTH }
