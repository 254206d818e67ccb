// Helpers shared by the torture scenarios (they run inside a scenario runner
// process, see runner.mjs) and by their child scripts: child processes over
// IPC that are always killed at the end, timing statistics, and figures.
import { fork } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const TORTURE = fileURLToPath(new URL('../', import.meta.url))
export const ROOT = path.dirname(TORTURE.replace(/\/$/, ''))
/** The package as users load it: children `require()` this. */
export const PACKAGE = path.join(ROOT, 'index.js')
export const CHILDREN = path.join(TORTURE, 'children')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1))
export const randomBetween = (min, max) => min + Math.random() * (max - min)

/** Monotonic milliseconds (CLOCK_MONOTONIC: comparable across processes on one Linux machine). */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

/** Settles `promise`, or rejects after `ms` with a clear message. */
export function within(promise, ms, what = 'operation') {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not settle within ${ms} ms`), { code: 'EHANG' })), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

// ---------------------------------------------------------------- children

const liveChildren = new Set()

/**
 * A Node child process running a script of torture/children/, talked to over
 * IPC. Messages are buffered; `waitFor` consumes the first matching one, and
 * `onMessage` sees every message as it arrives. Every child is tracked and
 * killed by `killAllChildren()` (the runner calls it at the end of each
 * scenario; run.mjs also kills the runner's whole process group).
 */
export class Child {
  #waiters = []

  constructor(script, args = [], { env, execArgv = [], onMessage } = {}) {
    const file = path.isAbsolute(script) ? script : path.join(CHILDREN, script)
    this.name = path.basename(file, '.mjs')
    this.proc = fork(file, args.map(String), {
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...env },
    })
    this.pid = this.proc.pid
    this.spawnedAt = nowMs()
    this.messages = []
    this.stdout = ''
    this.stderr = ''
    this.exitInfo = null
    this.onMessage = onMessage
    this.proc.stdout.on('data', (d) => (this.stdout = (this.stdout + d).slice(-8192)))
    this.proc.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-8192)))
    this.proc.on('error', () => {}) // EPIPE on send to a killed child: seen through `exited`
    this.proc.on('message', (message) => {
      if (this.onMessage?.(message) === true) return // consumed
      this.messages.push(message)
      this.#dispatch()
    })
    // The IPC channel closes after every message the child sent has been read.
    this.disconnected = new Promise((resolve) => this.proc.once('disconnect', resolve))
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        liveChildren.delete(this)
        resolve(this.exitInfo)
        this.#dispatch()
      })
    })
    liveChildren.add(this)
  }

  get alive() {
    return this.exitInfo === null
  }

  #dispatch() {
    for (const waiter of [...this.#waiters]) {
      const index = this.messages.findIndex(waiter.match)
      if (index !== -1) {
        const [message] = this.messages.splice(index, 1)
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve(message)
      } else if (this.exitInfo !== null) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.reject(
          Object.assign(new Error(`${this.name} ${this.pid} exited (${JSON.stringify(this.exitInfo)}) before sending '${waiter.type}'; stderr: ${this.stderr.slice(-1000)}`), {
            code: 'ECHILDEXIT',
          }),
        )
      }
    }
  }

  /** The first (unconsumed) message of `type` matching `filter`. */
  waitFor(type, { filter = () => true, timeoutMs = 15000 } = {}) {
    const match = (m) => m?.type === type && filter(m)
    const promise = new Promise((resolve, reject) => {
      this.#waiters.push({ match, resolve, reject, type })
      this.#dispatch()
    })
    return within(promise, timeoutMs, `message '${type}' from ${this.name} ${this.pid}`).catch((error) => {
      const index = this.#waiters.findIndex((w) => w.match === match)
      if (index !== -1) this.#waiters.splice(index, 1)
      throw error
    })
  }

  send(message) {
    if (this.alive && this.proc.connected) this.proc.send(message)
  }

  /** Sends a command and waits for its answer `type`; an `error` answer rejects. */
  async request(message, type, timeoutMs = 15000) {
    this.send(message)
    const answer = await Promise.race([
      this.waitFor(type, { timeoutMs }),
      this.waitFor('error', { timeoutMs: timeoutMs + 1000 }).then((e) => {
        throw Object.assign(new Error(`${this.name} ${this.pid}: ${e.cmd} failed: ${e.code} ${e.message}`), { code: e.code })
      }),
    ])
    return answer
  }

  kill(signal = 'SIGKILL') {
    if (this.alive) {
      try {
        this.proc.kill(signal)
      } catch {}
    }
    return this.exited
  }
}

/** SIGKILLs every child still running and waits until each is reaped. */
export async function killAllChildren() {
  const pending = [...liveChildren].map((child) => child.kill('SIGKILL'))
  await within(Promise.all(pending), 10000, 'reaping the children').catch(() => {})
}

export const liveChildCount = () => liveChildren.size

/** Starts a child and waits for its `ready` message. */
export async function startChild(script, args = [], options = {}) {
  const child = new Child(script, args, options)
  await child.waitFor('ready', { timeoutMs: options.readyTimeoutMs ?? 30000 })
  return child
}

// ---------------------------------------------------------------- files

/** Every entry under `root` (relative paths), recursively. */
export function listRecursive(root) {
  try {
    return fs.readdirSync(root, { recursive: true }).map(String).sort()
  } catch (error) {
    if (error.code === 'ENOENT') return []
    throw error
  }
}

/** Temp files of atomic writes (`*.tmp`) under `root`. */
export const tempFilesUnder = (root) => listRecursive(root).filter((name) => name.endsWith('.tmp'))

/** Lock sidecars / lock files and their by-products (`.x.lock`, `.x.lock.break`, `.x.lock.released-…`, `.x.lock.stale-…`). */
export const lockFilesUnder = (root) => listRecursive(root).filter((name) => /\.lock($|\.)/.test(path.basename(name)))

export const sidecarOf = (file) => path.join(path.dirname(file), `.${path.basename(file)}.lock`)

// ---------------------------------------------------------------- numbers

/** n, mean, p50, p90, p99, max (nearest-rank percentiles) of a list of numbers. */
export function stats(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  const at = (p) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))])
  return {
    n,
    mean: n === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / n,
    min: n === 0 ? NaN : sorted[0],
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: n === 0 ? NaN : sorted[n - 1],
  }
}

/** A number for the table: 3 significant digits below 100, integers above. */
export function fmt(value) {
  if (typeof value !== 'number') return String(value)
  if (!Number.isFinite(value)) return String(value)
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  const abs = Math.abs(value)
  if (abs >= 100) return Math.round(value).toLocaleString('en-US')
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

// ---------------------------------------------------------------- figures

const OPS = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '=': (a, b) => a === b,
  '>=': (a, b) => a >= b,
  '>': (a, b) => a > b,
}
const OP_TEXT = { '<': '<', '<=': '≤', '=': '=', '>=': '≥', '>': '>' }

/**
 * A figure with a target: `check('overlaps', 0, '=', 0)`,
 * `check('average wait', 3.1, '<', 50, 'ms')`. A value that is not a finite
 * number (NaN: nothing measured) misses its target.
 */
export function check(label, value, op, bound, unit = '', extra = {}) {
  const ok = typeof value === 'number' && !Number.isNaN(value) && OPS[op](value, bound)
  return { label, value, unit, target: `${OP_TEXT[op]} ${fmt(bound)}${unit ? ` ${unit}` : ''}`, ok, ...extra }
}

/** A figure that must lie in [low, high]. */
export function between(label, value, low, high, unit = '', extra = {}) {
  const ok = typeof value === 'number' && value >= low && value <= high
  return { label, value, unit, target: `${fmt(low)} … ${fmt(high)}${unit ? ` ${unit}` : ''}`, ok, ...extra }
}

/** A pass/fail figure (value: what was seen). */
export function verdict(label, ok, value = ok ? 'pass' : 'FAIL', target = 'pass', extra = {}) {
  return { label, value, unit: '', target, ok: Boolean(ok), ...extra }
}

/** An informational figure (no target). */
export function info(label, value, unit = '', extra = {}) {
  return { label, value, unit, ok: true, ...extra }
}
