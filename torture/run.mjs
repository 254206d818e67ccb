#!/usr/bin/env node
// Torture harness: drives real processes through the public API of
// file-lock-manager under hostile conditions and checks the figures against
// their targets. Exits 1 when any target is missed (so `npm test` fails on a
// regression), 2 on bad usage.
//
//   node torture/run.mjs [--quick] [--only=a,b] [--out=FILE.md] [--keep-tmp] [--list]
//                        [--scenarios-dir=DIR]  (scenario modules from DIR instead of torture/scenarios)
//
// Scenarios are the modules of torture/scenarios/ (see torture/README.md):
// each runs in its own process group with a time limit, in a fresh temp dir;
// when it ends (or is killed for running over time) the whole group is
// SIGKILLed and the temp dir removed.
import { execFileSync, fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { fmt } from './lib/harness.mjs'

const TORTURE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.dirname(TORTURE)
let SCENARIOS = path.join(TORTURE, 'scenarios')
let customDir = false
const RUNNER = path.join(TORTURE, 'lib', 'runner.mjs')
const RESULTS = path.join(ROOT, 'torture', 'results')
/** Scenarios listed here run first, in this order; any other module of scenarios/ follows (by `order`, then name). */
const ORDER = ['kill-storm', 'lock-stress', 'deadlocks', 'clock-jumps']
const DEFAULT_BUDGET_MS = { quick: 30_000, full: 300_000 }

// ------------------------------------------------------------------ arguments

function usage(message) {
  if (message) console.error(`torture: ${message}`)
  console.error('usage: node torture/run.mjs [--quick] [--only=name,...] [--out=FILE.md] [--keep-tmp] [--list] [--scenarios-dir=DIR]')
  process.exit(2)
}

const args = { quick: false, only: null, out: null, keepTmp: false, list: false }
for (const arg of process.argv.slice(2)) {
  if (arg === '--quick') args.quick = true
  else if (arg === '--keep-tmp') args.keepTmp = true
  else if (arg === '--list') args.list = true
  else if (arg.startsWith('--only=')) args.only = arg.slice(7).split(',').map((s) => s.trim()).filter(Boolean)
  else if (arg.startsWith('--out=')) args.out = path.resolve(arg.slice(6))
  else if (arg.startsWith('--scenarios-dir=')) (SCENARIOS = path.resolve(arg.slice(16))), (customDir = true)
  else if (arg === '--help' || arg === '-h') usage()
  else usage(`unknown argument ${arg}`)
}
const mode = args.quick ? 'quick' : 'full'

// ------------------------------------------------------------------ registry

async function loadScenarios() {
  const files = fs.readdirSync(SCENARIOS).filter((f) => f.endsWith('.mjs') && !f.startsWith('_'))
  const loaded = []
  for (const file of files) {
    const full = path.join(SCENARIOS, file)
    const mod = (await import(pathToFileURL(full).href)).default
    if (!mod || typeof mod.name !== 'string' || typeof mod.run !== 'function') {
      throw new Error(`${file}: a scenario module must export default { name, title, run }`)
    }
    loaded.push({ ...mod, file: full })
  }
  const rank = (s) => {
    const i = ORDER.indexOf(s.name)
    return i === -1 ? ORDER.length + (s.order ?? 0) : i
  }
  return loaded.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
}

// ------------------------------------------------------------------ machine

function sh(cmd, argv) {
  try {
    return execFileSync(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  } catch {
    return null
  }
}

const FS_TYPES = { 0xef53: 'ext2/3/4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x65735546: 'fuse', 0x6969: 'nfs' }

function machine() {
  const cpus = os.cpus()
  let tmpFs = 'unknown'
  try {
    const type = fs.statfsSync(os.tmpdir()).type
    tmpFs = FS_TYPES[type] ?? `0x${type.toString(16)}`
  } catch {}
  const head = sh('git', ['rev-parse', '--short', 'HEAD'])
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no'])
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tmpdir: `${os.tmpdir()} (${tmpFs})`,
    commit: head ? `${head}${dirty ? ' + uncommitted changes' : ''}` : 'unknown',
    loadAverageStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

// ------------------------------------------------------------------ processes

/** Pids of live processes in process group `pgid` (from /proc). */
function groupMembers(pgid) {
  const members = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // fields[0] = state, fields[2] = pgrp
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry))
    } catch {}
  }
  return members
}

