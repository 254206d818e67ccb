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

export const LABELS = {
  ours: "file-lock-manager (ours, strategy 'os')",
  'ours-lockfile': "file-lock-manager (ours, strategy 'lockfile': PID lock file, polling waiters)",
  'fsnative-wait': 'fs-native-extensions (`await waitForLock(fd)`)',
  'fsnative-try': 'fs-native-extensions (`tryLock(fd)`, else `waitForLock(fd)`)',
  'proper-lockfile': 'proper-lockfile (mkdir `<file>.lock`)',
  base: `file-lock-manager at ${BASELINE} (baseline, strategy 'os')`,
  'base-lockfile': `file-lock-manager at ${BASELINE} (baseline, strategy 'lockfile')`,
}

export const SHORT = {
  ours: 'ours',
  'ours-lockfile': 'ours (lockfile)',
  'fsnative-wait': 'fs-native (wait)',
  'fsnative-try': 'fs-native (try)',
  'proper-lockfile': 'proper-lockfile',
  base: 'baseline',
  'base-lockfile': 'baseline (lockfile)',
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

export function libVersions() {
  const v = (p) => JSON.parse(fs.readFileSync(require.resolve(p), 'utf8')).version
  return {
    ours: v('../package.json'),
    'fs-native-extensions': v('fs-native-extensions/package.json'),
    'proper-lockfile': v('proper-lockfile/package.json'),
  }
}
