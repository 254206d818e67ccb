#!/usr/bin/env node
// npm run lint:targets — the code of the platforms this machine cannot run
// natively, linted here: `cargo clippy --all-targets -- -D warnings` for
//   x86_64-apple-darwin, aarch64-apple-darwin    the workspace (macOS: F_FULLFSYNC,
//                                                proc_pidinfo, MNT_LOCAL, FSEvents)
//   x86_64-pc-windows-gnu                        the workspace (LockFileEx, GetProcessTimes,
//                                                GetDriveTypeW, rename retries)
//   x86_64-pc-windows-msvc                       the core crate (the binding's mimalloc
//                                                needs MSVC's compiler to build its C)
// installing the rustup targets it lacks. napi-build wants a libnode.dll to
// exist for Windows builds; linting never links, so an empty one in
// .tmp/lint-targets/ is enough (test:windows makes the real import library).
// Invariant: exits non-zero if any target has a warning or an error; nothing
// outside .tmp/ and target/ is written.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureRustTargets } from './rust-targets.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const libnode = path.join(root, '.tmp', 'lint-targets')

const LINTS = [
  { target: 'x86_64-apple-darwin', scope: ['--workspace'] },
  { target: 'aarch64-apple-darwin', scope: ['--workspace'] },
  { target: 'x86_64-pc-windows-gnu', scope: ['--workspace'] },
  { target: 'x86_64-pc-windows-msvc', scope: ['-p', 'file-lock-core'] },
]

function run(cmd, argv, env = process.env) {
  const result = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env })
  if (result.error) throw result.error
  return result.status === 0
}

try {
  ensureRustTargets(LINTS.map((l) => l.target))
} catch (error) {
  console.error(`lint-targets: ${error.message}`)
  process.exit(1)
}
fs.mkdirSync(libnode, { recursive: true })
fs.writeFileSync(path.join(libnode, 'libnode.dll'), '')

const failed = []
for (const { target, scope } of LINTS) {
  console.log(`[lint-targets] clippy ${scope.join(' ')} --target ${target}`)
  const env = { ...process.env, LIBNODE_PATH: libnode }
  if (!run('cargo', ['clippy', ...scope, '--all-targets', '--target', target, '--', '-D', 'warnings'], env)) failed.push(target)
}
console.log(`lint-targets: ${LINTS.length - failed.length} of ${LINTS.length} targets clean${failed.length ? `; failed: ${failed.join(', ')}` : ''}`)
process.exitCode = failed.length > 0 ? 1 : 0
