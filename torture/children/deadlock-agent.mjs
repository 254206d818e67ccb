// deadlocks agent: nested and crossed acquisitions on command. Every attempt
// is timed from the request to its end (grant or error) and reported as
// {kind, outcome: 'granted' | error code, elapsed, timeoutMs}.
// Commands (IPC):
//   {cmd:'abba', id, outer, inner, innerTimeoutMs, holdMs}: withLock(outer),
//     say 'outer-held', wait for {cmd:'go', id}, then withLock(inner) with the
//     timeout (one attempt); answers 'inner-done', then 'outer-released'.
//   {cmd:'nested', id, file, other, variant}: a request for `file` inside its own withLock.
//   {cmd:'in-process-abba', id, f1, f2, timeouts: [t1, t2]}: two async chains
//     of this process take f1→f2 (inner timeout t1) and f2→f1 (t2).
//   {cmd:'self-wait', id, file, timeoutMs}: acquireLock twice outside withLock.
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'

const { FileLockManager } = createRequire(import.meta.url)('../../index.js')
const manager = new FileLockManager({ retries: 1 })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const send = (message) => new Promise((resolve) => process.send(message, () => resolve()))
process.on('disconnect', () => process.exit(0))

const goes = new Map() // id → resolve
const goFor = (id) => new Promise((resolve) => goes.set(id, resolve))

/** The result of an attempt that ended with `error`, `t0` ms after it started. */
const failed = (kind, t0, timeoutMs, error) => ({ kind, outcome: error?.code ?? String(error), elapsed: performance.now() - t0, timeoutMs, message: error?.message })

async function nested(file, other, variant, timeoutMs) {
  const options = { timeoutMs, retries: 1 }
  const inner = {
    'acquireLock in withLock': () => manager.acquireLock(file, options),
    'withLock in withLock': () => manager.withLock(file, async () => {}, options),
    'shared in exclusive withLock': () => manager.acquireLock(file, { ...options, exclusive: false }),
    'Promise.all branches': () => Promise.all([manager.acquireLock(file, options), manager.withLock(file, async () => {}, options)]),
    'after a timer': () => new Promise((resolve, reject) => setTimeout(() => manager.acquireLock(file, options).then(resolve, reject), 1)),
    'through another file': () => manager.withLock(other, () => manager.acquireLock(file, options), options),
  }[variant]
  let result
  await manager.withLock(file, async () => {
    const t0 = performance.now()
    try {
      const got = await inner()
      // A grant here would be a bug (re-entry must fail): release what was granted.
      for (const lock of [got].flat()) if (lock && typeof lock.release === 'function') await lock.release()
      result = { kind: `nested: ${variant}`, outcome: 'granted', elapsed: performance.now() - t0, timeoutMs }
    } catch (error) {
      result = failed(`nested: ${variant}`, t0, timeoutMs, error)
    }
  })
  return result
}

process.on('message', async (m) => {
  try {
    switch (m.cmd) {
      case 'go':
        goes.get(m.id)?.()
        goes.delete(m.id)
        break
      case 'abba': {
        const go = goFor(m.id)
        await manager.withLock(m.outer, async () => {
          await send({ type: 'outer-held', id: m.id })
          await go
          const kind = 'cross-process ABBA'
          const t0 = performance.now()
          let result = null
          try {
            await manager.withLock(
              m.inner,
              async () => {
                result = { kind, outcome: 'granted', elapsed: performance.now() - t0, timeoutMs: m.innerTimeoutMs }
                if (m.holdMs) await sleep(m.holdMs)
              },
              { timeoutMs: m.innerTimeoutMs, retries: 1 },
            )
          } catch (error) {
            result ??= failed(kind, t0, m.innerTimeoutMs, error)
          }
          await send({ type: 'inner-done', id: m.id, result })
        })
        await send({ type: 'outer-released', id: m.id })
        break
      }
      case 'nested':
        await send({ type: 'nested-done', id: m.id, result: await nested(m.file, m.other, m.variant, m.timeoutMs) })
        break
      case 'in-process-abba': {
        let arrived = 0
        let bothIn
        const both = new Promise((resolve) => (bothIn = resolve))
        const chain = (a, b, timeoutMs) =>
          manager.withLock(a, async () => {
            if (++arrived === 2) bothIn()
            await both
            const t0 = performance.now()
            try {
              await manager.withLock(b, async () => {}, { timeoutMs, retries: 1 })
              return { kind: 'in-process ABBA', outcome: 'granted', elapsed: performance.now() - t0, timeoutMs }
            } catch (error) {
              return failed('in-process ABBA', t0, timeoutMs, error)
            }
          })
        const results = await Promise.all([chain(m.f1, m.f2, m.timeouts[0]), chain(m.f2, m.f1, m.timeouts[1])])
        await send({ type: 'in-process-done', id: m.id, results })
        break
      }
      case 'self-wait': {
        const lock = await manager.acquireLock(m.file)
        const t0 = performance.now()
        let result
        try {
          const second = await manager.acquireLock(m.file, { timeoutMs: m.timeoutMs, retries: 1 })
          await second.release()
          result = { kind: 'acquireLock twice outside withLock', outcome: 'granted', elapsed: performance.now() - t0, timeoutMs: m.timeoutMs }
        } catch (error) {
          result = failed('acquireLock twice outside withLock', t0, m.timeoutMs, error)
        }
        await lock.release()
        await send({ type: 'self-wait-done', id: m.id, result })
        break
      }
    }
  } catch (error) {
    await send({ type: 'error', cmd: m.cmd, id: m.id, code: error?.code, message: error?.message })
  }
})

await send({ type: 'ready' })
