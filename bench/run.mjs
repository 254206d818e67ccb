#!/usr/bin/env node
// Lock benchmark: file-lock-manager (ours) vs proper-lockfile vs fs-native-extensions.
//
//   npm run bench                 full run (about a minute)
//   npm run bench -- --quick      short run
//   node bench/run.mjs --libs=ours,fsnative-wait   only some libraries
//   node bench/run.mjs --scenarios=handoff         only some scenarios (a partial run
//                                                  writes no results files)
//
// Scenarios (every library does exactly the same operations; the workers are
// separate processes, bench/child.mjs, each scenario run in a fresh temp dir):
//   1. uncontended acquire+release latency (one process, nobody else on the file)
//   2. 2-process handoff latency: release start in A → acquire resolved in B, while
//      B's request is already pending (ping-pong, A holds 2 ms after B asked)
//   3. 4 processes doing lock-protected read-modify-write of a JSON counter for a
//      fixed time; increments/s, and the final counter must equal the sum of the
//      increments the workers report (a mismatch is a lost update: a bug).
//   4. handoff-floors (Linux): scenario 2 again for fs-native-extensions, ours and
//      two floors (bench/libs.mjs): a lock that wakes the event loop directly (one
//      wake-up instead of two) with no checks, and the same with the checks our
//      lock makes once it holds the OS lock. Where the handoff goal stands.
// Work is split into rounds with the library order rotated each round, so that
// bursts of noise on a shared machine do not all land on one library.
//
// Output: a markdown table on stdout, bench/results/locks.{md,json,svg}.

