// Cross-process behaviour: every other party here is a real Node process
// (fixtures/lock-child.mjs) holding its own FileLockManager.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  dir,
  expectPromptAbort,
  file,
  FileLockError,
  FileLockManager,
  nextEvent,
  rejectionOf,
  sidecarOf,
  sleep,
  startLockChild,
  useScratchDir,
  waitUntil,
  within,
} from './helpers.mjs'

const manager = useScratchDir({ contents: '{"counter":0}' })

/**
 * A lock-child holds `file`, and a manager of ours waits for it: its
 * acquisition (`options` added to a 60 s timeout, one attempt) has emitted 'waiting'.
 */
async function waitBehindChild(options = {}) {
  const child = await startLockChild()
  const held = await child.request({ cmd: 'acquire', file }, 'held')
  const m = manager()
  const waiting = nextEvent(m, 'waiting')
  const acquisition = m.acquireLock(file, { timeoutMs: 60000, retries: 1, ...options })
  await waiting
  return { child, held, m, acquisition }
}

describe('shared locks across processes', () => {
  it('two processes hold shared locks at the same time while a third process waits for an exclusive lock until both released', async () => {
    const [a, b, c] = await Promise.all([startLockChild(), startLockChild(), startLockChild()])
    const shared = { exclusive: false, timeoutMs: 10000, retries: 1 }
    const heldA = await a.request({ cmd: 'acquire', file, options: shared }, 'held')
    const heldB = await b.request({ cmd: 'acquire', file, options: shared }, 'held')
    // Both answered 'held' and neither was told to release yet: they overlap.
    expect(heldA.exclusive).toBe(false)
    expect(heldB.exclusive).toBe(false)
    const seen = await manager().inspect(file)
    expect(seen).toMatchObject({ exclusive: false, sameProcess: false, sameHost: true })

    c.send({ cmd: 'acquire', file, options: { exclusive: true, timeoutMs: 20000, retries: 1 } })
    const waiting = await c.waitFor('event', { filter: (m) => m.name === 'waiting' })
    expect(waiting.payload).toMatchObject({ filePath: file, exclusive: true, attempt: 1, attempts: 1 })
    expect(waiting.payload.holder).toMatchObject({ exclusive: false, sameProcess: false, sameHost: true })

    await a.request({ cmd: 'release' }, 'released')
    await sleep(300)
    expect(c.has('held')).toBe(false) // b still holds its shared lock

    const releasedB = await b.request({ cmd: 'release' }, 'released')
    const heldC = await c.waitFor('held')
    expect(heldC.exclusive).toBe(true)
    expect(heldC.at).toBeGreaterThanOrEqual(releasedB.releasingAt)
    expect(heldC.fencingToken).toBeGreaterThan(Math.max(heldA.fencingToken, heldB.fencingToken))
  })
})

describe('timeouts', () => {
  it('rejects with ELOCKTIMEOUT after every attempt, with attempts, waitedMs and the holder (pid hidden by default)', async () => {
    const child = await startLockChild()
    const held = await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager()
    const timeouts = []
    m.on('timeout', (event) => timeouts.push(event))

    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 200, retries: 2 }), 15000, 'acquireLock')
    expect(error).toBeInstanceOf(FileLockError)
    expect(error.name).toBe('FileLockError')
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.filePath).toBe(file)
    expect(error.attempts).toBe(2)
    expect(error.waitedMs).toBeGreaterThanOrEqual(350) // two 200 ms attempts plus a backoff
    expect(error.waitedMs).toBeLessThan(10000)
    expect(error.message).toContain('roles.json')
    expect(error.holder).toMatchObject({
      exclusive: true,
      strategy: 'os',
      sameProcess: false,
      sameHost: true,
      hostname: os.hostname(),
      fencingToken: held.fencingToken,
    })
    expect(error.holder.pid).toBeUndefined()
    expect(typeof error.holder.description).toBe('string')
    expect(error.holder.description).not.toContain(String(child.pid))
    expect(typeof error.holder.acquiredAt).toBe('number')

    expect(timeouts).toHaveLength(1)
    expect(timeouts[0]).toMatchObject({ filePath: file, attempts: 2 })
    expect(timeouts[0].holder).toMatchObject({ sameProcess: false, sameHost: true })
  })

  it('reports the holder pid when the manager was created with exposePids: true', async () => {
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager({ exposePids: true })
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 200, retries: 2 }), 15000, 'acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.attempts).toBe(2)
    expect(error.holder.pid).toBe(child.pid)
    expect(error.holder.sameProcess).toBe(false)
    expect(error.holder.description).toContain(String(child.pid))
  })
})

