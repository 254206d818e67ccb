'use strict'
// JsonDocument: roles.json as a value that several processes can update
// without losing each other's edits.
//
// Invariants:
// - Every write happens under the file's exclusive lock, after re-reading the
//   file inside that lock, and replaces it atomically (native replaceFile:
//   temp file, fsync, rename, directory fsync): concurrent updates from any
//   number of processes never lose an increment, and a crash leaves the old or
//   the new version.
// - Operations of one document apply in call order; all calls made before the
//   write starts go into that one write (group commit), and each promise
//   resolves only when the write containing it is durable.
// - A write that cannot get the lock stays queued (never dropped): `lock-timeout`
//   fires with retry/cancel handles and the document retries with backoff.
// - A file that does not parse is never overwritten: ECORRUPT, with a copy of
//   its bytes in the backups folder.
// - Unsaved local edits (`edit`) are kept as (base, mine): whenever the file
//   is seen to change (watch event, read, or the re-read before a write) they
//   are rebased by a three-way merge onto the new version; a conflict is never
//   resolved silently (an event with resolve(), or the `onConflict` policy),
//   the file is backed up and both versions kept until it is resolved.
// - Events reach listeners outside any lock's async context, so a listener
//   may call update()/read() without tripping EDEADLOCK.

const { EventEmitter } = require('node:events')
const { AsyncResource } = require('node:async_hooks')
const fsp = require('node:fs/promises')
const path = require('node:path')
const { FileLockError, fromNative } = require('./errors.js')
const { ExactNumbers, putBigIntsBack } = require('./exact-numbers.js')
const { BIG_TEXT, breathe, markClean, isClean, copyOf, copyOfInPieces, stringifyInPieces, makeSpare, adoptSpare, adoptSpareSliced, mergeTextOf, parseFrozen, withoutBom, deepFreeze, documentValue, documentValueSliced, parseJson, deepEqual } = require('./json-values.js')

const RETRY_FIRST_MS = 200
// close() waits this many lock timeouts for pending writes before giving up (EUNSAVED).
const CLOSE_ATTEMPTS = 3
const RETRY_MAX_MS = 5000
// A file seen unparsable by a watch event is looked at again after this (an
// editor may be half-way through an in-place write) before it is reported.
const CORRUPT_RECHECK_MS = 250
const CONFLICT_CHOICES = ['mine', 'theirs', 'merged']
// Taking a lock fails this way where no lock file can be created (read-only folder or mount).
const CANNOT_LOCK = new Set(['EACCES', 'EPERM', 'EROFS'])
// A write failing on disk this way may succeed later (space freed, remounted
// read-write, permission fixed): what it carried is kept as unsaved edits.
const KEEPABLE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EBUSY', 'EAGAIN', 'ENOLCK'])
const SAVE_RETRY_MAX_MS = 30000
const READ_LOCK_WAIT_MS = 250
// ignoreBOM keeps a byte order mark in the text, so the text is the file's
// exact bytes (backups stay byte-exact); parseJson skips it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

let merge = null
function mergeModule() {
  merge ??= require('./merge.js')
  return merge
}

// A file changed twice within the file system's timestamp granularity can keep
// its size and mtime (git's "racily clean" problem): a stat is only trusted as
// a cache key once the file's last change is older than this.
const SETTLED_NS = 100_000_000n