import { toJson } from './json.mjs'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createHash } from 'node:crypto'
import { LIBS, FLOORS, LABELS, SHORT, libVersions } from './libs.mjs'
import { renderChart, fmt } from './chart.mjs'
import { BENCH_WORKER as WORKER, Child } from '../testkit/process.mjs'
import { scratchArea } from '../testkit/scratch.mjs'
import { percentile, rotate, sortNum } from '../testkit/stats.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const childPath = path.join(here, 'child.mjs')
const resultsDir = path.join(here, 'results')

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const libsArg = argv.find((a) => a.startsWith('--libs='))
const libs = libsArg ? libsArg.slice(7).split(',') : LIBS
for (const l of libs) if (!LIBS.includes(l) && !FLOORS.includes(l)) throw new Error(`unknown library ${l}; known: ${[...LIBS, ...FLOORS].join(', ')}`)
const SCENARIOS = ['uncontended', 'handoff', 'increment', 'handoff-floors']
// Scenario 4's libraries, in this order (fs-native-extensions first: the reference).
const FLOOR_LIBS = ['fsnative-wait', ...FLOORS, 'ours']
const withFloors = process.platform === 'linux' // fs.watch on a file is inotify there
const scenariosArg = argv.find((a) => a.startsWith('--scenarios='))
const DEFAULT_SCENARIOS = SCENARIOS.filter((s) => s !== 'handoff-floors' || withFloors)
const scenarios = scenariosArg ? scenariosArg.slice(12).split(',') : DEFAULT_SCENARIOS
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`)

const slow = (lib) => lib === 'proper-lockfile'
const CFG = quick
  ? {
      uncontended: { rounds: 2, iterations: 1500, warmup: 300, slowIterations: 50, slowWarmup: 10 },
      handoff: { rounds: 1, samples: 100, slowSamples: 40, warmup: 5, holdMs: 2 },
      increment: { rounds: 1, processes: 4, durationMs: 1000 },
    }
  : {
      uncontended: { rounds: 4, iterations: 5000, warmup: 1000, slowIterations: 125, slowWarmup: 20 },
      handoff: { rounds: 3, samples: 100, slowSamples: 34, warmup: 5, holdMs: 2 },
      increment: { rounds: 3, processes: 4, durationMs: 2000 },
    }

const problems = [] // { lib, scenario, message } — anything that makes the run fail
const scratch = scratchArea('flm-bench-')
const tmpRoot = scratch.root
const freshDir = (tag) => scratch.fresh(tag)

// ---------------------------------------------------------------- child plumbing

/** A worker process (bench/child.mjs); a worker that fails reports why, and that fails every wait on it. */
function spawnChild(role, lib, cfg) {
  return new Child(childPath, [role, lib, JSON.stringify(cfg)], { name: `${lib} ${role} worker`, ...WORKER })
}

// ---------------------------------------------------------------- scenario 1

async function uncontended(lib, round) {
  const c = CFG.uncontended
  const dir = freshDir(`uncontended-${lib}-r${round}`)
  const file = path.join(dir, 'data.json')
  fs.writeFileSync(file, '{"count":0}')
  const cfg = {
    file,
    iterations: slow(lib) ? c.slowIterations : c.iterations,
    warmup: slow(lib) ? c.slowWarmup : c.warmup,
  }
  const w = spawnChild('uncontended', lib, cfg)
  try {
    const msg = await w.waitFor('done', { timeoutMs: 180000 })
    await w.exited
    return Array.from(msg.samples)
  } finally {
    w.kill()
  }
}

// ---------------------------------------------------------------- scenario 2

async function handoff(lib, round) {
  const c = CFG.handoff
  const dir = freshDir(`handoff-${lib}-r${round}`)
  const file = path.join(dir, 'data.json')
  fs.writeFileSync(file, '{"count":0}')
  const a = spawnChild('handoff', lib, { file })
  const b = spawnChild('handoff', lib, { file })
  const samples = []
  let violations = 0
  try {
    await Promise.all([a.waitFor('ready'), b.waitFor('ready')])
    a.send({ type: 'acquire' })
    await a.waitFor('waiting')
    await a.waitFor('acquired')
    let holder = a
    let waiter = b
    const want = (slow(lib) ? c.slowSamples : c.samples) + c.warmup
    for (let i = 0; i < want; i++) {
      waiter.send({ type: 'acquire' })
      await waiter.waitFor('waiting', { timeoutMs: 60000 })
      holder.send({ type: 'release', holdMs: c.holdMs })
      const [released, acquired] = await Promise.all([holder.waitFor('released', { timeoutMs: 60000 }), waiter.waitFor('acquired', { timeoutMs: 60000 })])
      const dt = Number(acquired.t1 - released.t0) / 1000 // µs
      if (dt < 0) violations++ // B held the lock before A began to release it
      if (i >= c.warmup) samples.push(dt)
      ;[holder, waiter] = [waiter, holder]
    }
    holder.send({ type: 'stop' })
    waiter.send({ type: 'stop' })
    await Promise.all([holder.waitFor('stopped'), waiter.waitFor('stopped')])
    await Promise.all([a.exited, b.exited])
  } finally {
    a.kill()
    b.kill()
  }
  if (violations > 0) {
    problems.push({
      lib,
      scenario: 'handoff',
      message: `MUTUAL EXCLUSION VIOLATED: in ${violations} handoffs the waiter's acquire resolved before the holder began to release`,
    })
  }
  return samples
}

// ---------------------------------------------------------------- scenario 3

