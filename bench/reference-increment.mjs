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
