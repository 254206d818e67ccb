'use strict'
// The document's writes: set/update/edits calls queued and written in batches.
//
// Invariants:
// - Every write happens under the file's exclusive lock, over the version of
//   the file checked inside that lock, and replaces it atomically (native
//   commitDocument: temp file, fsync, rename, directory fsync; the lock is
//   let go right after the rename, the promise resolves after the directory
//   fsync): concurrent updates from any number of processes never lose an
//   increment, and a crash leaves the old or the new version. Either the
//   calls are applied to the version held and one native call takes the lock
//   if it is free, checks the file is still that version, and writes
//   (commitDocumentAtOnce), or, when that cannot be, the lock is taken here
//   and the calls applied to the file read inside it (re-read unless one
//   stat says it is still the version held; the commit checks again).
// - Operations apply in call order; all calls made before a write starts go
//   into that one write (group commit), and each promise resolves only when
//   the write containing it is durable.
// - A write that cannot get the lock stays queued (never dropped): `lock-timeout`
//   fires with retry/cancel handles and the queue retries with backoff; at
//   close() it gives up after CLOSE_ATTEMPTS lock timeouts, rejecting what is
//   left with EUNSAVED (never dropped silently).
// - Every caller is settled, with a coded error when it failed.

const { FileLockError } = require('../errors.js')
const { Retry } = require('../retry.js')
const { coded, HELD } = require('./files.js')

const RETRY_FIRST_MS = 200
const RETRY_MAX_MS = 5000
// close() waits this many lock timeouts for pending writes before giving up (EUNSAVED).
const CLOSE_ATTEMPTS = 3
// A write applies its batch again at most this many times when the file changes under it.
const COMMIT_ATTEMPTS = 3

class WriteQueue {
  #doc
  ops = []
  #draining = null
  #lockRetry = new Retry({ firstMs: RETRY_FIRST_MS, maxMs: RETRY_MAX_MS })
  #closeAttempts = new Retry({ attempts: CLOSE_ATTEMPTS })
  unsavedAtClose = []
  #drainAbort = null // aborts the lock wait of the write in flight (lock-timeout's cancel())
  #announced = false // a lock-timeout was announced: its cancel() may abort the retries' lock waits
  #cancelled = null // the ECANCELED error while a cancel() is being applied
  #atOnce = true // the next write may try commitDocumentAtOnce first

  constructor(doc) {
    this.#doc = doc
  }

  enqueue(op) {
    this.#doc.assertOpen()
    return new Promise((resolve, reject) => {
      op.waiters = [{ resolve, reject }]
      this.ops.push(op)
      this.#schedule()
    })
  }

  /** set(value): joins a queued set not yet started (both callers wait for it), else queued. */
  set(value) {
    const last = this.ops[this.ops.length - 1]
    if (last?.kind === 'set' && !last.started) {
      last.value = value
      return new Promise((resolve, reject) => last.waiters.push({ resolve, reject }))
    }
    return this.enqueue({ kind: 'set', value })
  }