/** Pids of live processes whose command line mentions `needle` (a scenario's temp dir). */
function processesMentioning(needle) {
  const found = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      const state = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0]
      if (cmdline.includes(needle) && state !== 'Z') found.push(Number(entry))
    } catch {}
  }
  return found
}

/** Mount points at or under `dir`. */
function mountsUnder(dir) {
  try {
    return fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
      .filter((mountPoint) => mountPoint && (mountPoint === dir || mountPoint.startsWith(`${dir}/`)))
  } catch {
    return []
  }
}

const killGroup = (pgid) => {
  try {
    process.kill(-pgid, 'SIGKILL')
  } catch {}
}

let current = null // { pgid, tmp } of the scenario running now, for Ctrl-C

function interrupted(signal) {
  console.error(`\ntorture: ${signal}: killing the running scenario`)
  if (current) {
    killGroup(current.pgid)
    if (!args.keepTmp && mountsUnder(current.tmp).length === 0) fs.rmSync(current.tmp, { recursive: true, force: true })
  }
  process.exit(130)
}
process.on('SIGINT', interrupted)
process.on('SIGTERM', interrupted)

// ------------------------------------------------------------------ one scenario

async function runScenario(scenario) {
  const budgetMs = scenario.budgetMs?.[mode] ?? DEFAULT_BUDGET_MS[mode]
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `flm-torture-${scenario.name}-`)))
  const started = Date.now()
  const deadline = started + budgetMs
  const logs = []
  const prefix = `  ${scenario.name.padEnd(nameWidth)} │ `
  const runner = fork(RUNNER, [scenario.file, JSON.stringify({ quick: args.quick, tmp, deadline })], {
    detached: true, // its own process group: killed as a whole at the end
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    cwd: ROOT,
  })
  const pgid = runner.pid
  current = { pgid, tmp }
  const printLines = (stream) => {
    let buffered = ''
    stream.on('data', (chunk) => {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        logs.push(line)
        console.log(prefix + line)
      }
    })
  }
  printLines(runner.stdout)
  printLines(runner.stderr)

  let partial = []
  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), budgetMs)
    runner.on('message', (message) => {
      if (message?.type === 'partial') partial = message.figures
      if (message?.type === 'result') {
        clearTimeout(timer)
        resolve({ kind: 'result', result: message.result })
      }
    })
    runner.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ kind: 'exit', code, signal })
    })
  })
  killGroup(pgid)
  // Wait (bounded) for the group to be gone: a process stuck in the kernel (D state) may linger.
  const reapBy = Date.now() + 5000
  while (groupMembers(pgid).length > 0 && Date.now() < reapBy) await new Promise((r) => setTimeout(r, 20))
  const leftInGroup = groupMembers(pgid)
  if (runner.exitCode === null && runner.signalCode === null) await new Promise((r) => runner.once('exit', r))

  const durationMs = Date.now() - started
  let result
  if (outcome.kind === 'result') {
    result = outcome.result
  } else if (outcome.kind === 'timeout') {
    result = {
      figures: [
        ...partial,
        { label: 'finished within its time limit', value: `no: killed after ${fmt(budgetMs / 1000)} s`, unit: '', target: `≤ ${fmt(budgetMs / 1000)} s`, ok: false },
      ],
    }
  } else {
    result = {
      figures: [
        ...partial,
        { label: 'ran to completion', value: `runner died (code ${outcome.code}, signal ${outcome.signal})`, unit: '', target: 'a result', ok: false },
      ],
      error: logs.slice(-20).join('\n'),
    }
  }

  result.figures ??= []
  // The scenario's own cleanup (e.g. unmounting a file system), in this process.
  if (typeof scenario.cleanup === 'function') {
    try {
      await Promise.race([scenario.cleanup({ quick: args.quick, tmp }), new Promise((_, reject) => setTimeout(() => reject(new Error('cleanup took over 30 s')), 30000))])
    } catch (error) {
      result.figures.push({ label: 'cleanup', value: `failed: ${error.message}`, unit: '', target: 'done', ok: false })
    }
  }
  const stray = [...new Set([...leftInGroup, ...processesMentioning(tmp)])]
  for (const pid of stray) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  if (stray.length > 0) {
    result.figures.push({ label: 'processes that outlived the scenario (killed by the harness)', value: stray.length, unit: '', target: '= 0', ok: false, detail: `pids ${stray.join(' ')}` })
  }
  const mounts = mountsUnder(tmp)
  let tmpLeft = false
  if (args.keepTmp) {
    console.log(`${prefix}temp dir kept: ${tmp}`)
  } else if (mounts.length > 0) {
    tmpLeft = true // never recurse into a live mount (it may be a hung FUSE file system)
  } else {
    try {
      fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 })
    } catch {}
    tmpLeft = fs.existsSync(tmp)
  }
  current = null
  return {
    name: scenario.name,
    title: scenario.title ?? scenario.name,
    durationMs,
    budgetMs,
    skipped: result.skipped ?? null,
    figures: result.figures ?? [],
    error: result.error ?? null,
    housekeeping: { strayProcesses: stray, mountsLeft: mounts, tmpLeft: tmpLeft ? tmp : null },
  }
}

