// Behaviour inside one process: the fair queue, abort, events, close, leases,
// withLock re-entry, fencing tokens and disposal.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  asyncDispose,
  dir,
  expectPromptAbort,
  file,
  FileLockError,
  Lock,
  nextEvent,
  rejectionOf,
  sidecarOf,
  sleep,
  useScratchDir,
  waitUntil,
  within,
} from './helpers.mjs'

const manager = useScratchDir({ contents: '{"counter":0}' })

/** Tracks whether a promise settled yet, without consuming it. */
function track(promise) {
  const state = { settled: false, value: undefined, error: undefined, at: 0 }
  state.promise = promise.then(
    (value) => Object.assign(state, { settled: true, value, at: Date.now() }),
    (error) => Object.assign(state, { settled: true, error, at: Date.now() }),
  )
  return state
}

describe('basic acquisition', () => {
  it('grants an exclusive Lock with a canonical path, a fencing token and an unaborted signal', async () => {
    const m = manager()
    fs.mkdirSync(path.join(dir, 'sub'))
    fs.symlinkSync(dir, path.join(dir, 'link'))
    const spelled = `${dir}/./sub/../link/roles.json` // not normalized: resolved by the addon
    const lock = await m.acquireLock(spelled)
    expect(lock).toBeInstanceOf(Lock)
    expect(lock.filePath).toBe(file)
    expect(lock.exclusive).toBe(true)
    expect(lock.strategy).toBe('os')
    expect(Number.isSafeInteger(lock.fencingToken)).toBe(true)
    expect(lock.fencingToken).toBeGreaterThan(0)
    expect(lock.released).toBe(false)
    expect(lock.signal.aborted).toBe(false)
    expect(m.heldCount).toBe(1)
    await lock.release()
    expect(lock.released).toBe(true)
    expect(m.heldCount).toBe(0)
  })

  it('keeps the holder record in a private sidecar .<name>.lock beside the file', async () => {
    const m = manager()
    const lock = await m.acquireLock(file)
    const sidecar = sidecarOf(file)
    expect(path.basename(sidecar)).toBe('.roles.json.lock')
    if (process.platform !== 'win32') expect(fs.statSync(sidecar).mode & 0o777).toBe(0o600) // Windows: ACLs, no mode bits
    const record = JSON.parse(fs.readFileSync(sidecar, 'utf8'))
    expect(record).toMatchObject({ pid: process.pid, mode: 'exclusive', fencingToken: lock.fencingToken, strategy: 'os' })
    expect(typeof record.hostname).toBe('string')
    expect(typeof record.token).toBe('string')
    expect(typeof record.acquiredAt).toBe('number')
    expect('startTime' in record).toBe(true)
    // The data file itself is untouched.
    expect(fs.readFileSync(file, 'utf8')).toBe('{"counter":0}')
    await lock.release()
  })

  it('locks a file that does not exist yet', async () => {
    const m = manager()
    const missing = path.join(dir, 'not-yet.json')
    const lock = await m.acquireLock(missing)
    expect(lock.filePath).toBe(missing)
    expect(fs.existsSync(missing)).toBe(false)
    await lock.release()
  })
})

describe('a lock granted after a wait', () => {
  it.each([
    ['os', true],
    ['os', false],
    ['lockfile', true],
    ['lockfile', false],
  ])('carries what one taken at once does (strategy %s, exclusive %s), and a larger fencing token', async (strategy, exclusive) => {
    const m = manager({ strategy })
    const atOnce = await m.acquireLock(file, { exclusive })
    await atOnce.release()
    // Held by another manager first: this one's grant arrives from the native side.
    const holder = await manager({ strategy }).acquireLock(file)
    const waiting = m.acquireLock(file, { exclusive })
    await sleep(20)
    await holder.release()
    const waited = await waiting
    for (const key of ['filePath', 'exclusive', 'strategy', 'strategyReason']) expect(waited[key]).toBe(atOnce[key])
    expect(waited.exclusive).toBe(exclusive)
    expect(waited.strategy).toBe(strategy)
    expect(waited.fencingToken).toBeGreaterThan(holder.fencingToken)
    expect(holder.fencingToken).toBeGreaterThan(atOnce.fencingToken)
    expect(waited.released).toBe(false)
    expect(m.heldCount).toBe(1)
    await waited.release()
    expect(m.heldCount).toBe(0)
  })
})

