// The lock-file strategy through real processes: exclusion, stale files of
// dead, reused-pid and other-host holders, live holders (also of another user:
// EPERM) never taken over, racing breakers, refusals, fallback, cleanup.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { dir, file, nextEvent, runSnippet, sleep, startLockChild, useScratchDir, waitUntil, within } from './helpers.mjs'

const manager = useScratchDir()
const lockFile = () => path.join(dir, '.roles.json.lock')

describe("strategy 'lockfile'", () => {
  it('excludes another process, reports strategy lockfile, and removes the lock file on release', async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    const held = await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager({ strategy: 'lockfile' })
    const holder = await m.inspect(file)
    expect(holder).toMatchObject({ exclusive: true, strategy: 'lockfile', sameProcess: false, sameHost: true })
    const waiting = nextEvent(m, 'waiting')
    const acquisition = m.acquireLock(file, { timeoutMs: 10000, retries: 1 })
    await waiting
    await child.request({ cmd: 'release' }, 'released')
    const lock = await within(acquisition, 5000, 'acquisition after release')
    expect(lock.strategy).toBe('lockfile')
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
    expect(JSON.parse(fs.readFileSync(lockFile(), 'utf8').split('\n')[0])).toMatchObject({ strategy: 'lockfile', pid: process.pid })
    await lock.release()
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  // A regression: with the default 'auto' strategy inspect() only probed the
  // OS lock, so a lock-file holder (live or dead) looked free.
  it("inspect() with the default 'auto' strategy sees lock-file holders, live and dead", async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager()
    expect(await m.inspect(file)).toMatchObject({ exclusive: true, strategy: 'lockfile', sameProcess: false, sameHost: true })
    child.proc.kill('SIGKILL')
    await child.exited
    expect(await m.inspect(file)).toMatchObject({ strategy: 'lockfile' }) // there until someone reclaims it
    const lock = await m.acquireLock(file)
    await lock.release()
    expect(await m.inspect(file)).toBeNull()
  })

  it('the lock file of a SIGKILLed holder is reclaimed on the next request, well within a second', async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    await child.request({ cmd: 'acquire', file }, 'held')
    child.proc.kill('SIGKILL')
    await child.exited
    expect(fs.existsSync(lockFile())).toBe(true) // nobody cleaned it: the process died
    const m = manager({ strategy: 'lockfile' })
    const started = Date.now()
    const lock = await m.acquireLock(file, { timeoutMs: 5000, retries: 1 })
    expect(Date.now() - started).toBeLessThan(1000)
    await lock.release()
  })

  it('a lock file of a live process on this host is never taken over', async () => {
    const child = await startLockChild({ strategy: 'lockfile', staleMs: 50 })
    await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager({ strategy: 'lockfile', staleMs: 50 })
    await expect(m.acquireLock(file, { timeoutMs: 300, retries: 1 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' })
    await child.request({ cmd: 'release' }, 'released')
  })

  it("another host's lock file is broken only after it stayed unrefreshed for staleMs", async () => {
    const record = { pid: 4242, hostname: 'some-other-host', startTime: null, acquiredAt: 1, mode: 'exclusive', token: 'theirs', fencingToken: 1, strategy: 'lockfile', heartbeat: 1 }
    fs.writeFileSync(lockFile(), `${JSON.stringify(record)}\n`)
    const m = manager({ strategy: 'lockfile', staleMs: 400 })
    const started = Date.now()
    const lock = await m.acquireLock(file, { timeoutMs: 5000, retries: 1 })
    const waited = Date.now() - started
    expect(waited).toBeGreaterThanOrEqual(380)
    expect(waited).toBeLessThan(4000)
    await lock.release()
  })

  it('a holder whose lock file was broken learns it (ECOMPROMISED) at its next heartbeat', async () => {
    const m = manager({ strategy: 'lockfile', staleMs: 400 })
    const lock = await m.acquireLock(file)
    // Someone judged it stale and replaced it with their own.
    fs.unlinkSync(lockFile())
    fs.writeFileSync(lockFile(), `${JSON.stringify({ pid: 1, hostname: 'x', token: 'not-ours', strategy: 'lockfile' })}\n`)
    await within(new Promise((resolve) => lock.signal.addEventListener('abort', resolve)), 5000, 'the loss to be noticed')
    expect(lock.signal.reason.code).toBe('ECOMPROMISED')
    expect(fs.readFileSync(lockFile(), 'utf8')).toContain('not-ours') // their file is left alone
  })
})

describe('choosing the lock file', () => {
  it("'auto' falls back to the lock file when the file system refuses OS locks (forced ENOLCK)", async () => {
    for (const errno of ['ENOLCK', 'EOPNOTSUPP']) {
      const run = runSnippet(
        file,
        `const m = new FileLockManager()
         const lock = await m.acquireLock(file)
         console.log(JSON.stringify({ strategy: lock.strategy, why: lock.strategyReason, onDisk: require('fs').readFileSync(require('path').join(require('path').dirname(file), '.roles.json.lock'), 'utf8') }))
         await lock.release()
         await m.close()`,
        [],
        { FILE_LOCK_MANAGER_FAULT_FLOCK: errno },
      )
      const { code, out } = await within(run.exited, 10000, 'the snippet')
      expect(code).toBe(0)
      const seen = JSON.parse(out.trim().split('\n').pop())
      expect(seen.strategy).toBe('lockfile')
      expect(seen.why).toMatch(/refused OS locks/)
      expect(JSON.parse(seen.onDisk.split('\n')[0]).strategy).toBe('lockfile')
    }
  })

  it("'os' and local 'auto' say why they use OS locks", async () => {
    const lock = await manager().acquireLock(file)
    expect(lock.strategy).toBe('os')
    expect(lock.strategyReason).toMatch(/local disk/)
    await lock.release()
  })

  it('a reclaimed lock file of a dead process is reported (stale-lock-removed) and audited', async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    await child.request({ cmd: 'acquire', file }, 'held')
    child.proc.kill('SIGKILL')
    await child.exited
    const entries = []
    const m = manager({ strategy: 'lockfile', logger: (entry) => entries.push(entry) })
    const removed = new Promise((resolve) => m.once('stale-lock-removed', resolve))
    const lock = await m.acquireLock(file)
    const event = await within(removed, 3000, 'the stale-lock-removed event')
    expect(event.filePath).toBe(file)
    expect(event.reason).toMatch(/has exited/)
    expect(event.message).not.toMatch(/pid/) // pids stay out of events unless exposePids
    await lock.release()
    await sleep(50)
    expect(entries.map((e) => e.op)).toContain('stale-lock-removed')
  })
})

describe('lock files at the end of a process', () => {
  it.runIf(process.platform !== 'win32')('SIGTERM to an app that does not handle it still removes its lock file, and it dies of SIGTERM', async () => {
    const run = runSnippet(
      file,
      `const m = new FileLockManager({ strategy: 'lockfile' })
       await m.acquireLock(file)
       console.log('held')
       setInterval(() => {}, 1000)`,
    )
    await waitUntil(() => run.output().includes('held'), 10000, 'the lock')
    expect(fs.existsSync(lockFile())).toBe(true)
    run.child.kill('SIGTERM')
    const { signal } = await within(run.exited, 10000, 'the exit')
    expect(signal).toBe('SIGTERM')
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  it('an app that handles SIGTERM itself keeps control (we do not exit for it)', async () => {
    const run = runSnippet(
      file,
      `const m = new FileLockManager({ strategy: 'lockfile' })
       const lock = await m.acquireLock(file)
       process.on('SIGTERM', async () => { console.log('app cleanup'); await lock.release(); process.exit(7) })
       console.log('held')
       setInterval(() => {}, 1000)`,
    )
    await waitUntil(() => run.output().includes('held'), 10000, 'the lock')
    run.child.kill('SIGTERM')
    const { code, out } = await within(run.exited, 10000, 'the exit')
    expect(code).toBe(7)
    expect(out).toContain('app cleanup')
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  it('shared requests of two processes exclude each other under the lock file (documented degradation)', async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    await child.request({ cmd: 'acquire', file, options: { exclusive: false } }, 'held')
    const m = manager({ strategy: 'lockfile' })
    await expect(m.acquireLock(file, { exclusive: false, timeoutMs: 200, retries: 1 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' })
    // Inside one process readers still share.
    await child.request({ cmd: 'release' }, 'released')
    const first = await m.acquireLock(file, { exclusive: false })
    const second = await m.acquireLock(file, { exclusive: false, timeoutMs: 0, retries: 1 })
    await first.release()
    await second.release()
  })
})

describe('racing breakers across processes', () => {
  it('two processes breaking the same stale lock file end with exactly one holder, 200 times over', async () => {
    const [a, b] = await Promise.all([startLockChild({ strategy: 'lockfile' }), startLockChild({ strategy: 'lockfile' })])
    const deadPid = await deadProcessPid()
    const hostname = os.hostname()
    let removals = 0
    for (let round = 0; round < 200; round++) {
      // A lock file left by a crashed process of this host.
      const record = { pid: deadPid, hostname, startTime: null, acquiredAt: round, mode: 'exclusive', token: `dead-${round}`, fencingToken: round, strategy: 'lockfile', heartbeat: round }
      fs.writeFileSync(lockFile(), `${JSON.stringify(record)}\n`)
      a.send({ cmd: 'acquire', file, options: { timeoutMs: 5000, retries: 1 } })
      b.send({ cmd: 'acquire', file, options: { timeoutMs: 5000, retries: 1 } })
      await waitUntil(() => a.has('held') || b.has('held'), 5000, `round ${round}: a holder`)
      const first = a.has('held') ? a : b
      const second = first === a ? b : a
      await first.waitFor('held')
      await sleep(3)
      expect(second.has('held'), `round ${round}: two holders at once`).toBe(false)
      await first.request({ cmd: 'release' }, 'released')
      await second.waitFor('held')
      await second.request({ cmd: 'release' }, 'released')
      for (const child of [a, b]) {
        while (child.has('event')) {
          const event = await child.waitFor('event')
          if (event.name === 'stale-lock-removed') removals++
        }
      }
    }
    expect(removals).toBe(200) // exactly one breaker per round
  }, 120000)
})

/** The pid of a process that has exited (and been reaped). */
async function deadProcessPid() {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['-e', ''])
  await new Promise((resolve) => child.on('exit', resolve))
  return child.pid
}

describe('lock files that are not ours to touch', () => {
  it('a symlinked lock file is refused (ELOOP) and its target left alone', async () => {
    const target = path.join(dir, 'elsewhere')
    fs.writeFileSync(target, 'precious')
    fs.symlinkSync(target, lockFile())
    const m = manager({ strategy: 'lockfile' })
    await expect(m.acquireLock(file, { timeoutMs: 100, retries: 1 })).rejects.toMatchObject({ code: 'ELOOP' })
    expect(fs.readFileSync(target, 'utf8')).toBe('precious')
  })

  it.runIf(process.getuid?.() === 0)('a lock file of another user is refused (ELOCKFOREIGN), even when its process is gone', async () => {
    const record = { pid: await deadProcessPid(), hostname: os.hostname(), startTime: null, acquiredAt: 1, mode: 'exclusive', token: 'theirs', fencingToken: 1, strategy: 'lockfile', heartbeat: 1 }
    fs.writeFileSync(lockFile(), `${JSON.stringify(record)}\n`)
    fs.chownSync(lockFile(), 65534, 65534)
    const m = manager({ strategy: 'lockfile' })
    await expect(m.acquireLock(file, { timeoutMs: 100, retries: 1 })).rejects.toMatchObject({ code: 'ELOCKFOREIGN' })
    expect(fs.statSync(lockFile()).uid).toBe(65534)
  })
})

describe('judging the holder process', () => {
  const plantRecord = (fields) => {
    const record = { hostname: os.hostname(), startTime: null, acquiredAt: 1, mode: 'exclusive', token: 'planted', fencingToken: 1, strategy: 'lockfile', heartbeat: 1, ...fields }
    fs.writeFileSync(lockFile(), `${JSON.stringify(record)}\n`)
  }

  it('a live pid with another start time was reused: its lock file is reclaimed at once', async () => {
    // A live process, and its start time as this platform records it (/proc on
    // Linux, proc_pidinfo on macOS, GetProcessTimes on Windows): read from a lock
    // file it wrote itself, then let go of.
    const other = path.join(dir, 'other.json')
    const live = runSnippet(other, `
      const m = new FileLockManager({ strategy: 'lockfile' })
      const lock = await m.acquireLock(file)
      const record = require('node:fs').readFileSync(require('node:path').join(require('node:path').dirname(file), '.other.json.lock'), 'utf8')
      await lock.release()
      console.log('startTime ' + /"startTime":(\\d+)/.exec(record)[1])
      setInterval(() => {}, 1000)`)
    try {
      await waitUntil(() => /startTime \d+/.test(live.output()), 10000, 'the live process to report its start time')
      // As digits: Windows records a FILETIME (~1.3e17), past what a JS number holds exactly.
      const startTime = BigInt(/startTime (\d+)/.exec(live.output())[1])
      const plantWithStart = (start) => {
        plantRecord({ pid: live.child.pid, startTime: 'START' })
        fs.writeFileSync(lockFile(), fs.readFileSync(lockFile(), 'utf8').replace('"START"', String(start)))
      }
      // The right start time: the process is the holder, the lock is held.
      plantWithStart(startTime)
      const m = manager({ strategy: 'lockfile' })
      await expect(m.acquireLock(file, { timeoutMs: 200, retries: 1 })).rejects.toMatchObject({ code: 'ELOCKTIMEOUT' })
      // Another start time: the pid now belongs to another program.
      plantWithStart(startTime + 1n)
      const removed = new Promise((resolve) => m.once('stale-lock-removed', resolve))
      const lock = await m.acquireLock(file, { timeoutMs: 1000, retries: 1 })
      expect((await removed).reason).toMatch(/reused/)
      await lock.release()
    } finally {
      live.child.kill()
    }
  })

  it.runIf(process.getuid?.() === 0)("a process of another user (EPERM) counts as alive: its lock is not taken over", async () => {
    fs.chmodSync(dir, 0o777)
    // A lock file of the unprivileged user, naming a live process it may not signal (us, root).
    plantRecord({ pid: process.pid })
    fs.chownSync(lockFile(), 65534, 65534)
    const script = `const { FileLockManager } = require(${JSON.stringify(path.resolve('index.js'))})
      const m = new FileLockManager({ strategy: 'lockfile' })
      m.acquireLock(${JSON.stringify(file)}, { timeoutMs: 300, retries: 1 })
        .then(() => console.log('TOOK IT'), (e) => console.log('refused', e.code))
        .finally(() => m.close())`
    const { spawn } = await import('node:child_process')
    const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script])
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const code = await within(new Promise((resolve) => child.on('exit', resolve)), 10000, 'the unprivileged checker')
    expect(out).toContain('refused ELOCKTIMEOUT')
    expect(code).toBe(0)
    expect(JSON.parse(fs.readFileSync(lockFile(), 'utf8').split('\n')[0]).pid).toBe(process.pid)
  })
})

describe('holders as reported', () => {
  it('an in-process holder under the lock file is reported with strategy lockfile', async () => {
    const m = manager({ strategy: 'lockfile' })
    const lock = await m.acquireLock(file)
    const error = await m.acquireLock(file, { timeoutMs: 50, retries: 1 }).catch((e) => e)
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.holder).toMatchObject({ sameProcess: true, strategy: 'lockfile', exclusive: true })
    await lock.release()
  })
})