// ------------------------------------------------------------------ report

const mark = (f) => (f.target === undefined ? '·' : f.ok ? '✓' : '✗')
const valueText = (f) => `${fmt(f.value)}${f.unit ? ` ${f.unit}` : ''}`

function table(results) {
  const rows = [['scenario', 'figure', 'value', 'target', '✓/✗']]
  for (const r of results) {
    if (r.skipped) rows.push([r.name, 'skipped', r.skipped, '', '·'])
    for (const f of r.figures) rows.push([r.name, f.label, valueText(f), f.target ?? '', mark(f)])
  }
  const esc = (s) => String(s).replace(/\|/g, '\\|')
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => esc(row[c]).length)))
  const line = (row) => `| ${row.map((cell, c) => esc(cell).padEnd(widths[c])).join(' | ')} |`
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n')
}

function markdown({ date, machine: m, command, results, failed, totalMs }) {
  const lines = [
    `# Torture run (${mode} mode)`,
    '',
    `- date: ${date}`,
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}`,
    `- load average (1, 5, 15 min): ${m.loadAverageStart.join(', ')} at the start, ${m.loadAverageEnd.join(', ')} at the end`,
    `- Node ${m.node}; temp dir ${m.tmpdir}; commit ${m.commit}`,
    `- reproduce: \`${command}\``,
    `- total time: ${fmt(totalMs / 1000)} s; result: ${failed.length === 0 ? 'every target met' : `${failed.length} target(s) missed`}`,
    '',
    table(results),
    '',
    'Scenarios:',
    '',
    ...results.filter((r) => r.name !== 'harness').map((r) => `- **${r.name}** (${fmt(r.durationMs / 1000)} s of ${fmt(r.budgetMs / 1000)} s allowed): ${r.title}`),
    '',
    '`·` = informational figure (no target). Method of each scenario: torture/README.md.',
    '',
  ]
  if (failed.length > 0) {
    lines.push('Missed targets:', '', ...failed.map(({ r, f }) => `- ${r.name} / ${f.label}: ${valueText(f)} (target ${f.target})${f.detail ? ` — ${f.detail}` : ''}`), '')
  }
  return lines.join('\n')
}

// ------------------------------------------------------------------ main

const all = await loadScenarios()
if (args.list) {
  for (const s of all) console.log(`${s.name.padEnd(14)} ${s.title ?? ''}`)
  process.exit(0)
}
let chosen = all
if (args.only) {
  const unknown = args.only.filter((name) => !all.some((s) => s.name === name))
  if (unknown.length > 0) usage(`unknown scenario(s): ${unknown.join(', ')} (known: ${all.map((s) => s.name).join(', ')})`)
  chosen = all.filter((s) => args.only.includes(s.name))
}

