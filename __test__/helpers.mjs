// Shared helpers of the JS test suite: temp dirs, the package, child processes.
import { fork, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach } from 'vitest'

const require = createRequire(import.meta.url)
export const { FileLockManager, Lock, FileLockError, DEFAULTS } = require('../index.js')

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
export const LOCK_CHILD = path.join(FIXTURES, 'lock-child.mjs')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

/** A fresh private temp dir (canonical, so it compares with `lock.filePath`). */
export function makeTempDir() {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'flm-test-')))
}

export function removeDir(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
}

export function sidecarOf(file) {
  return path.join(path.dirname(file), `.${path.basename(file)}.lock`)
}

/**
 * Settles `promise`, or fails with a clear message after `ms`: a test that
 * expects an error must not hang until vitest's timeout if the error never comes.
 */
export function within(promise, ms, what = 'operation') {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

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

const liveChildren = new Set()

/** Kills every child process a test left running (by pid, via its handle). */
export async function killAllChildren() {
  const pending = []
  for (const child of liveChildren) {
    if (child.exitInfo === null) {
      child.proc.kill('SIGKILL')
      pending.push(child.exited)
    }
  }
  liveChildren.clear()
  await Promise.all(pending)
}

/**
 * A Node child process running a fixture script, talked to over IPC.
 * Messages it sends are buffered; `waitFor` consumes the first matching one.
 */
export class Child {
  constructor(script, args = [], { execArgv = [], env } = {}) {
    this.proc = fork(script, args, {
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...env },
    })
    this.pid = this.proc.pid
    this.messages = []
    this.stdout = ''
    this.stderr = ''
    this.exitInfo = null
    this.#waiters = []
    this.proc.stdout.on('data', (d) => (this.stdout += d))
    this.proc.stderr.on('data', (d) => (this.stderr += d))
    this.proc.on('message', (message) => {
      this.messages.push(message)
      this.#dispatch()
    })
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        resolve(this.exitInfo)
        this.#dispatch()
      })
    })
    liveChildren.add(this)
  }

  #waiters

  #dispatch() {
    for (const waiter of [...this.#waiters]) {
      const index = this.messages.findIndex(waiter.match)
      if (index !== -1) {
        const [message] = this.messages.splice(index, 1)
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve(message)
      } else if (this.exitInfo !== null) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.reject(new Error(`child ${this.pid} exited (${JSON.stringify(this.exitInfo)}) before sending ${waiter.what}; stderr: ${this.stderr}`))
      }
    }
  }

  /** Resolves with the first (unconsumed) message of `type` matching `filter`. */
  waitFor(type, { filter = () => true, timeoutMs = 15000 } = {}) {
    const what = `'${type}'`
    const match = (m) => m?.type === type && filter(m)
    const promise = new Promise((resolve, reject) => {
      this.#waiters.push({ match, resolve, reject, what })
      this.#dispatch()
    })
    return within(promise, timeoutMs, `message ${what} from child ${this.pid}`).catch((error) => {
      error.message += `; child stderr: ${this.stderr}`
      throw error
    })
  }

  /** Whether an unconsumed message of `type` arrived. */
  has(type) {
    return this.messages.some((m) => m?.type === type)
  }

  send(message) {
    this.proc.send(message)
  }

  /** Sends a command and waits for its answer `type` (an 'error' answer rejects). */
  async request(message, type, timeoutMs = 15000) {
    this.send(message)
    const answer = await this.waitFor(type, { timeoutMs }).catch(async (error) => {
      const failed = this.messages.find((m) => m?.type === 'error')
      if (failed) error.message += `; child error: ${failed.code} ${failed.message}`
      throw error
    })
    return answer
  }

  kill(signal = 'SIGTERM') {
    this.proc.kill(signal)
    return this.exited
  }
}

/** Starts a lock-child (see fixtures/lock-child.mjs) and waits until it is ready. */
export async function startLockChild(managerOptions = {}) {
  const child = new Child(LOCK_CHILD, [JSON.stringify(managerOptions)])
  await child.waitFor('ready')
  return child
}

const PACKAGE = fileURLToPath(new URL('../index.js', import.meta.url))

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

/**
 * Per test: a fresh temp dir holding `roles.json` (written with `contents`
 * unless null), handed to `onEach(dir, file)`; afterwards every manager made
 * through the returned `manager()` is closed, child processes are killed and
 * the dir is removed.
 */
export function useScratchDir({ contents = null, onEach }) {
  const managers = []
  let dir
  beforeEach(() => {
    dir = makeTempDir()
    const file = path.join(dir, 'roles.json')
    if (contents !== null) fs.writeFileSync(file, contents)
    onEach(dir, file)
  })
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.close()))
    await killAllChildren()
    removeDir(dir)
  })
  return function manager(options) {
    const m = new FileLockManager(options)
    managers.push(m)
    return m
  }
}
