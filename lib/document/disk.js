'use strict'
// The document's file as last read or written: its text, its frozen value,
// the number texts to keep, and the spare copy a big document keeps ahead.
//
// Invariants:
// - `text` is the file's text as last read or written: a change is any other
//   text; `value` is what a reader of that text gets, frozen.
// - A file that does not parse is never overwritten: ECORRUPT, with a copy of
//   its bytes in the backups folder; bytes that are not UTF-8 are never
//   decoded lossily (that would rewrite them with U+FFFD).
// - A write is never bigger than the document could read back (ETOOBIG), and
//   never lands on a file its lock does not cover (a link re-pointed meanwhile:
//   EAGAIN, kept and retried).
// - A new text from disk is taken one at a time (a read() and a watch event
//   may both find it), and unsaved edits are rebased onto it; never while a
//   write of ours is in flight (its commit lets the lock go before we hear of
//   it): our own text is never taken for another writer's.

const { ExactNumbers } = require('../exact-numbers.js')
const { BIG_TEXT, breathe, markClean, isClean, copyOfInPieces, stringifyInPieces, parseFrozen, withoutBom, documentValue, documentValueSliced } = require('../json-values.js')
const { makeSpare, adoptSpare, adoptSpareSliced } = require('../spare-copy.js')
// The addon's module object, looked up at each write (tests inject failures there).
const addon = require('../../native.js')
const { fromNative } = require('../errors.js')
const { utf8, coded, readRegular, HELD, MAX_BYTES_DEFAULT } = require('./files.js')
const { applyUpdate, fnResult } = require('./update-fn.js')

// A writer holding the lock longer than this does not hold up reads.
const READ_LOCK_WAIT_MS = 250

class DiskState {
  #doc
  value
  text = null
  version = null // the version of `text` on disk (native token: stat key + hash), null when unknown
  #lastRead = null // { text, version } of the last read not taken yet
  numbers = new ExactNumbers() // inexact number texts of the version read, kept at write (exact-numbers.js)
  #taking = Promise.resolve() // the text being taken from disk (one at a time)
  #toldWeakFlush = false // the audit trail was told this file gets a plain fsync
  #spare = null // a big document's copy made ahead for the next edit/update: { of, copy, ours }
  #sparing = null // the spare copy being made (resolves when it is, or was given up)

  constructor(doc) {
    this.#doc = doc
  }

  get maxBytes() {
    return this.#doc.options.maxBytes ?? MAX_BYTES_DEFAULT
  }

  // Whether this document's work is done in slices (json-values.js).
  get big() {
    return this.text !== null && this.text.length > BIG_TEXT
  }

