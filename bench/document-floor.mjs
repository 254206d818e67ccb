#!/usr/bin/env node
// The floor under bench/document.mjs's rows on this machine: what the steps
// of a durable write cost by themselves (open + write, fsync, rename,
// directory fsync), what one trip to libuv's pool and back costs (node's own
// fs.stat and our napi async work), and how fast 4 processes can make durable
// increments one after another when written by hand, synchronously, with
// nothing else in the way: lock, read, parse, +1, temp file, fsync, rename,
// unlock, directory fsync (the lock let go before the directory fsync, as a
// document commit does), and the same without blocking the event loop (the
// lock awaited, the write in one trip to a worker thread) — against the same
// reference as bench/document.mjs.
//
// Invariant: measurements only, nothing is written outside a scratch dir
// (no results file); the 4-process rows alternate round by round, so a noisy
// neighbour (a shared disk) hits the floor and the reference alike.
// Usage: node bench/document-floor.mjs [--quick]

import { fork } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { makeScratchDir, removeDir } from '../testkit/scratch.mjs'
import { lockPathOf, nonBlockingIncrement, referenceIncrement, writeByHand } from './reference-increment.mjs'

const require = createRequire(import.meta.url)
const me = fileURLToPath(import.meta.url)
const quick = process.argv.includes('--quick')
const text = `${JSON.stringify({ n: 0, pad: 'x'.repeat(1690) })}\n` // ~1.7 KB, as the document rows
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const nowUs = () => Number(process.hrtime.bigint()) / 1000

// Each step of the by-hand durable write, timed on its own.
function steps(dir) {
  const times = { 'open + write': [], fsync: [], rename: [], 'directory fsync': [] }
  const file = path.join(dir, 'steps.json')
  for (let i = 0; i < (quick ? 200 : 600); i++) {
    let start = nowUs()
    const lap = (name) => {
      const end = nowUs()
      times[name].push(end - start)
      start = end
    }
    const fd = fs.openSync(`${file}.tmp`, 'w')
    fs.writeSync(fd, text)
    lap('open + write')
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    lap('fsync')
    fs.renameSync(`${file}.tmp`, file)
    lap('rename')
    const dirFd = fs.openSync(dir, 'r')
    fs.fsyncSync(dirFd)
    fs.closeSync(dirFd)
    lap('directory fsync')
  }
  return Object.entries(times).map(([what, xs]) => [what, median(xs)])
}

// One trip to libuv's pool and back: node's fs.stat, and our napi async work
// (readDocument of a missing file: a stat in the pool, nothing read).
async function hops(dir) {
  const { readDocument } = require('../native.js')
  const missing = path.join(dir, 'missing.json')
  const rows = []
  for (const [what, call] of [
    ['fs.stat (callback), one pool round trip', () => new Promise((resolve) => fs.stat(dir, resolve))],
    ['napi async work (readDocument of a missing file)', () => readDocument(missing, 1024)],
  ]) {
    const times = []
    for (let i = 0; i < (quick ? 1000 : 4000); i++) {
      const start = nowUs()
      await call()
      times.push(nowUs() - start)
    }
    rows.push([what, median(times.slice(times.length / 10))])
  }
  return rows
}

async function child(kind, file, count) {
  let step = referenceIncrement(file)
  if (kind === 'floor') {
    const { waitForLockSync, unlock } = require('fs-native-extensions')
    const lockFd = fs.openSync(lockPathOf(file), 'a+')
    step = () => {
      waitForLockSync(lockFd)
      const value = JSON.parse(fs.readFileSync(file, 'utf8'))
      value.n += 1
      writeByHand(file, `${JSON.stringify(value, null, 2)}\n`, true, { unlockBeforeDirSync: () => unlock(lockFd) })
    }
  }
  if (kind === 'floor-nonblocking') step = nonBlockingIncrement(file)
  process.send('ready')
  await new Promise((resolve) => process.once('message', resolve))
  for (let i = 0; i < count; i++) await step()
  process.disconnect()
}

async function contended(dir) {
  const count = quick ? 60 : 200
  const rates = { floor: [], 'floor-nonblocking': [], reference: [] }
  for (let round = 0; round < (quick ? 1 : 3); round++) {
    for (const kind of ['floor', 'floor-nonblocking', 'reference']) {
      const file = path.join(dir, `${kind}-${round}.json`)
      fs.writeFileSync(file, text)
      const children = Array.from({ length: 4 }, () => fork(me, ['--child', kind, file, String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
      await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))))
      const start = nowUs()
      for (const c of children) c.send('go')
      await Promise.all(children.map((c) => new Promise((resolve, reject) => c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${kind} child exited ${code}`)))))))
      const n = JSON.parse(fs.readFileSync(file, 'utf8')).n
      if (n !== 4 * count) throw new Error(`${kind}: ${n} increments on disk, ${4 * count} made`)
      rates[kind].push((4 * count) / ((nowUs() - start) / 1e6))
    }
  }
  const ratioOf = (kind) => median(rates[kind]) / median(rates.reference)
  return { count, rates, ratio: ratioOf('floor'), nonBlockingRatio: ratioOf('floor-nonblocking') }
}

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4], Number(process.argv[5]))
  const dir = makeScratchDir('flm-bench-floor-')
  try {
    const lines = ['| what | µs (median) |', '|---|---:|']
    for (const [what, us] of [...steps(dir), ...(await hops(dir))]) lines.push(`| ${what} | ${us.toFixed(1)} |`)
    const { count, rates, ratio, nonBlockingRatio } = await contended(dir)
    const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(', ')
    lines.push('', `4 processes × ${count} durable increments (updates/s, per round):`, '')
    lines.push(`- by hand, synchronous, the lock let go before the directory fsync: ${fmt(rates.floor)}`)
    lines.push(`- by hand, without blocking the event loop (lock awaited, the write in one trip to a worker thread that lets the lock go after the rename): ${fmt(rates['floor-nonblocking'])}`)
    lines.push(`- fs-native-extensions lock + read + write-file-atomic (fsync), bench/document.mjs's reference: ${fmt(rates.reference)}`)
    lines.push(`- floor ÷ reference (medians): ${ratio.toFixed(2)}× synchronous, ${nonBlockingRatio.toFixed(2)}× without blocking the event loop (the 4-process row's goal is ≥ 3×)`)
    console.log(`# The floor under the document rows${quick ? ' (--quick)' : ''}\n\n${lines.join('\n')}\n`)
  } finally {
    removeDir(dir)
  }
}

await main()
