// Library adapters for the benchmark: every library is driven through the same
// two-step shape, `const release = await acquire(); await release()`, on a data
// file `file` that lives in a fresh temporary directory.
//
// - ours:          file-lock-manager, strategy 'os' (flock on the sidecar `.<name>.lock`,
//                  which it keeps open; it also writes a holder record into the sidecar).
// - ours-lockfile: file-lock-manager, strategy 'lockfile' (the lock is the O_EXCL-created
//                  `.<name>.lock`; waiters poll).
// - fsnative-wait: fs-native-extensions, `await waitForLock(fd)` / `unlock(fd)` on the same
//                  kind of sidecar `.<name>.lock`, opened once with fs.openSync (README usage).
// - fsnative-try:  the same, but `tryLock(fd)` first and `waitForLock(fd)` only if it is taken
//                  (the same fast-path shape ours uses internally: sync try, then wait).
// - proper-lockfile: `lockfile.lock(file, { retries: { retries: 1000, minTimeout: 1,
//                  maxTimeout: 20 }, realpath: false })`, which creates `<file>.lock/`.
// Floors, not libraries (run only when named in --libs; Linux): what a lock that
// never blocks the event loop could do with one wake-up instead of two.
// - floor-one-wake: fs-native-extensions' tryLock on the sidecar; a release is
//                  announced (unlock, then fchmod to the same mode: inotify's
//                  IN_ATTRIB) and the waiter's event loop, woken by fs.watch, tries
//                  again: no waiter thread. No checks, no holder record.
// - floor-one-wake-claim: the same plus the checks our lock makes once the OS
//                  lock is taken — the sidecar is still the file at its path (one
//                  stat: else two holders), the holder record read — and the record
//                  written after the hand-over.
// - base, base-lockfile: with FLM_BASELINE=/path/to/another/checkout (built), that
//                  checkout's file-lock-manager, side by side with ours in the same run
//                  (how a change is compared with the version before it).

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const BASELINE = process.env.FLM_BASELINE

export const LIBS = [
  'ours',
  'ours-lockfile',
  ...(BASELINE ? ['base', 'base-lockfile'] : []),
  'fsnative-wait',
  'fsnative-try',
  'proper-lockfile',
]

/** Accepted by --libs, never run by default. */
export const FLOORS = ['floor-one-wake', 'floor-one-wake-claim']

export const LABELS = {
  'floor-one-wake': 'floor: one wake-up (fs.watch on the sidecar, tryLock; release announced by fchmod)',
  'floor-one-wake-claim': 'floor: one wake-up + our claim (stat of the sidecar path, record read; record written after)',
  ours: "file-lock-manager (ours, strategy 'os')",
  'ours-lockfile': "file-lock-manager (ours, strategy 'lockfile': PID lock file, polling waiters)",
  'fsnative-wait': 'fs-native-extensions (`await waitForLock(fd)`)',
  'fsnative-try': 'fs-native-extensions (`tryLock(fd)`, else `waitForLock(fd)`)',
  'proper-lockfile': 'proper-lockfile (mkdir `<file>.lock`)',
  base: `file-lock-manager at ${BASELINE} (baseline, strategy 'os')`,
  'base-lockfile': `file-lock-manager at ${BASELINE} (baseline, strategy 'lockfile')`,
}

export const SHORT = {
  'floor-one-wake': 'one-wake floor',
  'floor-one-wake-claim': 'one-wake floor + claim',
  ours: 'ours',
  'ours-lockfile': 'ours (lockfile)',
  'fsnative-wait': 'fs-native (wait)',
  'fsnative-try': 'fs-native (try)',
  'proper-lockfile': 'proper-lockfile',
  base: 'baseline',
  'base-lockfile': 'baseline (lockfile)',
}

/**
 * What our lock does once it holds the OS lock on `lockPath` (open as `fd`),
 * for the floors that add it: `check()` — the file is still the one at its
 * path (one stat: else two processes can hold the lock) and its holder record
 * read — and `record`, the bytes written as the holder record after.
 */