describe('abort while waiting for another process', () => {
  it('rejects promptly with ABORT_ERR and leaks no hold: a third process and then we get the lock once the holder releases', async () => {
    const controller = new AbortController()
    const [{ child: holder, held, m, acquisition: attempt }, third] = await Promise.all([waitBehindChild({ signal: controller.signal }), startLockChild()])
    await expectPromptAbort(attempt, controller)
    expect(m.heldCount).toBe(0)

    await holder.request({ cmd: 'release' }, 'released')
    const thirdHeld = await third.request({ cmd: 'acquire', file, options: { timeoutMs: 5000, retries: 1 } }, 'held')
    expect(thirdHeld.fencingToken).toBeGreaterThan(held.fencingToken)
    await third.request({ cmd: 'release' }, 'released')
    const lock = await within(m.acquireLock(file, { timeoutMs: 5000, retries: 1 }), 10000, 'acquisition after abort')
    expect(lock.fencingToken).toBeGreaterThan(thirdHeld.fencingToken)
    await lock.release()
  })
})

describe("'waiting' events across processes", () => {
  it('fire once per attempt with the attempt number and the other process as holder', async () => {
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager()
    const events = []
    m.on('waiting', (event) => events.push(event))
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 150, retries: 3 }), 15000, 'acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    await waitUntil(() => events.length >= 3, 5000, 'three waiting events')
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3])
    for (const event of events) {
      expect(event).toMatchObject({ filePath: file, exclusive: true, attempts: 3 })
      expect(event.holder).toMatchObject({ exclusive: true, sameProcess: false, sameHost: true })
      expect(typeof event.message).toBe('string')
      expect(event.message).toContain('roles.json')
      expect(event.elapsedMs).toBeGreaterThanOrEqual(0)
    }
    expect(events[2].elapsedMs).toBeGreaterThan(events[0].elapsedMs)
  })
})

describe('a holder that dies', () => {
  it('SIGKILL of the holding process frees the lock at once for a process waiting with a long timeout', async () => {
    const { child, held, acquisition } = await waitBehindChild()
    let acquired = false
    acquisition.then(() => (acquired = true), () => {})
    await sleep(200)
    expect(acquired).toBe(false)

    const killedAt = Date.now()
    child.proc.kill('SIGKILL')
    const lock = await within(acquisition, 15000, 'acquisition after SIGKILL')
    const delay = Date.now() - killedAt
    expect((await child.exited).signal).toBe('SIGKILL')
    expect(delay).toBeLessThan(3000) // far below the 60 s timeout and the 30 s lease
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
    await lock.release()
  })

  it('a process that exits (process.exit) without releasing frees the lock', async () => {
    const child = await startLockChild()
    const held = await child.request({ cmd: 'acquire', file, exitAfter: true }, 'held')
    expect(held.exclusive).toBe(true)
    const exit = await within(child.exited, 10000, 'child exit')
    expect(exit.code).toBe(0)
    const m = manager()
    expect(await m.inspect(file)).toBeNull()
    const lock = await m.acquireLock(file, { timeoutMs: 0, retries: 1 })
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
    await lock.release()
  })
})