async function increments(lib, round) {
  const c = CFG.increment
  const dir = freshDir(`increment-${lib}-r${round}`)
  const file = path.join(dir, 'counter.json')
  fs.writeFileSync(file, JSON.stringify({ count: 0 }))
  const workers = Array.from({ length: c.processes }, () => spawnChild('increment', lib, { file }))
  try {
    await Promise.all(workers.map((w) => w.waitFor('ready')))
    const startNs = process.hrtime.bigint() + 300_000_000n // all start together, 0.3 s from now
    const durationNs = BigInt(c.durationMs) * 1_000_000n
    for (const w of workers) w.send({ type: 'go', startNs: String(startNs), durationNs: String(durationNs) })
    const done = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs: c.durationMs + 120000 })))
    await Promise.all(workers.map((w) => w.exited))
    const counts = done.map((d) => d.count)
    const total = counts.reduce((s, n) => s + n, 0)
    const lastNs = done.reduce((m, d) => (BigInt(d.finishedNs) > m ? BigInt(d.finishedNs) : m), 0n)
    const elapsedS = Number(lastNs - startNs) / 1e9
    let finalCount
    try {
      finalCount = JSON.parse(fs.readFileSync(file, 'utf8')).count
    } catch (error) {
      finalCount = `unreadable: ${error.message}`
    }
    const ok = finalCount === total
    if (!ok) {
      const message =
        `LOST UPDATE: final counter ${finalCount} != ${total} = sum of increments reported by the ` +
        `${c.processes} workers (${counts.join(' + ')}); file ${file}`
      problems.push({ lib, scenario: 'increment', message })
      console.error(`\n!!!!! ${lib}: ${message} !!!!!\n`)
    }
    return { counts, total, elapsedS, perSecond: total / elapsedS, finalCount, ok, maxWaitMs: Math.max(...done.map((d) => d.maxWaitMs)) }
  } finally {
    for (const w of workers) w.kill()
  }
}

// ---------------------------------------------------------------- driver

