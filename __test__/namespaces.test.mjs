// PID namespaces and machines that share our host name: a pid means something
// only on its host name, in its boot and in its PID namespace. A holder inside
// `unshare --pid --fork --mount-proc` (how Flatpak and Snap run app instances,
// and how containers on one machine share a volume) is pid 1 there, and pid 1
// here is another process: its lock must be judged like another machine's
// (unchanged for staleMs by our clock), never by kill(pid, 0) here, in both
// directions. Real namespaces need root (or user namespaces): those tests are
// skipped, with a note, where `unshare` is refused.
import { execFileSync, fork, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { afterEach, describe, expect, it } from 'vitest'
import { file, LOCK_CHILD, sidecarOf, useScratchDir, within } from './helpers.mjs'

const UNSHARE = ['--pid', '--fork', '--mount-proc', '--kill-child']

const canUnshare = (() => {
  if (process.platform !== 'linux') return false
  try {
    execFileSync('unshare', [...UNSHARE, 'true'], { stdio: 'ignore', timeout: 10000 })
    return true
  } catch {
    return false
  }
})()
if (!canUnshare) {
  console.warn('namespaces.test.mjs: real PID-namespace tests SKIPPED: `unshare --pid --fork --mount-proc` is not allowed here (needs Linux and root or user namespaces)')
}

const manager = useScratchDir()

/** Our own PID namespace and boot, as the library records them (Linux). */
const ourNamespace = () => fs.readlinkSync('/proc/self/ns/pid')
const ourBoot = () => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
const recordOf = (f) => JSON.parse(fs.readFileSync(sidecarOf(f), 'utf8').split('\n')[0])

const children = new Set()

/**
 * A lock-child (fixtures/lock-child.mjs), as pid 1 of a new PID namespace
 * (`unshare --pid --fork --mount-proc --kill-child node lock-child.mjs`,
 * talked to over the IPC channel the namespace inherits) or as a plain child
 * here (`inNamespace: false`). Unlike helpers' `Child`, one wait can accept
 * several answers ('held' or 'error').
 */
class LockChild {
  constructor(managerOptions = {}, { inNamespace = true, env = {} } = {}) {
    this.proc = fork(LOCK_CHILD, [JSON.stringify(managerOptions)], {
      ...(inNamespace ? { execPath: 'unshare', execArgv: [...UNSHARE, process.execPath] } : {}),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...env },
    })
    this.messages = []
    this.stderr = ''
    this.exitInfo = null
    this.waiters = []
    this.proc.stderr.on('data', (d) => (this.stderr += d))
    this.proc.stdout.resume()
    this.proc.on('message', (m) => {
      this.messages.push(m)
      this.dispatch()
    })
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        resolve(this.exitInfo)
        this.dispatch()
      })
    })
    children.add(this)
  }

  dispatch() {
    for (const waiter of [...this.waiters]) {
      const index = this.messages.findIndex((m) => waiter.types.includes(m?.type))
      if (index !== -1) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.resolve(this.messages.splice(index, 1)[0])
      } else if (this.exitInfo !== null) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.reject(new Error(`lock-child exited (${JSON.stringify(this.exitInfo)}) before sending '${waiter.types}'; stderr: ${this.stderr}`))
      }
    }
  }

  /** Resolves with the first (unconsumed) message of one of `types`. */
  waitFor(...types) {
    const waiter = { types }
    const promise = new Promise((resolve, reject) => {
      Object.assign(waiter, { resolve, reject })
      this.waiters.push(waiter)
      this.dispatch()
    })
    return within(promise, 15000, `message '${types}' from lock-child ${this.proc.pid}`).catch((error) => {
      const index = this.waiters.indexOf(waiter)
      if (index !== -1) this.waiters.splice(index, 1) // it must not take a later answer
      error.message += `; child stderr: ${this.stderr}`
      throw error
    })
  }

  /** Sends a command and waits for its answer: the first message of one of `types`. */
  request(message, ...types) {
    this.proc.send(message)
    return this.waitFor(...types)
  }

  /** The pid of the namespace's init (the node process) as seen from here. */
  hostPid() {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue
      try {
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
        if (ppid === this.proc.pid) return Number(name)
      } catch {
        // gone meanwhile
      }
    }
    throw new Error(`no child of unshare (pid ${this.proc.pid}) found`)
  }
}