// inode, size, mtime and ctime of the file; null when missing or too recent to trust.
async function statKey(filePath) {
  try {
    const s = await fsp.stat(filePath, { bigint: true })
    const newest = s.mtimeNs > s.ctimeNs ? s.mtimeNs : s.ctimeNs
    if (BigInt(Date.now()) * 1_000_000n - newest < SETTLED_NS) return null
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch {
    return null
  }
}

async function exists(filePath) {
  return fsp.access(filePath).then(() => true, () => false)
}

// A FileLockError whose details are kept as given (a null `backupPath` says no copy was made).
function coded(code, message, details) {
  return Object.assign(new FileLockError(code, message), details)
}

function fromNativeIo(error, filePath) {
  return fromNative(error, { filePath })
}

// --- What a document's file may be, and the names made beside it ----------
//
// A read never blocks and never outgrows memory: a FIFO (which would block a
// read until a writer comes), a device (/dev/zero never ends), a folder or a
// socket is refused with ENOTFILE before a byte is read, a FIFO is never
// opened without O_NONBLOCK, and more than `maxBytes` is refused with ETOOBIG
// after reading at most maxBytes + 1 bytes. Refused files are left as they are.

// 256 MiB: far above any settings or roles file, and half of V8's longest
// string (~512 MiB), so a file within it can always be decoded and re-written.
const MAX_BYTES_DEFAULT = 256 * 1024 * 1024
const OPEN_FOR_READING = fsp.constants.O_RDONLY | (fsp.constants.O_NONBLOCK ?? 0) | (fsp.constants.O_NOCTTY ?? 0)

function kindOf(stat) {
  if (stat.isDirectory()) return 'a folder'
  if (stat.isFIFO()) return 'a FIFO (named pipe)'
  if (stat.isCharacterDevice()) return 'a character device'
  if (stat.isBlockDevice()) return 'a block device'
  if (stat.isSocket()) return 'a socket'
  return 'not a regular file'
}

function notAFile(filePath, kind, linkedTo = filePath) {
  const what = kind === 'not a regular file' ? kind : `${kind}, not a regular file`
  const shown = linkedTo === filePath ? filePath : `${filePath} (a link to ${linkedTo})`
  return coded('ENOTFILE', `${shown} is ${what}: a document can only be a regular file; it was not read and is left as it is`, { filePath, kind })
}

function tooBig(filePath, size, maxBytes) {
  const howBig = size === null ? `more than ${maxBytes} bytes` : `${size} bytes`
  return coded('ETOOBIG', `${filePath} is ${howBig}, above the document's maxBytes (${maxBytes}); it was not read and is left as it is (raise maxBytes to open it)`, { filePath, maxBytes, ...(size === null ? {} : { size }) })
}

// The bytes of the regular file at `filePath` (through links), at most
// `maxBytes`; null when it does not exist.
async function readRegular(filePath, maxBytes) {
  // A stat first: a FIFO or a device is refused without being opened at all.
  const seen = await fsp.stat(filePath).catch((error) => (error.code === 'ENOENT' ? null : Promise.reject(error)))
  if (seen === null) return null
  if (!seen.isFile()) throw notAFile(filePath, kindOf(seen))
  if (seen.size > maxBytes) throw tooBig(filePath, seen.size, maxBytes)
  let handle
  try {
    handle = await fsp.open(filePath, OPEN_FOR_READING)
  } catch (error) {
    if (error.code === 'ENOENT') return null
    // Replaced since the stat: a socket cannot be opened (ENXIO), a folder on Windows (EISDIR).
    if (error.code === 'ENXIO') throw notAFile(filePath, 'a socket')
    if (error.code === 'EISDIR') throw notAFile(filePath, 'a folder')
    throw error
  }
  try {
    // What was opened is what counts (the name may have been replaced since the stat).
    const stat = await handle.stat()
    if (!stat.isFile()) throw notAFile(filePath, kindOf(stat))
    if (stat.size > maxBytes) throw tooBig(filePath, stat.size, maxBytes)
    // The size may change while we read, or be wrong (0 in /proc): never more than maxBytes + 1.
    const limit = maxBytes + 1
    let buffer = Buffer.allocUnsafe(Math.min(limit, stat.size + 1))
    let length = 0
    for (;;) {
      if (length === buffer.length) {
        if (length >= limit) break
        const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(length * 2, 64 * 1024)))
        buffer.copy(grown, 0, 0, length)
        buffer = grown
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > maxBytes) throw tooBig(filePath, null, maxBytes)
    return buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
}

// Names made beside the file (the backups folder; native code makes the
// sidecar and temp files) fit the file system's limit on a name: 255 bytes
// (255 UTF-16 units on Windows). One that would not is built on a stem, the
// name's first 96 and a hash of all of it, exactly as native `paths::fit`
// does (both sides must find the same folder).
const NAME_MAX = 255
const STEM_KEEP = 96
const nameUnits = process.platform === 'win32' ? (text) => text.length : (text) => Buffer.byteLength(text)

function fitName(lead, name, tail) {
  if (nameUnits(lead) + nameUnits(name) + nameUnits(tail) <= NAME_MAX) return lead + name + tail
  let kept = ''
  let used = 0
  for (const char of name) {
    used += nameUnits(char)
    if (used > STEM_KEEP) break
    kept += char
  }
  return `${lead}${kept}~${fnv1a64(name)}${tail}`
}

// FNV-1a, 64 bits, of the UTF-8 bytes, as 16 hex digits (the same in Rust).
function fnv1a64(text) {
  let hash = 0xcbf29ce484222325n
  for (const byte of Buffer.from(text)) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return hash.toString(16).padStart(16, '0')
}

class JsonDocument extends EventEmitter {
  #manager
  #native
  #filePath
  #options
  #value
  #text = null // the file's text as last read or written: a change is any other text
  #queue = []
  #draining = null
  #retryDelay = RETRY_FIRST_MS
  #retryTimer = null
  #closed = false
  #closing = false
  #closeTimeouts = 0
  #unsavedAtClose = []
  #statKey = null // inode, size and mtime of the file as last read or written
  #recovery = null
  #opened = false
  #readOnly = null
  #edits = null // unsaved local edits: { base, mine }
  #conflict = null // the unresolved conflict: { id, base, mine, theirs, merged, conflicts, preserved }
  #conflictSeq = 0
  #watcher = null
  #targetWatcher = null // through a link: the watch of the file it leads to ({ path, watcher })
  #numbers = new ExactNumbers() // inexact number texts of the version read, kept at write (exact-numbers.js)
  #watchError = null // the coded error of a watch that could not be set up
  #saveTimer = null
  #refreshing = null
  #saveRetryTimer = null
  #drainAbort = null // aborts the lock wait of the write in flight (lock-timeout's cancel())
  #cancelled = null // the ECANCELED error while a cancel() is being applied
  #saveRetryDelay = RETRY_FIRST_MS
  #refreshAgain = false
  #taking = Promise.resolve() // the text being taken from disk (one at a time)
  #spare = null // a big document's copy made ahead for the next edit/update: { of, copy, ours }
  #sparing = null // the spare copy being made (resolves when it is, or was given up)
  #emit // emits outside the async context of any lock (see the invariants)

  constructor(manager, native, filePath, options) {
    super()
    this.#manager = manager
    this.#native = native
    this.#filePath = filePath
    this.#options = options
    this.#emit = AsyncResource.bind((name, payload) => this.#emitSafely(name, payload))
  }

  get filePath() {
    return this.#filePath
  }

  /** Opens (creating from `defaultValue` when missing) and reads the file once. */
  async _open() {
    await this.#checkFile()
    const seen = await statKey(this.#filePath)
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
      const text = await this.#readText().catch((readError) => Promise.reject(CANNOT_LOCK.has(readError.code) ? error : readError))
      if (text === null) throw error
      await this.#accept(text)
      if (error.code !== 'ELOCKTIMEOUT') this.#readOnly = error
    }
    this.#statKey = this.#statKey ?? seen
    this.#opened = true
    if (this.#options.watch) {
      this.#startWatching()
      // A change between the read above and the watch's start is one no event
      // will tell: look once more if the file may have changed since.
      if (this.#watcher !== null) {
        const now = await statKey(this.#filePath)
        if (now === null || now !== this.#statKey) this.#refresh()
      }
    }
    // A big document opens with its spare copy made: an edit() right away
    // finds it (made in slices: a longer open, no long stall).
    await this.#prepareSpare()
  }

  // Before any lock or read, what cannot be a document is refused at once: not
  // a regular file (ENOTFILE), or larger than maxBytes (ETOOBIG). A missing
  // file is created from defaultValue (through a link: where the link leads).
  async #checkFile() {
    let stat
    try {
      stat = await fsp.stat(this.#filePath)
    } catch (error) {
      if (error.code !== 'ENOENT' || this.#options.defaultValue !== undefined) return // the lock says what is wrong
      let target = null
      try {
        target = (await fsp.lstat(this.#filePath)).isSymbolicLink() ? this.#native.resolvePath(this.#filePath) : null
      } catch {
        // Not a link, or its folder is missing: the lock says so.
      }
      if (target === null) return
      throw coded('ENOENT', `${this.#filePath} is a link to ${target}, which does not exist, and no defaultValue was given`, { filePath: this.#filePath })
    }
    if (!stat.isFile()) {
      // Through a link, say where it leads (`/dev/zero`).
      throw notAFile(this.#filePath, kindOf(stat), await fsp.realpath(this.#filePath).catch(() => this.#filePath))
    }
    if (stat.size > this.#maxBytes) throw tooBig(this.#filePath, stat.size, this.#maxBytes)
  }

  get #maxBytes() {
    return this.#options.maxBytes ?? MAX_BYTES_DEFAULT
  }

  async #openLocked() {
    await this.#manager.withLock(this.#filePath, async () => {
      // Temp files of writers that crashed mid-write (their pid is gone).
      await this.#native.removeStaleTemps(this.#filePath)
      const text = await this.#readText()
      if (text === null) {
        if (this.#options.defaultValue === undefined) {
          throw coded('ENOENT', `${this.#filePath} does not exist and no defaultValue was given`, { filePath: this.#filePath })
        }
        await this.#write(this.#options.defaultValue)
        return
      }
      try {
        await this.#accept(text)
      } catch (error) {
        if (error.code !== 'ECORRUPT' || !this.#options.recoverFromBackup) throw error
        await this.#recover(error)
        return
      }
      await this.#snapshot(text)
    })
  }

  /**
   * Null, or why the document could only be opened for reading (the coded
   * error of taking the lock: EACCES/EPERM/EROFS); its writes fail with it.
   */
  get readOnly() {
    return this.#readOnly
  }

  // External changes arrive through a watch of the file; without one (an OS
  // limit reached) the document still works and sees changes at read/write.
  // Never silently: `watchError` keeps why, and 'error' is emitted once the
  // open has resolved (so a listener added right after it hears it), or goes
  // to the manager's 'error' when the document has no listener.
  #startWatching() {
    try {
      this.#watcher = this.#manager.watch(this.#filePath, (change) => this.#onLinkOrFileChange(change), { persistent: false })
      this.#watcher.on('error', (error) => this.#emit('error', error))
      this.#watchTarget()
    } catch (error) {
      this.#watchError = error
      this.#audit('external-change', 'other', `not watching ${this.#filePath}: ${error.message}`)
      setImmediate(() => {
        if (this.#closed) return
        if (this.listenerCount('error') > 0) this.#emit('error', error)
        else this.#manager._documentEvent('error', error)
      })
    }
  }

  /** Whether external changes are seen as they happen (false: only at read/write). */
  get watching() {
    return this.#watcher !== null && !this.#watcher.closed
  }

  /** Why the document is not watching (its watch could not be set up: `EWATCHLIMIT`…), or null. */
  get watchError() {
    return this.#watchError
  }

  /**
   * How the file was recovered at open (`recoverFromBackup`): the good backup
   * it was restored from and the copy of the bad bytes; null when it was not.
   */
  get recovery() {
    return this.#recovery
  }

  /** The current value: unsaved edits, and accepted but not yet written `set`/`update` calls, applied. */
  get() {
    let value = this.#edits === null ? this.#value : this.#edits.mine
    for (const op of this.#queue) {
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
    return this.#edits !== null
  }

  /** The unresolved conflict (as in the last 'conflict' event), or null. */
  get conflict() {
    return this.#conflict === null ? null : this.#conflictPayload(this.#conflict)
  }

  /**
   * Changes the value locally without saving (`get()` includes it): `fn` gets a
   * copy and returns the next value or mutates the copy. The edit is saved by
   * `save()` (or after `saveDelayMs`), merged with whatever changed on disk meanwhile.
   */
  edit(fn) {
    this.#assertOpen()
    if (typeof fn !== 'function') throw typeError('fn', 'a function')
    // Checked like set() (ERR_INVALID_ARG_VALUE, nothing changed): a value the
    // file cannot hold would only fail later, at a merge or a write.
    const next = this.#applyEdit(fn)
    // (Edits on top of a kept failed write make it the user's own.)
    this.#edits = { base: this.#edits?.base ?? this.#value, mine: next }
    this.#prepareSpare()
    if (this.#conflict !== null) {
      try {
        this.#reconsiderConflict()
      } catch (error) {
        // The conflict stays as it was; the edit is kept.
        this.#emit('error', this.#mergeFailure(error))
      }
    }
    // Infinity (like no saveDelayMs): saved only by save()/close().
    if (Number.isFinite(this.#options.saveDelayMs)) {
      clearTimeout(this.#saveTimer)
      this.#saveTimer = setTimeout(() => {
        this.#saveTimer = null
        this.save().catch((error) => {
          // A conflict was announced by its own event; anything else is an error.
          if (error.code !== 'ECONFLICT') this.#emit('error', error)
        })
      }, this.#options.saveDelayMs)
    }
    return next
  }

  /**
   * Saves the unsaved edits under the exclusive lock, three-way merged with
   * what changed on disk since they began. Rejects with ECONFLICT (edits kept)
   * when they conflict; resolves with the saved value.
   */
  save() {
    if (this.#closed) return Promise.reject(coded('ECLOSED', `the document ${this.#filePath} is closed`, { filePath: this.#filePath }))
    clearTimeout(this.#saveTimer)
    this.#saveTimer = null
    if (this.#conflict !== null) return Promise.reject(this.#conflictError(this.#conflict))
    if (this.#edits === null) return this.flush().then(() => this.get())
    return this.#enqueue({ kind: 'edits' })
  }

  /** Drops the unsaved edits (and an unresolved conflict); returns the value without them. */
  discard() {
    clearTimeout(this.#saveTimer)
    this.#saveTimer = null
    clearTimeout(this.#saveRetryTimer)
    this.#saveRetryTimer = null
    this.#edits = null
    if (this.#conflict !== null) {
      this.#audit('conflict-resolved', 'theirs', 'the unsaved edits were discarded')
      this.#removePreserved(this.#conflict)
      this.#conflict = null
    }
    this.#prepareSpare()
    return this.get()
  }

  /**
   * Fresh from disk when it changed, else the cached value; pending edits applied.
   * Cheap when nothing changed: one stat; the file is read (under the shared
   * lock) and hashed only when its stat differs from the last one we saw.
   */
  async read() {
    this.#assertOpen()
    const seen = await statKey(this.#filePath)
    if (seen !== null && seen === this.#statKey) return this.get()
    await this.#withReadLock(async () => {
      const text = await this.#readText()
      if (text !== null && text !== this.#text) await this.#takeFromDisk(text, 'read')
    })
    this.#statKey = seen
    return this.get()
  }

  /** Read-modify-write under the exclusive lock; resolves with the new value once durable. */
  update(fn) {
    if (typeof fn !== 'function') return Promise.reject(typeError('fn', 'a function'))
    return this.#enqueue({ kind: 'update', fn })
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
    const last = this.#queue[this.#queue.length - 1]
    if (last?.kind === 'set' && !last.started) {
      // Coalesce: the queued write now carries this value; both callers wait for it.
      last.value = value
      return new Promise((resolve, reject) => last.waiters.push({ resolve, reject }))
    }
    return this.#enqueue({ kind: 'set', value })
  }

  /**
   * Resolves when everything accepted so far is written (through lock-timeout
   * retries); rejects with the error of the last pending call if it failed.
   */
  async flush() {
    const last = this.#queue[this.#queue.length - 1]
    if (last !== undefined) {
      // Calls complete in order: when the last one settles, all before it did.
      await new Promise((resolve, reject) => last.waiters.push({ resolve, reject }))
    }
    if (this.#draining !== null) await this.#draining
  }

  /**
   * Writes what is pending, waiting for the lock up to `closeAttempts` lock
   * timeouts, then closes. If writes remain, rejects with `EUNSAVED` carrying
   * them (`unsaved`) instead of dropping them silently.
   */
  async close() {
    if (this.#closed) return
    this.#closing = true
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer)
      this.#retryTimer = null
      this.#schedule()
    }
    let editsError = null
    if (this.#edits !== null) await this.save().catch((error) => (editsError = error))
    try {
      await this.flush()
    } catch {
      // Each failed call was rejected to its own caller already.
    }
    this.#closed = true
    this.#spare = null
    this.#watcher?.close()
    this.#targetWatcher?.watcher.close()
    clearTimeout(this.#saveTimer)
    clearTimeout(this.#saveRetryTimer)
    const unsaved = this.#unsavedAtClose.map((op) => (op.kind === 'set' ? { set: op.value } : op.kind === 'update' ? { update: op.fn } : { edits: this.#edits?.mine }))
    if (this.#edits !== null && !unsaved.some((u) => 'edits' in u)) unsaved.push({ edits: this.#edits.mine })
    if (unsaved.length > 0) {
      const why = editsError?.code === 'ECONFLICT' || this.#conflict !== null ? 'conflict with the file (unresolved)' : 'could not get the lock before close()'
      throw coded('EUNSAVED', `${unsaved.length} write(s) to ${this.#filePath} were not saved: they ${why}`, {
        filePath: this.#filePath,
        unsaved,
        conflict: this.conflict,
      })
    }
  }

  #enqueue(op) {
    this.#assertOpen()
    return new Promise((resolve, reject) => {
      op.waiters = [{ resolve, reject }]
      this.#queue.push(op)
      this.#schedule()
    })
  }

  // Calls made in the same tick join one write.
  #schedule() {
    if (this.#draining !== null || this.#retryTimer !== null) return
    // #drain settles every caller itself; this catch only keeps a failure of
    // its own from ever becoming an unhandled rejection.
    this.#draining = Promise.resolve()
      .then(() => this.#drain())
      .catch((error) => this.#emit('error', this.#failure(error, 'writing')))
  }

  async #drain() {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice()
        try {
          if ((await this.#drainBatch(batch)) === 'stop') return
        } catch (error) {
          // Anything unforeseen (a bug; every expected failure is handled in
          // #drainBatch): the batch's callers are rejected with a coded error,
          // never left waiting, and unsaved edits stay as they are.
          this.#removeFromQueue(batch)
          const failure = this.#failure(error, 'writing')
          for (const op of batch) for (const w of op.waiters) w.reject(failure)
          if (this.listenerCount('error') > 0) this.#emit('error', failure)
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
    for (const op of batch) op.started = true
    let written
    let attempted // the value this batch tried to write
    this.#drainAbort = new AbortController()
    try {
      written = await this.#manager.withLock(this.#filePath, async () => {
        const text = await this.#readText()
        if (text !== null && text !== this.#text) await this.#takeFromDisk(text, 'write')
        let value = this.#value
        for (const op of batch) {
          try {
            if (op.kind === 'edits') {
              value = await this.#mergeEditsInto(value, op)
            } else {
              value = op.kind === 'set' ? op.value : await this.#applyUpdate(op.fn, value)
            }
            op.result = value
          } catch (error) {
            op.error = error
          }
        }
        attempted = value
        await this.#write(value)
        return value
      }, { timeoutMs: this.#options.timeoutMs, signal: this.#drainAbort.signal })
    } catch (caught) {
      // Every failure reaches the callers with a code (an uncoded one is EINTERNAL).
      const error = this.#failure(caught, 'writing')
      for (const op of batch) op.started = false
      if (error.code === 'ABORT_ERR' && this.#cancelled !== null) {
        // cancel() while this retry waited for the lock: nothing was written.
        this.#removeFromQueue(batch)
        for (const op of batch) for (const w of op.waiters) w.reject(this.#cancelled)
        return
      }
      if (error.code === 'ELOCKTIMEOUT' && !this.#closing) {
        this.#waitForLock(error)
        return 'stop'
      }
      if (error.code === 'ELOCKTIMEOUT' && ++this.#closeTimeouts < CLOSE_ATTEMPTS) return
      if (error.code === 'ELOCKTIMEOUT') {
        // close() gives up here: it rejects the rest with EUNSAVED.
        const unsaved = this.#queue.splice(0)
        const failed = coded('EUNSAVED', `the write to ${this.#filePath} could not get the lock before close()`, { filePath: this.#filePath })
        for (const op of unsaved) for (const w of op.waiters) w.reject(failed)
        this.#unsavedAtClose = unsaved
        return 'stop'
      }
      this.#removeFromQueue(batch)
      this.#keepFailedWrite(error, batch, attempted)
      for (const op of batch) for (const w of op.waiters) w.reject(error)
      // Also tell whoever watches the document (a UI), not only the callers.
      if (this.listenerCount('error') > 0) this.#emit('error', error)
      return
    }
    this.#removeFromQueue(batch)
    this.#retryDelay = RETRY_FIRST_MS
    try {
      await this.#afterWrite(batch, written)
    } catch (error) {
      // The write landed; rebasing edits it did not carry failed: they stay
      // as they were, for the next save() to merge (or to reject, coded).
      this.#emit('error', this.#mergeFailure(error))
    }
    // A big document resolves a write once the spare copy of its new value is
    // made (in slices, the lock released): an edit() right after finds it.
    if (this.#big) await this.#prepareSpare()
    for (const op of batch) {
      for (const w of op.waiters) (op.error ? w.reject(op.error) : w.resolve(op.result))
    }
    this.#emit('saved', { filePath: this.#filePath, value: written, operations: batch.length })
  }

  // Any exception on the write and merge paths as a coded error: one with a
  // code as it is; anything else (a bug, something unforeseen) as EINTERNAL
  // with the original as `cause`.
  #failure(error, what) {
    if (typeof error?.code === 'string') return error
    return new FileLockError('EINTERNAL', `${what} ${this.#filePath} failed unexpectedly: ${error?.message ?? String(error)}`, { filePath: this.#filePath, cause: error })
  }

  // A merge of unsaved edits that threw (mergeJson refused a value, or failed
  // unexpectedly), as a coded error (the merge's code, else EINTERNAL). The
  // edits are kept, unsaved: save() tries again, discard() drops them.
  #mergeFailure(error) {
    const code = typeof error?.code === 'string' ? error.code : 'EINTERNAL'
    return new FileLockError(code, `the unsaved edits of ${this.#filePath} could not be merged with the file (${error?.message ?? String(error)}); they are kept, unsaved`, { filePath: this.#filePath, cause: error })
  }

  // By identity: cancel() may have emptied the queue while the batch was in flight.
  #removeFromQueue(batch) {
    this.#queue = this.#queue.filter((op) => !batch.includes(op))
  }

  // A write failed on disk (full, read-only, I/O error): its callers are told,
  // but what it carried stays in the document as unsaved edits (`error.kept`)
  // and is saved again with backoff until the fault clears (or discard()).
  #keepFailedWrite(error, batch, attempted) {
    if (!KEEPABLE.has(error.code) || this.#closed || this.#conflict !== null || this.#readOnly !== null) return
    const carriedEdits = batch.some((op) => op.kind === 'edits')
    if (this.#edits !== null && !carriedEdits) return // their own edits; this write's value would hide them
    if (attempted === undefined) {
      // It failed before the batch was applied (taking the lock wrote to the
      // same failing disk): keep what the caller sees, the batch applied to it.
      try {
        attempted = this.#edits === null ? this.#value : this.#edits.mine
        for (const op of batch) {
          if (op.kind === 'set') attempted = op.value
          else if (op.kind === 'update') attempted = applyUpdate(op.fn, attempted, false)
        }
      } catch {
        return
      }
    }
    // `kept`: these edits are a write that failed, not the user's own; a later
    // write that clashes with them wins (it is newer).
    this.#edits = { base: this.#value, mine: deepFreeze(attempted), kept: true }
    error.kept = true
    this.#scheduleSaveRetry()
  }

  #scheduleSaveRetry() {
    if (this.#saveRetryTimer !== null) return
    const delay = this.#saveRetryDelay
    this.#saveRetryDelay = Math.min(delay * 2, SAVE_RETRY_MAX_MS)
    this.#saveRetryTimer = setTimeout(() => {
      this.#saveRetryTimer = null
      if (this.#closed || this.#edits === null) return
      this.save().then(
        () => (this.#saveRetryDelay = RETRY_FIRST_MS),
        (error) => {
          // A kept write scheduled the next try itself; a conflict has its own event.
          if (!error.kept && error.code !== 'ECONFLICT') this.#emit('error', error)
        },
      )
    }, delay)
    // Pending retries do not keep Node alive: close() saves what is left (or reports it).
    this.#saveRetryTimer.unref?.()
  }

  // The writes stay queued; say so, and try again later.
  #waitForLock(error) {
    const delay = this.#retryDelay
    this.#retryDelay = Math.min(Math.max(delay * 2, RETRY_FIRST_MS), RETRY_MAX_MS)
    const retry = () => {
      clearTimeout(this.#retryTimer)
      this.#retryTimer = null
      this.#schedule()
    }
    // Drops the writes queued now. A retry already waiting for the lock is
    // aborted (its writes rejected too); one already writing lands and resolves.
    const cancel = () => {
      clearTimeout(this.#retryTimer)
      this.#retryTimer = null
      const cancelled = coded('ECANCELED', `the pending write of ${this.#filePath} was cancelled`, { filePath: this.#filePath })
      const dropped = this.#queue.filter((op) => !op.started)
      this.#removeFromQueue(dropped)
      for (const op of dropped) for (const w of op.waiters) w.reject(cancelled)
      if (this.#drainAbort !== null && this.#queue.some((op) => op.started)) {
        this.#cancelled = cancelled
        this.#drainAbort.abort(cancelled)
      }
    }
    this.#retryTimer = setTimeout(retry, delay)
    this.#emit('lock-timeout', {
      filePath: this.#filePath,
      waitedMs: error.waitedMs,
      holder: error.holder ?? null,
      pending: this.#queue.length,
      retryInMs: delay,
      retry,
      cancel,
    })
  }

  // Under the shared lock; without it where no lock can be made (read-only).
  // A writer holding the lock longer than READ_LOCK_WAIT_MS does not hold up
  // reads: our writers replace the file by rename, so reading without the lock
  // gives a whole version (the one before that writer's).
  async #withReadLock(fn) {
    if (this.#readOnly !== null) return fn()
    try {
      return await this.#manager.withLock(this.#filePath, fn, { exclusive: false, timeoutMs: READ_LOCK_WAIT_MS, retries: 1 })
    } catch (error) {
      if (error.code !== 'ELOCKTIMEOUT') throw error
      return fn()
    }
  }

  async #readText() {
    // Never blocks (FIFOs, devices refused: ENOTFILE) nor reads more than maxBytes (ETOOBIG).
    const bytes = await readRegular(this.#filePath, this.#maxBytes)
    if (bytes === null) return null
    try {
      return utf8.decode(bytes)
    } catch {
      // Not text: never decoded lossily (that would rewrite it with U+FFFD).
      let backupPath = null
      try {
        backupPath = await this.#backup(bytes, 'corrupt')
      } catch {
        // Reported below without a copy.
      }
      throw coded('ECORRUPT', `${this.#filePath} is not valid UTF-8 text; it was left untouched${backupPath ? ` and copied to ${backupPath}` : ''}`, { filePath: this.#filePath, backupPath })
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
        backupPath = await this.#backup(text, 'corrupt')
        where = `copied to ${backupPath}`
      } catch (error) {
        where = `could not be copied aside (${error.message})`
      }
      throw coded('ECORRUPT', `${this.#filePath} does not hold a JSON object or array (${cause.message}); it was left untouched and ${where}`, { filePath: this.#filePath, backupPath })
    }
    return value
  }

  // Takes a text read from disk as the new cached value (`parsed`: its value,
  // when the caller has parsed it already).
  async #accept(text, parsed) {
    const value = parsed ?? (await this.#parse(text))
    if (text.length > BIG_TEXT) await this.#numbers.readOffThread(text, value)
    else this.#numbers.read(text, value)
    // Its text is what the native merge gets, unless it holds numbers JS
    // cannot (the merge must see the numbers JS has).
    this.#value = markClean(value, this.#numbers.exact ? withoutBom(text) : undefined)
    this.#text = text
    this.#prepareSpare()
  }

  // Whether this document's work is done in slices (json-values.js).
  get #big() {
    return this.#text !== null && this.#text.length > BIG_TEXT
  }

  // update(fn) applied to `value`: fn gets a copy; the result is checked and
  // frozen as set() does (documentValue). In slices for a big document.
  async #applyUpdate(fn, value) {
    if (!this.#big) return applyUpdate(fn, value, false)
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

  // edit(fn) applied to what get() gives: on the spare copy, taken in place,
  // when there is one (a big document: no copy of it is made now), else as update() does.
  #applyEdit(fn) {
    const current = this.get()
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
    return this.#edits === null ? this.#value : this.#edits.mine
  }

  // A big document keeps a copy of what the next edit()/update() changes,
  // made ahead in slices (json-values.js makeSpare): edit() is synchronous
  // and could not copy a big value without a long stall.
  // Resolves when the spare copy of what the next edit() starts from is ready
  // (or cannot be made: edits then copy at once).
  #prepareSpare() {
    if (this.#closed || !this.#big) return Promise.resolve()
    if (this.#sparing !== null) return this.#sparing
    const of = this.#spareBase()
    if (this.#spare !== null && this.#spare.of === of) return Promise.resolve()
    this.#spare = null
    this.#sparing = makeSpare(of, () => (this.#closed ? null : this.#spareBase())).then(
      (spare) => {
        this.#sparing = null
        if (this.#closed) return undefined
        if (spare !== null && spare.of === this.#spareBase()) {
          this.#spare = spare
          return undefined
        }
        return this.#prepareSpare()
      },
      // A value with no JSON text (a BigInt in it): no spare; edits copy it then.
      () => {
        this.#sparing = null
      },
    )
    return this.#sparing
  }

  // The three-way merge of document values, off the JS thread; `merged` frozen.
  // BigInts (only unsaved edits can hold them: what is read gives numbers) go
  // through it as their digits and come back where the merge kept them.
  async #merge(base, mine, theirs, favor) {
    const big = this.#big
    const arrayKey = this.#options.arrayKey
    const sides = [await mergeTextOf(base, 'base', big), await mergeTextOf(mine, 'mine', big), await mergeTextOf(theirs, 'theirs', big)]
    // The merged value shares with theirs (frozen) what the merge kept of it.
    const result = await mergeModule().mergeTexts(...sides.map((side) => side.text), { arrayKey, favor, breathe: big ? breathe : undefined, theirsValue: theirs })
    const withBigInts = sides.some((side) => side.bigints !== null)
    for (const [i, value] of [base, mine].entries()) {
      if (sides[i].bigints !== null) putBigIntsBack(result.merged, value, sides[i].bigints, arrayKey)
    }
    deepFreeze(result.merged)
    // A value holding BigInts is not what JSON.parse gives: not clean.
    if (!withBigInts) markClean(result.merged)
    return result
  }

  // Another writer changed the file (seen by `origin`: 'watch', 'read' or the
  // re-read before a 'write'): take the new version, say what changed, and
  // rebase unsaved edits onto it. Called with the file locked (shared or exclusive).
  // One at a time: a read() and a watch event may both find the same new text.
  #takeFromDisk(text, origin, parsed) {
    const taking = this.#taking.then(() => (text === this.#text ? undefined : this.#takeNewText(text, origin, parsed)))
    this.#taking = taking.catch(() => {})
    return taking
  }

  async #takeNewText(text, origin, parsed) {
    const old = this.#value
    await this.#accept(text, parsed)
    const value = this.#value
    if (!this.#opened) return
    const heard = this.listenerCount('external-change') > 0 || this.#manager.listenerCount('external-change') > 0
    const changes = heard ? await this.#diff(old, value) : []
    const reloaded = this.#edits === null
    this.#audit('external-change', reloaded ? 'reloaded' : 'pending', `${changes.length} change(s), seen at ${origin}`)
    this.#emit('external-change', { filePath: this.#filePath, oldValue: old, newValue: value, changes, reloaded, origin })
    if (this.#edits !== null && this.#conflict === null && origin !== 'write') await this.#rebaseEdits(value)
  }

  // Unsaved edits meet a new version of the file: merge them onto it. The
  // merge runs off the JS thread; edits made meanwhile are merged again.
  async #rebaseEdits(theirs) {
    for (;;) {
      const edits = this.#edits
      // Saved, discarded, in conflict, or a newer version arrived (its own take rebases).
      if (edits === null || this.#conflict !== null || this.#value !== theirs) return
      const { base, mine, kept } = edits
      let result
      try {
        // A kept failed write is older than the change that just arrived: it yields.
        result = await this.#merge(base, mine, theirs, kept ? 'theirs' : undefined)
      } catch (error) {
        // The new version is taken; the edits stay as they were (save() merges
        // them again, or rejects with this code).
        if (this.#edits === edits) this.#emit('error', this.#mergeFailure(error))
        return
      }
      if (this.#edits !== edits) continue
      if (this.#conflict !== null || this.#value !== theirs) return
      if (result.conflicts.length > 0 && !kept) {
        this.#raiseConflict(base, mine, theirs, result)
        return
      }
      if (kept && deepEqual(result.merged, theirs)) {
        this.#edits = null
        return
      }
      this.#edits = { base: theirs, mine: result.merged, kept }
      this.#prepareSpare()
      await this.#announceMerge(base, mine, theirs, result.merged)
      return
    }
  }

  // An 'edits' op of a write batch: the edits merged into `value` (the file as
  // it is now, plus the ops of this batch before this one).
  async #mergeEditsInto(value, op) {
    if (this.#conflict !== null) throw this.#conflictError(this.#conflict)
    const edits = this.#edits
    if (edits === null) return value // discarded meanwhile
    if (deepEqual(edits.base, value)) {
      op.savedEdits = edits
      return edits.mine
    }
    // A merge that throws rejects this save() with a coded error; the edits
    // are kept (op.savedEdits unset) and the rest of the batch is written.
    const merge = async (favor) => {
      try {
        return await this.#merge(edits.base, edits.mine, value, favor)
      } catch (error) {
        op.savedEdits = undefined
        throw this.#mergeFailure(error)
      }
    }
    const result = await merge(undefined)
    op.savedEdits = edits
    if (result.conflicts.length === 0) {
      await this.#announceMerge(edits.base, edits.mine, value, result.merged)
      return result.merged
    }
    const policy = this.#options.onConflict
    if (policy === 'ask') {
      op.savedEdits = undefined
      this.#raiseConflict(edits.base, edits.mine, value, result)
      throw this.#conflictError(this.#conflict)
    }
    // The policy decides, in this very write (the file is locked): keep the
    // file as it was and both versions first, as a prompted resolution would.
    const current = await this.#readText()
    if (current !== null) await this.#backup(current, 'json')
    await this.#preserveBoth(edits.mine, value).catch(() => null)
    const resolved = policy === 'merged' ? result.merged : (await merge(policy)).merged
    this.#audit('conflict', 'pending', result.conflicts.map((c) => `${c.kind} at ${c.path}`).join('; '))
    this.#audit('conflict-resolved', policy, `by the onConflict policy: ${result.conflicts.map((c) => c.path).join(', ')}`)
    this.#emit('conflict', { filePath: this.#filePath, base: edits.base, mine: edits.mine, theirs: value, merged: result.merged, conflicts: result.conflicts, policy, resolve: () => Promise.resolve(resolved) })
    return resolved
  }

  // What changed from `before` to `after` by JSON path; [] when it cannot be
  // told (the diff threw): a report, never a failure.
  async #diff(before, after) {
    try {
      const big = this.#big
      const [from, to] = [await mergeTextOf(before, 'before', big), await mergeTextOf(after, 'after', big)]
      return await mergeModule().diffTexts(from.text, to.text, this.#options.arrayKey, big ? breathe : undefined)
    } catch {
      return []
    }
  }

  async #announceMerge(base, mine, theirs, merged) {
    const [fromMine, fromTheirs] = await Promise.all([this.#diff(base, mine), this.#diff(base, theirs)])
    this.#audit('merged', 'applied', `${fromMine.length} local change(s) merged with ${fromTheirs.length} from the file`)
    this.#emit('merged', { filePath: this.#filePath, base, mine, theirs, merged, fromMine, fromTheirs })
  }

  // After a write: edits it saved are done; edits still unsaved (made during the
  // write, or not part of it) are rebased onto what was written, quietly.
  async #afterWrite(batch, written) {
    const saved = batch.find((op) => op.savedEdits !== undefined && !op.error)?.savedEdits
    for (;;) {
      const edits = this.#edits
      if (saved !== undefined && edits === saved) {
        this.#edits = null
        return
      }
      if (edits === null || this.#conflict !== null || this.#value !== written || deepEqual(edits.base, written)) return
      const base = saved === undefined ? edits.base : saved.mine
      const kept = edits.kept === true
      const result = await this.#merge(base, edits.mine, written, kept ? 'theirs' : undefined)
      if (this.#edits !== edits) continue // edited again during the merge
      if (this.#conflict !== null || this.#value !== written) return
      if (kept || result.conflicts.length === 0) {
        this.#edits = deepEqual(result.merged, written) ? null : { base: written, mine: result.merged, kept }
        this.#prepareSpare()
      } else {
        this.#raiseConflict(base, edits.mine, written, result)
      }
      return
    }
  }

  // As the document would write them (BigInts of unsaved edits as their digits).
  async #preserveBoth(mine, theirs) {
    const text = (value) => `${new ExactNumbers().stringify(value, this.#options.arrayKey)}\n`
    const [minePath, theirsPath] = await Promise.all([this.#backup(text(mine), 'conflict-mine'), this.#backup(text(theirs), 'conflict-theirs')])
    return { mine: minePath, theirs: theirsPath }
  }

  #raiseConflict(base, mine, theirs, result) {
    if (this.#conflict !== null) this.#removePreserved(this.#conflict)
    const conflict = { id: ++this.#conflictSeq, base, mine, theirs, merged: result.merged, conflicts: result.conflicts }
    // Both versions are kept beside the backups until the conflict is resolved.
    conflict.preserved = this.#preserveBoth(mine, theirs).then(
      (files) => (conflict.files = files),
      (error) => this.#audit('backup-failed', 'other', `could not keep both versions of a conflict: ${error.message}`),
    )
    this.#conflict = conflict
    this.#audit('conflict', 'pending', conflict.conflicts.map((c) => `${c.kind} at ${c.path}`).join('; '))
    const policy = this.#options.onConflict
    const payload = this.#conflictPayload(conflict)
    if (policy !== 'ask') {
      payload.policy = policy
      this.#emit('conflict', payload)
      this.#resolve(conflict.id, policy).catch((error) => this.#emit('error', error))
    } else {
      this.#emit('conflict', payload)
    }
  }

  // The user edited again while a conflict waits: the conflict is about the
  // newest edits now (and may be gone, e.g. they undid the clashing change).
  #reconsiderConflict() {
    const conflict = this.#conflict
    const mine = this.#edits.mine
    const result = mergeModule().mergeJson(conflict.base, mine, conflict.theirs, { arrayKey: this.#options.arrayKey })
    if (result.conflicts.length > 0) {
      Object.assign(conflict, { mine, merged: result.merged, conflicts: result.conflicts })
      return
    }
    this.#conflict = null
    this.#removePreserved(conflict)
    this.#edits = { base: conflict.theirs, mine: result.merged }
    this.#audit('conflict-resolved', 'merged', 'a later edit removed the clash')
    this.#announceMerge(conflict.base, mine, conflict.theirs, result.merged)
  }

  #conflictPayload(conflict) {
    return {
      filePath: this.#filePath,
      base: conflict.base,
      mine: conflict.mine,
      theirs: conflict.theirs,
      merged: conflict.merged,
      conflicts: conflict.conflicts,
      resolve: (choice) => this.#resolve(conflict.id, choice),
    }
  }

  #conflictError(conflict) {
    return coded('ECONFLICT', `unsaved edits of ${this.#filePath} conflict with the file at ${conflict.conflicts.map((c) => c.path).join(', ')}; resolve the conflict first`, {
      filePath: this.#filePath,
      conflicts: conflict.conflicts,
    })
  }

  // 'mine' / 'theirs': that side wins every conflict, the clean part of the merge
  // is kept; 'merged': the merge as is (base values where they conflict); or a value.
  async #resolve(id, choice) {
    const conflict = this.#conflict
    if (conflict === null || conflict.id !== id) {
      throw coded('ECONFLICT', `this conflict of ${this.#filePath} is no longer current (resolved, discarded, or superseded by a newer one)`, { filePath: this.#filePath })
    }
    const custom = !CONFLICT_CHOICES.includes(choice)
    if (custom && (choice === null || typeof choice !== 'object')) {
      throw rangeError('choice', "'mine', 'theirs', 'merged' or an object/array value", choice)
    }
    // A value of one's own is checked as set() checks one (ERR_INVALID_ARG_VALUE).
    let value = custom ? documentValue(choice, 'the chosen value') : choice
    if (!custom) {
      value = choice === 'merged' ? conflict.merged : (await this.#merge(conflict.base, conflict.mine, conflict.theirs, choice)).merged
    }
    await conflict.preserved
    // The file as it is before the resolution changes it.
    const current = await this.#readText()
    if (current !== null) await this.#backup(current, 'json')
    this.#conflict = null
    this.#edits = null
    const written = await this.#enqueue({ kind: 'set', value })
    this.#removePreserved(conflict)
    this.#audit('conflict-resolved', custom ? 'value' : choice, conflict.conflicts.map((c) => c.path).join(', '))
    return written
  }

  #removePreserved(conflict) {
    conflict.preserved.then(() => {
      for (const file of Object.values(conflict.files ?? {})) fsp.rm(file, { force: true }).catch(() => {})
    })
  }

  // Through a symbolic link the file changes in its own folder, where the
  // link's watch hears nothing: the file it leads to is watched too, and
  // watched anew when the link is pointed elsewhere (heard by the link's watch).
  #watchTarget() {
    let target = null
    try {
      target = this.#native.resolvePath(this.#filePath)
    } catch {
      // A dangling link or a vanished folder: the link's own watch hears its return.
    }
    if (target === this.#targetWatcher?.path) return
    this.#targetWatcher?.watcher.close()
    this.#targetWatcher = null
    if (target === null || target === this.#filePath || this.#closed) return
    try {
      const watcher = this.#manager.watch(target, (change) => this.#onFileChange(change), { persistent: false })
      watcher.on('error', (error) => this.#emit('error', error))
      this.#targetWatcher = { path: target, watcher }
    } catch (error) {
      // Not silent: the link's own watch still works; say the target is not watched.
      this.#audit('external-change', 'other', `not watching ${target} (where ${this.#filePath} leads): ${error.message}`)
      this.#emit('error', error)
    }
  }

  #onLinkOrFileChange(change) {
    if (this.#closed) return
    this.#watchTarget()
    this.#onFileChange(change)
  }

  // A watch event: look at the file (under the shared lock); one look at a time.
  #onFileChange(change) {
    if (this.#closed) return
    if (change.kind === 'deleted') {
      this.#text = null
      this.#statKey = null
      this.#audit('external-change', 'other', 'the file was deleted')
      this.#emit('external-change', { filePath: this.#filePath, oldValue: this.#value, newValue: null, changes: [], reloaded: false, origin: 'watch', deleted: true })
      return
    }
    this.#refresh()
  }

  #refresh(corruptSeen = false) {
    if (this.#refreshing !== null) {
      this.#refreshAgain = true
      return
    }
    this.#refreshing = this
      .#withReadLock(async () => {
        const text = await this.#readText()
        if (text === null || text === this.#text) return
        let parsed
        try {
          parsed = await parseFrozen(text, text.length > BIG_TEXT)
          if (parsed === null || typeof parsed !== 'object') throw new Error('not an object or array')
        } catch {
          // Perhaps half-way through someone's in-place write: look again soon,
          // and report only if it is still unreadable then.
          if (!corruptSeen) {
            setTimeout(() => this.#closed || this.#refresh(true), CORRUPT_RECHECK_MS).unref()
            return
          }
          parsed = undefined // taken as it is: ECORRUPT, with a copy of its bytes
        }
        await this.#takeFromDisk(text, 'watch', parsed)
      })
      .catch((error) => {
        if (this.#closed) return
        if (error.code === 'ELOCKTIMEOUT') {
          // A writer holds it; its write will be seen by the next event (or this retry).
          setTimeout(() => this.#closed || this.#refresh(), RETRY_FIRST_MS).unref()
          return
        }
        this.#emit('error', error)
      })
      .finally(() => {
        this.#refreshing = null
        if (this.#refreshAgain && !this.#closed) {
          this.#refreshAgain = false
          this.#refresh()
        }
      })
  }

  async #write(value) {
    const big = this.#big
    let text
    if (big && this.#numbers.exact && isClean(value)) {
      // Plain JSON data and no number text to keep: JSON.stringify's text, a range at a time.
      text = `${await stringifyInPieces(value, true)}\n`
      this.#numbers.plainText()
      await breathe()
    } else {
      if (big) await breathe()
      // JSON.stringify's text, with the inexact numbers read kept and BigInts' digits.
      text = `${this.#numbers.stringify(value, this.#options.arrayKey)}\n`
    }
    // A big text goes to Rust as a string: a 50 MB Buffer's external memory
    // would make V8 collect garbage on this thread at once.
    const bytes = big ? text : Buffer.from(text)
    const size = big ? Buffer.byteLength(text) : bytes.length
    // What this document could not read back is not written either (nothing is).
    if (size > this.#maxBytes) {
      throw coded('ETOOBIG', `the value to write to ${this.#filePath} is ${size} bytes as JSON, above the document's maxBytes (${this.#maxBytes}); nothing was written`, {
        filePath: this.#filePath,
        size,
        maxBytes: this.#maxBytes,
      })
    }
    await this.#assertLockedWhereWritten()
    try {
      // Through a symbolic link, native replaceFile writes the file it leads to now, and keeps the link.
      await this.#native.replaceFile(this.#filePath, bytes, this.#options.durability !== 'none')
    } catch (error) {
      const failed = fromNativeIo(error, this.#filePath)
      // A FIFO, device, folder or socket put in the file's place: refused, left as it is.
      if (/not a regular file/.test(failed?.message)) throw coded('ENOTFILE', failed.message, { filePath: this.#filePath })
      throw failed
    }
    // What a reader of the file gets (Dates as strings, no undefined members), read-only.
    // (A text with numbers put back reads differently: 1e400 is Infinity, not the null JSON has.)
    const spliced = this.#numbers.spliced
    this.#value = isClean(value) && !spliced ? value : await parseFrozen(text, big)
    this.#numbers.wrote(text, this.#value)
    // A text with numbers put back is not what the merge may be given.
    this.#value = markClean(this.#value, spliced ? undefined : text)
    this.#text = text
    this.#prepareSpare()
    this.#statKey = await statKey(this.#filePath)
  }

  // Called under the exclusive lock of a write. Through a symbolic link, the
  // lock was taken where the link led when it was granted, and the file is
  // written where it leads now: if the link was pointed elsewhere in between,
  // this lock does not cover the file written. Then EAGAIN: the write is kept
  // and retried (under the lock of the new target), never written unguarded.
  async #assertLockedWhereWritten() {
    let target
    try {
      target = this.#native.resolvePath(this.#filePath)
    } catch {
      return // replaceFile says what is wrong with the path
    }
    if (target === this.#filePath) return // not a link: locked by its own name
    try {
      // Held by this very write (the enclosing withLock): EDEADLOCK, at once.
      await this.#manager.withLock(target, () => {}, { timeoutMs: 0, retries: 1 })
    } catch (error) {
      if (error.code === 'EDEADLOCK') return
    }
    // The manager may remember this spelling as the file it named before it
    // became a link: the retry must resolve it again.
    this.#native.forgetSpelling(this.#filePath)
    throw coded('EAGAIN', `${this.#filePath} was pointed at ${target} while this write held the lock of its previous target; the write is kept and will be retried`, { filePath: this.#filePath })
  }

  // Beside the file the data lives in (through links: where they lead, as the
  // lock and the temp files), named to fit NAME_MAX as native code expects it.
  get #backupDir() {
    let file = this.#filePath
    try {
      file = this.#native.resolvePath(this.#filePath)
    } catch {
      // A closed manager or a vanished folder: beside the path as given.
    }
    return path.join(path.dirname(file), fitName('.', path.basename(file), '.backups'))
  }

  // Copies `text` into the backups folder as `<time>.<kind>`, keeping the newest
  // `backups` copies of each kind (so bad copies never push out good ones).
  async #backup(text, kind) {
    const dir = this.#backupDir
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    let backupPath = path.join(dir, `${stamp}.${kind}`)
    for (let n = 1; await exists(backupPath); n++) backupPath = path.join(dir, `${stamp}-${n}.${kind}`)
    const bytes = text // a string is written as UTF-8 by replaceFile itself
    await this.#native.replaceFile(backupPath, bytes, this.#options.durability !== 'none').catch((error) => {
      throw fromNativeIo(error, backupPath)
    })
    const same = (await fsp.readdir(dir)).filter((name) => name.endsWith(`.${kind}`)).sort()
    for (const name of same.slice(0, Math.max(0, same.length - this.#options.backups))) {
      await fsp.rm(path.join(dir, name), { force: true })
    }
    return backupPath
  }

  // Keeps the version found at open as a good backup (unless the newest one is
  // the same bytes): what `recoverFromBackup` restores if the file is later damaged.
  // Best effort: a full disk or a read-only folder must not stop the open.
  async #snapshot(text) {
    try {
      const newest = (await this.#backupsOf('json'))[0]
      if (newest !== undefined) {
        // Read safely and only as far as it could be the same bytes; compared
        // as text (no second copy of a big document's bytes made here).
        const size = Buffer.byteLength(text)
        const found = await readRegular(newest, size).catch(() => null)
        let same = false
        try {
          same = found?.length === size && utf8.decode(found) === text
        } catch {
          // Not UTF-8: not the same.
        }
        if (same) return
      }
      await this.#backup(text, 'json')
    } catch (error) {
      this.#audit('backup-failed', 'other', `could not keep a backup of ${this.#filePath}: ${error.message}`)
    }
  }

  // Backups of one kind, newest first.
  // Only regular files: anything else found there is never read (it could block).
  async #backupsOf(kind) {
    const dir = this.#backupDir
    const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])
    const names = entries.filter((entry) => entry.isFile() && entry.name.endsWith(`.${kind}`)).map((entry) => entry.name)
    return names.sort().reverse().map((name) => path.join(dir, name))
  }

  // The file is unreadable (its bytes already copied aside): put back the newest
  // good backup, or fail with ECORRUPT saying that none was usable.
  async #recover(corrupt) {
    for (const candidate of await this.#backupsOf('json')) {
      const text = await fsp.readFile(candidate, 'utf8').catch(() => null)
      let value
      try {
        value = parseJson(text)
      } catch {
        continue
      }
      if (value === null || typeof value !== 'object') continue
      this.#numbers.read(text, value) // the backup's inexact numbers keep their text
      await this.#write(value)
      this.#recovery = { backupPath: candidate, corruptPath: corrupt.backupPath }
      this.#audit('recovered', 'applied', `restored ${candidate}; the unreadable bytes are in ${corrupt.backupPath}`)
      return
    }
    corrupt.message += '; no good backup to recover from'
    throw corrupt
  }

  #audit(op, outcome, detail) {
    try {
      this.#native.recordDocumentEvent(op, this.#filePath, outcome, detail)
    } catch {
      // Auditing never fails the operation it records.
    }
  }

  #emitSafely(name, payload) {
    if (name === 'external-change' || name === 'conflict' || name === 'merged') this.#manager._documentEvent(name, payload)
    if (this.listenerCount(name) === 0) return
    try {
      this.emit(name, payload)
    } catch (error) {
      process.nextTick(() => {
        throw error
      })
    }
  }

  #assertOpen() {
    if (this.#closed) throw coded('ECLOSED', `the document ${this.#filePath} is closed`, { filePath: this.#filePath })
  }
}

// `fn` gets a copy, returns the next value (or mutates the copy and returns
// nothing). Not a preview: the result checked and copied as set() does
// (`documentValue`), so a value the file cannot hold never reaches a write or a merge.
function applyUpdate(fn, value, preview) {
  const copy = structuredClone(value)
  if (preview) {
    const next = fn(copy)
    return isThenable(next) ? value : next === undefined ? copy : next
  }
  const { result, name } = fnResult(fn, copy)
  return documentValue(result, name)
}

// What fn made of `copy`: its return value, or the copy it changed (and how
// to name it in an error); a promise is refused (fn runs under the lock).
function fnResult(fn, copy) {
  const next = fn(copy)
  if (isThenable(next)) throw typeError('fn', 'a synchronous function (it runs while the file is locked)')
  return next === undefined ? { result: copy, name: 'the value fn changed' } : { result: next, name: 'the value fn returned' }
}

function isThenable(value) {
  return value !== null && typeof value === 'object' && typeof value.then === 'function'
}

function rangeError(name, expected, value) {
  const error = new RangeError(`${name} must be ${expected}; got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
  error.code = 'ERR_OUT_OF_RANGE'
  return error
}


function typeError(name, expected) {
  const error = new TypeError(`${name} must be ${expected}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

module.exports = { JsonDocument, documentValue }
