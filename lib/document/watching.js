'use strict'
// How a document sees other writers' changes as they happen: a watch of its
// file (and, through a link, of the file it leads to).
//
// Invariants:
// - Never silently blind: a watch that could not be set up is kept as
//   `error` (watchError) and reported; the document still sees changes at
//   read/write.
// - One look at the file at a time (a change heard meanwhile is looked at
//   after it); a file seen unparsable is looked at again before it is
//   reported (an editor may be half-way through an in-place write), and a
//   look the lock holds up is tried again later, never dropped.

const { BIG_TEXT, parseFrozen } = require('../json-values.js')
const { Retry } = require('../retry.js')
const { RETRY_FIRST_MS } = require('./write-queue.js')

// A file seen unparsable by a watch event is looked at again after this.
const CORRUPT_RECHECK_MS = 250

class Watching {
  #doc
  #watcher = null
  #targetWatcher = null // through a link: the watch of the file it leads to ({ path, watcher })
  error = null // the coded error of a watch that could not be set up
  #refreshing = null
  #refreshAgain = false
  // A writer holds the lock: its write will be seen by the next event (or this retry).
  #lockedOut = new Retry({ firstMs: RETRY_FIRST_MS, unref: true })
  #corruptRecheck = new Retry({ firstMs: CORRUPT_RECHECK_MS, unref: true })

  constructor(doc) {
    this.#doc = doc
  }

  get watching() {
    return this.#watcher !== null && !this.#watcher.closed
  }

  // External changes arrive through a watch of the file; without one (an OS
  // limit reached) the document still works and sees changes at read/write.
  // Never silently: `error` keeps why, and 'error' is emitted once the open
  // has resolved (so a listener added right after it hears it), or goes to
  // the manager's 'error' when the document has no listener.
  start() {
    const doc = this.#doc
    try {
      this.#watcher = doc.manager.watch(doc.filePath, (change) => this.#onLinkOrFileChange(change), { persistent: false })
      this.#watcher.on('error', (error) => doc.emit('error', error))
      this.#watchTarget()
    } catch (error) {
      this.error = error
      doc.audit('external-change', 'other', `not watching ${doc.filePath}: ${error.message}`)
      setImmediate(() => {
        if (doc.closed) return
        if (doc.heard('error')) doc.emit('error', error)
        else doc.manager._documentEvent('error', error)
      })
    }
    return this.#watcher !== null
  }

  close() {
    this.#watcher?.close()
    this.#targetWatcher?.watcher.close()
    this.#lockedOut.cancel()
    this.#corruptRecheck.cancel()
  }

  // Through a symbolic link the file changes in its own folder, where the
  // link's watch hears nothing: the file it leads to is watched too, and
  // watched anew when the link is pointed elsewhere (heard by the link's watch).
  #watchTarget() {
    const doc = this.#doc
    let target = null
    try {
      target = doc.native.resolvePath(doc.filePath)
    } catch {
      // A dangling link or a vanished folder: the link's own watch hears its return.
    }
    if (target === this.#targetWatcher?.path) return
    this.#targetWatcher?.watcher.close()
    this.#targetWatcher = null
    if (target === null || target === doc.filePath || doc.closed) return
    try {
      const watcher = doc.manager.watch(target, (change) => this.#onFileChange(change), { persistent: false })
      watcher.on('error', (error) => doc.emit('error', error))
      this.#targetWatcher = { path: target, watcher }
    } catch (error) {
      // Not silent: the link's own watch still works; say the target is not watched.
      doc.audit('external-change', 'other', `not watching ${target} (where ${doc.filePath} leads): ${error.message}`)
      doc.emit('error', error)
    }
  }

  #onLinkOrFileChange(change) {
    if (this.#doc.closed) return
    this.#watchTarget()
    this.#onFileChange(change)
  }

  // A watch event: look at the file (under the shared lock).
  #onFileChange(change) {
    const doc = this.#doc
    if (doc.closed) return
    if (change.kind === 'deleted') {
      doc.disk.text = null
      doc.disk.version = null
      doc.audit('external-change', 'other', 'the file was deleted')
      doc.emit('external-change', { filePath: doc.filePath, oldValue: doc.disk.value, newValue: null, changes: [], reloaded: false, origin: 'watch', deleted: true })
      return
    }
    this.refresh()
  }

  /** Looks at the file and takes a new version of it; one look at a time. */
  refresh(corruptSeen = false) {
    const doc = this.#doc
    const { disk } = doc
    if (this.#refreshing !== null) {
      this.#refreshAgain = true
      return
    }
    this.#refreshing = disk
      .withReadLock(async (lock) => {
        const text = await disk.readText(lock)
        if (text === null || text === disk.text) return
        let parsed
        try {
          parsed = await parseFrozen(text, text.length > BIG_TEXT)
          if (parsed === null || typeof parsed !== 'object') throw new Error('not an object or array')
        } catch {
          // Perhaps half-way through someone's in-place write: look again soon,
          // and report only if it is still unreadable then.
          if (!corruptSeen) {
            this.#corruptRecheck.later(() => doc.closed || this.refresh(true))
            return
          }
          parsed = undefined // taken as it is: ECORRUPT, with a copy of its bytes
        }
        await disk.takeFromDisk(text, 'watch', parsed)
      })
      .catch((error) => {
        if (doc.closed) return
        if (error.code === 'ELOCKTIMEOUT') {
          this.#lockedOut.later(() => doc.closed || this.refresh())
          return
        }
        doc.emit('error', error)
      })
      .finally(() => {
        this.#refreshing = null
        if (this.#refreshAgain && !doc.closed) {
          this.#refreshAgain = false
          this.refresh()
        }
      })
  }
}

module.exports = { Watching }
