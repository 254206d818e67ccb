// The reference a durable document update is measured against, in one place
// for bench/document.mjs and bench/document-floor.mjs: what a careful app does
// without this package — fs-native-extensions' lock on a lock file beside the
// data file, read, +1, write-file-atomic with fsync, unlock.
//
// Invariant: both benches time the very same steps (a change here changes both).

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

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
/** The floor of a durable increment that never blocks the event loop (see above). */
export function nonBlockingIncrement(file) {
  const { Worker } = require('node:worker_threads')
  const { tryLock, waitForLock } = require('fs-native-extensions')
  const lockFd = fs.openSync(lockPathOf(file), 'a+')
  const writer = new Worker(
    `const fs = require('node:fs')
     const { parentPort, workerData: { file, temp, dir, lockFd } } = require('node:worker_threads')
     const { unlock } = require(${JSON.stringify(require.resolve('fs-native-extensions'))})
     parentPort.on('message', (text) => {
       const fd = fs.openSync(temp, 'w')
       fs.writeSync(fd, text)
       fs.fsyncSync(fd)
       fs.closeSync(fd)
       fs.renameSync(temp, file)
       unlock(lockFd)
       const dirFd = fs.openSync(dir, 'r')
       fs.fsyncSync(dirFd)
       fs.closeSync(dirFd)
       parentPort.postMessage('durable')
     })`,
    { eval: true, workerData: { file, temp: `${file}.${process.pid}.tmp`, dir: path.dirname(file), lockFd } },
  )
  process.once('disconnect', () => writer.terminate())
  return async () => {
    if (!tryLock(lockFd)) await waitForLock(lockFd)
    const value = JSON.parse(fs.readFileSync(file, 'utf8'))
    value.n += 1
    await new Promise((resolve) => {
      writer.once('message', resolve)
      writer.postMessage(`${JSON.stringify(value, null, 2)}\n`)
    })
  }
}
