// The vitest side of the test kit (testkit/): what every suite of __test__/
// needs — the package, a scratch dir per test that is always removed, child
// processes that are always reaped — so that no suite keeps its own copy.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, expect } from 'vitest'
import { PACKAGE, kitChild } from '../testkit/paths.mjs'
import { Child, killAllChildren } from '../testkit/process.mjs'
import { makeScratchDir, removeDir } from '../testkit/scratch.mjs'
import { sleep, within } from '../testkit/time.mjs'

export { Child, killAllChildren } from '../testkit/process.mjs'
export { sidecarOf } from '../testkit/paths.mjs'
export { makeScratchDir, removeDir } from '../testkit/scratch.mjs'
export { sleep, within } from '../testkit/time.mjs'

const require = createRequire(import.meta.url)
export const { FileLockManager, Lock, FileLockError, DEFAULTS } = require(PACKAGE)

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
export const LOCK_CHILD = path.join(FIXTURES, 'lock-child.mjs')
export const DOC_INCREMENTER = kitChild('doc-incrementer.mjs')
export const DOC_KILL_WRITER = kitChild('doc-kill-writer.mjs')

export const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

/** What `fn` throws synchronously (fails if it does not throw). */
export function thrown(fn) {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw')
}

/** The rejection of `promise` (fails if it resolves or hangs). */
export async function rejectionOf(promise, ms = 10000, what = 'operation') {
  let value
  try {
    value = await within(promise, ms, what)
  } catch (error) {
    return error
  }
  if (value && typeof value.release === 'function') await value.release()
  throw new Error(`${what} resolved (${String(value)}) but was expected to reject`)
}

/** Aborts `controller` in 100 ms: `attempt` must reject with an AbortError (ABORT_ERR), well within 3 s. */
export async function expectPromptAbort(attempt, controller) {
  setTimeout(() => controller.abort(), 100)
  const started = Date.now()
  const error = await rejectionOf(attempt, 5000, 'aborted acquireLock')
  expect(Date.now() - started).toBeLessThan(3000)
  expect(error.name).toBe('AbortError')
  expect(error.code).toBe('ABORT_ERR')
}

/** Waits until `predicate()` is true, polling. */
export async function waitUntil(predicate, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`)
    await sleep(10)
  }
}

/** The next emission of `event` on `emitter` matching `filter`. */
export function nextEvent(emitter, event, filter = () => true, ms = 10000) {
  let listener
  const seen = new Promise((resolve) => {
    listener = (payload) => {
      if (filter(payload)) resolve(payload)
    }
    emitter.on(event, listener)
  })
  return within(seen, ms, `event '${event}'`).finally(() => emitter.off(event, listener))
}

/** Starts a lock-child (see fixtures/lock-child.mjs) and waits until it is ready. */
export async function startLockChild(managerOptions = {}) {
  const child = new Child(LOCK_CHILD, [JSON.stringify(managerOptions)])
  await child.waitFor('ready')
  return child
}

/**
 * Runs a CommonJS snippet in a fresh Node process with `FileLockManager` and
 * `file` in scope (top-level await allowed); `exited` resolves with its exit
 * code, signal and combined output.
 */
export function runSnippet(file, body, nodeArgs = [], env = {}) {
  const source = `const { FileLockManager } = require(${JSON.stringify(PACKAGE)});\nconst file = ${JSON.stringify(file)};\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(2) })`
  const child = spawn(process.execPath, [...nodeArgs, '-e', source], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out })))
  return { child, exited, output: () => out }
}

/** The current test's scratch dir and its `roles.json` (live bindings: set before each test by `useScratchDir`). */
export let dir
export let file

/**
 * Per test: a fresh scratch dir (`dir`) and in it `file`, `roles.json`, written
 * with `contents` unless null; afterwards every manager made through the
 * returned `manager()` is closed, child processes are killed and the dir is removed.
 */
export function useScratchDir({ contents = null } = {}) {
  const managers = []
  let mine
  beforeEach(() => {
    mine = makeScratchDir()
    dir = mine
    file = path.join(mine, 'roles.json')
    if (contents !== null) fs.writeFileSync(file, contents)
  })
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.close()))
    await killAllChildren()
    removeDir(mine)
  })
  return function manager(options) {
    const m = new FileLockManager(options)
    managers.push(m)
    return m
  }
}

/**
 * `count` JsonDocument.update increments of {counter} by one process per entry
 * of `files` (a path each; the same path again for more processes on one file),
 * all started together: every increment must be acknowledged without an error.
 * Returns each process's report ({ acknowledged, errors, values }).
 */
export async function incrementFromProcesses(files, count, timeoutMs = 100000) {
  const options = [JSON.stringify({ timeoutMs: 60000, retries: 1 }), JSON.stringify({ defaultValue: { counter: 0 } })]
  const workers = files.map((f) => new Child(DOC_INCREMENTER, [f, count, ...options]))
  await Promise.all(workers.map((w) => w.waitFor('ready')))
  for (const w of workers) w.send({ cmd: 'go' })
  const reports = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs })))
  for (const report of reports) {
    expect(report.errors).toEqual([])
    expect(report.acknowledged).toBe(count)
  }
  return reports
}
