// The rustup targets a script builds or lints for, installed when missing —
// shared by test-windows.mjs and lint-targets.mjs (CI starts from a fresh
// machine, whose toolchain has only the host target).
// Invariant: throws when rustup cannot add them; installs nothing already there.

import { spawnSync } from 'node:child_process'

/** Installs whichever of `targets` rustup does not have yet. */
export function ensureRustTargets(targets) {
  const listed = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' })
  const installed = listed.stdout?.split('\n') ?? []
  const missing = targets.filter((target) => !installed.includes(target))
  if (missing.length === 0) return
  const added = spawnSync('rustup', ['target', 'add', ...missing], { stdio: 'inherit' })
  if (added.error) throw added.error
  if (added.status !== 0) throw new Error(`rustup target add ${missing.join(' ')} exited with ${added.status}`)
}