describe('exclusion inside one process', () => {
  it('two acquireLock calls on the same file exclude each other', async () => {
    const m = manager()
    const first = await m.acquireLock(file)
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 100, retries: 1 }), 10000, 'second acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.holder).toMatchObject({ exclusive: true, sameProcess: true, sameHost: true })

    const second = track(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }))
    await sleep(200)
    expect(second.settled).toBe(false)
    const releasedAt = Date.now()
    await first.release()
    await within(second.promise, 10000, 'second acquisition')
    expect(second.error).toBeUndefined()
    expect(second.at).toBeGreaterThanOrEqual(releasedAt)
    expect(second.value.fencingToken).toBeGreaterThan(first.fencingToken)
    await second.value.release()
  })

  it('an exclusive request waits for a shared holder, and a shared one for an exclusive holder', async () => {
    const m = manager()
    const reader = await m.acquireLock(file, { exclusive: false })
    expect((await rejectionOf(m.acquireLock(file, { timeoutMs: 100, retries: 1 }))).code).toBe('ELOCKTIMEOUT')
    await reader.release()
    const writer = await m.acquireLock(file)
    const error = await rejectionOf(m.acquireLock(file, { exclusive: false, timeoutMs: 100, retries: 1 }))
    expect(error.code).toBe('ELOCKTIMEOUT')
    await writer.release()
  })

  it('shared locks in one process overlap', async () => {
    const m = manager()
    const a = await m.acquireLock(file, { exclusive: false })
    const b = await within(m.acquireLock(file, { exclusive: false, timeoutMs: 0, retries: 1 }), 5000, 'second reader')
    expect(a.exclusive).toBe(false)
    expect(b.exclusive).toBe(false)
    expect(a.released || b.released).toBe(false)
    expect(m.heldCount).toBe(2)
    expect(await m.inspect(file)).toMatchObject({ exclusive: false, sameProcess: true })
    await a.release()
    await b.release()
  })

  it('two managers in one process exclude each other like two processes', async () => {
    const a = manager()
    const b = manager()
    const lock = await a.acquireLock(file)
    const error = await rejectionOf(b.acquireLock(file, { timeoutMs: 100, retries: 1 }), 10000, 'acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.holder).toMatchObject({ exclusive: true, sameProcess: true })
    const waiter = track(b.acquireLock(file, { timeoutMs: 20000, retries: 1 }))
    await sleep(100)
    expect(waiter.settled).toBe(false)
    await lock.release()
    await within(waiter.promise, 10000, 'waiter')
    expect(waiter.error).toBeUndefined()
    await waiter.value.release()
  })
})

