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
const { NativeLockManager } = require('./native.js')

const DEFAULTS = Object.freeze({
  timeoutMs: 5000,
  retries: 3,
  leaseMs: 30000,
  staleMs: 30000,
  strategy: 'auto',
  exposePids: false,
})

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// The canonical paths locked by the enclosing `withLock` calls of this async chain.
const heldInChain = new AsyncLocalStorage()

// Managers still open, closed synchronously when the process exits normally.
const openManagers = new Set()
let exitHookInstalled = false

function closeAllOnExit() {
  for (const ref of openManagers) ref.deref()?.close()
  openManagers.clear()
}

class FileLockError extends Error {
  constructor(code, message, details) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'FileLockError'
    this.code = code
    if (details) {
      for (const [key, value] of Object.entries(details)) {
        if (key !== 'cause' && value !== undefined && value !== null) this[key] = value
      }
    }
  }
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
  if (strategy === 'lockfile') {
    throw new FileLockError('ENOTSUP', "strategy 'lockfile' is not available in this version yet; use 'auto' or 'os'")
  }
  if (o.auditLog !== undefined) {
    throw new FileLockError('ENOTSUP', 'the audit log is not available in this version yet')
  }
  if (o.exposePids !== undefined && typeof o.exposePids !== 'boolean') {
    throw invalidType('options.exposePids', 'a boolean', o.exposePids)
  }
  return {
    timeoutMs: checkMs('options.timeoutMs', o.timeoutMs ?? DEFAULTS.timeoutMs),
    retries: checkRetries('options.retries', o.retries ?? DEFAULTS.retries),
    leaseMs: checkMs('options.leaseMs', o.leaseMs ?? DEFAULTS.leaseMs),
    staleMs: checkMs('options.staleMs', o.staleMs ?? DEFAULTS.staleMs),
    strategy,
    exposePids: o.exposePids ?? DEFAULTS.exposePids,
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
    if (this.#released) return
    this.#released = true
    this.#manager._releaseLock(this, this.#id)
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

  constructor(options) {
    super()
    this.#options = normalizeManagerOptions(options)
    this.#native = new NativeLockManager(
      {
        timeoutMs: this.#options.timeoutMs,
        retries: this.#options.retries,
        leaseMs: this.#options.leaseMs,
        exposePids: this.#options.exposePids,
      },
      (event) => this.#onNativeEvent(event),
    )
    this.#selfRef = new WeakRef(this.#native)
    openManagers.add(this.#selfRef)
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.once('exit', closeAllOnExit)
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
      throw fromNative(error, filePath)
    }
    if (grant === null) grant = await this.#wait(filePath, request)
    return this.#adopt(grant)
  }

  async withLock(filePath, fn, options) {
    if (typeof fn !== 'function') throw invalidType('fn', 'a function', fn)
    const lock = await this.acquireLock(filePath, options)
    const chain = new Set(heldInChain.getStore())
    chain.add(lock.filePath)
    try {
      const result = await heldInChain.run(chain, fn, lock)
      if (lock._lost !== null) throw lock._lost
      return result
    } finally {
      await lock.release()
    }
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
    this.#native.close()
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
    if (this.#native.release(id)) {
      this.#emitIfHeard('released', { filePath: lock.filePath, exclusive: lock.exclusive, fencingToken: lock.fencingToken, reason: 'released' })
    }
  }

  #adopt(grant) {
    const lock = new Lock(this, grant)
    droppedLocks.register(lock, { native: this.#native, id: grant.id }, lock)
    this.#live.set(grant.id, new WeakRef(lock))
    this.#emitIfHeard('acquired', { filePath: grant.filePath, exclusive: grant.exclusive, fencingToken: grant.fencingToken, strategy: grant.strategy })
    return lock
  }

  async #wait(filePath, request) {
    const requestId = (this.#nextRequest = (this.#nextRequest + 1) >>> 0)
    const { signal } = request
    const onAbort = () => this.#native.cancel(requestId)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const outcome = await this.#native.acquire(filePath, request.exclusive, request.timeoutMs, request.retries, requestId)
      if (outcome.grant) return outcome.grant
      const { failure } = outcome
      if (failure.code === 'ABORT_ERR') throw abortError(failure.filePath, signal)
      if (failure.code === 'ELOCKTIMEOUT') {
        this.#emitIfHeard('timeout', {
          filePath: failure.filePath,
          waitedMs: failure.waitedMs,
          attempts: failure.attempts,
          holder: failure.holder ?? null,
          message: failure.message,
        })
      }
      throw failureError(failure)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
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
    if (chain.has(canonical)) {
      throw new FileLockError(
        'EDEADLOCK',
        `${canonical} is already locked by an enclosing withLock() of this call chain; waiting would deadlock`,
        { filePath: canonical },
      )
    }
  }

  #onNativeEvent(event) {
    const payload = { ...event }
    delete payload.event
    for (const key of Object.keys(payload)) if (payload[key] === undefined || payload[key] === null) delete payload[key]
    switch (event.event) {
      case 'lease-expired': {
        const lock = this.#live.get(event.lockId)?.deref()
        this.#live.delete(event.lockId)
        if (lock !== undefined) {
          droppedLocks.unregister(lock)
          lock._lose(new FileLockError('ECOMPROMISED', event.message, { filePath: event.filePath, reason: 'lease-expired', heldMs: event.heldMs }))
        }
        this.#emitIfHeard('lease-expired', payload)
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

  #emitIfHeard(name, payload) {
    if (this.listenerCount(name) > 0) this.emit(name, payload)
  }
}

function closedError() {
  return new FileLockError('ECLOSED', 'the lock manager is closed')
}

// Sync native calls throw napi errors whose `code` is our code.
function fromNative(error, filePath) {
  if (typeof error?.code === 'string' && /^E[A-Z]+$/.test(error.code)) {
    return new FileLockError(error.code, error.message, { filePath })
  }
  return error
}

function failureError(failure) {
  return new FileLockError(failure.code, failure.message, {
    filePath: failure.filePath,
    waitedMs: failure.waitedMs,
    attempts: failure.attempts,
    holder: failure.holder,
  })
}

module.exports = { FileLockManager, Lock, FileLockError, DEFAULTS }