/** Starts a namespaced lock-child and checks it is pid 1 of its own namespace. */
async function startNamespaced(managerOptions, env) {
  const child = new LockChild(managerOptions, { env })
  const ready = await child.waitFor('ready')
  expect(ready.pid, 'the child is the init of a new PID namespace').toBe(1)
  return child
}

/** Starts a lock-child here, in our PID namespace. */
async function startHere(managerOptions, env) {
  const child = new LockChild(managerOptions, { inNamespace: false, env })
  const ready = await child.waitFor('ready')
  expect(ready.pid).toBe(child.proc.pid)
  return child
}

afterEach(async () => {
  const pending = []
  for (const child of children) {
    if (child.exitInfo === null) {
      child.proc.kill('SIGKILL') // --kill-child takes the namespace's init with it
      pending.push(child.exited)
    }
  }
  children.clear()
  await Promise.all(pending)
})

// Where OS locks work, a lock-file holder also holds its lock file's OS lock,
// which excludes the other side by itself; with OS locks refused (forced
// ENOLCK in both processes) only the record's judgement protects the holder.
const VARIANTS = [
  ["strategy 'lockfile'", { strategy: 'lockfile' }, {}],
  ["strategy 'lockfile', OS locks refused", { strategy: 'lockfile' }, { FILE_LOCK_MANAGER_FAULT_FLOCK: 'ENOLCK' }],
  ["strategy 'auto'", {}, {}],
]

describe.each(VARIANTS)('a live holder in another PID namespace on this host name (%s)', (_, options, env) => {
  it.skipIf(!canUnshare)('a holder inside a namespace keeps its lock against a process outside until it releases', async () => {
    const inner = await startNamespaced(options, env)
    await inner.request({ cmd: 'acquire', file }, 'held')
    // Its record says where its pid means something: our boot, not our namespace.
    const record = recordOf(file)
    expect(record).toMatchObject({ pid: 1, hostname: os.hostname(), bootId: ourBoot() })
    expect(record.pidNamespace).toMatch(/^pid:\[\d+\]$/)
    expect(record.pidNamespace).not.toBe(ourNamespace())

    const outer = await startHere(options, env)
    const { holder } = await outer.request({ cmd: 'inspect', file }, 'inspected')
    expect(holder).toMatchObject({ exclusive: true, sameProcess: false, sameHost: false })
    expect(holder.description).toMatch(/another PID namespace or boot/)
    const started = Date.now()
    const answer = await outer.request({ cmd: 'acquire', file, options: { timeoutMs: 1500, retries: 1 } }, 'held', 'error')
    expect(answer, 'the live holder inside keeps its lock').toMatchObject({ type: 'error', code: 'ELOCKTIMEOUT' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400)
    expect(inner.messages.some((message) => message?.type === 'lost'), 'the holder was not told it lost its lock').toBe(false)
    expect(recordOf(file).token).toBe(record.token)

    await inner.request({ cmd: 'release' }, 'released')
    await outer.request({ cmd: 'acquire', file, options: { timeoutMs: 5000, retries: 1 } }, 'held')
    await outer.request({ cmd: 'release' }, 'released')
  })

  it.skipIf(!canUnshare)('a holder outside keeps its lock against a process inside a namespace until it releases', async () => {
    const outer = await startHere(options, env)
    await outer.request({ cmd: 'acquire', file }, 'held')
    const record = recordOf(file)
    expect(record).toMatchObject({ pid: outer.proc.pid, bootId: ourBoot(), pidNamespace: ourNamespace() })

    const inner = await startNamespaced(options, env)
    const answer = await inner.request({ cmd: 'acquire', file, options: { timeoutMs: 1500, retries: 1 } }, 'held', 'error')
    expect(answer, 'the live holder outside keeps its lock').toMatchObject({ type: 'error', code: 'ELOCKTIMEOUT' })
    expect(outer.messages.some((message) => message?.type === 'lost'), 'the holder was not told it lost its lock').toBe(false)
    expect(recordOf(file).token).toBe(record.token)

    await outer.request({ cmd: 'release' }, 'released')
    await inner.request({ cmd: 'acquire', file, options: { timeoutMs: 5000, retries: 1 } }, 'held')
    await inner.request({ cmd: 'release' }, 'released')
  })
})

describe("a dead holder in another PID namespace (strategy 'lockfile')", () => {
  it.skipIf(!canUnshare)('is reclaimed only after its lock file stayed unchanged for staleMs, as another machine\'s', async () => {
    const staleMs = 1500
    const inner = await startNamespaced({ strategy: 'lockfile', staleMs })
    await inner.request({ cmd: 'acquire', file }, 'held')
    const m = manager({ strategy: 'lockfile', staleMs })
    const hostPid = inner.hostPid()
    const killedAt = Date.now()
    process.kill(hostPid, 'SIGKILL')
    await inner.exited
    expect(fs.existsSync(sidecarOf(file)), 'nobody removed it: its holder died').toBe(true)

    let acquiredAt = null
    const acquisition = m.acquireLock(file, { timeoutMs: 8000, retries: 1 }).then((lock) => {
      acquiredAt = Date.now()
      return lock
    })
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + 500 - Date.now())))
    expect(acquiredAt, 'not broken at once by a pid that means nothing here').toBeNull()
    const lock = await within(acquisition, 9000, 'the reclaiming acquisition')
    expect(acquiredAt - killedAt).toBeGreaterThanOrEqual(staleMs - 50)
    expect(acquiredAt - killedAt).toBeLessThan(staleMs + 4000)
    await lock.release()
  })
})

