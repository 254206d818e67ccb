#!/usr/bin/env node
// Watch + merge benchmark: file-lock-manager's file watch vs chokidar 4 and raw
// fs.watch, idle CPU of a watcher, three-way merge of a ~1 MB roles document, and
// own-write recognition.
//
//   node bench/watch.mjs                 full run (about two minutes)
//   node bench/watch.mjs --quick         short run
//   node bench/watch.mjs --peers=ours,fswatch-dir   only some watchers (scenarios 1-2)
//   npm run bench [-- --quick]           bench/run.mjs (locks), then this (bench/all.mjs)
//
// Scenarios (each process below is a fresh `node bench/watch.mjs --role=…`, forked
// with an IPC channel; every peer watches its own file in its own temp dir):
//   1. Detection latency of an external atomic replace. One watcher process per peer,
//      all alive together, and one writer process that, on command, writes a temp
//      file beside the watched one, stamps t0 and renames it over the file. The
//      watcher stamps t1 first thing in its listener; latency = t1 − t0
//      (process.hrtime.bigint(): CLOCK_MONOTONIC, one clock for all processes on
//      Linux; checked by an IPC handshake). Events go to the peers in turn, the order
//      rotated each cycle, so noise on the machine lands on all of them alike; the
//      next write waits until the previous one was seen (or timed out) + 20 ms.
//   2. Idle CPU: one fresh process per peer (and one with no watcher), all at once;
//      after start-up settles, CPU over an idle window from process.cpuUsage() and
//      from /proc/self/stat utime+stime (all threads, native ones included).
//   3. mergeJson / diffJson of a ~1 MB document of 5000 roles, in a fresh process,
//      after warm-up, runs of the two (and a JSON round-trip reference) interleaved.
//   4. Own writes: a process writes with doc.set() and counts changes its watchers
//      report as external (should be none).
//
// Output: markdown tables on stdout, bench/results/watch.{md,json}.

import { toJson } from './json.mjs'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { libVersions } from './libs.mjs'
import { reportCrashes, send } from '../testkit/in-child.mjs'
import { BENCH_WORKER, Child } from '../testkit/process.mjs'
import { lcg } from '../testkit/random.mjs'
import { scratchArea } from '../testkit/scratch.mjs'
import { rotate, stats } from '../testkit/stats.mjs'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const selfPath = fileURLToPath(import.meta.url)
const resultsDir = path.join(here, 'results')
const now = () => process.hrtime.bigint()

// ---------------------------------------------------------------- watchers under test

const PEERS = ['ours', 'chokidar-file', 'chokidar-dir', 'chokidar-awf', 'fswatch-dir']
const LABELS = {
  ours: 'file-lock-manager (ours): `manager.watch(file, listener)`, default options (debounce 15 ms, max 150 ms)',
  'chokidar-file': "chokidar: `watch(file, { ignoreInitial: true })`, 'all' events",
  'chokidar-dir': "chokidar: `watch(dir, { ignoreInitial: true, depth: 0 })`, 'all' events whose path is the file",
  'chokidar-awf': "chokidar: `watch(file, { ignoreInitial: true, awaitWriteFinish: true })` (waits 2 s of stable size)",
  'fswatch-dir': "`fs.watch(dir)`, events whose filename is the file's (floor: no settling, no read)",
  baseline: 'a Node process with no watcher (reference for idle CPU)',
}
const SHORT = {
  ours: 'ours',
  'chokidar-file': 'chokidar (file)',
  'chokidar-dir': 'chokidar (dir)',
  'chokidar-awf': 'chokidar (awaitWriteFinish)',
  'fswatch-dir': 'fs.watch (dir)',
  baseline: 'no watcher',
}

/** Starts `peer` watching `file`; `onEvent(kind, extra)` is called first thing on each event. */
async function startWatcher(peer, file, onEvent) {
  const dir = path.dirname(file)
  switch (peer) {
    case 'ours': {
      const { FileLockManager } = require('../index.js')
      const manager = new FileLockManager()
      const watcher = manager.watch(file, (change) => onEvent(change.kind, { external: change.external }))
      watcher.on('error', (error) => onEvent('error', { message: error.message }))
      return { close: async () => (await watcher.close(), await manager.close()) }
    }
    case 'chokidar-file':
    case 'chokidar-dir':
    case 'chokidar-awf': {
      const { watch } = await import('chokidar')
      const target = peer === 'chokidar-dir' ? dir : file
      const options = { ignoreInitial: true }
      if (peer === 'chokidar-dir') options.depth = 0
      if (peer === 'chokidar-awf') options.awaitWriteFinish = true
      const watcher = watch(target, options)
      watcher.on('all', (kind, p) => {
        if (p === file) onEvent(kind)
      })
      watcher.on('error', (error) => onEvent('error', { message: error.message }))
      await new Promise((resolve) => watcher.once('ready', resolve))
      return { close: () => watcher.close() }
    }
    case 'fswatch-dir': {
      const base = path.basename(file)
      const watcher = fs.watch(dir, (kind, name) => {
        if (name === base) onEvent(kind)
      })
      watcher.on('error', (error) => onEvent('error', { message: error.message }))
      return { close: async () => watcher.close() }
    }
    case 'baseline':
      return { close: async () => {} }
    default:
      throw new Error(`unknown peer ${peer}`)
  }
}

