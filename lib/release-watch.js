'use strict'
// Release announcements: while a request waits for a file another process
// holds, the file's sidecar is watched here (fs.watch: inotify, on the event
// loop itself). A holder that lets go announces it (a chmod to the same
// permissions, `Sidecar::announce_release` in the engine); the event loop,
// woken by the kernel directly, has the native side retry at once (`nudge`)
// and gets the grant back in the same call. The handoff then costs one
// wake-up, where a waiter thread blocked in the kernel costs two (its own,
// then the event loop's).
//
// Invariants:
// - This only hastens a grant, never decides one. A watch that cannot be set
//   up, misses an event or fires for another reason changes nothing: the
//   native side retries on its own, then blocks a waiter thread in the kernel.
// - A watch outlives its last waiting request by `LINGER_MS` (a file taken in
//   turns by two processes is waited for again and again: one inotify watch,
//   not one per wait), and never keeps the process alive.

const fs = require('node:fs')

const LINGER_MS = 2000

class ReleaseWatches {
  #byPath = new Map() // sidecar path → { watcher, requests: Set<request id>, idleSince }
  #pathOf = new Map() // request id → sidecar path
  #sweeper = null
  #onAnnounced

  /** `onAnnounced(requestId)`: a release of the file `requestId` waits for was announced. */
  constructor(onAnnounced) {
    this.#onAnnounced = onAnnounced
  }

  /** Watches `sidecarPath` while `requestId` waits. */
  add(requestId, sidecarPath) {
    let entry = this.#byPath.get(sidecarPath)
    if (entry === undefined) {
      let watcher
      try {
        watcher = fs.watch(sidecarPath, { persistent: false }, () => this.#announced(sidecarPath))
      } catch {
        return // inotify limits, the sidecar just removed: the native side waits without us
      }
      watcher.on('error', () => this.#stopWatching(sidecarPath))
      entry = { watcher, requests: new Set(), idleSince: 0 }
      this.#byPath.set(sidecarPath, entry)
      this.#sweeper ??= setInterval(() => this.#sweep(), LINGER_MS).unref()
    }
    entry.requests.add(requestId)
    this.#pathOf.set(requestId, sidecarPath)
  }

  /** The request settled (granted, failed or aborted). */
  delete(requestId) {
    const sidecarPath = this.#pathOf.get(requestId)
    if (sidecarPath === undefined) return
    this.#pathOf.delete(requestId)
    const entry = this.#byPath.get(sidecarPath)
    entry.requests.delete(requestId)
    if (entry.requests.size === 0) entry.idleSince = Date.now()
  }

  /** Stops every watch (the manager closed). */
  close() {
    for (const sidecarPath of [...this.#byPath.keys()]) this.#stopWatching(sidecarPath)
  }

  #announced(sidecarPath) {
    // One nudge per file: the native side lets in whoever the file's queue puts first.
    const [first] = this.#byPath.get(sidecarPath)?.requests ?? []
    if (first !== undefined) this.#onAnnounced(first)
  }

  #sweep() {
    const before = Date.now() - LINGER_MS
    for (const [sidecarPath, entry] of this.#byPath) {
      if (entry.requests.size === 0 && entry.idleSince <= before) this.#stopWatching(sidecarPath)
    }
  }

  #stopWatching(sidecarPath) {
    const entry = this.#byPath.get(sidecarPath)
    if (entry === undefined) return
    this.#byPath.delete(sidecarPath)
    for (const requestId of entry.requests) this.#pathOf.delete(requestId)
    entry.watcher.close()
    if (this.#byPath.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper)
      this.#sweeper = null
    }
  }
}

module.exports = { ReleaseWatches }
