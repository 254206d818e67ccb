// A process that takes and holds locks on command (IPC), for scenarios that
// need a holder or a waiter somewhere else than the harness.
// argv[2]: JSON options of its FileLockManager.
// Commands: {cmd:'acquire', file, options} → 'held' {at, elapsed, fencingToken}
//   or 'acquire-failed' {code, elapsed}; {cmd:'release'} → 'released'
//   {releasingAt, at}; {cmd:'close'} → 'closed'.
// Also sent: 'lost' (the held lock's signal aborted), and every
// 'stale-lock-removed' event as {type:'event', name, payload}.
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'

const { FileLockManager } = createRequire(import.meta.url)('../../index.js')
const manager = new FileLockManager(JSON.parse(process.argv[2] ?? '{}'))
const send = (message) => new Promise((resolve) => process.send(message, () => resolve()))
manager.on('stale-lock-removed', (payload) => process.send({ type: 'event', name: 'stale-lock-removed', payload, at: Date.now() }))
process.on('disconnect', () => process.exit(0))

let lock = null
process.on('message', async (m) => {
  try {
    switch (m.cmd) {
      case 'acquire': {
        const t0 = performance.now()
        try {
          lock = await manager.acquireLock(m.file, m.options)
        } catch (error) {
          await send({ type: 'acquire-failed', code: error.code, message: error.message, elapsed: performance.now() - t0, at: Date.now() })
          break
        }
        const elapsed = performance.now() - t0
        const mine = lock
        mine.signal.addEventListener('abort', () => {
          if (mine.signal.reason?.code !== 'ECLOSED') process.send({ type: 'lost', code: mine.signal.reason?.code, at: Date.now() })
        })
        await send({ type: 'held', at: Date.now(), elapsed, fencingToken: lock.fencingToken, strategy: lock.strategy })
        break
      }
      case 'release': {
        const releasingAt = Date.now()
        await lock?.release()
        lock = null
        await send({ type: 'released', releasingAt, at: Date.now() })
        break
      }
      case 'close':
        await manager.close()
        await send({ type: 'closed' })
        break
    }
  } catch (error) {
    await send({ type: 'error', cmd: m.cmd, code: error.code, message: error.message })
  }
})

await send({ type: 'ready', pid: process.pid })