// A small roles.json (about 10 KB) whose content differs with `seq`.
function rolesText(seq, count = 30) {
  const roles = Array.from({ length: count }, (_, i) => ({
    id: `role-${i}`,
    name: `Role ${i}`,
    description: `Members of role ${i} may view and edit the records assigned to their team and export reports.`,
    permissions: ['records.read', 'records.write', 'reports.export', `team-${i % 7}.manage`],
  }))
  return JSON.stringify({ version: seq, updatedBy: 'writer', roles }, null, 2)
}

// ---------------------------------------------------------------- child roles

async function runChild(role, cfg) {
  const fail = reportCrashes()
  // Every child answers clock pings: its hrtime, to check the clock is shared.
  process.on('message', (msg) => {
    if (msg.type === 'ping') process.send({ type: 'pong', t: now(), id: msg.id })
  })

  if (role === 'writer') {
    // On 'write': temp file beside the target, t0, rename over it.
    let n = 0
    process.on('message', (msg) => {
      if (msg.type === 'write') {
        const tmp = path.join(path.dirname(msg.file), `.${path.basename(msg.file)}.tmp-${process.pid}-${++n}`)
        fs.writeFileSync(tmp, rolesText(msg.seq))
        const t0 = now()
        fs.renameSync(tmp, msg.file)
        process.send({ type: 'wrote', t0, seq: msg.seq })
      } else if (msg.type === 'stop') {
        process.disconnect()
      }
    })
    await send({ type: 'ready' })
  } else if (role === 'watcher') {
    const w = await startWatcher(cfg.peer, cfg.file, (kind, extra) => {
      const t1 = now()
      process.send({ type: 'event', t1, kind, ...extra })
    })
    process.on('message', async (msg) => {
      if (msg.type === 'stop') {
        await w.close()
        await send({ type: 'stopped' })
        process.disconnect()
      }
    })
    await sleep(100) // let the OS watch be in place before the first write
    await send({ type: 'ready' })
  } else if (role === 'idle') {
    const w = await startWatcher(cfg.peer, cfg.file, (kind) => {
      send({ type: 'unexpected-event', kind })
    })
    process.on('message', async (msg) => {
      if (msg.type !== 'start') return
      const c0 = process.cpuUsage()
      const p0 = procTicks()
      const t0 = now()
      await sleep(cfg.windowMs)
      const c1 = process.cpuUsage(c0)
      const p1 = procTicks()
      const elapsedMs = Number(now() - t0) / 1e6
      const threads = threadCount()
      await w.close()
      await send({ type: 'done', cpuUsageMs: (c1.user + c1.system) / 1000, cpuUserMs: c1.user / 1000, cpuSystemMs: c1.system / 1000, procTicks: p1 === null ? null : p1 - p0, elapsedMs, threads })
      process.disconnect()
    })
    await sleep(cfg.settleMs) // start-up (module loading, chokidar's first scan) is not idle time
    await send({ type: 'ready' })
  } else if (role === 'merge') {
    await send({ type: 'done', ...mergeBench(cfg) })
    process.disconnect()
  } else if (role === 'own-writes') {
    await send({ type: 'done', ...(await ownWrites(cfg)) })
    process.disconnect()
  } else {
    throw new Error(`unknown role ${role}`)
  }
}

/** utime + stime of the whole process (all threads) in clock ticks, or null off Linux. */
function procTicks() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields[0] is field 3 (state)
    return Number(fields[11]) + Number(fields[12]) // fields 14 (utime) and 15 (stime)
  } catch {
    return null
  }
}

function threadCount() {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1])
  } catch {
    return null
  }
}

// ---------------------------------------------------------------- merge (child side)

function makeMergeDocs(roleCount) {
  const rnd = lcg(42)
  const words = 'view edit export approve assign review audit archive delete create invite manage publish schedule report ledger invoice customer vendor contract project budget payroll ticket'.split(' ')
  const perms = []
  for (const area of ['users', 'roles', 'records', 'reports', 'billing', 'projects', 'tickets', 'settings', 'audit', 'files']) {
    for (const verb of ['read', 'write', 'delete', 'admin']) perms.push(`${area}.${verb}`)
  }
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)]
  const description = () => {
    let s = 'Can'
    while (s.length < 95) s += ' ' + pick(words)
    return s.slice(0, 100)
  }
  const roles = []
  for (let i = 0; i < roleCount; i++) {
    const set = new Set()
    const n = 2 + Math.floor(rnd() * 3)
    while (set.size < n) set.add(pick(perms))
    roles.push({ id: `role-${String(i).padStart(5, '0')}`, name: `${pick(words)} ${i}`, description: description(), permissions: [...set] })
  }
  const base = { version: 1, updatedAt: '2024-01-01T00:00:00Z', roles }
  const clone = (v) => JSON.parse(JSON.stringify(v))

  // mine: renames 100 roles and adds one.
  const mine = clone(base)
  const renamed = []
  for (let k = 0; k < 100; k++) {
    const r = mine.roles[k * 50]
    r.name = `${r.name} (renamed)`
    renamed.push(r.id)
  }
  mine.roles.push({ id: 'role-new', name: 'new role', description: 'Added by mine', permissions: ['users.read'] })

  // theirs: reverses the order, edits 100 permission arrays (other roles than mine's), bumps version.
  const theirs = clone(base)
  const edited = []
  for (let k = 0; k < 100; k++) {
    const r = theirs.roles[k * 50 + 25]
    r.permissions = [...r.permissions.slice(1), 'audit.read-only']
    edited.push(r.id)
  }
  theirs.roles.reverse()
  theirs.version = 2
  return { base, mine, theirs, renamed, edited }
}

