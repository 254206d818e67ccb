'use strict'
// FileLockManager: the JS edge over the native core (native.js). It checks
// arguments (options.js, args.js), turns native outcomes into coded Errors,
// wires AbortSignals, re-emits native events on an EventEmitter, and adds what
// only JS can do: `withLock` re-entry detection through AsyncLocalStorage, and
// Locks (lock.js) released by the garbage collector when dropped unreleased.
//
// Invariant: the native side owns all lock state; nothing here can hold a lock
// the native side does not know about.

const { EventEmitter } = require('node:events')
const { AsyncLocalStorage } = require('node:async_hooks')
const path = require('node:path')
const { NativeLockManager, watchFile } = require('../native.js')
const { JsonDocument } = require('./document/document.js')
const { Watcher } = require('./watcher.js')
const { FileLockError, fromNative } = require('./errors.js')
const { emitSafely } = require('./emit.js')
const { checkFunction, checkPath } = require('./args.js')
const { managerOptions, requestOptions, documentOptions, watchOptions } = require('./options.js')
const { Lock, droppedLocks, lostBeforeHandOver, abortError, closedError, failureError } = require('./lock.js')
const { closeAtExit, forget } = require('./exit-hooks.js')

// canonical path → Lock, for the enclosing `withLock` calls of this async chain.
const heldInChain = new AsyncLocalStorage()

// Managers with waiting requests: kept reachable until every request settles
// (the native callbacks only hold them weakly).
const busyManagers = new Set()

function onNativeEvent(event) {
  this.deref()?._onNativeEvent(event)
}

// The native side passes a grant as plain values (an object of named
// properties built through N-API cost ~20 µs on a thread that just woke):
// (requestId, id, fencingToken, flags, filePath, strategyReason), or
// (requestId, failure). Flags: src/binding/convert.rs GRANT_*.
const GRANT_EXCLUSIVE = 1
const GRANT_HELD = 2
const GRANT_LOCK_FILE = 4