export function ourLockChecks(lockPath, fd) {
  const { ino } = fs.fstatSync(fd)
  const scratch = Buffer.alloc(512)
  return {
    check() {
      if (fs.statSync(lockPath).ino !== ino) throw new Error(`${lockPath} was replaced`)
      fs.readSync(fd, scratch, 0, scratch.length, 0)
    },
    record: Buffer.from(`${JSON.stringify({ pid: process.pid, mode: 'exclusive', token: 0 })}\n`),
  }
}

export function sidecarOf(file) {
  return path.join(path.dirname(file), `.${path.basename(file)}.lock`)
}

export async function openLib(name, file) {
  switch (name) {
    case 'ours':
    case 'ours-lockfile':
    case 'base':
    case 'base-lockfile': {
      const baseline = name.startsWith('base')
      const { FileLockManager } = require(baseline ? path.join(BASELINE, 'index.js') : '../index.js')
      const m = new FileLockManager({ strategy: name.endsWith('lockfile') ? 'lockfile' : 'os' })
      // One attempt that waits up to 60 s in the kernel: no client-side backoff.
      const opts = { exclusive: true, timeoutMs: 60000, retries: 1 }
      return {
        async acquire() {
          const lock = await m.acquireLock(file, opts)
          return () => lock.release()
        },
        close: () => m.close(),
      }
    }
    case 'fsnative-wait':
    case 'fsnative-try': {
      const fne = require('fs-native-extensions')
      const { O_RDWR, O_CREAT } = fs.constants
      const fd = fs.openSync(sidecarOf(file), O_RDWR | O_CREAT, 0o600)
      const release = () => fne.unlock(fd)
      const acquire =
        name === 'fsnative-wait'
          ? async () => {
              await fne.waitForLock(fd)
              return release
            }
          : async () => {
              if (!fne.tryLock(fd)) await fne.waitForLock(fd)
              return release
            }
      return {
        acquire,
        close: async () => fs.closeSync(fd),
      }
    }
    case 'floor-one-wake':
    case 'floor-one-wake-claim':
      return oneWakeFloor(file, name.endsWith('claim'))
    case 'proper-lockfile': {
      const lockfile = require('proper-lockfile')
      const opts = { retries: { retries: 1000, minTimeout: 1, maxTimeout: 20 }, realpath: false }
      return {
        acquire: () => lockfile.lock(file, opts), // resolves to an async release function
        close: async () => {},
      }
    }
    default:
      throw new Error(`unknown library ${name}`)
  }
}

function oneWakeFloor(file, claim) {
  const fne = require('fs-native-extensions')
  const { O_RDWR, O_CREAT } = fs.constants
  const sidecar = sidecarOf(file)
  const fd = fs.openSync(sidecar, O_RDWR | O_CREAT, 0o600)
  const checks = ourLockChecks(sidecar, fd)
  let pending = null // the resolve of an acquire that waits
  const take = () => {
    if (!fne.tryLock(fd)) return false
    if (claim) checks.check()
    return true
  }
  const publish = () => fs.writeSync(fd, checks.record, 0, checks.record.length, 0)
  // Watching all along: the best case, no watch set up per wait.
  const watcher = fs.watch(sidecar, () => {
    if (pending !== null && take()) {
      const resolve = pending
      pending = null
      resolve(release)
      if (claim) queueMicrotask(publish) // after the caller's continuation
    }
  })
  const release = () => {
    fne.unlock(fd)
    fs.fchmodSync(fd, 0o600) // the announcement
  }
  return {
    acquire() {
      if (!take()) return new Promise((resolve) => (pending = resolve))
      if (claim) publish()
      return Promise.resolve(release)
    },
    close: async () => {
      watcher.close()
      fs.closeSync(fd)
    },
  }
}

export function libVersions() {
  const v = (p) => JSON.parse(fs.readFileSync(require.resolve(p), 'utf8')).version
  return {
    ours: v('../package.json'),
    'fs-native-extensions': v('fs-native-extensions/package.json'),
    'proper-lockfile': v('proper-lockfile/package.json'),
  }
}