function mergeBench(cfg) {
  const { mergeJson, diffJson } = require('../index.js')
  const { base, mine, theirs, renamed, edited } = makeMergeDocs(cfg.roles)
  const bytes = Buffer.byteLength(JSON.stringify(base, null, 2))
  const bytesCompact = Buffer.byteLength(JSON.stringify(base))

  // Check once that the merge does what it should: clean, both sides' changes in.
  const first = mergeJson(base, mine, theirs)
  const byId = new Map(first.merged.roles.map((r) => [r.id, r]))
  const checks = {
    clean: first.clean,
    conflicts: first.conflicts.length,
    roles: first.merged.roles.length,
    version: first.merged.version,
    renamesKept: renamed.filter((id) => byId.get(id)?.name.endsWith('(renamed)')).length,
    permissionEditsKept: edited.filter((id) => byId.get(id)?.permissions.includes('audit.read-only')).length,
    addedKept: byId.has('role-new'),
  }
  const diff = diffJson(base, theirs)
  checks.diffChanges = diff.length

  const { mergeJsonText } = require('../native.js')
  const texts = { base: JSON.stringify(base), mine: JSON.stringify(mine), theirs: JSON.stringify(theirs) }
  const ops = {
    merge: () => mergeJson(base, mine, theirs),
    diff: () => diffJson(base, theirs),
    // Where the time goes: the native merge alone, on inputs already JSON text,
    // result left as text (mergeJson = 3 × JSON.stringify + this + JSON.parse).
    mergeNative: () => mergeJsonText(texts.base, texts.mine, texts.theirs, 'id', undefined),
    // Reference: what one JSON round trip of the document costs in Node.
    roundtrip: () => JSON.parse(JSON.stringify(base)),
  }
  const names = Object.keys(ops)
  const samples = Object.fromEntries(names.map((n) => [n, []]))
  for (let i = 0; i < cfg.warmup + cfg.runs; i++) {
    for (const name of rotate(names, i)) {
      const t = now()
      ops[name]()
      const ms = Number(now() - t) / 1e6
      if (i >= cfg.warmup) samples[name].push(ms)
    }
  }
  return { bytes, bytesCompact, checks, samples }
}

// ---------------------------------------------------------------- own writes (child side)

// Variants: 'watch' — doc with watch:false plus one manager.watch;
// 'document' — doc with its own watch (default), counting its external-change events;
// 'both' — doc with its own watch plus a manager.watch on the same file.
async function ownWrites(cfg) {
  const { FileLockManager } = require('../index.js')
  const manager = new FileLockManager()
  const doc = await manager.openDocument(cfg.file, { defaultValue: JSON.parse(rolesText(0)), watch: cfg.variant !== 'watch' })
  let events = 0
  let external = 0
  let docExternal = 0
  const kinds = {}
  doc.on('external-change', () => docExternal++)
  const watcher =
    cfg.variant === 'document'
      ? null
      : manager.watch(cfg.file, (change) => {
          events++
          kinds[change.kind] = (kinds[change.kind] ?? 0) + 1
          if (change.external) external++
        })
  await sleep(100)
  const t = now()
  for (let i = 1; i <= cfg.writes; i++) {
    await doc.set(JSON.parse(rolesText(i)))
    await sleep(cfg.gapMs) // past the watch's debounce: each write is seen by itself
  }
  await sleep(300)
  const elapsedS = Number(now() - t) / 1e9
  await watcher?.close()
  await doc.close()
  await manager.close()
  return { writes: cfg.writes, events, external, docExternal, kinds, elapsedS }
}

// ---------------------------------------------------------------- parent side

/** A fresh `--role=…` process of this script; events and clock pongs go to their handlers, other messages to waits. */
function spawnRole(role, cfg, tag) {
  let onEvent = null
  const pongs = new Map()
  const onMessage = (msg) => {
    if (msg.type === 'event') onEvent?.(msg)
    else if (msg.type === 'pong') pongs.get(msg.id)?.(msg)
    else return false
    return true
  }
  const child = new Child(selfPath, [`--role=${role}`, JSON.stringify(cfg)], { name: tag, onMessage, ...BENCH_WORKER })
  let pingId = 0
  return Object.assign(child, {
    tag,
    onEvent: (fn) => (onEvent = fn),
    /** Clock check: the child's hrtime minus the midpoint of the round trip (best of n), and that round trip. */
    async clockOffset(n = 7) {
      let best = null
      for (let i = 0; i < n; i++) {
        const id = ++pingId
        const reply = new Promise((resolve) => pongs.set(id, resolve))
        const a = now()
        child.send({ type: 'ping', id })
        const { t } = await reply
        const b = now()
        pongs.delete(id)
        const rttUs = Number(b - a) / 1000
        if (best === null || rttUs < best.rttUs) best = { rttUs, offsetUs: Number(t - (a + (b - a) / 2n)) / 1000 }
      }
      return best
    },
  })
}

