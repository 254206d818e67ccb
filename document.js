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

const { EventEmitter } = require('node:events')
const { createHash } = require('node:crypto')
const fsp = require('node:fs/promises')
const path = require('node:path')

const RETRY_FIRST_MS = 200
// close() waits this many lock timeouts for pending writes before giving up (EUNSAVED).
const CLOSE_ATTEMPTS = 3
const RETRY_MAX_MS = 5000

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

function hashOf(text) {
  return createHash('sha256').update(text).digest('hex')
}

function coded(code, message, details) {
  const error = new Error(message)
  error.name = 'FileLockError'
  error.code = code
  Object.assign(error, details)
  return error
}

// replaceFile rejects with "CODE: message".
function fromNativeIo(error, filePath) {
  const match = /^([A-Z][A-Z0-9_]+): /.exec(error?.message ?? '')
  return match ? coded(match[1], error.message.slice(match[0].length), { filePath }) : error
}

class JsonDocument extends EventEmitter {
  #manager
  #native
  #filePath
  #options
  #value
  #hash = null
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

  constructor(manager, native, filePath, options) {
    super()
    this.#manager = manager
    this.#native = native
    this.#filePath = filePath
    this.#options = options
  }

  get filePath() {
    return this.#filePath
  }

  /** Opens (creating from `defaultValue` when missing) and reads the file once. */
  async _open() {
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
   * How the file was recovered at open (`recoverFromBackup`): the good backup
   * it was restored from and the copy of the bad bytes; null when it was not.
   */
  get recovery() {
    return this.#recovery
  }

  /** The current value, with accepted but not yet written `set`/`update` calls applied. */
  get() {
    let value = this.#value
    for (const op of this.#queue) value = op.kind === 'set' ? op.value : applyUpdate(op.fn, value, true)
    return value
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
    const text = await this.#manager.withLock(this.#filePath, () => this.#readText(), { exclusive: false })
    if (text !== null && hashOf(text) !== this.#hash) await this.#accept(text)
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
    try {
      await this.flush()
    } catch {
      // Each failed call was rejected to its own caller already.
    }
    this.#closed = true
    if (this.#unsavedAtClose.length > 0) {
      const unsaved = this.#unsavedAtClose
      throw coded('EUNSAVED', `${unsaved.length} write(s) to ${this.#filePath} could not get the lock before close()`, {
        filePath: this.#filePath,
        unsaved: unsaved.map((op) => (op.kind === 'set' ? { set: op.value } : { update: op.fn })),
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
    this.#draining = Promise.resolve().then(() => this.#drain())
  }

  async #drain() {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice()
        for (const op of batch) op.started = true
        let written
        try {
          written = await this.#manager.withLock(this.#filePath, async () => {
            const text = await this.#readText()
            if (text !== null && hashOf(text) !== this.#hash) await this.#accept(text)
            let value = this.#value
            for (const op of batch) {
              try {
                value = op.kind === 'set' ? op.value : applyUpdate(op.fn, value, false)
                op.result = value
              } catch (error) {
                op.error = error
              }
            }
            await this.#write(value)
            return value
          }, { timeoutMs: this.#options.timeoutMs })
        } catch (error) {
          for (const op of batch) op.started = false
          if (error.code === 'ELOCKTIMEOUT' && !this.#closing) return this.#waitForLock(error)
          if (error.code === 'ELOCKTIMEOUT' && ++this.#closeTimeouts < CLOSE_ATTEMPTS) continue
          if (error.code === 'ELOCKTIMEOUT') {
            // close() gives up here: it rejects the rest with EUNSAVED.
            const unsaved = this.#queue.splice(0)
            const failed = coded('EUNSAVED', `the write to ${this.#filePath} could not get the lock before close()`, { filePath: this.#filePath })
            for (const op of unsaved) for (const w of op.waiters) w.reject(failed)
            this.#unsavedAtClose = unsaved
            return
          }
          this.#queue.splice(0, batch.length)
          for (const op of batch) for (const w of op.waiters) w.reject(error)
          // Also tell whoever watches the document (a UI), not only the callers.
          if (this.listenerCount('error') > 0) this.#emitSafely('error', error)
          continue
        }
        this.#queue.splice(0, batch.length)
        this.#retryDelay = RETRY_FIRST_MS
        for (const op of batch) {
          for (const w of op.waiters) (op.error ? w.reject(op.error) : w.resolve(op.result))
        }
        this.#emitSafely('saved', { filePath: this.#filePath, value: written, operations: batch.length })
      }
    } finally {
      this.#draining = null
    }
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
    const cancel = () => {
      clearTimeout(this.#retryTimer)
      this.#retryTimer = null
      const dropped = this.#queue.splice(0)
      const cancelled = coded('ECANCELED', `the pending write of ${this.#filePath} was cancelled`, { filePath: this.#filePath })
      for (const op of dropped) for (const w of op.waiters) w.reject(cancelled)
    }
    this.#retryTimer = setTimeout(retry, delay)
    this.#emitSafely('lock-timeout', {
      filePath: this.#filePath,
      waitedMs: error.waitedMs,
      holder: error.holder ?? null,
      pending: this.#queue.length,
      retryInMs: delay,
      retry,
      cancel,
    })
  }

  async #readText() {
    try {
      return await fsp.readFile(this.#filePath, 'utf8')
    } catch (error) {
      if (error.code === 'ENOENT') return null
      throw error
    }
  }

  // Takes a text read from disk as the new cached value; a bad one is kept aside.
  async #accept(text) {
    let value
    try {
      value = JSON.parse(text)
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
    this.#value = value
    this.#hash = hashOf(text)
  }

  async #write(value) {
    const text = `${JSON.stringify(value, null, 2)}\n`
    try {
      await this.#native.replaceFile(this.#filePath, Buffer.from(text), this.#options.durability !== 'none')
    } catch (error) {
      throw fromNativeIo(error, this.#filePath)
    }
    this.#value = value
    this.#hash = hashOf(text)
    this.#statKey = await statKey(this.#filePath)
  }

  get #backupDir() {
    return path.join(path.dirname(this.#filePath), `.${path.basename(this.#filePath)}.backups`)
  }

  // Copies `text` into the backups folder as `<time>.<kind>`, keeping the newest
  // `backups` copies of each kind (so bad copies never push out good ones).
  async #backup(text, kind) {
    const dir = this.#backupDir
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    let backupPath = path.join(dir, `${stamp}.${kind}`)
    for (let n = 1; await exists(backupPath); n++) backupPath = path.join(dir, `${stamp}-${n}.${kind}`)
    await this.#native.replaceFile(backupPath, Buffer.from(text), this.#options.durability !== 'none').catch((error) => {
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
        const { size } = await fsp.stat(newest)
        if (size === Buffer.byteLength(text) && (await fsp.readFile(newest, 'utf8')) === text) return
      }
      await this.#backup(text, 'json')
    } catch (error) {
      this.#audit('backup-failed', 'other', `could not keep a backup of ${this.#filePath}: ${error.message}`)
    }
  }

  // Backups of one kind, newest first.
  async #backupsOf(kind) {
    const names = await fsp.readdir(this.#backupDir).catch(() => [])
    return names.filter((name) => name.endsWith(`.${kind}`)).sort().reverse().map((name) => path.join(this.#backupDir, name))
  }

  // The file is unreadable (its bytes already copied aside): put back the newest
  // good backup, or fail with ECORRUPT saying that none was usable.
  async #recover(corrupt) {
    for (const candidate of await this.#backupsOf('json')) {
      const text = await fsp.readFile(candidate, 'utf8').catch(() => null)
      let value
      try {
        value = JSON.parse(text)
      } catch {
        continue
      }
      if (value === null || typeof value !== 'object') continue
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

// `fn` gets a copy, returns the next value (or mutates the copy and returns nothing).
function applyUpdate(fn, value, preview) {
  const copy = structuredClone(value)
  const next = fn(copy)
  if (next !== null && typeof next === 'object' && typeof next.then === 'function') {
    if (preview) return value
    throw typeError('fn', 'a synchronous function (it runs while the file is locked)')
  }
  return next === undefined ? copy : next
}

function typeError(name, expected) {
  const error = new TypeError(`${name} must be ${expected}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

module.exports = { JsonDocument }