  /** Resolves when everything queued so far is written; rejects with the last call's error. */
  async flush() {
    const last = this.ops[this.ops.length - 1]
    if (last !== undefined) {
      // Calls complete in order: when the last one settles, all before it did.
      await new Promise((resolve, reject) => last.waiters.push({ resolve, reject }))
    }
    if (this.#draining !== null) await this.#draining
  }

  /** close(): a write waiting to retry for the lock tries now. */
  retryNow() {
    if (this.#lockRetry.cancel()) this.#schedule()
  }

  // Calls made in the same tick join one write.
  #schedule() {
    if (this.#draining !== null || this.#lockRetry.pending) return
    // #drain settles every caller itself; this catch only keeps a failure of
    // its own from ever becoming an unhandled rejection.
    this.#draining = Promise.resolve()
      .then(() => this.#drain())
      .catch((error) => this.#doc.emit('error', this.failure(error, 'writing')))
  }

  async #drain() {
    try {
      while (this.ops.length > 0) {
        const batch = this.ops.slice()
        try {
          if ((await this.#drainBatch(batch)) === 'stop') return
        } catch (error) {
          // Anything unforeseen (a bug; every expected failure is handled in
          // #drainBatch): the batch's callers are rejected with a coded error,
          // never left waiting, and unsaved edits stay as they are.
          this.#remove(batch)
          const failure = this.failure(error, 'writing')
          for (const op of batch) for (const w of op.waiters) w.reject(failure)
          if (this.#doc.heard('error')) this.#doc.emit('error', failure)
        }
      }
    } finally {
      this.#draining = null
      this.#drainAbort = null
      this.#cancelled = null
    }
  }

  // One write of `batch`; 'stop' when the drain must stop (waiting for the lock, or closing).
  async #drainBatch(batch) {
    const doc = this.#doc
    const { disk } = doc
    for (const op of batch) op.started = true
    let written
    const tried = { value: undefined } // the value this batch tried to write
    // Only a retry after an announced lock timeout can be cancelled: the
    // first attempt needs no AbortController (one per write was measurable).
    this.#drainAbort = this.#announced ? new AbortController() : null
    try {
      written = await this.#writeAtOnce(batch, tried)
      if (written === undefined) {
        written = await doc.manager.withLock(doc.filePath, async (lock) => {
          for (let attempt = 1; ; attempt++) {
            // The file is read only when it may not be the version we hold (the
            // same call's stat says); the commit checks again, by content, before it writes.
            const text = await disk.readText(lock, { unlessHeld: attempt === 1 })
            if (text === HELD) {
              // Nobody wrote since our last write: the next may go at once again.
              this.#atOnce = true
            } else if (text !== null && text !== disk.text) await disk.takeFromDisk(text, 'write')
            const value = await this.#apply(batch, disk.value)
            tried.value = value
            // Changed under us after all (by a program that takes no lock): read
            // it, and apply the batch to what it holds. One that keeps changing
            // it (a sync tool's burst) gets the last attempt written over what
            // was read just before, as every write did before versions were
            // checked: that program takes no lock, the race is its to lose.
            // The commit lets the lock go itself once its text is renamed into
            // place (before the directory fsync): nothing after it needs the lock.
            if (await disk.write(value, { overwrite: attempt === COMMIT_ATTEMPTS, lock })) return value
          }
        }, { timeoutMs: doc.options.timeoutMs, signal: this.#drainAbort?.signal })
      }
    } catch (caught) {
      return this.#failed(batch, this.failure(caught, 'writing'), tried.value)
    }
    this.#remove(batch)
    this.#lockRetry.reset()
    this.#announced = false
    try {
      await doc.edits.afterWrite(batch, written)
    } catch (error) {
      // The write landed; rebasing edits it did not carry failed: they stay
      // as they were, for the next save() to merge (or to reject, coded).
      doc.emit('error', doc.edits.mergeFailure(error))
    }
    // A big document resolves a write once the spare copy of its new value is
    // made (in slices, the lock released): an edit() right after finds it.
    if (disk.big) await disk.prepareSpare()
    for (const op of batch) {
      for (const w of op.waiters) (op.error ? w.reject(op.error) : w.resolve(op.result))
    }
    doc.emit('saved', { filePath: doc.filePath, value: written, operations: batch.length })
  }

  // The batch's calls applied in call order to `value`; each keeps its own
  // result or error (a call that throws leaves the value as it was).
  async #apply(batch, value) {
    const { disk, edits } = this.#doc
    for (const op of batch) {
      op.error = undefined
      try {
        if (op.kind === 'edits') value = await edits.mergeInto(value, op)
        else value = op.kind === 'set' ? op.value : await disk.applyUpdate(op.fn, value)
        op.result = value
      } catch (error) {
        op.error = error
      }
    }
    return value
  }

  // The batch applied to the version held and committed by one native call
  // that takes the lock itself, off the JS thread, if nobody holds it then
  // (commitDocumentAtOnce: no lock round trip on the JS thread, which costs
  // most after the thread idled through the last fsync). The value written,
  // or undefined when it did not write (the lock was busy, the file changed,
  // a link re-pointed): the batch then takes the locked way, and so do the
  // next ones until a locked write finds nobody wrote in between.
  // Not when something needs the lock's JS side: 'acquired'/'released'
  // listeners, a cancellable retry, edits (merges) in the batch.
  async #writeAtOnce(batch, tried) {
    const doc = this.#doc
    const { disk, manager } = doc
    if (!this.#atOnce || this.#drainAbort !== null || !disk.canWriteAtOnce()) return undefined
    if (manager.listenerCount('acquired') > 0 || manager.listenerCount('released') > 0) return undefined
    for (const op of batch) if (op.kind === 'edits') return undefined
    // The version the calls are applied to, taken with its value: a text
    // taken from disk while they run (a read(), a watch) moves both, and the
    // commit must check the file against the one the value came from.
    const base = disk.version
    const value = await this.#apply(batch, disk.value)
    tried.value = value
    if (await disk.write(value, { atOnce: base })) return value
    // Nothing written: the locked way applies the calls again, to what it reads.
    tried.value = undefined
    this.#atOnce = false
    return undefined
  }

  // The write of `batch` failed with `error` (coded); 'stop' when the drain must stop.
  #failed(batch, error, attempted) {
    const doc = this.#doc
    for (const op of batch) op.started = false
    if (error.code === 'ABORT_ERR' && this.#cancelled !== null) {
      // cancel() while this retry waited for the lock: nothing was written.
      this.#remove(batch)
      for (const op of batch) for (const w of op.waiters) w.reject(this.#cancelled)
      return undefined
    }
    if (error.code === 'ELOCKTIMEOUT' && !doc.closing) {
      this.#waitForLock(error)
      return 'stop'
    }
    if (error.code === 'ELOCKTIMEOUT' && this.#closeAttempts.tryAgain()) return undefined
    if (error.code === 'ELOCKTIMEOUT') {
      // close() gives up here: it rejects the rest with EUNSAVED.
      const unsaved = this.ops.splice(0)
      const failed = coded('EUNSAVED', `the write to ${doc.filePath} could not get the lock before close()`, { filePath: doc.filePath })
      for (const op of unsaved) for (const w of op.waiters) w.reject(failed)
      this.unsavedAtClose = unsaved
      return 'stop'
    }
    this.#remove(batch)
    doc.edits.keepFailedWrite(error, batch, attempted)
    for (const op of batch) for (const w of op.waiters) w.reject(error)
    // Also tell whoever watches the document (a UI), not only the callers.
    if (doc.heard('error')) doc.emit('error', error)
    return undefined
  }

  // Any exception on the write and merge paths as a coded error: one with a
  // code as it is; anything else (a bug, something unforeseen) as EINTERNAL
  // with the original as `cause`.
  failure(error, what) {
    if (typeof error?.code === 'string') return error
    const { filePath } = this.#doc
    return new FileLockError('EINTERNAL', `${what} ${filePath} failed unexpectedly: ${error?.message ?? String(error)}`, { filePath, cause: error })
  }

  // By identity: cancel() may have emptied the queue while the batch was in flight.
  #remove(batch) {
    this.ops = this.ops.filter((op) => !batch.includes(op))
  }

  // The writes stay queued; say so, and try again later.
  #waitForLock(error) {
    const doc = this.#doc
    const retry = () => {
      this.#lockRetry.cancel()
      this.#schedule()
    }
    // Drops the writes queued now. A retry already waiting for the lock is
    // aborted (its writes rejected too); one already writing lands and resolves.
    const cancel = () => {
      this.#lockRetry.cancel()
      const cancelled = coded('ECANCELED', `the pending write of ${doc.filePath} was cancelled`, { filePath: doc.filePath })
      const dropped = this.ops.filter((op) => !op.started)
      this.#remove(dropped)
      for (const op of dropped) for (const w of op.waiters) w.reject(cancelled)
      if (this.#drainAbort !== null && this.ops.some((op) => op.started)) {
        this.#cancelled = cancelled
        this.#drainAbort.abort(cancelled)
      }
    }
    const delay = this.#lockRetry.later(retry)
    this.#announced = true
    doc.emit('lock-timeout', {
      filePath: doc.filePath,
      waitedMs: error.waitedMs,
      holder: error.holder ?? null,
      pending: this.ops.length,
      retryInMs: delay,
      retry,
      cancel,
    })
  }
}

module.exports = { WriteQueue, RETRY_FIRST_MS }