async function main() {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const peersArg = argv.find((a) => a.startsWith('--peers='))
  const peers = peersArg ? peersArg.slice(8).split(',') : PEERS
  for (const p of peers) if (!PEERS.includes(p)) throw new Error(`unknown peer ${p}; known: ${PEERS.join(', ')}`)
  // --libs=… belongs to bench/run.mjs (bench/all.mjs passes the same arguments to both).
  for (const a of argv) {
    if (a !== '--quick' && !a.startsWith('--peers=') && !a.startsWith('--libs=')) throw new Error(`unknown argument ${a}`)
  }

  const CFG = quick
    ? {
        latency: { events: 40, awfEvents: 4, gapMs: 20, timeoutMs: 1000, awfTimeoutMs: 6000 },
        idle: { windowMs: 3000, settleMs: 1500 }, // window over before V8's memory reducer (~8 s)
        merge: { roles: 5000, warmup: 3, runs: 10 },
        ownWrites: { writes: 30, gapMs: 40 },
      }
    : {
        latency: { events: 200, awfEvents: 15, gapMs: 20, timeoutMs: 1000, awfTimeoutMs: 6000 },
        // V8's memory reducer runs one or two full GCs about 8 s after start-up
        // (~20 ms of CPU in any Node process): let it pass before the window.
        idle: { windowMs: 10000, settleMs: 12000 },
        merge: { roles: 5000, warmup: 5, runs: 30 },
        ownWrites: { writes: 100, gapMs: 40 },
      }

  const problems = [] // anything wrong with ours (the run then exits with 1)
  const notes = [] // peers' misses and oddities
  const scratch = scratchArea('flm-watch-bench-')
  const tmpRoot = scratch.root
  const freshFile = (tag) => {
    const file = path.join(scratch.fresh(tag), 'roles.json')
    fs.writeFileSync(file, rolesText(0))
    return file
  }

  const t0 = Date.now()
  const machine = machineInfo(argv)
  console.error(`file-lock-manager watch benchmark (${quick ? 'quick' : 'full'}), peers: ${peers.join(', ')}`)
  console.error(`temp dir: ${tmpRoot}`)
  const results = {}

  // ------------------------------------------------------------ 2. idle CPU (first: the machine is calmest)
  {
    const c = CFG.idle
    const which = ['baseline', ...peers]
    console.error(`idle CPU: ${which.length} processes at once, ${c.windowMs / 1000} s window`)
    const kids = which.map((peer) => spawnRole('idle', { peer, file: freshFile(`idle-${peer}`), ...c }, `idle ${peer}`))
    try {
      await Promise.all(kids.map((k) => k.waitFor('ready', { timeoutMs: 60000 })))
      for (const k of kids) k.send({ type: 'start' })
      const done = await Promise.all(kids.map((k) => k.waitFor('done', { timeoutMs: c.windowMs + 60000 })))
      await Promise.all(kids.map((k) => k.exited))
      results.idle = Object.fromEntries(which.map((peer, i) => [peer, done[i]]))
    } finally {
      for (const k of kids) k.kill()
    }
  }

  // ------------------------------------------------------------ 1. detection latency
  {
    const c = CFG.latency
    const files = Object.fromEntries(peers.map((p) => [p, freshFile(`latency-${p}`)]))
    const writer = spawnRole('writer', {}, 'writer')
    const watchers = Object.fromEntries(peers.map((p) => [p, spawnRole('watcher', { peer: p, file: files[p] }, `watcher ${p}`)]))
    const events = Object.fromEntries(peers.map((p) => [p, []]))
    const writes = Object.fromEntries(peers.map((p) => [p, []]))
    const waiting = {}
    for (const p of peers) {
      watchers[p].onEvent((msg) => {
        events[p].push(msg)
        const w = waiting[p]
        if (w) {
          delete waiting[p]
          w()
        }
      })
    }
    try {
      await Promise.all([writer.waitFor('ready', { timeoutMs: 60000 }), ...peers.map((p) => watchers[p].waitFor('ready', { timeoutMs: 60000 }))])
      const clock = {}
      for (const k of [writer, ...peers.map((p) => watchers[p])]) clock[k.tag] = await k.clockOffset()
      results.clock = clock
      const awfEvery = Math.max(1, Math.round(c.events / c.awfEvents))
      let seq = 0
      console.error(`detection latency: ${c.events} atomic replaces per peer (awaitWriteFinish: ${c.awfEvents}), rotated`)
      for (let cycle = 0; cycle < c.events; cycle++) {
        for (const p of rotate(peers, cycle)) {
          if (p === 'chokidar-awf' && (cycle % awfEvery !== 0 || writes[p].length >= c.awfEvents)) continue
          const timeoutMs = p === 'chokidar-awf' ? c.awfTimeoutMs : c.timeoutMs
          let timer
          const seen = new Promise((resolve) => {
            waiting[p] = resolve
            timer = setTimeout(resolve, timeoutMs)
          })
          writer.send({ type: 'write', file: files[p], seq: ++seq })
          const wrote = await writer.waitFor('wrote', { timeoutMs: 10000 })
          writes[p].push(wrote.t0)
          await seen
          clearTimeout(timer)
          delete waiting[p]
          await sleep(c.gapMs)
        }
        if ((cycle + 1) % 50 === 0) console.error(`  ${cycle + 1}/${c.events} cycles, ${((Date.now() - t0) / 1000).toFixed(0)} s`)
      }
      await sleep(500) // late events still count (as late)
      writer.send({ type: 'stop' })
      for (const p of peers) watchers[p].send({ type: 'stop' })
      await Promise.all(peers.map((p) => watchers[p].waitFor('stopped', { timeoutMs: 10000 })))
    } finally {
      writer.kill()
      for (const p of peers) watchers[p].kill()
    }

    // Attribute each event to the latest write of its peer that came before it.
    results.latency = {}
    for (const p of peers) {
      const ws = writes[p]
      const perWrite = ws.map(() => [])
      let early = 0
      for (const e of events[p]) {
        let i = ws.length - 1
        while (i >= 0 && ws[i] > e.t1) i--
        if (i < 0) early++
        else perWrite[i].push(e)
      }
      const lat = []
      let missed = 0
      let late = 0
      for (let i = 0; i < ws.length; i++) {
        if (perWrite[i].length === 0) {
          missed++
          continue
        }
        const ms = Number(perWrite[i][0].t1 - ws[i]) / 1e6
        if (ms > (p === 'chokidar-awf' ? c.awfTimeoutMs : c.timeoutMs)) late++
        lat.push(ms)
      }
      const kinds = {}
      for (const e of events[p]) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1
      const notExternal = events[p].filter((e) => e.external === false).length
      results.latency[p] = {
        writes: ws.length,
        seen: ws.length - missed,
        missed,
        late,
        eventsReported: events[p].length,
        beforeFirstWrite: early,
        kinds,
        notExternal,
        ms: stats(lat),
        samplesMs: lat,
      }
      const r = results.latency[p]
      if (p === 'ours') {
        if (missed) problems.push(`ours missed ${missed} of ${ws.length} external replaces`)
        if (notExternal) problems.push(`ours reported ${notExternal} changes by another process as external: false`)
        if (r.eventsReported !== ws.length) problems.push(`ours reported ${r.eventsReported} changes for ${ws.length} replaces (${JSON.stringify(kinds)})`)
        if (early) problems.push(`ours reported ${early} changes before the first write`)
      } else {
        if (missed) notes.push(`${SHORT[p]} missed ${missed} of ${ws.length} replaces (no event within ${p === 'chokidar-awf' ? c.awfTimeoutMs : c.timeoutMs} ms, nor later)`)
        if (r.eventsReported > r.seen) notes.push(`${SHORT[p]} reported ${r.eventsReported} events for ${r.seen} replaces seen (${Object.entries(kinds).map(([k, n]) => `${k}×${n}`).join(', ')})`)
      }
    }
  }

  // ------------------------------------------------------------ 3. merge
  {
    console.error(`merge: ${CFG.merge.roles} roles, ${CFG.merge.warmup} warm-up + ${CFG.merge.runs} runs`)
    const k = spawnRole('merge', CFG.merge, 'merge')
    try {
      const done = await k.waitFor('done', { timeoutMs: 300000 })
      await k.exited
      results.merge = {
        bytes: done.bytes,
        bytesCompact: done.bytesCompact,
        checks: done.checks,
        ms: Object.fromEntries(Object.entries(done.samples).map(([n, s]) => [n, stats(s)])),
        samplesMs: done.samples,
      }
      const ch = done.checks
      if (!ch.clean || ch.roles !== CFG.merge.roles + 1 || ch.version !== 2 || ch.renamesKept !== 100 || ch.permissionEditsKept !== 100 || !ch.addedKept) {
        problems.push(`mergeJson result is not the expected clean merge: ${JSON.stringify(ch)}`)
      }
    } finally {
      k.kill()
    }
  }

  // ------------------------------------------------------------ 4. own writes
  {
    const c = CFG.ownWrites
    results.ownWrites = {}
    for (const variant of ['watch', 'document', 'both']) {
      console.error(`own writes: ${c.writes} doc.set(), variant '${variant}'`)
      const k = spawnRole('own-writes', { ...c, variant, file: freshFile(`own-${variant}`) }, `own-writes ${variant}`)
      try {
        const done = await k.waitFor('done', { timeoutMs: 300000 })
        await k.exited
        delete done.type
        results.ownWrites[variant] = done
        if (done.external) problems.push(`own writes, variant '${variant}': ${done.external} of ${done.events} changes written by this process were reported as external`)
        if (done.docExternal) problems.push(`own writes, variant '${variant}': the document saw ${done.docExternal} of its own writes as external changes`)
      } finally {
        k.kill()
      }
    }
  }

  const elapsedS = (Date.now() - t0) / 1000
  machine.loadavgAtEnd = os.loadavg().map((x) => +x.toFixed(2))
  machine.runSeconds = +elapsedS.toFixed(1)

  // ------------------------------------------------------------ report
  const num = (v, d = 1) => (Number.isFinite(v) ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(d)) : 'n/a')
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${num(a / b, 2)}×` : 'n/a')
  const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(a === b ? 0 : 1)}%` : 'n/a')
  const table = (header, rows) =>
    [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
  const kindsText = (kinds) => Object.entries(kinds).map(([k, n]) => `${k}×${n}`).join(', ') || '—'

  const L = results.latency
  const ours = L.ours
  const latencyTable = table(
    ['watcher', 'p50 (ms)', 'p90 (ms)', 'max (ms)', 'seen', 'events reported', 'p50 ÷ ours', 'p50 ÷ fs.watch'],
    peers.map((p) => {
      const r = L[p]
      const seen = `${r.seen}/${r.writes} (${pct(r.seen, r.writes)})${r.missed ? ` — **missed ${r.missed}**` : ''}`
      return [
        SHORT[p],
        num(r.ms.p50, 2),
        num(r.ms.p90, 2),
        num(r.ms.max, 2),
        seen,
        `${r.eventsReported}: ${kindsText(r.kinds)}${p === 'ours' ? `; external=false: ${r.notExternal}` : ''}`,
        p === 'ours' ? '1.00×' : ratio(r.ms.p50, ours?.ms.p50),
        ratio(r.ms.p50, L['fswatch-dir']?.ms.p50),
      ]
    }),
  )

  const tick = machine.clockTickHz ? 1000 / machine.clockTickHz : null
  const per10s = (ms, elapsed) => (Number.isFinite(ms) ? (ms * 10000) / elapsed : NaN)
  const idleTable = table(
    ['process', 'CPU, process.cpuUsage (ms per 10 s)', '… minus no watcher', `CPU, /proc/self/stat utime+stime (ms per 10 s; 1 tick = ${num(tick, 0)} ms)`, 'threads'],
    ['baseline', ...peers].map((p) => {
      const r = results.idle[p]
      const b = results.idle.baseline
      const procMs = r.procTicks === null || tick === null ? NaN : r.procTicks * tick
      const cpu = per10s(r.cpuUsageMs, r.elapsedMs)
      return [
        SHORT[p],
        num(cpu, 2),
        p === 'baseline' ? '—' : num(cpu - per10s(b.cpuUsageMs, b.elapsedMs), 2),
        `${num(per10s(procMs, r.elapsedMs), 0)} (${r.procTicks} ticks)`,
        String(r.threads ?? 'n/a'),
      ]
    }),
  )

  const M = results.merge
  const mergeTable = table(
    ['operation (~1 MB document)', 'p50 (ms)', 'p90 (ms)', 'min (ms)', 'max (ms)', 'runs'],
    [
      ['`mergeJson(base, mine, theirs)`', M.ms.merge],
      ['`diffJson(base, theirs)`', M.ms.diff],
      ['of the merge: native `mergeJsonText` alone (inputs already text, result not parsed)', M.ms.mergeNative],
      ['reference: `JSON.parse(JSON.stringify(base))`', M.ms.roundtrip],
    ].map(([name, s]) => [name, num(s.p50, 2), num(s.p90, 2), num(s.min, 2), num(s.max, 2), String(s.n)]),
  )

  const O = results.ownWrites
  const ownTable = table(
    ['setup (one process writes with `doc.set`)', 'writes', 'watch events', 'external=true', 'document external-change'],
    [
      ['`openDocument(…, { watch: false })` + one `manager.watch`', O.watch, true],
      ['`openDocument` (its own watch), no other watcher', O.document, false],
      ['`openDocument` (its own watch) + one `manager.watch` of the same file', O.both, true],
    ].map(([name, r, watched]) => [
      name,
      String(r.writes),
      watched ? String(r.events) : '—',
      watched ? (r.external ? `**${r.external}**` : '0') : '—',
      r.docExternal ? `**${r.docExternal}**` : '0',
    ]),
  )

  const target = (ok) => (ok ? 'met' : '**NOT met**')
  const idleOurs = results.idle.ours
  const idleBase = results.idle.baseline
  const idleOursExtra = idleOurs ? per10s(idleOurs.cpuUsageMs, idleOurs.elapsedMs) - per10s(idleBase.cpuUsageMs, idleBase.elapsedMs) : NaN
  const targets = [
    `- detection p50 ≤ 20 ms (ours, debounce included): ${num(ours?.ms.p50, 2)} ms — ${target(ours?.ms.p50 <= 20)}`,
    `- every external replace seen by ours: ${ours?.seen}/${ours?.writes} — ${target(ours && ours.missed === 0)}`,
    `- idle CPU of ours = 0 (beyond what a Node process with no watcher uses): ${num(idleOursExtra, 2)} ms per 10 s more than no watcher by cpuUsage (${num(per10s(idleOurs?.cpuUsageMs, idleOurs?.elapsedMs), 2)} vs ${num(per10s(idleBase.cpuUsageMs, idleBase.elapsedMs), 2)}), ${idleOurs?.procTicks} vs ${idleBase.procTicks} clock ticks — ${target(idleOursExtra < 1 && idleOurs.procTicks <= idleBase.procTicks + 1)} (criterion: < 1 ms per 10 s more, ticks within one)`,
    `- merge < 50 ms: p50 ${num(M.ms.merge.p50, 2)} ms, p90 ${num(M.ms.merge.p90, 2)} ms — ${target(M.ms.merge.p90 < 50)} (criterion: p90)`,
    `- own writes never external: ${Object.entries(O).map(([v, r]) => `${v} ${r.external + r.docExternal}`).join(', ')} — ${target(Object.values(O).every((r) => r.external + r.docExternal === 0))}`,
  ]

  const clockWorst = Object.values(results.clock).reduce((m, c) => Math.max(m, Math.abs(c.offsetUs) - c.rttUs / 2), -Infinity)
  const clockWorstOffset = Math.max(...Object.values(results.clock).map((c) => Math.abs(c.offsetUs)))
  const clockWorstRtt = Math.max(...Object.values(results.clock).map((c) => c.rttUs))
  const lc = CFG.latency
  const ic = CFG.idle
  const mc = CFG.merge
  const tables = `## 1. Detection latency of an external atomic replace (write temp + rename, by another process)

${latencyTable}

## 2. Idle CPU of one watcher (fresh process, ${ic.windowMs / 1000} s idle window)

${idleTable}

## 3. Three-way merge of a roles document: ${mc.roles} roles, ${(M.bytesCompact / 1e6).toFixed(2)} MB as JSON (${(M.bytes / 1e6).toFixed(2)} MB pretty-printed, as JsonDocument writes it)

${mergeTable}

## 4. Own writes are not external

${ownTable}
${O.both?.external ? `
In the last row a write is recognised as ours by one watcher only: its content hash is consumed by the
first watcher of this process that sees it (crates/file-lock-core/src/watch/own_writes.rs, \`take_if_own\`), so the other watcher
of the same file reports it as external (which one gets there first is a race).
` : ''}
Targets:

${targets.join('\n')}`

  const md = `# Watch benchmark: file-lock-manager vs chokidar and fs.watch; merge; idle CPU

Machine: ${machine.cpu} × ${machine.cores} (shared, noisy VM), load average at start ${machine.loadavgAtStart.join(' ')}, at end ${machine.loadavgAtEnd.join(' ')};
${machine.platform}; Node ${machine.node}, chokidar ${machine.versions.chokidar}, file-lock-manager ${machine.versions.ours}${machine.commit ? ` (commit ${machine.commit}${machine.uncommittedSourceChanges?.length ? ` + uncommitted changes to ${machine.uncommittedSourceChanges.map((l) => l.replace(/^\S+\s+/, '')).join(', ')}` : ''})` : ''}${machine.addon ? `, addon sha256 ${machine.addon.sha256}… built ${machine.addon.builtAt}` : ''}. ${quick ? 'Quick' : 'Full'} run, ${machine.runSeconds} s, ${machine.date}.

${tables}

${problems.length ? `## PROBLEMS (ours)\n\n${problems.map((p) => `- ${p}`).join('\n')}\n\n` : ''}${notes.length ? `## Peers' misses and extra events\n\n${notes.map((p) => `- ${p}`).join('\n')}\n\n` : `No peer (${peers.filter((p) => p !== 'ours').map((p) => SHORT[p]).join(', ')}) missed a replace or reported more than one event for one.\n\n`}## Watchers

${peers.map((p) => `- **${SHORT[p]}** — ${LABELS[p]}`).join('\n')}

## Method

1. **Latency**: one watcher process per peer, all running together, each watching \`roles.json\` (${(Buffer.byteLength(rolesText(1)) / 1024).toFixed(0)} KB) in its
   own temp dir; one writer process. Per event the writer writes \`.roles.json.tmp-…\` beside the file,
   stamps t0 and \`rename\`s it over the file; the watcher stamps t1 first thing in its listener.
   Latency = t1 − t0 from \`process.hrtime.bigint()\` (CLOCK_MONOTONIC, shared by all processes on Linux;
   checked by IPC pings: the largest child−parent offset was ${num(clockWorstOffset, 0)} µs, within half the ${num(clockWorstRtt, 0)} µs round trip${clockWorst > 0 ? ` **except by ${num(clockWorst, 0)} µs**` : ''}).
   ${lc.events} cycles; in each, one replace per peer in an order rotated every cycle (chokidar awaitWriteFinish,
   which takes ~2 s per event, only every ${Math.max(1, Math.round(lc.events / lc.awfEvents))}th cycle: ${lc.awfEvents} replaces). The next replace waits until the
   previous one was reported (or ${lc.timeoutMs} ms passed; awaitWriteFinish ${lc.awfTimeoutMs} ms), then ${lc.gapMs} ms more, so events never coalesce.
   An event belongs to the latest replace of its file before it; "seen" = replaces with at least one event,
   latency = the first one. "events reported" counts every event, by kind. Ours settles bursts (15 ms of
   quiet) and then reads and hashes the file before it calls the listener, so its latency includes that
   debounce by design; raw \`fs.watch\` is the floor (an unsettled inotify event, no read).
2. **Idle CPU**: one fresh process per peer plus one with no watcher, all at the same time; each starts its
   watcher, waits ${ic.settleMs / 1000} s${ic.settleMs > 8000 ? ' (past the one-off full GCs V8\'s memory reducer runs ~8 s after start-up, ~20 ms of CPU in every Node process)' : ''}, then measures ${ic.windowMs / 1000} s of doing nothing. \`process.cpuUsage()\` is getrusage(RUSAGE_SELF),
   which on Linux covers every thread (µs resolution); /proc/self/stat utime+stime also covers all threads,
   native ones included, in clock ticks of ${num(tick, 0)} ms: a thread is charged a tick when the timer interrupt
   finds it running, so this column shows sustained use and cpuUsage the fine-grained total. The
   no-watcher process shows what the measurement costs by itself (the timer that ends the window, the reads).
   Threads: the process's thread count at the end of the window.
3. **Merge**: base = ${mc.roles} roles \`{ id, name, description (100 chars), permissions: [2-4] }\` plus \`version\`
   (${(M.bytes / 1e6).toFixed(2)} MB pretty-printed, ${(M.bytesCompact / 1e6).toFixed(2)} MB compact). mine renames 100 roles and adds one; theirs reverses the
   order of \`roles\`, edits 100 other roles' \`permissions\` and bumps \`version\`. Timed end to end from JS
   (JSON.stringify of the inputs, the Rust merge, JSON.parse of the result); ${mc.warmup} warm-up then ${mc.runs} timed runs of each
   operation, interleaved in rotated order, in a fresh process. Checked: clean=${M.checks.clean}, ${M.checks.roles} roles, version ${M.checks.version},
   ${M.checks.renamesKept}/100 renames and ${M.checks.permissionEditsKept}/100 permission edits kept, added role kept=${M.checks.addedKept}; diffJson(base, theirs) lists ${M.checks.diffChanges} change(s).
4. **Own writes**: one process opens the document and calls \`await doc.set(…)\` ${CFG.ownWrites.writes} times, ${CFG.ownWrites.gapMs} ms apart
   (past the debounce, so each write is reported by itself); counted: changes its \`manager.watch\` reports and
   how many have \`external: true\`, and the document's own \`external-change\` events.

Raw samples in watch.json. Command: \`${machine.command}\`.
`

  fs.mkdirSync(resultsDir, { recursive: true })
  fs.writeFileSync(path.join(resultsDir, 'watch.md'), md)
  const json = { machine, quick, config: CFG, peers: Object.fromEntries(peers.map((p) => [p, LABELS[p]])), results, problems, notes }
  fs.writeFileSync(path.join(resultsDir, 'watch.json'), toJson(json, 3) + '\n')

  console.log(`\n${tables}\n`)
  if (notes.length) console.log(notes.map((n) => `note: ${n}`).join('\n'))
  console.log(`(${quick ? 'quick' : 'full'} run, ${elapsedS.toFixed(1)} s; ${machine.cpu} × ${machine.cores}, load ${machine.loadavgAtStart.join(' ')}, Node ${machine.node}, chokidar ${machine.versions.chokidar})`)
  console.log(`wrote ${path.relative(process.cwd(), path.join(resultsDir, 'watch.md'))}, watch.json`)

  if (problems.length) {
    console.error('\n==================== BENCHMARK PROBLEMS ====================')
    for (const p of problems) console.error(`!! ${p}`)
    console.error('============================================================')
    console.error(`temp files kept for inspection in ${tmpRoot}`)
    process.exitCode = 1
  } else {
    fs.rmSync(tmpRoot, { recursive: true, force: true })
  }
}

