// Scratch directories: each run gets a private, canonical temp dir (canonical so
// that it compares equal with the paths the library reports, e.g. `lock.filePath`),
// and whoever creates one removes it, whether the run passed or not.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A fresh private temp dir, canonical (symlinks such as macOS's /tmp resolved). */
export function makeScratchDir(prefix = 'flm-test-') {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
}

/**
 * Removes `dir` and everything in it; nothing if `dir` is unset or already gone.
 * Retried (Node's own EBUSY/EPERM retries: 40 ms more each time, ~2.2 s in
 * all) because on Windows a child process that was just killed may still have
 * a file in it open.
 */
export function removeDir(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 40 })
}

/**
 * One temp dir for a whole run (a bench), with a numbered subdir per scenario so
 * that no scenario sees another's files: `area.fresh('handoff')` → `<root>/003-handoff`.
 */
export function scratchArea(prefix) {
  const root = makeScratchDir(prefix)
  let counter = 0
  return {
    root,
    fresh(tag) {
      const dir = path.join(root, `${String(++counter).padStart(3, '0')}-${tag}`)
      fs.mkdirSync(dir)
      return dir
    },
    remove: () => removeDir(root),
  }
}
