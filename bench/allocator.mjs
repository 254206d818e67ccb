#!/usr/bin/env node
// What mimalloc buys the addon: the same release build with mimalloc (the
// default) and with the platform's allocator (`--features system-allocator`),
// side by side, on the Rust work that allocates the most: the merge and the
// diff of a 1.1 MB roles document (5,000 roles) and a number scan of it.
//
// Invariant: medians of interleaved rounds (one build, then the other, round
// after round), so a noisy neighbour hits both alike. Builds go to
// target/allocator-<variant>/ (the first run takes a few minutes), the
// addons to .tmp/allocator/.
// Usage: node bench/allocator.mjs [--rounds=5]

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5)
const out = path.join(root, '.tmp', 'allocator')
const libName = { linux: 'libfile_lock_manager.so', darwin: 'libfile_lock_manager.dylib', win32: 'file_lock_manager.dll' }[process.platform]

function build(variant) {
  const targetDir = path.join(root, 'target', `allocator-${variant}`)
  const features = variant === 'system' ? ['--features', 'system-allocator'] : []
  const built = spawnSync('cargo', ['build', '--release', '-p', 'file_lock_manager', '--target-dir', targetDir, ...features], { cwd: root, stdio: 'inherit' })
  if (built.status !== 0) throw new Error(`cargo build (${variant}) failed`)
  fs.mkdirSync(out, { recursive: true })
  const addon = path.join(out, `${variant}.node`)
  fs.copyFileSync(path.join(targetDir, 'release', libName), addon)
  return require(addon)
}

const roles = (tag) =>
  Array.from({ length: 5000 }, (_, i) => ({ id: `role-${i}`, name: `Role ${i}${tag && i % 50 === 0 ? tag : ''}`, permissions: ['read', 'write', 'export', 'admin'].slice(0, 1 + (i % 4)), meta: { created: 1700000000 + i, weight: i / 7 } }))
const base = JSON.stringify({ version: 1, roles: roles('') })
const mine = JSON.stringify({ version: 2, roles: roles('-mine') })
const theirs = JSON.stringify({ version: 1, roles: [...roles(''), { id: 'new', name: 'New', permissions: [] }] })

const WORK = {
  'mergeJsonText, 1.1 MB (ms)': (a) => a.mergeJsonText(base, mine, theirs, 'id'),
  'diffJsonText, 1.1 MB (ms)': (a) => a.diffJsonText(base, mine, 'id'),
  'number scan, 1.1 MB (ms)': (a) => a.inexactNumberTokens(mine),
}

function timeMs(fn, count = 9) {
  fn()
  const times = []
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint()
    fn()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return times
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const addons = { mimalloc: build('mimalloc'), system: build('system') }
const samples = Object.fromEntries(Object.keys(WORK).map((w) => [w, { mimalloc: [], system: [] }]))
for (let r = 0; r < rounds; r++) {
  for (const [what, fn] of Object.entries(WORK)) {
    for (const variant of ['mimalloc', 'system']) samples[what][variant].push(...timeMs(() => fn(addons[variant])))
  }
}
console.log(`\n| work (${process.platform}, medians of ${rounds} interleaved rounds) | mimalloc | ${process.platform === 'linux' ? 'glibc malloc' : 'system allocator'} | system ÷ mimalloc |`)
console.log('|---|---:|---:|---:|')
for (const [what, s] of Object.entries(samples)) {
  const [m, sys] = [median(s.mimalloc), median(s.system)]
  console.log(`| ${what} | ${m.toFixed(1)} | ${sys.toFixed(1)} | ${(sys / m).toFixed(2)}× |`)
}