describe("a record of a 'machine' that shares our host name (strategy 'lockfile')", () => {
  const cases = [
    ['another boot, a pid that is dead here', { boot: 'another', pid: 'dead' }],
    ['another boot, a pid that is live here', { boot: 'another', pid: 'live' }],
    ['our boot, another PID namespace, pid 1 (live here)', { boot: 'ours', pid: 1 }],
  ]
  // The boot and namespace values below are Linux's.
  it.skipIf(process.platform !== 'linux').each(cases)('%s: held until it stayed unchanged for staleMs, not broken at once', async (_, { boot, pid }) => {
    let holderPid = pid
    if (pid === 'dead') {
      const gone = spawn(process.execPath, ['-e', ''])
      await new Promise((resolve) => gone.on('exit', resolve))
      holderPid = gone.pid
    } else if (pid === 'live') {
      holderPid = process.pid
    }
    const now = Date.now()
    const record = {
      pid: holderPid,
      hostname: os.hostname(),
      startTime: null,
      bootId: boot === 'ours' ? ourBoot() : '00000000-1111-4222-8333-444444444444',
      pidNamespace: boot === 'ours' ? 'pid:[1]' : ourNamespace(),
      acquiredAt: now,
      mode: 'exclusive',
      token: 'theirs',
      fencingToken: 1,
      strategy: 'lockfile',
      heartbeat: now,
    }
    fs.writeFileSync(sidecarOf(file), `${JSON.stringify(record)}\n`, { mode: 0o600 })
    const staleMs = 1500
    const m = manager({ strategy: 'lockfile', staleMs })
    expect(await m.inspect(file)).toMatchObject({ sameProcess: false, sameHost: false })
    const started = Date.now()
    const lock = await m.acquireLock(file, { timeoutMs: 8000, retries: 1 })
    const took = Date.now() - started
    expect(took, 'held for staleMs, not judged by its pid here').toBeGreaterThanOrEqual(staleMs - 50)
    expect(took).toBeLessThan(staleMs + 4000)
    await lock.release()
  })
})
