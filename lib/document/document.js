'use strict'
// JsonDocument: roles.json as a value that several processes can update
// without losing each other's edits. This file is its public face; the work
// is done by its parts, each keeping its own invariants:
//   disk.js         the file as last read or written (read, parse, write)
//   write-queue.js  set/update/save calls written in batches under the lock
//   edits.js        unsaved edits, their merges, conflicts and their resolution
//   watching.js     other writers' changes seen as they happen
//   backups.js      the backups folder (snapshots, corrupt copies, recovery)
//
// Invariants:
// - The parts share one state (`#doc`), reachable only from here: nothing
//   outside the document can change what it holds.
// - Events reach listeners outside any lock's async context, so a listener
//   may call update()/read() without tripping EDEADLOCK; a listener that
//   throws is reported on its own tick and never disturbs the document.

const { EventEmitter } = require('node:events')
const { AsyncResource } = require('node:async_hooks')
const fsp = require('node:fs/promises')
const { removeStaleTemps } = require('../../native.js')
const { documentValue } = require('../json-values.js')
const { emitSafely } = require('../emit.js')
const { coded, kindOf, notAFile, tooBig } = require('./files.js')
const { applyUpdate } = require('./update-fn.js')
const { checkFunction, invalidType } = require('../args.js')
const { DiskState } = require('./disk.js')
const { Backups } = require('./backups.js')
const { UnsavedEdits } = require('./edits.js')
const { WriteQueue } = require('./write-queue.js')
const { Watching } = require('./watching.js')

// Taking a lock fails this way where no lock can be created (read-only folder or mount).
const CANNOT_LOCK = new Set(['EACCES', 'EPERM', 'EROFS'])

class JsonDocument extends EventEmitter {
  #doc

  constructor(manager, native, filePath, options) {
    super()
    // Whether the manager keeps an audit trail (a file or a logger): without
    // one a record would be a native call per external change for nothing.
    const { auditLog, logger } = manager.options
    const audited = auditLog !== undefined || logger !== undefined
    const doc = {
      manager,
      native,
      filePath,
      options,
      opened: false,
      closed: false,
      closing: false,
      readOnly: null, // why the document could only be opened for reading
      recovery: null,
      saveTimer: null, // saves edits after saveDelayMs
      // Emits outside the async context of any lock (see the invariants).
      emit: AsyncResource.bind((name, payload) => this.#emitSafely(name, payload)),
      heard: (name) => this.listenerCount(name) > 0,
      audit: (op, outcome, detail) => {
        if (!audited) return
        try {
          native.recordDocumentEvent(op, filePath, outcome, detail)
        } catch {
          // Auditing never fails the operation it records.
        }
      },
      assertOpen: () => this.#assertOpen(),
      save: () => this.save(),
    }
    doc.disk = new DiskState(doc)
    doc.backups = new Backups(doc)
    doc.edits = new UnsavedEdits(doc)
    doc.queue = new WriteQueue(doc)
    doc.watching = new Watching(doc)
    this.#doc = doc
  }

  get filePath() {
    return this.#doc.filePath
  }

  /** Opens (creating from `defaultValue` when missing) and reads the file once. */
  async _open() {
    const doc = this.#doc
    await this.#checkFile()
    try {
      await this.#openLocked()
    } catch (error) {
      if (!CANNOT_LOCK.has(error.code) && error.code !== 'ELOCKTIMEOUT') throw error
      // A read-only folder or mount: no lock file can be made there, and no
      // writer of ours can replace the file either. Open it for reading.
      // Or another instance holds the lock for long: our writers replace the
      // file by rename, so reading it now gives a whole version; open with it
      // (writes will wait for the lock as usual).
      // Unreadable too (a folder this user may not enter): the lock's error says why.
      const text = await doc.disk.readText().catch((readError) => Promise.reject(CANNOT_LOCK.has(readError.code) ? error : readError))
      if (text === null) throw error
      await doc.disk.accept(text)
      if (error.code !== 'ELOCKTIMEOUT') doc.readOnly = error
    }
    doc.opened = true
    // A change between the read above and the watch's start is one no event
    // will tell: look once more if the file may have changed since.
    if (doc.options.watch && doc.watching.start()) {
      if (!doc.disk.isCurrent()) doc.watching.refresh()
    }
    // A big document opens with its spare copy made: an edit() right away
    // finds it (made in slices: a longer open, no long stall).
    await doc.disk.prepareSpare()
  }

  // Before any lock or read, what cannot be a document is refused at once: not
  // a regular file (ENOTFILE), or larger than maxBytes (ETOOBIG). A missing
  // file is created from defaultValue (through a link: where the link leads).
  async #checkFile() {
    const { filePath, native, options, disk } = this.#doc
    let stat
    try {
      stat = await fsp.stat(filePath)
    } catch (error) {
      if (error.code !== 'ENOENT' || options.defaultValue !== undefined) return // the lock says what is wrong
      let target = null
      try {
        target = (await fsp.lstat(filePath)).isSymbolicLink() ? native.resolvePath(filePath) : null
      } catch {
        // Not a link, or its folder is missing: the lock says so.
      }
      if (target === null) return
      throw coded('ENOENT', `${filePath} is a link to ${target}, which does not exist, and no defaultValue was given`, { filePath })
    }
    if (!stat.isFile()) {
      // Through a link, say where it leads (`/dev/zero`).
      throw notAFile(filePath, kindOf(stat), await fsp.realpath(filePath).catch(() => filePath))
    }
    if (stat.size > disk.maxBytes) throw tooBig(filePath, stat.size, disk.maxBytes)
  }

