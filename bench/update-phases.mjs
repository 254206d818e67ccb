#!/usr/bin/env node
// Where one `doc.update()` of bench/document.mjs's 1.7 KB document spends its
// time, phase by phase, beside the same write by hand: the JS thread before
// the commit (the lock, the stat that says the file is still ours, the copy,
// fn, the value's check and freeze, the text), the commit (one trip to the
// pool: the check of the file, temp file, write, [fsync,] rename, the lock
// let go, [directory fsync]) and the JS thread after it (bookkeeping, the
// caller's promise).
//
// Invariant: the phases are timed around the one native call that commits
// (addon.commitDocument or commitDocumentAtOnce, wrapped here; nothing else changes), medians over
// interleaved rounds (ours, then by hand), in a scratch dir that is removed.
// Usage: node bench/update-phases.mjs [--quick]

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { makeScratchDir, removeDir } from '../testkit/scratch.mjs'
import { rolesDocument, writeByHand } from './reference-increment.mjs'

const require = createRequire(import.meta.url)
const quick = process.argv.includes('--quick')
const addon = require('../native.js')
const { FileLockManager } = require('../index.js')
const nowUs = () => Number(process.hrtime.bigint()) / 1000
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

let called = 0
let done = 0
// Both ways a write commits: under a lock JS took, or taking it itself.
for (const name of ['commitDocument', 'commitDocumentAtOnce']) {
  const commit = addon[name]
  addon[name] = (...args) => {
    called = nowUs()
    return commit(...args).then((result) => {
      done = nowUs()
      return result
    })
  }
}

const dir = makeScratchDir('flm-update-phases-')
try {
  console.log(`| durability | update() | JS before the commit | the commit (a pool trip) | JS after it | by hand |`)
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const durability of ['fsync', 'none']) {
    const file = path.join(dir, `${durability}.json`)
    const handFile = path.join(dir, `hand-${durability}.json`)
    fs.writeFileSync(file, `${JSON.stringify(rolesDocument(0), null, 2)}\n`)
    const manager = new FileLockManager()
    const doc = await manager.openDocument(file, { durability, watch: false })
    const phases = { total: [], before: [], commit: [], after: [], hand: [] }
    for (let i = 0; i < 20; i++) await doc.update((v) => ({ ...v, n: v.n + 1 }))
    for (let round = 0; round < (quick ? 3 : 7); round++) {
      for (let i = 0; i < (quick ? 60 : 150); i++) {
        const start = nowUs()
        await doc.update((v) => ({ ...v, n: v.n + 1 }))
        const end = nowUs()
        phases.total.push(end - start)
        phases.before.push(called - start)
        phases.commit.push(done - called)
        phases.after.push(end - done)
      }
      for (let i = 0; i < (quick ? 60 : 150); i++) {
        const start = nowUs()
        writeByHand(handFile, `${JSON.stringify(rolesDocument(i), null, 2)}\n`, durability === 'fsync')
        phases.hand.push(nowUs() - start)
      }
    }
    await doc.close()
    await manager.close()
    const [total, before, inCommit, after, hand] = ['total', 'before', 'commit', 'after', 'hand'].map((k) => median(phases[k]).toFixed(0))
    console.log(`| '${durability}' | ${total} µs | ${before} µs | ${inCommit} µs | ${after} µs | ${hand} µs |`)
  }
  console.log('\n(medians, µs; each phase its own median, so they need not add up to the total)')
} finally {
  removeDir(dir)
}