async function runScenario(name, fn, rounds, which = libs) {
  const perLib = Object.fromEntries(which.map((l) => [l, []]))
  for (let r = 0; r < rounds; r++) {
    for (const lib of rotate(which, r)) {
      process.stderr.write(`  ${name} round ${r + 1}/${rounds}: ${lib} ... `)
      const t = Date.now()
      try {
        perLib[lib].push(await fn(lib, r))
        process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`)
      } catch (error) {
        process.stderr.write('FAILED\n')
        console.error(error.childStack ?? error.stack)
        problems.push({ lib, scenario: name, message: error.message })
        perLib[lib].push(null)
      }
    }
  }
  return perLib
}

function machineInfo() {
  let commit = null
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.join(here, '..'), encoding: 'utf8' }).trim()
  } catch {}
  // Which native build was measured (the addon is rebuilt by `npm run build`).
  let addon = null
  try {
    const root = path.join(here, '..')
    const name = fs.readdirSync(root).find((f) => f.endsWith('.node'))
    if (name) {
      const file = path.join(root, name)
      const digest = createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16)
      addon = { file: name, sha256: digest, builtAt: fs.statSync(file).mtime.toISOString() }
    }
  } catch {}
  let dirtySources = null
  try {
    dirtySources = execFileSync('git', ['status', '--porcelain', '--', 'src', 'index.js', 'native.js', 'Cargo.toml'], {
      cwd: path.join(here, '..'),
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim())
  } catch {}
  return {
    addon,
    uncommittedSourceChanges: dirtySources,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism?.() ?? null,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
    command: `node bench/run.mjs${argv.length ? ' ' + argv.join(' ') : ''}`,
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    commit,
    versions: libVersions(),
  }
}

const t0 = Date.now()
const machine = machineInfo()
console.error(`file-lock-manager lock benchmark (${quick ? 'quick' : 'full'}), libraries: ${libs.join(', ')}`)
console.error(`temp dir: ${tmpRoot}`)

const raw = {}
const RUNS = {
  uncontended: ['1. uncontended acquire+release', uncontended, CFG.uncontended.rounds],
  handoff: ['2. two-process handoff', handoff, CFG.handoff.rounds],
  increment: ['3. four-process lock-protected increments', increments, CFG.increment.rounds],
  'handoff-floors': ['4. the handoff against its floors', handoff, CFG.handoff.rounds, FLOOR_LIBS],
}
for (const name of scenarios) {
  const [title, run, rounds, which] = RUNS[name]
  console.error(title)
  raw[name] = await runScenario(name, run, rounds, which)
}
if (DEFAULT_SCENARIOS.some((s) => !scenarios.includes(s))) {
  // A partial run (comparing a change): medians per round on stdout, no results files.
  const median = (v) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a')
  for (const name of scenarios) {
    for (const lib of RUNS[name][3] ?? libs) {
      const rounds = raw[name][lib].filter(Boolean)
      const medians = name === 'increment' ? rounds.map((r) => r.perSecond) : rounds.map((r) => percentile(sortNum(r), 50))
      const all = name === 'increment' ? sortNum(medians) : sortNum(rounds.flat())
      console.log(`${name} ${SHORT[lib]}: p50 ${median(percentile(all, 50))} (rounds ${medians.map((v) => median(v)).join(' / ')})`)
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`${p.lib} ${p.scenario}: ${p.message}`)
    process.exitCode = 1
  }
  scratch.remove()
  process.exit()
}
const elapsedS = (Date.now() - t0) / 1000
machine.loadavgAtEnd = os.loadavg().map((x) => +x.toFixed(2))
machine.runSeconds = +elapsedS.toFixed(1)

// ---------------------------------------------------------------- summarise

const summary = {}
for (const lib of libs) {
  const u = raw.uncontended[lib].filter(Boolean)
  const uAll = sortNum(u.flat())
  const h = raw.handoff[lib].filter(Boolean)
  const hAll = sortNum(h.flat())
  const inc = raw.increment[lib].filter(Boolean)
  const incTotal = inc.reduce((s, x) => s + x.total, 0)
  const incTime = inc.reduce((s, x) => s + x.elapsedS, 0)
  summary[lib] = {
    label: LABELS[lib],
    uncontended: {
      n: uAll.length,
      p50: percentile(uAll, 50),
      p99: percentile(uAll, 99),
      percentiles: Object.fromEntries([1, 10, 25, 50, 75, 90, 99, 99.9].map((p) => [`p${p}`, percentile(uAll, p)]).concat([['max', uAll.length ? uAll[uAll.length - 1] : NaN]])),
      perRoundP50: u.map((s) => percentile(sortNum(s), 50)),
    },
    handoff: {
      n: hAll.length,
      p50: percentile(hAll, 50),
      p90: percentile(hAll, 90),
      p99: percentile(hAll, 99),
      min: hAll.length ? hAll[0] : NaN,
      perRoundP50: h.map((s) => percentile(sortNum(s), 50)),
    },
    increment: {
      perSecond: incTime > 0 ? incTotal / incTime : NaN,
      perRound: inc.map((x) => x.perSecond),
      totalIncrements: incTotal,
      allCountersMatched: inc.length > 0 && inc.every((x) => x.ok),
      // Fairness: the longest single acquire wait of any worker, and max/min of the
      // per-worker increment counts (1.0 = perfectly even), worst round.
      worstWaitMs: inc.length ? Math.max(...inc.map((x) => x.maxWaitMs)) : NaN,
      countSpread: inc.length ? Math.max(...inc.map((x) => Math.max(...x.counts) / Math.max(1, Math.min(...x.counts)))) : NaN,
      rounds: inc,
    },
  }
}

// The handoff against its floors (scenario 4), each ÷ fs-native-extensions in
// the same scenario: the goal's reference measured beside them.
const handoffFloors = raw['handoff-floors'] === undefined ? null : floorSummary(raw['handoff-floors'])

function floorSummary(perLib) {
  const p50 = Object.fromEntries(FLOOR_LIBS.map((l) => [l, percentile(sortNum(perLib[l].filter(Boolean).flat()), 50)]))
  const reference = p50['fsnative-wait']
  return Object.fromEntries(
    FLOOR_LIBS.map((l) => [l, { label: LABELS[l], p50: p50[l], ratio: p50[l] / reference, perRoundP50: perLib[l].filter(Boolean).map((r) => percentile(sortNum(r), 50)) }]),
  )
}

// ---------------------------------------------------------------- report

const num = (v, d = 1) => (Number.isFinite(v) ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(d)) : 'n/a')
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : 'n/a')

const metrics = [
  { key: 'uncontended p50 (µs)', get: (s) => s.uncontended.p50, better: 'lower' },
  { key: 'uncontended p99 (µs)', get: (s) => s.uncontended.p99, better: 'lower' },
  { key: 'handoff p50 (µs)', get: (s) => s.handoff.p50, better: 'lower' },
  { key: 'handoff p90 (µs)', get: (s) => s.handoff.p90, better: 'lower' },
  { key: '4-process increments/s', get: (s) => s.increment.perSecond, better: 'higher', d: 0 },
  { key: '4-process worst single wait (ms)', get: (s) => s.increment.worstWaitMs, better: 'lower' },
  { key: '4-process count spread (max/min)', get: (s) => s.increment.countSpread, better: 'lower', d: 2 },
]
const colLibs = libs
const ratioTargets = ['fsnative-wait', 'fsnative-try'].filter((l) => libs.includes(l) && libs.includes('ours'))

const header = ['metric', ...colLibs.map((l) => SHORT[l]), ...ratioTargets.map((l) => `ours ÷ ${SHORT[l]}`)]
const rows = metrics.map((m) => [
  `${m.key}${m.better === 'lower' ? ' ↓' : ' ↑'}`,
  ...colLibs.map((l) => num(m.get(summary[l]), m.d ?? 1)),
  ...ratioTargets.map((t) => ratio(m.get(summary.ours), m.get(summary[t]))),
])
rows.push([
  'final counter = Σ increments',
  ...colLibs.map((l) => (summary[l].increment.rounds.length === 0 ? 'n/a' : summary[l].increment.allCountersMatched ? 'yes' : '**NO — LOST UPDATE**')),
  ...ratioTargets.map(() => ''),
])
const table = [
  `| ${header.join(' | ')} |`,
  `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n')

const cu = CFG.uncontended
const ch = CFG.handoff
const ci = CFG.increment
const samplesLine = libs
  .map((l) => `${SHORT[l]}: ${summary[l].uncontended.n} uncontended ops, ${summary[l].handoff.n} handoffs`)
  .join('; ')

const md = `# Lock benchmark: file-lock-manager vs proper-lockfile vs fs-native-extensions

${table}

↓ lower is better, ↑ higher is better. Ratio columns: ours divided by the fs-native-extensions
variant (for latencies below 1× means ours is faster; for increments/s above 1× means ours is faster).

Libraries (all exclusive locks, all on the same kind of temp directory):

${libs.map((l) => `- **${SHORT[l]}** — ${LABELS[l]}`).join('\n')}

Both fs-native-extensions rows lock a sidecar \`.<name>.lock\` beside the data file, opened once with
\`fs.openSync\` and kept open, as ours does (fs-native-extensions uses Linux OFD \`fcntl\` locks, ours
\`flock\`). The "wait" row is the README usage (\`await waitForLock(fd)\`, which always goes through a
libuv pool thread); the "try" row first calls the synchronous \`tryLock(fd)\`, the same fast path ours
takes internally. Ours additionally writes a holder record (pid, fencing token, …) into the sidecar on
every acquisition; the others do not. proper-lockfile: \`lock(file, { retries: { retries: 1000,
minTimeout: 1, maxTimeout: 20 }, realpath: false })\`, which mkdirs \`<file>.lock\` and polls with backoff.

## Method

1. **Uncontended**: one worker process, ${cu.warmup} warm-up then ${cu.iterations} timed
   \`acquire → release\` per round (proper-lockfile: ${cu.slowWarmup} + ${cu.slowIterations}), ${cu.rounds} rounds, each in a fresh
   process and temp dir. Per-op time from \`process.hrtime.bigint()\`.
2. **Handoff**: two worker processes A and B ping-pong on one lock. B issues its acquire and reports it
   (through the parent, over IPC); A then holds ${ch.holdMs} ms more so that B is really blocked, stamps
   \`t0\` and releases; B stamps \`t1\` when its acquire resolves. Sample = \`t1 − t0\`
   (\`hrtime.bigint\` is CLOCK_MONOTONIC, comparable across processes). Roles then swap. ${ch.samples} samples
   per round after ${ch.warmup} warm-up (proper-lockfile: ${ch.slowSamples}), ${ch.rounds} round(s), fresh processes each round.
   A negative sample would mean B got the lock before A let go; the harness checks for it.
3. **Increments**: ${ci.processes} worker processes start together and loop for ${ci.durationMs / 1000} s:
   \`acquire → readFileSync + JSON.parse counter → +1 → writeFileSync → release\`; ${ci.rounds} round(s).
   increments/s = Σ increments / (last worker's finish − start). After each round the counter file
   must equal the sum of increments the workers report. Fairness rows: the longest single acquire
   wait seen by any worker, and the ratio of the busiest to the least busy worker's increment count
   (1.00 = even), each the worst over the rounds.

Rounds rotate the library order so that noise on the shared machine is spread over all libraries.
Samples: ${samplesLine}.

Per-round detail — uncontended p50 (µs): ${libs.map((l) => `${SHORT[l]} ${summary[l].uncontended.perRoundP50.map((v) => num(v)).join(' / ')}`).join('; ')}.
Handoff p50 (µs): ${libs.map((l) => `${SHORT[l]} ${summary[l].handoff.perRoundP50.map((v) => num(v)).join(' / ')}`).join('; ')}.
Increments/s: ${libs.map((l) => `${SHORT[l]} ${summary[l].increment.perRound.map((v) => num(v, 0)).join(' / ')}`).join('; ')}.

${handoffFloors === null ? '' : floorSection(handoffFloors)}${problems.length ? `## PROBLEMS\n\n${problems.map((p) => `- **${p.lib} / ${p.scenario}**: ${p.message}`).join('\n')}\n\n` : ''}## Machine

- CPU: ${machine.cpu} × ${machine.cores} cores (shared, noisy VM), ${machine.memoryGiB} GiB RAM
- OS: ${machine.platform}
- Node: ${machine.node}
- Libraries: file-lock-manager ${machine.versions.ours}${machine.commit ? ` (commit ${machine.commit}${machine.uncommittedSourceChanges?.length ? ` + uncommitted changes to ${machine.uncommittedSourceChanges.map((l) => l.replace(/^\S+\s+/, '')).join(', ')}` : ''})` : ''}${machine.addon ? `, addon ${machine.addon.file} sha256 ${machine.addon.sha256}… built ${machine.addon.builtAt}` : ''}, fs-native-extensions ${machine.versions['fs-native-extensions']}, proper-lockfile ${machine.versions['proper-lockfile']}
- Date: ${machine.date}
- Command: \`${machine.command}\` (${quick ? 'quick' : 'full'} run, ${machine.runSeconds} s)
- Load average at start / end: ${machine.loadavgAtStart.join(' ')} / ${machine.loadavgAtEnd.join(' ')}

![chart](locks.svg)
`

function floorSection(floors) {
  const rows = FLOOR_LIBS.map((l) => `| ${SHORT[l]} | ${num(floors[l].p50)} | ${floors[l].ratio.toFixed(2)}× | ${floors[l].perRoundP50.map((v) => num(v)).join(' / ')} |`)
  return `## The handoff against its floors

Scenario 2 again, in its own rounds: fs-native-extensions, ours, and two floors that are not
libraries (bench/libs.mjs). **one-wake floor**: the release is announced (unlock, then an fchmod
of the sidecar to its own mode: inotify's IN_ATTRIB) and the waiter's event loop, woken by
\`fs.watch\`, takes the lock with \`tryLock\`: one wake-up where fs-native-extensions and ours have
two (kernel → a blocked thread → the event loop), and no checks at all. **+ claim**: the same,
plus what our lock checks once it holds the OS lock — the sidecar is still the file its path
names (one \`stat\`: without it two processes can hold the lock, one on an unlinked file) and
the holder record read (the previous fencing token, a lock-file holder to follow) — and the
record written after the hand-over.

| handoff p50 | µs | ÷ fs-native (wait) | per round |
| --- | ---: | ---: | --- |
${rows.join('\n')}

`
}

const bars = (get, whisker, whiskerLabel) =>
  libs.map((l) => ({
    lib: l,
    label: LABELS[l].replace(/`/g, ''),
    short: SHORT[l],
    value: get(summary[l]),
    whisker: whisker ? whisker(summary[l]) : undefined,
    whiskerLabel,
  }))
const svg = renderChart({
  title: 'Cross-process file locks on Linux: file-lock-manager vs peers',
  subtitle: `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date.slice(0, 10)} (${quick ? 'quick' : 'full'} run)`,
  panels: [
    { title: 'Uncontended acquire+release', unit: 'µs, p50 (whisker p99)', better: 'lower', bars: bars((s) => s.uncontended.p50, (s) => s.uncontended.p99, 'p99') },
    { title: '2-process handoff', unit: 'µs, p50 (whisker p90)', better: 'lower', bars: bars((s) => s.handoff.p50, (s) => s.handoff.p90, 'p90') },
    { title: '4-process locked increments', unit: 'increments/s', better: 'higher', bars: bars((s) => s.increment.perSecond) },
  ],
  footer: 'Generated by bench/run.mjs; raw numbers in locks.json, method in locks.md.',
})

fs.mkdirSync(resultsDir, { recursive: true })
fs.writeFileSync(path.join(resultsDir, 'locks.md'), md)
fs.writeFileSync(path.join(resultsDir, 'locks.svg'), svg)
// The per-operation uncontended latencies (tens of thousands of numbers) go to a
// git-ignored raw file; locks.json keeps their percentiles, and everything else raw.
const rawUncontendedFile = `raw-uncontended-${quick ? 'quick' : 'full'}.json`
fs.writeFileSync(path.join(resultsDir, rawUncontendedFile), toJson({ machine, unit: 'µs per acquire+release', samplesPerRound: raw.uncontended }, 2) + '\n')
const json = {
  machine,
  quick,
  config: CFG,
  libraries: Object.fromEntries(libs.map((l) => [l, LABELS[l]])),
  summary,
  handoffFloors,
  problems,
  raw: {
    uncontended: `per-op samples in ${rawUncontendedFile} (git-ignored); percentiles in summary`,
    handoffMicrosPerRound: raw.handoff,
    handoffFloorsMicrosPerRound: raw['handoff-floors'] ?? null,
    increment: raw.increment,
  },
}
fs.writeFileSync(path.join(resultsDir, 'locks.json'), toJson(json, 2) + '\n')

console.log(`\n${table}\n`)
console.log(`(${quick ? 'quick' : 'full'} run, ${elapsedS.toFixed(1)} s; ${machine.cpu} × ${machine.cores}, Node ${machine.node})`)
console.log(`wrote ${path.relative(process.cwd(), path.join(resultsDir, 'locks.md'))}, locks.json, locks.svg`)

if (problems.length) {
  console.error('\n==================== BENCHMARK PROBLEMS ====================')
  for (const p of problems) console.error(`!! ${p.lib} / ${p.scenario}: ${p.message}`)
  console.error('============================================================')
  console.error(`temp files kept for inspection in ${tmpRoot}`)
  process.exitCode = 1
} else {
  fs.rmSync(tmpRoot, { recursive: true, force: true })
}