describe('fair queue order', () => {
  async function queueInOrder(m, names, { awaitEachWaiting }) {
    const order = []
    const pending = []
    for (const name of names) {
      const waiting = awaitEachWaiting ? nextEvent(m, 'waiting') : null
      pending.push(
        m.acquireLock(file, { timeoutMs: 20000, retries: 1 }).then(async (lock) => {
          order.push(name)
          await sleep(5)
          await lock.release()
        }),
      )
      if (waiting) await waiting
    }
    return { order, done: Promise.all(pending) }
  }

  it('exclusive requests queued A, B, C (each seen waiting) get the lock in order A, B, C', async () => {
    const m = manager()
    for (let round = 0; round < 5; round++) {
      const holder = await m.acquireLock(file)
      const { order, done } = await queueInOrder(m, ['A', 'B', 'C'], { awaitEachWaiting: true })
      await sleep(20)
      expect(order).toEqual([])
      await holder.release()
      await within(done, 10000, 'queued requests')
      expect(order).toEqual(['A', 'B', 'C'])
    }
  })

  it('exclusive requests made back to back A, B, C get the lock in call order A, B, C', async () => {
    // The queue promises arrival order; a caller's arrival is its call.
    const m = manager()
    const orders = []
    for (let round = 0; round < 30; round++) {
      const holder = await m.acquireLock(file)
      const { order, done } = await queueInOrder(m, ['A', 'B', 'C'], { awaitEachWaiting: false })
      await sleep(20)
      await holder.release()
      await within(done, 10000, 'queued requests')
      orders.push(order.join(''))
    }
    expect(orders.filter((o) => o !== 'ABC')).toEqual([])
  })

  it('a writer queued behind a reader is not overtaken by a later reader (writer seen waiting first)', async () => {
    const m = manager()
    const events = []
    const r1 = await m.acquireLock(file, { exclusive: false })
    const waiting = nextEvent(m, 'waiting')
    const w = track(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }).then((l) => (events.push('W acquired'), l)))
    await waiting
    const r2 = track(m.acquireLock(file, { exclusive: false, timeoutMs: 20000, retries: 1 }).then((l) => (events.push('R2 acquired'), l)))
    await sleep(200)
    expect(r2.settled).toBe(false)
    expect(w.settled).toBe(false)
    await r1.release()
    await within(w.promise, 10000, 'writer')
    await sleep(100)
    expect(r2.settled).toBe(false)
    events.push('W released')
    await w.value.release()
    await within(r2.promise, 10000, 'second reader')
    expect(events).toEqual(['W acquired', 'W released', 'R2 acquired'])
    await r2.value.release()
  })

  it('a writer queued behind a reader is not overtaken by a reader that asks right after it', async () => {
    // Holder shared R1; W asks for an exclusive lock, then R2 for a shared one.
    // R2 must get the lock only after W had it, in every round.
    const m = manager()
    const orders = []
    for (let round = 0; round < 20; round++) {
      await sleep(30)
      const order = []
      const holdBriefly = (name) => async (lock) => {
        order.push(name)
        await sleep(20)
        await lock.release()
      }
      const r1 = await m.acquireLock(file, { exclusive: false })
      const w = m.acquireLock(file, { timeoutMs: 20000, retries: 1 }).then(holdBriefly('W'))
      const r2 = m.acquireLock(file, { exclusive: false, timeoutMs: 20000, retries: 1 }).then(holdBriefly('R2'))
      await sleep(60)
      order.push('R1 released')
      await r1.release()
      await within(Promise.all([w, r2]), 10000, 'W and R2')
      orders.push(order.join(' > '))
    }
    expect(orders.filter((o) => o !== 'R1 released > W > R2')).toEqual([])
  })
})

describe("'waiting' events inside one process", () => {
  it('fire per attempt with the attempt number and this process as holder', async () => {
    const m = manager()
    const holder = await m.acquireLock(file)
    const events = []
    m.on('waiting', (event) => events.push(event))
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 100, retries: 3 }), 10000, 'acquireLock')
    expect(error.code).toBe('ELOCKTIMEOUT')
    expect(error.attempts).toBe(3)
    await waitUntil(() => events.length >= 3, 5000, 'three waiting events')
    expect(events.map((e) => [e.attempt, e.attempts])).toEqual([[1, 3], [2, 3], [3, 3]])
    for (const event of events) {
      expect(event).toMatchObject({ filePath: file, exclusive: true })
      expect(event.holder).toMatchObject({ exclusive: true, sameProcess: true, sameHost: true })
      expect(event.message).toContain('attempt')
    }
    await holder.release()
  })

  it("does not fire when the lock is free, and 'acquired' / 'released' fire for a plain acquisition", async () => {
    const m = manager()
    const seen = []
    for (const name of ['waiting', 'acquired', 'released']) m.on(name, (e) => seen.push([name, e]))
    const lock = await m.acquireLock(file)
    await lock.release()
    await lock.release() // idempotent: no second event
    await sleep(50)
    expect(seen.map(([name]) => name)).toEqual(['acquired', 'released'])
    expect(seen[0][1]).toMatchObject({ filePath: file, exclusive: true, fencingToken: lock.fencingToken, strategy: 'os' })
    expect(seen[1][1]).toMatchObject({ filePath: file, reason: 'released', fencingToken: lock.fencingToken })
  })
})