const nameWidth = Math.max(...chosen.map((s) => s.name.length))
const info = machine()
const date = new Date().toISOString()
const command = ['node torture/run.mjs', args.quick && '--quick', args.only && `--only=${args.only.join(',')}`].filter(Boolean).join(' ')
console.log(`torture: ${mode} mode, ${chosen.length} scenario(s): ${chosen.map((s) => s.name).join(', ')}`)
console.log(`torture: ${info.cpu}, ${info.cores} cores, load ${info.loadAverageStart.join(' ')}, Node ${info.node}`)

const started = Date.now()
const results = []
for (const scenario of chosen) {
  console.log(`\n▶ ${scenario.name}: ${scenario.title ?? ''}`)
  const result = await runScenario(scenario)
  results.push(result)
  const missed = result.figures.filter((f) => !f.ok)
  console.log(`  ${scenario.name.padEnd(nameWidth)} │ done in ${fmt(result.durationMs / 1000)} s${result.skipped ? ` (skipped: ${result.skipped})` : ''}, ${missed.length === 0 ? 'all targets met' : `${missed.length} target(s) missed`}`)
}
const totalMs = Date.now() - started

// Housekeeping of the harness itself: nothing may outlive a scenario.
const stray = results.flatMap((r) => r.housekeeping.strayProcesses)
const tmpLeft = results.map((r) => r.housekeeping.tmpLeft).filter(Boolean)
const mountsLeft = results.flatMap((r) => r.housekeeping.mountsLeft)
results.push({
  name: 'harness',
  title: 'the harness itself: every child killed, every temp dir removed',
  durationMs: 0,
  budgetMs: 0,
  skipped: null,
  figures: [
    { label: 'processes left after their scenario (killed)', value: stray.length, unit: '', target: '= 0', ok: stray.length === 0, detail: stray.join(' ') },
    { label: 'temp dirs not removed', value: tmpLeft.length, unit: '', target: '= 0', ok: tmpLeft.length === 0, detail: `${tmpLeft.join(' ')}${mountsLeft.length ? ` (still mounted under them: ${mountsLeft.join(' ')})` : ''}` },
    // Informational: each scenario has its own time limit (a ✗ row when exceeded);
    // the first run on a machine also builds flm-netsim (cargo) inside its scenarios.
    { label: 'total time', value: Math.round(totalMs / 100) / 10, unit: 's', ok: true },
  ],
})
info.loadAverageEnd = os.loadavg().map((x) => Math.round(x * 100) / 100)

const failed = results.flatMap((r) => r.figures.filter((f) => !f.ok).map((f) => ({ r, f })))
console.log(`\n${table(results)}\n`)
for (const r of results) if (r.error) console.log(`${r.name}: ${r.error}\n`)
if (failed.length > 0) {
  console.log('Missed targets:')
  for (const { r, f } of failed) console.log(`  ✗ ${r.name} / ${f.label}: ${valueText(f)} (target ${f.target})${f.detail ? ` — ${f.detail}` : ''}`)
}

// Where the report goes: full runs → torture.md, quick runs → torture-quick.md
// (npm test runs the quick mode: it must not overwrite the full run's figures);
// a subset (--only) or other scenarios (--scenarios-dir) only where --out says.
let out = args.out
if (!out && !args.only && !customDir) out = path.join(RESULTS, args.quick ? 'torture-quick.md' : 'torture.md')
if (out) {
  const report = { date, mode, command, machine: info, totalMs, ok: failed.length === 0, scenarios: results }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, markdown({ date, machine: info, command, results, failed, totalMs }))
  fs.writeFileSync(out.replace(/\.md$/, '') + '.json', `${JSON.stringify(report, null, 2)}\n`)
  console.log(`written: ${path.relative(process.cwd(), out)} and .json`)
} else {
  console.log('not written (a subset or other scenarios): pass --out=FILE.md to keep it')
}
console.log(failed.length === 0 ? `torture: every target met (${fmt(totalMs / 1000)} s)` : `torture: ${failed.length} target(s) missed`)
process.exit(failed.length === 0 ? 0 : 1)
