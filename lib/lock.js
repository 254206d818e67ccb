'use strict'
// Lock: what acquireLock() hands its caller, one per grant of the native side.
//
// Invariants:
// - A Lock is released exactly once (release(); a native call that ends it at
//   our request: a document commit, right after its rename; or the native side
//   letting go: lease expiry, lock file deleted, close), and its `signal`
//   aborts when it is lost while held.
// - A Lock dropped unreleased is released by the garbage collector (a
//   FinalizationRegistry), and reported: a lock never outlives its holder's
//   interest in it.

const { FileLockError } = require('./errors.js')

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

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
  // (lease expiry, close) and we were not told yet. `releasedNatively`: the
  // native side let go of it at our request (a document commit ends its lock
  // itself, right after the rename): only the bookkeeping of release().
  _finish(releasedNatively = false) {
    if (this.#released) return this.#lostReason === null
    this.#released = true
    return this.#manager._releaseLock(this, this.#id, releasedNatively)
  }

  // For a native call that ends this lock itself (commitDocument).
  get _id() {
    return this.#id
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

// A grant whose lease ran out before the Lock could be handed to its caller.
function lostBeforeHandOver(grant) {
  return new FileLockError('ECOMPROMISED', `the lock on ${grant.filePath} was granted but its lease expired before it could be handed over (the event loop was blocked, or leaseMs is too short)`, { filePath: grant.filePath, reason: 'lease-expired' })
}

// How a request for a lock ends when it gets none.
function abortError(filePath, signal) {
  const error = new Error(`the wait for the lock on ${filePath} was aborted`, { cause: signal?.reason })
  error.name = 'AbortError'
  error.code = 'ABORT_ERR'
  error.filePath = filePath
  return error
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

module.exports = { Lock, droppedLocks, lostBeforeHandOver, abortError, closedError, failureError }
