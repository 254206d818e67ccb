// What the document benches (document.mjs, document-floor.mjs,
// update-phases.mjs) measure ours against, in one place: the roles document,
// the durable write by hand, and the increments of 4 processes — the
// reference (what a careful app does without this package: fs-native-extensions'
// lock on a lock file beside the data file, read, +1, write-file-atomic with
// fsync, unlock) and the floors.
//
// Invariant: every bench times the very same steps (a change here changes all).

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { ourLockChecks } from './libs.mjs'

const require = createRequire(import.meta.url)

/** The ~1.7 KB roles document the document rows write, its counter at `n`. */
export function rolesDocument(n = 0) {
  const roles = Array.from({ length: 12 }, (_, i) => ({ id: `role-${i}`, name: `Role number ${i}`, permissions: ['read', 'write', 'export', 'admin'].slice(0, 1 + (i % 4)) }))
  return { version: 1, n, roles }
}

/**
 * `text` written over `file` by hand, synchronously, as a careful app would:
 * temp file, write, [fsync,] rename, [directory fsync]. `unlockBeforeDirSync`
 * runs right after the rename (a lock let go before the directory fsync, as a
 * document commit does).
 */
export function writeByHand(file, text, durable, { unlockBeforeDirSync } = {}) {
  const temp = `${file}.${process.pid}.tmp`
  const fd = fs.openSync(temp, 'w')
  fs.writeSync(fd, text)
  if (durable) fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.renameSync(temp, file)
  unlockBeforeDirSync?.()
  if (durable) {
    const dirFd = fs.openSync(path.dirname(file), 'r')
    fs.fsyncSync(dirFd)
    fs.closeSync(dirFd)
  }
}

/** The lock file beside `file`, as both benches name it. */
export function lockPathOf(file) {
  return path.join(path.dirname(file), `.${path.basename(file)}.lock`)
}

/** One durable increment of `{ n }` in `file` per call, the reference's way. */
export function referenceIncrement(file) {
  const { tryLock, waitForLock, unlock } = require('fs-native-extensions')
  const writeFileAtomic = require('write-file-atomic')
  const lockFd = fs.openSync(lockPathOf(file), 'a+')
  return async () => {
    if (!tryLock(lockFd)) await waitForLock(lockFd)
    try {
      const value = JSON.parse(await fs.promises.readFile(file, 'utf8'))
      value.n += 1
      await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, { fsync: true })
    } finally {
      unlock(lockFd)
    }
  }
}

// The same increment without blocking the event loop, with the fewest hops a
// JS program can make: the lock waited for asynchronously (tryLock, else
// waitForLock), the small read synchronous, and the durable write in one trip
// to a worker thread, which lets the lock go right after the rename and then
// fsyncs the directory — the shape of a document commit, none of its checks.
// `checks`: plus what our lock checks once it holds the OS lock (as the
// handoff's floor does, bench/libs.mjs): the lock file is still the one at its
// path (a stat) and its holder record read, the record written in the
// worker's trip.
/** The floor of a durable increment that never blocks the event loop (see above). */
export function nonBlockingIncrement(file, { checks = false } = {}) {
  const { Worker } = require('node:worker_threads')
  const { tryLock, waitForLock } = require('fs-native-extensions')
  const lockPath = lockPathOf(file)
  const lockFd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
  const ours = checks ? ourLockChecks(lockPath, lockFd) : null
  const writer = new Worker(
    `const fs = require('node:fs')
     const { parentPort, workerData: { file, lockFd, record } } = require('node:worker_threads')
     const { unlock } = require(${JSON.stringify(require.resolve('fs-native-extensions'))})
     const byHand = import(${JSON.stringify(import.meta.url)})
     parentPort.on('message', async (text) => {
       const { writeByHand } = await byHand
       if (record !== null) fs.writeSync(lockFd, record, 0, record.length, 0)
       writeByHand(file, text, true, { unlockBeforeDirSync: () => unlock(lockFd) })
       parentPort.postMessage('durable')
     })`,
    { eval: true, workerData: { file, lockFd, record: ours?.record ?? null } },
  )
  process.once('disconnect', () => writer.terminate())
  return async () => {
    if (!tryLock(lockFd)) await waitForLock(lockFd)
    ours?.check()
    const value = JSON.parse(fs.readFileSync(file, 'utf8'))
    value.n += 1
    await new Promise((resolve) => {
      writer.once('message', resolve)
      writer.postMessage(`${JSON.stringify(value, null, 2)}\n`)
    })
  }
}
