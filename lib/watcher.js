'use strict'
// Watcher: the JS face of a native file watch (see crates/file-lock-core/src/watch/).
//
// Invariants:
// - No change is delivered after close(); close() is idempotent.
// - A persistent watcher keeps Node alive until closed, like fs.watch; the
//   native callback itself is weak, so `persistent: false` never does.
// - A listener that throws is reported on its own tick and never stops the watch.

const { EventEmitter } = require('node:events')
const { FileLockError } = require('./errors.js')
const { emitSafely } = require('./emit.js')

let keepAlive = null
let persistentCount = 0

// One shared ref'd timer while any persistent watcher is open.
function holdOpen(wanted) {
  persistentCount += wanted ? 1 : -1
  if (persistentCount > 0 && keepAlive === null) keepAlive = setInterval(() => {}, 1 << 30)
  if (persistentCount === 0 && keepAlive !== null) {
    clearInterval(keepAlive)
    keepAlive = null
  }
}

class Watcher extends EventEmitter {
  #native = null
  #closed = false
  #persistent
  #onClose
  #onUnheardError

  /** @internal: created by `FileLockManager.watch`. */
  constructor(startNative, { persistent, onClose, onUnheardError }) {
    super()
    this.#persistent = persistent
    this.#onClose = onClose
    this.#onUnheardError = onUnheardError
    this.#native = startNative((change) => this.#deliver(change))
    if (persistent) holdOpen(true)
  }

  /** The watched path (its directory resolved). */
  get filePath() {
    return this.#native.filePath
  }

  /** `'events'` (OS notifications, no polling) or `'polling'` (network shares, or `poll: true`). */
  get mode() {
    return this.#native.mode
  }

  /** The share's file system (`nfs`, `smb`…) when the file is on a network drive, else null. */
  get network() {
    return this.#native.network ?? null
  }

  get closed() {
    return this.#closed
  }

  async close() {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    if (this.#persistent) holdOpen(false)
    this.#onClose(this)
  }

  #deliver(native) {
    if (this.#closed) return
    if (native.error !== undefined && native.error !== null) {
      const details = { filePath: this.filePath }
      this.#emitSafely('error', new FileLockError(native.errorCode ?? 'EIO', native.error, details))
      return
    }
    this.#emitSafely('change', {
      filePath: this.filePath,
      kind: native.kind,
      external: native.external,
      size: native.size ?? null,
      mtimeMs: native.mtimeMs ?? null,
      rescan: native.rescan === true,
    })
  }

  #emitSafely(name, payload) {
    // 'error' without a listener must not crash the app: it goes to the manager's.
    if (name === 'error' && this.listenerCount('error') === 0) {
      this.#onUnheardError(payload)
      return
    }
    emitSafely(this, name, payload)
  }
}

module.exports = { Watcher }
