'use strict'
// Managers still open when the process ends.
//
// Invariant: a normal exit, or a fatal signal the app does not handle itself,
// closes every open manager first (releasing its locks, removing its lock
// files and sidecars); a signal then still kills the process as if we had
// never listened (signal-exit's approach). Only weak references are kept: a
// dropped manager is not held alive by this.

// Weak references to the native managers still open.
const openManagers = new Set()
let installed = false

function closeAllOnExit() {
  for (const ref of openManagers) ref.deref()?.close()
  openManagers.clear()
}

// Signals that would kill the process without an 'exit' event.
const FATAL_SIGNALS = process.platform === 'win32' ? ['SIGINT'] : ['SIGINT', 'SIGTERM', 'SIGHUP']

function onFatalSignal(signal) {
  if (process.listenerCount(signal) > 1) return // the app handles it; our exit hook runs later
  closeAllOnExit()
  for (const name of FATAL_SIGNALS) process.removeListener(name, onFatalSignal)
  process.kill(process.pid, signal)
}

/** Closes `native` (a NativeLockManager) at exit; returns the handle forget() takes. */
function closeAtExit(native) {
  const ref = new WeakRef(native)
  openManagers.add(ref)
  if (!installed) {
    installed = true
    process.once('exit', closeAllOnExit)
    for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal)
  }
  return ref
}

/** The manager was closed: nothing to do for it at exit. */
function forget(ref) {
  openManagers.delete(ref)
}

module.exports = { closeAtExit, forget }