describe('AbortSignal', () => {
  it('an already-aborted signal rejects at once with an AbortError, even when the lock is free', async () => {
    const m = manager()
    const controller = new AbortController()
    controller.abort(new Error('user cancelled'))
    const error = await rejectionOf(m.acquireLock(file, { signal: controller.signal }), 2000, 'acquireLock')
    expect(error.name).toBe('AbortError')
    expect(error.code).toBe('ABORT_ERR')
    expect(error.filePath).toBe(file)
    expect(error.cause).toBe(controller.signal.reason)
    expect(m.heldCount).toBe(0)
    expect(await m.inspect(file)).toBeNull()
    const fromAbortSignal = await rejectionOf(m.withLock(file, async () => 'ran', { signal: AbortSignal.abort() }), 2000, 'withLock')
    expect(fromAbortSignal.code).toBe('ABORT_ERR')
  })

  it('aborting a wait rejects promptly and leaks no hold: the lock is acquired normally once the holder releases', async () => {
    const m = manager()
    const holder = await m.acquireLock(file)
    const controller = new AbortController()
    const waiting = nextEvent(m, 'waiting')
    const attempt = m.acquireLock(file, { timeoutMs: 20000, retries: 1, signal: controller.signal })
    await waiting
    await expectPromptAbort(attempt, controller)
    expect(m.heldCount).toBe(1)

    await holder.release()
    expect(m.heldCount).toBe(0)
    const next = await within(m.acquireLock(file, { timeoutMs: 0, retries: 1 }), 5000, 'acquisition after abort')
    expect(next.fencingToken).toBeGreaterThan(holder.fencingToken)
    expect(m.heldCount).toBe(1)
    await next.release()
    expect(await m.inspect(file)).toBeNull()
  })

  it('aborting between attempts (during the backoff) also rejects with ABORT_ERR', async () => {
    const m = manager()
    const holder = await m.acquireLock(file)
    const controller = new AbortController()
    const attempt = m.acquireLock(file, { timeoutMs: 50, retries: 1000, signal: controller.signal })
    await nextEvent(m, 'waiting', (e) => e.attempt >= 3)
    controller.abort()
    const error = await rejectionOf(attempt, 5000, 'aborted acquireLock')
    expect(error.code).toBe('ABORT_ERR')
    await holder.release()
    const next = await m.acquireLock(file, { timeoutMs: 0, retries: 1 })
    await next.release()
  })
})

