// Where things are, for every user of the kit: the package is loaded by its own
// name (the exports map, as an app loads it, wherever its files live in the
// repository), and a lock's sidecar is named the one way the library names it.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/\/$/, '')
/** The package's entry file, resolved by self-reference; children `require()` it. */
export const PACKAGE = createRequire(import.meta.url).resolve('file-lock-manager')
/** The child scripts shared by the tests, the torture suite and the benches. */
export const KIT_CHILDREN = fileURLToPath(new URL('./children/', import.meta.url))
export const kitChild = (name) => path.join(KIT_CHILDREN, name)

/** The sidecar (OS lock) or lock file (PID strategy) of `file`: `.roles.json.lock` beside `roles.json`. */
export const sidecarOf = (file) => path.join(path.dirname(file), `.${path.basename(file)}.lock`)

/** Every entry under `root` (relative paths, sorted), recursively; none if `root` is gone. */
export function listRecursive(root) {
  try {
    return fs.readdirSync(root, { recursive: true }).map(String).sort()
  } catch (error) {
    if (error.code === 'ENOENT') return []
    throw error
  }
}

/** Temp files of atomic writes (`*.tmp`) under `root`: any left over is a write that was not cleaned up. */
export const tempFilesUnder = (root) => listRecursive(root).filter((name) => name.endsWith('.tmp'))

/** Lock sidecars / lock files and their by-products (`.x.lock`, `.x.lock.break`, `.x.lock.released-…`, `.x.lock.stale-…`). */
export const lockFilesUnder = (root) => listRecursive(root).filter((name) => /\.lock($|\.)/.test(path.basename(name)))