  // Under the shared lock (fn gets its Lock); without it where no lock can be made (read-only).
  // A writer holding the lock longer than READ_LOCK_WAIT_MS does not hold up
  // reads: our writers replace the file by rename, so reading without the lock
  // gives a whole version (the one before that writer's).
  async withReadLock(fn) {
    if (this.#doc.readOnly !== null) return fn()
    try {
      return await this.#doc.manager.withLock(this.#doc.filePath, fn, { exclusive: false, timeoutMs: READ_LOCK_WAIT_MS, retries: 1 })
    } catch (error) {
      if (error.code !== 'ELOCKTIMEOUT') throw error
      return fn()
    }
  }

  // `lock`: the Lock held, if any; under an OS lock (a local disk) a small
  // file is read on this thread (files.js readRegular). `unlessHeld`: HELD,
  // nothing read, when one stat says the file may still be the version we
  // hold ('unsure' counts: a commit compares the bytes before it writes).
  async readText(lock, { unlessHeld = false } = {}) {
    const { filePath } = this.#doc
    // Never blocks (FIFOs, devices refused: ENOTFILE) nor reads more than maxBytes (ETOOBIG).
    const found = await readRegular(filePath, this.maxBytes, lock?.strategy === 'os', unlessHeld ? this.version : null)
    if (found === null || found === HELD) return found
    const { bytes, version } = found
    try {
      const text = utf8.decode(bytes)
      // The version goes with its text: at once when it is the text we hold,
      // else when that text is taken (accept).
      if (text === this.text) this.version = version
      else this.#lastRead = { text, version }
      return text
    } catch {
      let backupPath = null
      try {
        backupPath = await this.#doc.backups.save(bytes, 'corrupt')
      } catch {
        // Reported below without a copy.
      }
      throw coded('ECORRUPT', `${filePath} is not valid UTF-8 text; it was left untouched${backupPath ? ` and copied to ${backupPath}` : ''}`, { filePath, backupPath })
    }
  }

  // The value of a text read from disk, frozen; a bad one is copied aside (ECORRUPT).
  async #parse(text) {
    let value
    try {
      value = await parseFrozen(text, text.length > BIG_TEXT)
      if (value === null || typeof value !== 'object') throw new Error('not an object or array')
    } catch (cause) {
      let backupPath = null
      let where
      try {
        backupPath = await this.#doc.backups.save(text, 'corrupt')
        where = `copied to ${backupPath}`
      } catch (error) {
        where = `could not be copied aside (${error.message})`
      }
      throw coded('ECORRUPT', `${this.#doc.filePath} does not hold a JSON object or array (${cause.message}); it was left untouched and ${where}`, { filePath: this.#doc.filePath, backupPath })
    }
    return value
  }

  // Takes a text read from disk as the new cached value (`parsed`: its value,
  // when the caller has parsed it already).
  async accept(text, parsed) {
    const value = parsed ?? (await this.#parse(text))
    if (text.length > BIG_TEXT) await this.numbers.readOffThread(text, value)
    else this.numbers.read(text, value)
    // Its text is what the native merge gets, unless it holds numbers JS
    // cannot (the merge must see the numbers JS has).
    this.value = markClean(value, this.numbers.exact ? withoutBom(text) : undefined)
    this.text = text
    this.version = this.#lastRead?.text === text ? this.#lastRead.version : null
    this.#lastRead = null
    this.prepareSpare()
  }

  // Whether a write may go at once (commitDocumentAtOnce): a small document
  // whose version on disk is known.
  canWriteAtOnce() {
    return !this.big && this.version !== null
  }

  // Whether the file surely is the version we hold, by its stat alone.
  isCurrent() {
    return this.version !== null && addon.documentIsCurrent(this.#doc.filePath, this.version) === 'yes'
  }

  // Another writer changed the file (seen by `origin`: 'watch', 'read' or the
  // re-read before a 'write'): take the new version, say what changed, and
  // rebase unsaved edits onto it. Called with the file locked (shared or exclusive).
  takeFromDisk(text, origin, parsed) {
    const taking = this.#taking.then(() => (text === this.text ? undefined : this.#takeNewText(text, origin, parsed)))
    this.#taking = taking.catch(() => {})
    return taking
  }

  async #takeNewText(text, origin, parsed) {
    const doc = this.#doc
    const old = this.value
    await this.accept(text, parsed)
    const value = this.value
    if (!doc.opened) return
    const heard = doc.heard('external-change') || doc.manager.listenerCount('external-change') > 0
    const changes = heard ? await doc.edits.diff(old, value) : []
    const reloaded = doc.edits.current === null
    doc.audit('external-change', reloaded ? 'reloaded' : 'pending', `${changes.length} change(s), seen at ${origin}`)
    doc.emit('external-change', { filePath: doc.filePath, oldValue: old, newValue: value, changes, reloaded, origin })
    if (origin !== 'write') await doc.edits.rebase(value)
  }

  // update(fn) applied to `value`: fn gets a copy; the result is checked and
  // frozen as set() does (documentValue). In slices for a big document.
  async applyUpdate(fn, value) {
    if (!this.big) return applyUpdate(fn, value, false)
    const spare = this.#takeSpare(value)
    let copy
    if (spare === null) {
      copy = await copyOfInPieces(value)
      await breathe()
    } else {
      copy = spare.copy
    }
    const { result, name } = fnResult(fn, copy)
    if (spare !== null) {
      await breathe()
      const adopted = await adoptSpareSliced(result, spare)
      if (adopted !== null) return adopted
    }
    await breathe()
    return documentValueSliced(result, name, true)
  }

  // edit(fn) applied to `current` (what get() gives): on the spare copy, taken
  // in place, when there is one (a big document: no copy of it is made now),
  // else as update() does.
  applyEdit(fn, current) {
    const spare = this.#takeSpare(current)
    if (spare === null) return applyUpdate(fn, current, false)
    const { result, name } = fnResult(fn, spare.copy)
    return adoptSpare(result, spare) ?? documentValue(result, name)
  }

  // The spare copy of `value`, taken (used once), or null.
  #takeSpare(value) {
    const spare = this.#spare
    if (spare === null || spare.of !== value) return null
    this.#spare = null
    return spare
  }

  // What the next edit() starts from.
  #spareBase() {
    const edits = this.#doc.edits.current
    return edits === null ? this.value : edits.mine
  }

  // A big document keeps a copy of what the next edit()/update() changes,
  // made ahead in slices (json-values.js makeSpare): edit() is synchronous
  // and could not copy a big value without a long stall.
  // Resolves when the spare copy of what the next edit() starts from is ready
  // (or cannot be made: edits then copy at once).
  prepareSpare() {
    const doc = this.#doc
    if (doc.closed || !this.big) return Promise.resolve()
    if (this.#sparing !== null) return this.#sparing
    const of = this.#spareBase()
    if (this.#spare !== null && this.#spare.of === of) return Promise.resolve()
    this.#spare = null
    this.#sparing = makeSpare(of, () => (doc.closed ? null : this.#spareBase())).then(
      (spare) => {
        this.#sparing = null
        if (doc.closed) return undefined
        if (spare !== null && spare.of === this.#spareBase()) {
          this.#spare = spare
          return undefined
        }
        return this.prepareSpare()
      },
      // A value with no JSON text (a BigInt in it): no spare; edits copy it then.
      () => {
        this.#sparing = null
      },
    )
    return this.#sparing
  }

  /** Drops the spare copy (the document is closed). */
  dropSpare() {
    this.#spare = null
  }

  // Writes `value` atomically (the caller holds the exclusive lock) over the
  // version we hold, and takes it as the version on disk; false when the file
  // is not that version any more (nothing written: read it, apply again).
  // `overwrite`: whatever the file holds (a recovery over unreadable bytes).
  // `lock`: the Lock held; a commit that writes lets it go itself, right
  // after its rename (the write must be the last thing done under it).
  // `atOnce`: no lock held, `value` made from the version `atOnce` (a token);
  // the commit takes the lock itself if it is free (commitDocumentAtOnce) and
  // writes only over that version. False (nothing written) also when the
  // value is refused before the commit (ETOOBIG): it was made from a version
  // not checked yet, and the locked way decides on what it reads.
  async write(value, { overwrite = false, lock, atOnce = null } = {}) {
    const big = this.big
    let text
    try {
      text = big ? await this.#bigTextOf(value) : this.#textOf(value)
    } catch (error) {
      if (atOnce !== null) return false
      throw error
    }
    // A commit under `lock` checks itself that the file lies where the lock is.
    if (overwrite || (lock === undefined && atOnce === null)) await this.#assertLockedWhereWritten()
    // The commit lets its lock go right after the rename, before we hear of
    // it: a text taken from disk meanwhile (a watch event, a read() under the
    // shared lock) waits until this write is the version held, so our own
    // text is never taken for another writer's.
    let settle
    const taken = new Promise((resolve) => {
      settle = resolve
    })
    this.#taking = this.#taking.then(() => taken)
    try {
      return await this.#writeText(value, text, big, overwrite, lock, atOnce)
    } finally {
      settle()
    }
  }

  // The text written for `value` (ETOOBIG above maxBytes): JSON.stringify's,
  // with the inexact numbers read kept and BigInts' digits.
  #textOf(value) {
    return this.#sized(`${this.numbers.stringify(value, this.#doc.options.arrayKey)}\n`)
  }

  // A big document's text: plain JSON data with no number text to keep is
  // made a range at a time.
  async #bigTextOf(value) {
    if (!(this.numbers.exact && isClean(value))) {
      await breathe()
      return this.#textOf(value)
    }
    const text = `${await stringifyInPieces(value, true)}\n`
    this.numbers.plainText()
    await breathe()
    return this.#sized(text)
  }