describe('close()', () => {
  it('aborts held locks with ECLOSED, fails waiters with ECLOSED, refuses later calls and removes the unused sidecar', async () => {
    const m = manager()
    const other = path.join(dir, 'other.json')
    const lock = await m.acquireLock(file)
    const reader = await m.acquireLock(other, { exclusive: false })
    const reasons = []
    lock.signal.addEventListener('abort', () => reasons.push(lock.signal.reason))
    const released = []
    m.on('released', (e) => released.push(e))
    const waiting = nextEvent(m, 'waiting')
    const waiter = m.acquireLock(file, { timeoutMs: 60000, retries: 1 })
    await waiting
    expect(fs.existsSync(sidecarOf(file))).toBe(true)

    await m.close()
    expect(m.closed).toBe(true)
    expect(lock.released).toBe(true)
    expect(reader.released).toBe(true)
    expect(lock.signal.aborted).toBe(true)
    expect(lock.signal.reason).toBeInstanceOf(FileLockError)
    expect(lock.signal.reason.code).toBe('ECLOSED')
    expect(reader.signal.reason.code).toBe('ECLOSED')
    expect(reasons).toHaveLength(1)
    expect(released.map((e) => e.reason).sort()).toEqual(['manager-closed', 'manager-closed'])
    const waitError = await rejectionOf(waiter, 5000, 'waiter')
    expect(waitError.code).toBe('ECLOSED')
    expect(m.heldCount).toBe(0)

    expect((await rejectionOf(m.acquireLock(file), 2000)).code).toBe('ECLOSED')
    expect((await rejectionOf(m.withLock(file, async () => 1), 2000)).code).toBe('ECLOSED')
    expect((await rejectionOf(m.inspect(file), 2000)).code).toBe('ECLOSED')
    await lock.release() // a no-op now
    await m.close() // idempotent

    expect(fs.existsSync(sidecarOf(file))).toBe(false)
    expect(fs.existsSync(sidecarOf(other))).toBe(false)
    expect(fs.readFileSync(file, 'utf8')).toBe('{"counter":0}')
    const next = manager()
    const again = await next.acquireLock(file, { timeoutMs: 0, retries: 1 })
    expect(again.fencingToken).toBeGreaterThan(lock.fencingToken) // even though the sidecar was re-created
    await again.release()
  })

  it('a withLock whose lock is taken away by close() rejects with ECLOSED', async () => {
    const m = manager()
    const result = m.withLock(file, async () => {
      await m.close()
      return 'finished'
    })
    const error = await rejectionOf(result, 5000, 'withLock')
    expect(error.code).toBe('ECLOSED')
  })

  it('keeps a sidecar that another manager still holds', async () => {
    const a = manager()
    const b = manager()
    await a.acquireLock(file, { exclusive: false })
    const lock = await b.acquireLock(file, { exclusive: false })
    await a.close()
    expect(fs.existsSync(sidecarOf(file))).toBe(true)
    expect(await b.inspect(file)).toMatchObject({ exclusive: false })
    await lock.release()
    await b.close()
    expect(fs.existsSync(sidecarOf(file))).toBe(false)
  })
})