function machineInfo(argv) {
  const root = path.join(here, '..')
  let commit = null
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {}
  let dirtySources = null
  try {
    dirtySources = execFileSync('git', ['status', '--porcelain', '--', 'src', 'index.js', 'lib', 'native.js', 'Cargo.toml'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim())
  } catch {}
  let addon = null
  try {
    const name = fs.readdirSync(root).find((f) => f.endsWith('.node'))
    if (name) {
      const file = path.join(root, name)
      addon = { file: name, sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16), builtAt: fs.statSync(file).mtime.toISOString() }
    }
  } catch {}
  let clockTickHz = 100
  try {
    clockTickHz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {}
  // chokidar's package.json is not in its "exports": find it above its entry point.
  let chokidarVersion = 'unknown'
  try {
    for (let d = path.dirname(require.resolve('chokidar')); d !== path.dirname(d); d = path.dirname(d)) {
      const pj = path.join(d, 'package.json')
      if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'chokidar') {
        chokidarVersion = JSON.parse(fs.readFileSync(pj, 'utf8')).version
        break
      }
    }
  } catch {}
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
    command: `node bench/watch.mjs${argv.length ? ' ' + argv.join(' ') : ''}`,
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    clockTickHz,
    commit,
    uncommittedSourceChanges: dirtySources,
    addon,
    versions: { ours: libVersions().ours, chokidar: chokidarVersion },
  }
}


// ---------------------------------------------------------------- entry (last: everything above is initialised)

const roleArg = process.argv.find((a) => a.startsWith('--role='))
if (roleArg) {
  await runChild(roleArg.slice(7), JSON.parse(process.argv[process.argv.indexOf(roleArg) + 1]))
} else {
  await main()
}
