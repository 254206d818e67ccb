'use strict'
// How every emitter of this package (manager, document, watcher) calls its
// listeners.
//
// Invariant: a listener that throws never breaks the bookkeeping of the code
// that emitted: its error is rethrown on its own tick, as an uncaught
// listener error would be anyway.

/** Emits `name` when someone listens; false when no one does. */
function emitSafely(emitter, name, payload) {
  if (emitter.listenerCount(name) === 0) return false
  try {
    emitter.emit(name, payload)
  } catch (error) {
    process.nextTick(() => {
      throw error
    })
  }
  return true
}

module.exports = { emitSafely }