  #sized(text) {
    const size = Buffer.byteLength(text)
    if (size > this.maxBytes) {
      const { filePath } = this.#doc
      throw coded('ETOOBIG', `the value to write to ${filePath} is ${size} bytes as JSON, above the document's maxBytes (${this.maxBytes}); nothing was written`, {
        filePath,
        size,
        maxBytes: this.maxBytes,
      })
    }
    return text
  }

  // write()'s text on disk, and taken as the version held; false: nothing written.
  async #writeText(value, text, big, overwrite, lock, atOnce) {
    const { filePath, options } = this.#doc
    // After an overwrite the version is unknown (null): the next write reads first.
    let version = null
    let lost = false
    try {
      // The text goes to Rust as a string (napi copies it as UTF-8 once): no
      // Buffer to allocate and fill first, and for a big text no 50 MB of
      // external memory that would make V8 collect garbage on this thread.
      // (JSON.stringify escapes lone surrogates: the text is well-formed.)
      // One trip: checked, written, fsynced, renamed, directory fsynced, new version said.
      // Through a symbolic link, it writes the file the link leads to now, and keeps the link.
      const durable = options.durability !== 'none'
      if (overwrite) await addon.replaceFile(filePath, text, durable)
      else if (atOnce !== null) ({ version, lost } = await this.#commitAtOnce(text, durable, atOnce))
      else version = await this.#commit(text, durable, lock)
    } catch (error) {
      const failed = fromNative(error, { filePath })
      // A FIFO, device, folder or socket put in the file's place: refused, left as it is.
      if (/not a regular file/.test(failed?.message)) throw coded('ENOTFILE', failed.message, { filePath })
      throw failed
    }
    if (!overwrite && version === null) return false
    // What a reader of the file gets (Dates as strings, no undefined members), read-only.
    // (A text with numbers put back reads differently: 1e400 is Infinity, not the null JSON has.)
    const spliced = this.numbers.spliced
    this.value = isClean(value) && !spliced ? value : await parseFrozen(text, big)
    this.numbers.wrote(text, this.value)
    // A text with numbers put back is not what the merge may be given.
    this.value = markClean(this.value, spliced ? undefined : text)
    this.text = text
    this.version = version
    this.#lastRead = null
    this.prepareSpare()
    if (lost) {
      // As a write under a Lock lost meanwhile rejects (withLock): it landed, but not guarded.
      throw coded('ECOMPROMISED', `the lock on ${filePath} was lost while this write ran (its lease expired, its lock file was taken, or the manager closed); the write landed, but another writer may have run meanwhile`, { filePath, reason: 'lost-during-write' })
    }
    return true
  }

  // commitDocument's new version (null: the file changed). Under `lock` it
  // checks that the file lies where the lock was taken, and lets the lock go
  // once the text is in place; one that lies elsewhere (a link re-pointed)
  // gets the full check (EAGAIN, or another lock of this chain covers it).
  async #commit(text, durable, lock) {
    const { filePath, native } = this.#doc
    const under = lock === undefined ? [] : [native, lock._id, lock.filePath]
    const done = await addon.commitDocument(filePath, this.version, text, durable, ...under)
    if (done.released) lock._finish(true)
    this.#noteFlush(done)
    if (done.elsewhere) {
      await this.#assertLockedWhereWritten()
      return this.#commit(text, durable)
    }
    // (napi leaves a missing version out: undefined; null says "nothing written".)
    return done.version ?? null
  }

  // commitDocumentAtOnce's new version (null when it wrote nothing: busy,
  // changed, elsewhere; the caller takes the locked way), and whether the
  // lock it took was lost before the write was done.
  async #commitAtOnce(text, durable, expected) {
    const { filePath, native } = this.#doc
    const done = await addon.commitDocumentAtOnce(filePath, expected, text, durable, native)
    this.#noteFlush(done)
    return { version: done.version ?? null, lost: done.lost }
  }

  // Once per document: its file system refused F_FULLFSYNC (macOS: SMB, some FUSE shares).
  #noteFlush(done) {
    if (done.weakFlush !== undefined && !this.#toldWeakFlush) {
      this.#toldWeakFlush = true
      this.#doc.audit('weak-flush', 'plain-fsync', done.weakFlush)
    }
  }

  // Called under the exclusive lock of a write. Through a symbolic link, the
  // lock was taken where the link led when it was granted, and the file is
  // written where it leads now: if the link was pointed elsewhere in between,
  // this lock does not cover the file written. Then EAGAIN: the write is kept
  // and retried (under the lock of the new target), never written unguarded.
  async #assertLockedWhereWritten() {
    const { filePath, native, manager } = this.#doc
    let target
    try {
      target = native.resolvePath(filePath)
    } catch {
      return // replaceFile says what is wrong with the path
    }
    if (target === filePath) return // not a link: locked by its own name
    try {
      // Held by this very write (the enclosing withLock): EDEADLOCK, at once.
      await manager.withLock(target, () => {}, { timeoutMs: 0, retries: 1 })
    } catch (error) {
      if (error.code === 'EDEADLOCK') return
    }
    // The manager may remember this spelling as the file it named before it
    // became a link: the retry must resolve it again.
    native.forgetSpelling(filePath)
    throw coded('EAGAIN', `${filePath} was pointed at ${target} while this write held the lock of its previous target; the write is kept and will be retried`, { filePath })
  }
}

module.exports = { DiskState }
