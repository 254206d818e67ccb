#!/usr/bin/env node
// What a document costs against the floor it stands on, side by side in one
// run: `doc.update()` of a ~2 KB roles document against the same text written
// by hand (temp file, write, fsync, rename, directory fsync; without the
// fsyncs for durability 'none'), `doc.read()` of an unchanged file against
// one `fs.statSync`, and 4 processes × N durable updates against
// fs-native-extensions' lock + write-file-atomic doing the same work.
//
// Invariant: every figure is a median over interleaved rounds (ours, then the
// reference, round after round), so a noisy neighbour hits both alike; the
// ratio column is ours ÷ reference and each row says whether its goal is met.
// Usage: node bench/document.mjs [--quick] [--json]

import { fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { makeScratchDir, removeDir } from '../testkit/scratch.mjs'
import { lockPathOf, nonBlockingIncrement, referenceIncrement, rolesDocument, writeByHand } from './reference-increment.mjs'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
const nowUs = () => Number(process.hrtime.bigint()) / 1000


async function timeEach(count, fn) {
  const times = []
  for (let i = 0; i < count; i++) {
    const start = nowUs()
    await fn(i)
    times.push(nowUs() - start)
  }
  return times
}

async function updateRows(dir) {
  const { FileLockManager } = require('../index.js')
  const rows = []
  const rounds = quick ? 3 : 7
  const perRound = quick ? 60 : 150
  for (const durability of ['fsync', 'none']) {
    const manager = new FileLockManager()
    const file = path.join(dir, `update-${durability}.json`)
    const handFile = path.join(dir, `hand-${durability}.json`)
    fs.writeFileSync(file, `${JSON.stringify(rolesDocument(), null, 2)}\n`)
    const doc = await manager.openDocument(file, { durability, watch: false })
    const ours = []
    const hand = []
    let n = 0
    await timeEach(20, () => doc.update((v) => ({ ...v, n: v.n + 1 })))
    for (let r = 0; r < rounds; r++) {
      ours.push(...(await timeEach(perRound, () => doc.update((v) => ({ ...v, n: v.n + 1 })))))
      hand.push(...(await timeEach(perRound, () => writeByHand(handFile, `${JSON.stringify(rolesDocument(++n), null, 2)}\n`, durability === 'fsync'))))
    }
    await doc.close()
    await manager.close()
    const size = fs.statSync(file).size
    rows.push({
      what: `doc.update() of a ${(size / 1024).toFixed(1)} KB document, durability '${durability}' (µs)`,
      ours: median(ours),
      reference: median(hand),
      referenceName: `the same text by hand: temp, write,${durability === 'fsync' ? ' fsync,' : ''} rename${durability === 'fsync' ? ', directory fsync' : ''}`,
      goal: durability === 'fsync' ? 1.3 : 2,
      lowerIsBetter: true,
    })
  }
  return rows
}

async function readRow(dir) {
  const { FileLockManager } = require('../index.js')
  const manager = new FileLockManager()
  const file = path.join(dir, 'read.json')
  fs.writeFileSync(file, `${JSON.stringify(rolesDocument(), null, 2)}\n`)
  const doc = await manager.openDocument(file, { watch: false })
  await new Promise((resolve) => setTimeout(resolve, 150)) // a settled file: its stat is trusted
  const ours = []
  const stat = []
  const count = quick ? 2000 : 5000
  await timeEach(200, () => doc.read())
  for (let r = 0; r < (quick ? 3 : 7); r++) {
    ours.push(...(await timeEach(count, () => doc.read())))
    stat.push(...(await timeEach(count, () => fs.statSync(file))))
  }
  await doc.close()
  await manager.close()
  return { what: 'doc.read() of an unchanged file (µs)', ours: median(ours), reference: median(stat), referenceName: 'one fs.statSync', goal: 4, lowerIsBetter: true }
}

// 4 processes, each making `count` durable increments one after another.
async function contendedRow(dir) {
  const count = quick ? 60 : 200
  const processes = 4
  const rates = { ours: [], reference: [], floor: [], 'floor-nonblocking': [], 'floor-nonblocking-checked': [] }
  for (let round = 0; round < (quick ? 1 : 3); round++) {
    for (const kind of Object.keys(rates)) {
      const file = path.join(dir, `contended-${kind}-${round}.json`)
      fs.writeFileSync(file, `${JSON.stringify(rolesDocument(), null, 2)}\n`)
      const children = Array.from({ length: processes }, () => fork(fileURLToPath(import.meta.url), ['--child', kind, file, String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
      await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))))
      const start = nowUs()
      for (const c of children) c.send('go')
      await Promise.all(children.map((c) => new Promise((resolve, reject) => c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${kind} child exited ${code}`)))))))
      const seconds = (nowUs() - start) / 1e6
      const final = JSON.parse(fs.readFileSync(file, 'utf8')).n
      if (final !== processes * count) throw new Error(`${kind}: ${final} increments on disk, ${processes * count} made: an update was lost`)
      rates[kind].push((processes * count) / seconds)
    }
  }
  return {
    what: `${processes} processes × ${count} durable update()s, serial (updates/s)`,
    ours: median(rates.ours),
    reference: median(rates.reference),
    referenceName: 'fs-native-extensions lock + read + write-file-atomic (fsync)',
    goal: 3,
    lowerIsBetter: false,
    // What no library can beat with the same guarantee: the same lock, and the
    // very read and durable write done by hand, synchronously, in each process.
    floor: median(rates.floor),
    floorName: 'fs-native-extensions lock + readFileSync + the durable write by hand (temp, write, fsync, rename; the lock let go before the directory fsync), synchronous',
    // The same without blocking the event loop, as ours must not (an Electron
    // main process): the write in one trip to a worker thread.
    nonBlockingFloor: median(rates['floor-nonblocking']),
    nonBlockingFloorName: 'the same, the event loop never blocked: the lock awaited, the write in one trip to a worker thread that lets the lock go after the rename',
    // And with what our lock checks once it holds the OS lock (the lock file
    // still at its path, its holder record read and written): the floor of a
    // lock that keeps our guarantees.
    checkedFloor: median(rates['floor-nonblocking-checked']),
    checkedFloorName: "the same with our lock's checks: a stat of the lock file's path and its holder record read under the lock, the record written in the worker's trip",
  }
}

async function child(kind, file, count) {
  let step
  if (kind === 'ours') {
    const { FileLockManager } = require('../index.js')
    const manager = new FileLockManager({ timeoutMs: 60000 })
    const doc = await manager.openDocument(file, { watch: false })
    step = () => doc.update((v) => ({ ...v, n: v.n + 1 }))
    process.on('beforeExit', () => doc.close().then(() => manager.close()))
  } else if (kind === 'floor') {
    const { tryLock, waitForLock, unlock } = require('fs-native-extensions')
    const lockFd = fs.openSync(lockPathOf(file), 'a+')
    // As ours does: the lock is let go after the rename, the directory fsync
    // made outside it (the next holder reads the renamed file meanwhile).
    step = async () => {
      if (!tryLock(lockFd)) await waitForLock(lockFd)
      try {
        const value = JSON.parse(fs.readFileSync(file, 'utf8'))
        value.n += 1
        writeByHand(file, `${JSON.stringify(value, null, 2)}\n`, true, { unlockBeforeDirSync: () => unlock(lockFd) })
      } finally {
        unlock(lockFd)
      }
    }
  } else if (kind === 'floor-nonblocking' || kind === 'floor-nonblocking-checked') {
    step = nonBlockingIncrement(file, { checks: kind.endsWith('checked') })
  } else {
    step = referenceIncrement(file)
  }
  process.send('ready')
  await new Promise((resolve) => process.once('message', resolve))
  for (let i = 0; i < count; i++) await step()
  process.disconnect()
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))

function table(rows) {
  const lines = ['| what | ours | reference | ratio (ours ÷ reference) | goal | met |', '|---|---:|---:|---:|---:|:---:|']
  for (const row of rows) {
    const ratio = row.ours / row.reference
    const met = row.lowerIsBetter ? ratio <= row.goal : ratio >= row.goal
    row.ratio = ratio
    row.met = met
    lines.push(`| ${row.what} | ${fmt(row.ours)} | ${fmt(row.reference)} (${row.referenceName}) | ${ratio.toFixed(2)}× | ${row.lowerIsBetter ? '≤' : '≥'} ${row.goal}× | ${met ? 'yes' : 'no'} |`)
  }
  for (const row of rows.filter((r) => r.floor !== undefined)) {
    row.floorRatio = row.floor / row.reference
    lines.push('', `The floor of "${row.what}" in the same run: ${fmt(row.floor)} updates/s (${row.floorName}), ${row.floorRatio.toFixed(2)}× the reference; ours is ${(row.ours / row.floor).toFixed(2)}× the floor.`)
    if (row.nonBlockingFloor !== undefined) {
      lines.push('', `Its floor without blocking the event loop: ${fmt(row.nonBlockingFloor)} updates/s (${row.nonBlockingFloorName}), ${(row.nonBlockingFloor / row.reference).toFixed(2)}× the reference; ours is ${(row.ours / row.nonBlockingFloor).toFixed(2)}× it.`)
    }
    if (row.checkedFloor !== undefined) {
      lines.push('', `And ${fmt(row.checkedFloor)} updates/s (${row.checkedFloorName}), ${(row.checkedFloor / row.reference).toFixed(2)}× the reference; ours is ${(row.ours / row.checkedFloor).toFixed(2)}× it.`)
    }
  }
  return lines.join('\n')
}

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4], Number(process.argv[5]))
  const dir = makeScratchDir('flm-bench-doc-')
  try {
    const rows = [...(await updateRows(dir)), await readRow(dir), await contendedRow(dir)]
    const md = `# Document benchmark: file-lock-manager against the floor\n\nnode ${process.version}, ${os.cpus().length} cores, ${os.platform()}; medians of interleaved rounds${quick ? ' (--quick)' : ''}.\n\n${table(rows)}\n`
    console.log(md)
    if (!quick) {
      fs.mkdirSync(path.join(here, 'results'), { recursive: true })
      fs.writeFileSync(path.join(here, 'results', 'document.md'), md)
      fs.writeFileSync(path.join(here, 'results', 'document.json'), `${JSON.stringify({ node: process.version, rows }, null, 2)}\n`)
    }
  } finally {
    removeDir(dir)
  }
}

await main()