function onNativeCompletion(requestId, idOrFailure, fencingToken, flags, filePath, strategyReason) {
  const manager = this.deref()
  if (manager === undefined) return
  if (typeof idOrFailure !== 'number') return manager._onComplete(requestId, null, idOrFailure)
  const grant = {
    id: idOrFailure,
    filePath,
    exclusive: (flags & GRANT_EXCLUSIVE) !== 0,
    strategy: (flags & GRANT_LOCK_FILE) !== 0 ? 'lockfile' : 'os',
    strategyReason,
    fencingToken,
    held: (flags & GRANT_HELD) !== 0,
  }
  manager._onComplete(requestId, grant, null)
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
    this.#options = managerOptions(options)
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
    this.#selfRef = closeAtExit(this.#native)
  }

  /** The options in force, defaults filled in. */
  get options() {
    return { ...this.#options }
  }

  get closed() {
    return this.#closed
  }

  // Not `async`: a waited-for grant resolves the promise #wait made, which the
  // caller awaits itself (an async function would wrap it in one more promise,
  // two more microtask turns between the grant and the caller). Every error
  // still arrives as a rejection.
  acquireLock(filePath, options) {
    try {
      checkPath(filePath)
      const request = requestOptions(options, this.#options)
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
      // A waited-for grant is handed over where it arrives (_onComplete).
      if (grant === null) return this.#wait(filePath, request)
      const lock = this.#handOver(grant)
      this.#track(lock, grant.id)
      return Promise.resolve(lock)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async withLock(filePath, fn, options) {
    checkFunction('fn', fn)
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
    const checked = documentOptions(options)
    if (this.#closed) throw closedError()
    const document = new JsonDocument(this, this.#native, path.resolve(filePath), checked)
    await document._open()
    return document
  }

  /**
   * Calls `listener` with each settled change of `filePath` ({ kind, external, … });
   * see watcher.js. Returns a Watcher (EventEmitter: 'change', 'error'; close()).
   */
  watch(filePath, listener, options) {
    checkPath(filePath)
    checkFunction('listener', listener)
    const o = watchOptions(options)
    if (this.#closed) throw closedError()
    const watcher = new Watcher(
      (onChange) => {
        try {
          return watchFile(
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
    forget(this.#selfRef)
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

  // `released`: the native side already let go of it (at our request).
  _releaseLock(lock, id, released = false) {
    // Let go first: a process waiting for the file gets it while we tidy up.
    const wasHeld = released || this.#native.release(id)
    droppedLocks.unregister(lock)
    this.#live.delete(id)
    if (wasHeld) {
      this.#emitIfHeard('released', { filePath: lock.filePath, exclusive: lock.exclusive, fencingToken: lock.fencingToken, reason: 'released' })
    }
    return wasHeld
  }

  // Turns a grant (from either path of acquireLock) into the Lock its caller
  // gets, but only if the native side still holds it: a short lease can run
  // out between the grant and here (a blocked event loop, a slow `acquired`
  // listener). A grant the native side no longer holds has already been
  // removed from its held set, so refusing it leaks nothing; its
  // 'lease-expired' event still follows. Once adopted, a Lock hears of its
  // loss itself (`_lose`), also in the microtask gap before its caller resumes.
  #handOver(grant) {
    if (this.#closed) {
      // close() ran between the grant and here (it released every lock already).
      this.#native.release(grant.id)
      throw closedError()
    }
    if (!grant.held) throw lostBeforeHandOver(grant)
    const heard = this.listenerCount('acquired') > 0
    const lock = this.#adopt(grant)
    // Checked again when `acquired` listeners ran in between (they may block):
    // the Lock is resolved right after, with nothing else running in between.
    if (heard && !this.#native.isHeld(grant.id)) {
      this.#live.delete(grant.id)
      const error = lostBeforeHandOver(grant)
      lock._lose(error)
      throw error
    }
    return lock
  }

  // The Lock of a grant (its caller must #track it, once it has it).
  #adopt(grant) {
    const lock = new Lock(this, grant)
    this.#live.set(grant.id, new WeakRef(lock))
    this.#emitIfHeard('acquired', { filePath: grant.filePath, exclusive: grant.exclusive, fencingToken: grant.fencingToken, strategy: grant.strategy })
    return lock
  }

  // A Lock dropped unreleased is released when it is garbage-collected. Set
  // up after the Lock is handed over (a released one needs nothing).
  #track(lock, id) {
    if (!lock.released) droppedLocks.register(lock, { native: this.#native, id }, lock)
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
        this.#unhook(this.#settled(requestId))
        reject(fromNative(error, { filePath }))
      }
    })
  }

  // The native side decided a waiting request (on whichever thread decided
  // it): a grant, or a failure. What the caller does not need (unhooking the
  // wait, the Lock's garbage-collection net) is done once it has resumed: a
  // microtask queued after the resolve runs after the caller's continuation.
  _onComplete(requestId, grant, failure) {
    const waiter = this.#settled(requestId)
    if (waiter === undefined) {
      // Nobody waits for it any more (cannot happen unless the manager was torn down): let go.
      if (grant) this.#native.release(grant.id)
      return
    }
    if (grant) {
      // The grant may have reached us after the lock was already taken back.
      let lock
      try {
        lock = this.#handOver(grant)
      } catch (error) {
        waiter.reject(error)
        return this.#unhook(waiter)
      }
      waiter.resolve(lock)
      queueMicrotask(() => {
        this.#unhook(waiter)
        this.#track(lock, grant.id)
      })
      return
    }
    if (failure.code === 'ABORT_ERR') waiter.reject(abortError(failure.filePath, waiter.signal))
    else waiter.reject(failureError(failure))
    this.#unhook(waiter)
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

  // The waiter of `requestId`, no longer waiting (then #unhook it).
  #settled(requestId) {
    const waiter = this.#waiting.get(requestId)
    if (waiter === undefined) return undefined
    this.#waiting.delete(requestId)
    return waiter
  }

  #unhook(waiter) {
    waiter.signal?.removeEventListener('abort', waiter.onAbort)
    if (this.#waiting.size === 0) this.#holdProcessOpen(false)
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

module.exports = { FileLockManager }
