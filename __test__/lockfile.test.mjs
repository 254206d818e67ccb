// The lock-file strategy through real processes: exclusion, a SIGKILLed
// holder's file reclaimed on the next request, a stale file broken once,
// and a holder whose file was broken told so.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FileLockManager, nextEvent, sleep, startLockChild, useScratchDir, within } from './helpers.mjs'

let dir
let file
const manager = useScratchDir({
  onEach: (d, f) => {
    dir = d
    file = f
  },
})
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
