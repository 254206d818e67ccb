// Child processes for tests, torture scenarios and benches: a Node child driven
// over IPC whose messages are never lost (buffered until someone waits for
// them), whose waits never hang (they fail when the child exits or a time runs
// out, naming the child and showing its stderr), and which is always reaped:
// every child is tracked until it exits, and `killAllChildren()` ends the rest.
import { fork } from 'node:child_process'
import path from 'node:path'
import { within } from './time.mjs'

const liveChildren = new Set()

/**
 * A Node child process running `script`, talked to over IPC.
 * Messages are buffered; `waitFor` consumes the first matching one, and
 * `onMessage` sees every message as it arrives (returning true consumes it).
 * Options: `execArgv`, `env` (added to this process's), `serialization`,
 * `name` (in error messages; default: the script's name), `output` ('pipe':
 * kept in `stdout`/`stderr`, the last `outputLimit` characters; 'inherit': shown
 * as it comes), `timeoutMs` (default of waits), `killSignal` (default of
 * `kill()`), `failOn` (a message type, e.g. 'error', that fails every wait,
 * pending or later: a child that reports its own crash).
 */
export class Child {
  #waiters = []
  #failure = null

  constructor(script, args = [], options = {}) {
    const { execArgv = [], env, serialization, name, output = 'pipe', outputLimit = Infinity, onMessage } = options
    this.name = name ?? path.basename(script, '.mjs')
    this.timeoutMs = options.timeoutMs ?? 15000
    this.killSignal = options.killSignal ?? 'SIGTERM'
    this.failOn = options.failOn
    this.proc = fork(script, args.map(String), {
      execArgv,
      serialization,
      stdio: ['ignore', output, output, 'ipc'],
      env: { ...process.env, ...env },
    })
    this.pid = this.proc.pid
    this.messages = []
    this.stdout = ''
    this.stderr = ''
    this.exitInfo = null
    this.onMessage = onMessage
    const keep = (text) => (outputLimit === Infinity ? text : text.slice(-outputLimit))
    this.proc.stdout?.on('data', (d) => (this.stdout = keep(this.stdout + d)))
    this.proc.stderr?.on('data', (d) => (this.stderr = keep(this.stderr + d)))
    this.proc.on('error', () => {}) // EPIPE on send to a killed child: seen through `exited`
    this.proc.on('message', (message) => {
      if (this.onMessage?.(message) === true) return // consumed
      if (this.failOn !== undefined && message?.type === this.failOn) {
        this.#failure = Object.assign(new Error(`${this.name} failed: ${message.message}${message.code ? ` (${message.code})` : ''}`), { code: message.code, childStack: message.stack })
      } else {
        this.messages.push(message)
      }
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
      let outcome = null
      if (index !== -1) outcome = () => waiter.resolve(this.messages.splice(index, 1)[0])
      else if (this.#failure !== null) outcome = () => waiter.reject(this.#failure)
      else if (this.exitInfo !== null) {
        const error = new Error(`${this.name} ${this.pid} exited (${JSON.stringify(this.exitInfo)}) before sending ${waiter.what}; stderr: ${this.stderr.slice(-4000)}`)
        outcome = () => waiter.reject(Object.assign(error, { code: 'ECHILDEXIT' }))
      }
      if (outcome !== null) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        outcome()
      }
    }
  }

  #wait(match, what, timeoutMs) {
    const promise = new Promise((resolve, reject) => {
      this.#waiters.push({ match, resolve, reject, what })
      this.#dispatch()
    })
    return within(promise, timeoutMs, `message ${what} from ${this.name} ${this.pid}`).catch((error) => {
      const index = this.#waiters.findIndex((w) => w.match === match)
      if (index !== -1) this.#waiters.splice(index, 1)
      if (error.code === 'EHANG') error.message += `; child stderr: ${this.stderr.slice(-4000)}`
      throw error
    })
  }

  /** The first (unconsumed) message of `type` matching `filter`. */
  waitFor(type, { filter = () => true, timeoutMs = this.timeoutMs } = {}) {
    return this.#wait((m) => m?.type === type && filter(m), `'${type}'`, timeoutMs)
  }

  /** Whether an unconsumed message of `type` arrived. */
  has(type) {
    return this.messages.some((m) => m?.type === type)
  }

  send(message) {
    if (this.alive && this.proc.connected) this.proc.send(message)
  }

  /** Sends a command and waits for its answer `type`; an `error` answer rejects (with its code). */
  async request(message, type, timeoutMs = this.timeoutMs) {
    this.send(message)
    const answer = await this.#wait((m) => m?.type === type || m?.type === 'error', `'${type}'`, timeoutMs)
    if (answer.type === 'error' && type !== 'error') {
      throw Object.assign(new Error(`${this.name} ${this.pid}: ${answer.cmd ?? message?.cmd} failed: ${answer.code} ${answer.message}`), { code: answer.code })
    }
    return answer
  }

  /** Sends `signal` (the child's default if none) unless it already exited; resolves with how it exited. */
  kill(signal = this.killSignal) {
    if (this.alive) {
      try {
        this.proc.kill(signal)
      } catch {}
    }
    return this.exited
  }
}

/**
 * How the benches run their workers: output shown as it comes, structured
 * clone (typed arrays, BigInt), a worker's own failure report fails the waits
 * on it, waits as long as a measurement, and a SIGKILL to end one.
 */
export const BENCH_WORKER = { output: 'inherit', serialization: 'advanced', failOn: 'error', timeoutMs: 120000, killSignal: 'SIGKILL' }

/** SIGKILLs every child still running and waits (10 s at most) until each is reaped. */
export async function killAllChildren() {
  const pending = [...liveChildren].map((child) => child.kill('SIGKILL'))
  await within(Promise.all(pending), 10000, 'reaping the children').catch(() => {})
}

export const liveChildCount = () => liveChildren.size

/** Starts a child and waits for its `ready` message (`readyTimeoutMs`, default 30 s). */
export async function startChild(script, args = [], options = {}) {
  const child = new Child(script, args, options)
  await child.waitFor('ready', { timeoutMs: options.readyTimeoutMs ?? 30000 })
  return child
}