describe('close() with a waiter for another process', () => {
  it('rejects the waiting acquisition with ECLOSED promptly', async () => {
    const { child, m, acquisition } = await waitBehindChild()
    await m.close()
    const error = await rejectionOf(acquisition, 5000, 'waiting acquisition')
    expect(error).toBeInstanceOf(FileLockError)
    expect(error.code).toBe('ECLOSED')
    // The other process still holds its lock, untouched by our close().
    const observer = manager()
    expect(await observer.inspect(file)).toMatchObject({ exclusive: true, sameProcess: false })
  })
})

describe('lease expiry across processes', () => {
  it('a lock held past its lease is released: the holder is told (ECOMPROMISED) and another process gets it', async () => {
    const child = await startLockChild({ leaseMs: 300 })
    const held = await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager()
    const lock = await within(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }), 25000, 'acquisition')
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
    const expired = await child.waitFor('event', { filter: (e) => e.name === 'lease-expired' })
    expect(expired.payload).toMatchObject({ filePath: file, fencingToken: held.fencingToken })
    expect(expired.payload.heldMs).toBeGreaterThanOrEqual(250)
    expect(typeof expired.payload.lockId).toBe('number')
    expect(typeof expired.payload.message).toBe('string')
    const lost = await child.waitFor('lost')
    expect(lost.code).toBe('ECOMPROMISED')
    await lock.release()
  })

  it('the lease is enforced by native code even while the holder blocks its JS thread', async () => {
    const child = await startLockChild({ leaseMs: 300 })
    const BUSY_MS = 3000
    child.send({ cmd: 'acquire', file, busyMs: BUSY_MS })
    const held = await child.waitFor('held')
    const m = manager()
    const lock = await within(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }), 25000, 'acquisition')
    const acquiredAt = Date.now()
    const loopDone = await child.waitFor('loop-done', { timeoutMs: 20000 })
    // The child's event loop was blocked from held.at to loopDone.at; we got the
    // lock inside that window, so nothing in its JS released it.
    expect(loopDone.at - held.at).toBeGreaterThanOrEqual(BUSY_MS)
    expect(acquiredAt).toBeLessThan(loopDone.at)
    expect(lock.fencingToken).toBeGreaterThan(held.fencingToken)
    const lost = await child.waitFor('lost')
    expect(lost.code).toBe('ECOMPROMISED')
    await lock.release()
  })
})

describe('fencing tokens across processes', () => {
  it('strictly increase over successive exclusive acquisitions alternating between two processes', async () => {
    const child = await startLockChild()
    const m = manager()
    const tokens = []
    for (let round = 0; round < 4; round++) {
      const lock = await m.acquireLock(file, { timeoutMs: 10000 })
      tokens.push(lock.fencingToken)
      const record = JSON.parse(fs.readFileSync(sidecarOf(file), 'utf8'))
      expect(record.fencingToken).toBe(lock.fencingToken)
      expect(record.pid).toBe(process.pid)
      await lock.release()
      const held = await child.request({ cmd: 'acquire', file, options: { timeoutMs: 10000 } }, 'held')
      tokens.push(held.fencingToken)
      await child.request({ cmd: 'release' }, 'released')
    }
    expect(tokens).toHaveLength(8)
    for (const token of tokens) expect(Number.isSafeInteger(token)).toBe(true)
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1])
  })
})