describe('leases', () => {
  it("a lock held past leaseMs is released: 'lease-expired' fires, its signal aborts with ECOMPROMISED, and a waiter gets it", async () => {
    const m = manager({ leaseMs: 300 })
    const expired = nextEvent(m, 'lease-expired')
    const releasedEvent = nextEvent(m, 'released')
    const lock = await m.acquireLock(file)
    const waiter = track(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }))
    const event = await expired
    expect(event).toMatchObject({ filePath: file, fencingToken: lock.fencingToken })
    expect(typeof event.lockId).toBe('number')
    expect(event.heldMs).toBeGreaterThanOrEqual(250)
    expect(event.message).toContain('lease')
    expect((await releasedEvent).reason).toBe('lease-expired')
    expect(lock.released).toBe(true)
    expect(lock.signal.aborted).toBe(true)
    expect(lock.signal.reason).toBeInstanceOf(FileLockError)
    expect(lock.signal.reason.code).toBe('ECOMPROMISED')

    await within(waiter.promise, 10000, 'waiter')
    expect(waiter.error).toBeUndefined()
    expect(waiter.value.fencingToken).toBeGreaterThan(lock.fencingToken)
    await lock.release() // no-op, must not release the waiter's lock
    expect(waiter.value.released).toBe(false)
    expect((await rejectionOf(m.acquireLock(file, { timeoutMs: 0, retries: 1 }))).code).toBe('ELOCKTIMEOUT')
    await waiter.value.release()
  })

  it('an expired lock can be taken again by the same manager', async () => {
    const m = manager({ leaseMs: 300 })
    const lock = await m.acquireLock(file)
    await nextEvent(m, 'lease-expired')
    const again = await m.acquireLock(file, { timeoutMs: 0, retries: 1 })
    expect(again.fencingToken).toBeGreaterThan(lock.fencingToken)
    await again.release()
  })

  it('leaseMs: Infinity never expires a lock', async () => {
    const m = manager({ leaseMs: Infinity })
    const events = []
    m.on('lease-expired', (e) => events.push(e))
    const lock = await m.acquireLock(file)
    await sleep(500)
    expect(events).toEqual([])
    expect(lock.released).toBe(false)
    await lock.release()
  })

  it('withLock rejects with ECOMPROMISED when the lease expired while fn awaited', async () => {
    const m = manager({ leaseMs: 300 })
    const error = await rejectionOf(
      m.withLock(file, async () => {
        await sleep(800)
        return 'finished'
      }),
      10000,
      'withLock',
    )
    expect(error.code).toBe('ECOMPROMISED')
  })

  it('withLock rejects with ECOMPROMISED when the lease expired while fn blocked the event loop', async () => {
    // The lease exists for exactly this case: the lock was released by the native
    // timer while fn ran, so fn's writes were unprotected; withLock must not report success.
    const m = manager({ leaseMs: 300 })
    const outcome = await within(
      m.withLock(file, async () => {
        const end = Date.now() + 800
        while (Date.now() < end) {}
        return 'finished'
      }).then((value) => ({ value }), (error) => ({ error })),
      10000,
      'withLock',
    )
    expect(outcome.value).toBeUndefined()
    expect(outcome.error?.code).toBe('ECOMPROMISED')
  })
})