  async #openLocked() {
    const { filePath, options, disk, backups } = this.#doc
    await this.#doc.manager.withLock(filePath, async () => {
      // Temp files of writers that crashed mid-write (their pid is gone).
      await removeStaleTemps(filePath)
      const text = await disk.readText()
      if (text === null) {
        if (options.defaultValue === undefined) {
          throw coded('ENOENT', `${filePath} does not exist and no defaultValue was given`, { filePath })
        }
        await disk.write(options.defaultValue)
        return
      }
      try {
        await disk.accept(text)
      } catch (error) {
        if (error.code !== 'ECORRUPT' || !options.recoverFromBackup) throw error
        await backups.recover(error)
        return
      }
      await backups.snapshot(text)
    })
  }

  /**
   * Null, or why the document could only be opened for reading (the coded
   * error of taking the lock: EACCES/EPERM/EROFS); its writes fail with it.
   */
  get readOnly() {
    return this.#doc.readOnly
  }

  /** Whether external changes are seen as they happen (false: only at read/write). */
  get watching() {
    return this.#doc.watching.watching
  }

  /** Why the document is not watching (its watch could not be set up: `EWATCHLIMIT`…), or null. */
  get watchError() {
    return this.#doc.watching.error
  }

  /**
   * How the file was recovered at open (`recoverFromBackup`): the good backup
   * it was restored from and the copy of the bad bytes; null when it was not.
   */
  get recovery() {
    return this.#doc.recovery
  }

  /** The current value: unsaved edits, and accepted but not yet written `set`/`update` calls, applied. */
  get() {
    const { disk, edits, queue } = this.#doc
    let value = edits.current === null ? disk.value : edits.current.mine
    for (const op of queue.ops) {
      if (op.kind === 'set') value = op.value
      else if (op.kind === 'update') {
        try {
          value = applyUpdate(op.fn, value, true)
        } catch {
          // It will fail when applied (its caller gets the error); no preview of it.
        }
      }
    }
    return value
  }

  /** Whether there are local edits not yet saved. */
  get hasUnsavedChanges() {
    return this.#doc.edits.current !== null
  }

  /** The unresolved conflict (as in the last 'conflict' event), or null. */
  get conflict() {
    const { edits } = this.#doc
    return edits.conflict === null ? null : edits.payload(edits.conflict)
  }

  /**
   * Changes the value locally without saving (`get()` includes it): `fn` gets a
   * copy and returns the next value or mutates the copy. The edit is saved by
   * `save()` (or after `saveDelayMs`), merged with whatever changed on disk meanwhile.
   */
  edit(fn) {
    this.#assertOpen()
    checkFunction('fn', fn)
    const doc = this.#doc
    // Checked like set() (ERR_INVALID_ARG_VALUE, nothing changed): a value the
    // file cannot hold would only fail later, at a merge or a write.
    const next = doc.disk.applyEdit(fn, this.get())
    doc.edits.edited(next)
    // Infinity (like no saveDelayMs): saved only by save()/close().
    if (Number.isFinite(doc.options.saveDelayMs)) {
      clearTimeout(doc.saveTimer)
      doc.saveTimer = setTimeout(() => {
        doc.saveTimer = null
        this.save().catch((error) => {
          // A conflict was announced by its own event; anything else is an error.
          if (error.code !== 'ECONFLICT') doc.emit('error', error)
        })
      }, doc.options.saveDelayMs)
    }
    return next
  }

  /**
   * Saves the unsaved edits under the exclusive lock, three-way merged with
   * what changed on disk since they began. Rejects with ECONFLICT (edits kept)
   * when they conflict; resolves with the saved value.
   */
  save() {
    const doc = this.#doc
    if (doc.closed) return Promise.reject(this.#closedError())
    clearTimeout(doc.saveTimer)
    doc.saveTimer = null
    if (doc.edits.conflict !== null) return Promise.reject(doc.edits.conflictError(doc.edits.conflict))
    if (doc.edits.current === null) return this.flush().then(() => this.get())
    return doc.queue.enqueue({ kind: 'edits' })
  }

  /** Drops the unsaved edits (and an unresolved conflict); returns the value without them. */
  discard() {
    const doc = this.#doc
    clearTimeout(doc.saveTimer)
    doc.saveTimer = null
    doc.edits.discard()
    doc.disk.prepareSpare()
    return this.get()
  }

  /**
   * Fresh from disk when it changed, else the cached value; pending edits applied.
   * Cheap when nothing changed: one stat on this thread (no trip to the
   * thread pool); the file is read (under the shared lock) only when its stat
   * differs from the version we hold, or is too recent to trust.
   */
  async read() {
    this.#assertOpen()
    const { disk } = this.#doc
    if (disk.isCurrent()) return this.get()
    await disk.withReadLock(async (lock) => {
      const text = await disk.readText(lock)
      if (text !== null && text !== disk.text) await disk.takeFromDisk(text, 'read')
    })
    return this.get()
  }

  /** Read-modify-write under the exclusive lock; resolves with the new value once durable. */
  update(fn) {
    if (typeof fn !== 'function') return Promise.reject(invalidType('fn', 'a function', fn))
    return this.#doc.queue.enqueue({ kind: 'update', fn })
  }

  /** Replaces the value; rapid successive calls are coalesced into one write. */
  set(value) {
    try {
      // A copy, as it will be on disk: later changes to the caller's object do
      // not leak in. Checked like every value (documentValue): a bad one is refused here.
      value = documentValue(value, 'value')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#doc.queue.set(value)
  }

  /**
   * Resolves when everything accepted so far is written (through lock-timeout
   * retries); rejects with the error of the last pending call if it failed.
   */
  flush() {
    return this.#doc.queue.flush()
  }

  /**
   * Writes what is pending, waiting for the lock up to `closeAttempts` lock
   * timeouts, then closes. If writes remain, rejects with `EUNSAVED` carrying
   * them (`unsaved`) instead of dropping them silently.
   */
  async close() {
    const doc = this.#doc
    if (doc.closed) return
    doc.closing = true
    doc.queue.retryNow()
    let editsError = null
    if (doc.edits.current !== null) await this.save().catch((error) => (editsError = error))
    try {
      await this.flush()
    } catch {
      // Each failed call was rejected to its own caller already.
    }
    doc.closed = true
    doc.disk.dropSpare()
    doc.watching.close()
    clearTimeout(doc.saveTimer)
    doc.edits.close()
    const edits = doc.edits.current
    const unsaved = doc.queue.unsavedAtClose.map((op) => (op.kind === 'set' ? { set: op.value } : op.kind === 'update' ? { update: op.fn } : { edits: edits?.mine }))
    if (edits !== null && !unsaved.some((u) => 'edits' in u)) unsaved.push({ edits: edits.mine })
    if (unsaved.length > 0) {
      const why = editsError?.code === 'ECONFLICT' || doc.edits.conflict !== null ? 'conflict with the file (unresolved)' : 'could not get the lock before close()'
      throw coded('EUNSAVED', `${unsaved.length} write(s) to ${doc.filePath} were not saved: they ${why}`, {
        filePath: doc.filePath,
        unsaved,
        conflict: this.conflict,
      })
    }
  }

  #emitSafely(name, payload) {
    if (name === 'external-change' || name === 'conflict' || name === 'merged') this.#doc.manager._documentEvent(name, payload)
    emitSafely(this, name, payload)
  }

  #closedError() {
    return coded('ECLOSED', `the document ${this.#doc.filePath} is closed`, { filePath: this.#doc.filePath })
  }

  #assertOpen() {
    if (this.#doc.closed) throw this.#closedError()
  }
}

module.exports = { JsonDocument, documentValue }