describe('inspect() of a lock held by another process', () => {
  it('is null when free, exclusive while held exclusively, shared while held shared', async () => {
    const m = manager()
    const withPids = manager({ exposePids: true })
    expect(await m.inspect(file)).toBeNull() // no sidecar yet
    const child = await startLockChild()

    const held = await child.request({ cmd: 'acquire', file }, 'held')
    const holder = await m.inspect(file)
    expect(holder).toMatchObject({
      exclusive: true,
      strategy: 'os',
      sameProcess: false,
      sameHost: true,
      fencingToken: held.fencingToken,
    })
    expect(holder.pid).toBeUndefined()
    expect((await withPids.inspect(file)).pid).toBe(child.pid)
    // Seen from the holder itself: this very process.
    const own = await child.request({ cmd: 'inspect', file }, 'inspected')
    expect(own.holder).toMatchObject({ exclusive: true, sameProcess: true })

    await child.request({ cmd: 'release' }, 'released')
    expect(fs.existsSync(sidecarOf(file))).toBe(true)
    expect(await m.inspect(file)).toBeNull() // sidecar present, nobody holds it

    await child.request({ cmd: 'acquire', file, options: { exclusive: false } }, 'held')
    expect(await m.inspect(file)).toMatchObject({ exclusive: false, sameProcess: false, sameHost: true })
    // inspect() only probes: the holder still holds, a writer still cannot get in.
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 100, retries: 1 }), 10000, 'acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    await child.request({ cmd: 'release' }, 'released')
    expect(await m.inspect(file)).toBeNull()
  })
})

describe('a given-up exclusive wait does not block later shared requests', () => {
  // Another process holds a shared lock. Our exclusive request gives up (timeout
  // or abort). A shared request of ours is compatible with that reader and must
  // be granted at once, as it was before the exclusive attempt.
  async function setup() {
    const reader = await startLockChild()
    await reader.request({ cmd: 'acquire', file, options: { exclusive: false } }, 'held')
    const m = manager()
    const control = await within(m.acquireLock(file, { exclusive: false, timeoutMs: 2000, retries: 1 }), 5000, 'control')
    await control.release()
    return m
  }

  /** `m` asks for a shared lock beside the other shared holder: granted, as a shared lock. */
  async function expectSharedGrant(m) {
    const outcome = await within(
      m.acquireLock(file, { exclusive: false, timeoutMs: 2000, retries: 1 }).then((lock) => lock, (e) => e),
      10000,
      'shared request',
    )
    expect(outcome.code).toBeUndefined()
    expect(outcome.exclusive).toBe(false)
    await outcome.release()
  }

  it('after a timed-out exclusive request', async () => {
    const m = await setup()
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 100, retries: 1 }), 10000, 'exclusive')
    expect(error.code).toBe('ELOCKTIMEOUT')
    await expectSharedGrant(m)
  })

  it('after an aborted exclusive wait', async () => {
    const m = await setup()
    const controller = new AbortController()
    const waiting = nextEvent(m, 'waiting')
    const attempt = m.acquireLock(file, { timeoutMs: 20000, retries: 1, signal: controller.signal })
    await waiting
    controller.abort()
    expect((await rejectionOf(attempt, 5000, 'aborted exclusive')).code).toBe('ABORT_ERR')
    await expectSharedGrant(m)
  })
})

describe('sidecar clean-up', () => {
  it('a process that exits without releasing leaves no sidecar behind (its managers are closed at exit)', async () => {
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file, exitAfter: true }, 'held')
    expect((await child.exited).code).toBe(0)
    expect(fs.existsSync(sidecarOf(file))).toBe(false)
  })

  it('close() while waiting for another process removes the unused sidecar once that process lets go', async () => {
    const { child, m, acquisition } = await waitBehindChild()
    await m.close()
    expect((await rejectionOf(acquisition, 5000)).code).toBe('ECLOSED')
    expect(fs.existsSync(sidecarOf(file))).toBe(true) // still in use by the child

    await child.request({ cmd: 'release' }, 'released')
    // Nobody holds or waits for the lock any more, and the child stays alive
    // (idle), so only the closed manager's deferred clean-up can remove it.
    const removed = await waitUntil(() => !fs.existsSync(sidecarOf(file)), 3000, 'sidecar removal').then(() => true, () => false)
    expect(removed).toBe(true)
    // Whatever happened to the sidecar, the child can lock the file again.
    await child.request({ cmd: 'acquire', file, options: { timeoutMs: 2000 } }, 'held')
  })
})