describe('withLock', () => {
  it('releases on return and on throw, and passes the lock to fn', async () => {
    const m = manager()
    let inside
    const value = await m.withLock(file, async (lock) => {
      inside = lock
      expect(lock.released).toBe(false)
      expect(await m.inspect(file)).toMatchObject({ exclusive: true, sameProcess: true })
      return 42
    })
    expect(value).toBe(42)
    expect(inside).toBeInstanceOf(Lock)
    expect(inside.released).toBe(true)
    const boom = new Error('boom')
    const error = await rejectionOf(m.withLock(file, async () => { throw boom }), 5000, 'withLock')
    expect(error).toBe(boom)
    expect(m.heldCount).toBe(0)
    expect(await m.inspect(file)).toBeNull()
    const lock = await m.acquireLock(file, { timeoutMs: 0, retries: 1 })
    await lock.release()
  })

  it('a nested acquisition of the same file rejects at once with EDEADLOCK, not after a timeout', async () => {
    const m = manager()
    fs.symlinkSync(dir, path.join(dir, 'link'))
    const started = Date.now()
    const codes = await m.withLock(file, async () => {
      const direct = await rejectionOf(m.acquireLock(file, { timeoutMs: 20000, retries: 1 }), 5000, 'nested acquireLock')
      const nestedWithLock = await rejectionOf(m.withLock(file, async () => 'ran', { timeoutMs: 20000, retries: 1 }), 5000, 'nested withLock')
      const otherSpelling = await rejectionOf(m.acquireLock(`${dir}/./link/roles.json`, { timeoutMs: 20000 }), 5000, 'nested acquireLock')
      const shared = await rejectionOf(m.acquireLock(file, { exclusive: false, timeoutMs: 20000 }), 5000, 'nested shared acquireLock')
      return [direct, nestedWithLock, otherSpelling, shared].map((e) => [e.constructor.name, e.code, e.filePath])
    }, { timeoutMs: 20000, retries: 1 })
    expect(Date.now() - started).toBeLessThan(5000)
    for (const entry of codes) expect(entry).toEqual(['FileLockError', 'EDEADLOCK', file])
    expect(m.heldCount).toBe(0)
  })

  it('EDEADLOCK also in a Promise.all branch inside withLock, while a different file nested works', async () => {
    const m = manager()
    const other = path.join(dir, 'other.json')
    const result = await m.withLock(file, async () => {
      const [a, b, c] = await Promise.allSettled([
        (async () => {
          await sleep(10)
          return m.acquireLock(file, { timeoutMs: 20000 })
        })(),
        m.withLock(other, async (inner) => {
          expect(inner.filePath).toBe(other)
          // Both files are in this chain now.
          const deeper = await rejectionOf(m.acquireLock(other, { timeoutMs: 20000 }), 5000)
          return ['other locked', deeper.code]
        }),
        Promise.resolve().then(() => m.withLock(file, async () => 'ran', { timeoutMs: 20000 })),
      ])
      return [a.status, a.reason?.code, b.value, c.status, c.reason?.code]
    }, { timeoutMs: 20000 })
    expect(result).toEqual(['rejected', 'EDEADLOCK', ['other locked', 'EDEADLOCK'], 'rejected', 'EDEADLOCK'])
    expect(m.heldCount).toBe(0)
  })

  it('sibling withLock calls on the same file (not nested) simply wait for each other', async () => {
    const m = manager()
    const order = []
    await Promise.all(
      [1, 2, 3].map((n) =>
        m.withLock(file, async () => {
          order.push(`in ${n}`)
          await sleep(20)
          order.push(`out ${n}`)
        }, { timeoutMs: 20000, retries: 1 }),
      ),
    )
    expect(order).toHaveLength(6)
    for (let i = 0; i < 6; i += 2) expect(order[i + 1]).toBe(order[i].replace('in', 'out'))
  })

  it('a callback scheduled inside withLock that runs after it completed can lock the file', async () => {
    // Once withLock has released, nothing in this chain holds the file any more:
    // a later acquisition (e.g. a debounced save scheduled inside the critical
    // section) would not deadlock and must be allowed to wait normally.
    const m = manager()
    let later
    await m.withLock(file, async () => {
      later = sleep(100).then(() => m.acquireLock(file, { timeoutMs: 5000, retries: 1 }))
    })
    const outcome = await within(later.then((lock) => ({ lock }), (error) => ({ error })), 10000, 'later acquisition')
    if (outcome.lock) await outcome.lock.release()
    expect(outcome.error?.code).toBeUndefined()
    expect(outcome.lock).toBeInstanceOf(Lock)
  })
})

describe('fencing tokens in one process', () => {
  it('strictly increase over successive exclusive acquisitions, including queued hand-overs', async () => {
    const m = manager()
    const tokens = []
    for (let i = 0; i < 5; i++) {
      const lock = await m.acquireLock(file)
      tokens.push(lock.fencingToken)
      await lock.release()
    }
    const holder = await m.acquireLock(file)
    tokens.push(holder.fencingToken)
    const queued = [0, 1, 2].map(() =>
      m.acquireLock(file, { timeoutMs: 20000, retries: 1 }).then(async (lock) => {
        tokens.push(lock.fencingToken)
        await lock.release()
      }),
    )
    await sleep(50)
    await holder.release()
    await within(Promise.all(queued), 10000, 'queued')
    expect(tokens).toHaveLength(9)
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1])
  })
})

describe('disposal', () => {
  it('lock[Symbol.asyncDispose]() releases the lock', async () => {
    const m = manager()
    const released = nextEvent(m, 'released')
    const lock = await m.acquireLock(file)
    expect(typeof lock[asyncDispose]).toBe('function')
    await lock[asyncDispose]()
    expect(lock.released).toBe(true)
    expect((await released).reason).toBe('released')
    expect(m.heldCount).toBe(0)
    const next = await m.acquireLock(file, { timeoutMs: 0, retries: 1 })
    await next.release()
    await lock[asyncDispose]() // idempotent
    expect(next.released).toBe(true)
  })
})
