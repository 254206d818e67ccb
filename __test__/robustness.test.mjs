// Regressions from a review of the engine's races: grants that reach JS late,
// listeners that throw, workers torn down mid-wait, many files, dropped managers.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { dir, file, FileLockManager, runSnippet, sleep, useScratchDir, within } from './helpers.mjs'

describe('robustness', () => {
  useScratchDir()

  it('a grant racing close() rejects with ECLOSED instead of handing out a released lock', async () => {
    const m = new FileLockManager({ leaseMs: Infinity })
    const first = await m.acquireLock(file)
    const second = m.acquireLock(file, { timeoutMs: 5000 })
    await sleep(50)
    first.release() // grants `second` natively; its completion is still queued
    await m.close()
    await expect(second).rejects.toMatchObject({ code: 'ECLOSED' })
    expect(m.heldCount).toBe(0)
  })

  it('a grant whose lease ran out before it reached JS rejects with ECOMPROMISED', async () => {
    const m = new FileLockManager({ leaseMs: 30 })
    const first = await m.acquireLock(file)
    const second = m.acquireLock(file, { timeoutMs: 5000 })
    const until = Date.now() + 300
    while (Date.now() < until) {} // the event loop is stuck: both leases run out meanwhile
    await expect(second).rejects.toMatchObject({ code: 'ECOMPROMISED' })
    expect(first.released).toBe(true)
    expect(m.heldCount).toBe(0)
    await m.close()
  })

  it('throwing listeners neither strand a promise nor orphan a lock', async () => {
    const run = runSnippet(
      file,
      `process.on('uncaughtException', (e) => console.log('uncaught:', e.message))
       const m = new FileLockManager({ leaseMs: Infinity })
       m.once('timeout', () => { throw new Error('timeout listener bug') })
       const holder = await m.acquireLock(file)
       const outcome = await m.acquireLock(file, { timeoutMs: 50, retries: 1 }).then(() => 'resolved', (e) => e.code)
       console.log('timed-out request:', outcome)
       await holder.release()
       m.once('acquired', () => { throw new Error('acquired listener bug') })
       const lock = await m.acquireLock(file)
       console.log('acquired despite listener:', lock.exclusive)
       await lock.release()
       console.log('held after release:', m.heldCount)
       await m.close()`,
    )
    const { code, out } = await within(run.exited, 15000, 'the snippet')
    expect(code).toBe(0)
    expect(out).toContain('timed-out request: ELOCKTIMEOUT')
    expect(out).toContain('uncaught: timeout listener bug')
    expect(out).toContain('acquired despite listener: true')
    expect(out).toContain('uncaught: acquired listener bug')
    expect(out).toContain('held after release: 0')
  })

  it('worker.terminate() with a held lock and a waiting request lets go of the lock', async () => {
    const run = runSnippet(
      file,
      `const { Worker } = require('node:worker_threads')
       const worker = new Worker(\`
         const { workerData, parentPort } = require('node:worker_threads')
         const { FileLockManager } = require(workerData.pkg)
         const m = new FileLockManager({ leaseMs: Infinity })
         m.acquireLock(workerData.file).then((lock) => {
           globalThis.keep = lock
           m.acquireLock(workerData.file, { timeoutMs: Infinity }).catch(() => {})
           setTimeout(() => parentPort.postMessage('held'), 50)
           setInterval(() => {}, 1000)
         })\`, { eval: true, workerData: { file, pkg: require.resolve(${JSON.stringify(path.resolve('index.js'))}) } })
       await new Promise((resolve) => worker.once('message', resolve))
       await worker.terminate()
       const m = new FileLockManager()
       const lock = await m.acquireLock(file, { timeoutMs: 3000, retries: 1 })
       console.log('parent got the lock')
       await lock.release()
       await m.close()`,
    )
    const { code, out } = await within(run.exited, 15000, 'the snippet')
    expect(out).toContain('parent got the lock')
    expect(code).toBe(0)
  })

  it('a manager over many files keeps a bounded number of handles and cleans up every sidecar', async () => {
    const countFds = () => fs.readdirSync('/proc/self/fd').length
    const m = new FileLockManager()
    const before = countFds()
    for (let i = 0; i < 600; i++) {
      const lock = await m.acquireLock(path.join(dir, `file-${i}.json`))
      await lock.release()
    }
    expect(countFds() - before).toBeLessThan(200)
    await m.close()
    const sidecars = fs.readdirSync(dir).filter((name) => name.endsWith('.lock'))
    expect(sidecars).toEqual([])
  })

  it('closed managers are garbage-collected (the native side holds them weakly)', async () => {
    const run = runSnippet(
      file,
      `const registry = new FinalizationRegistry(() => collected++)
       let collected = 0
       for (let i = 0; i < 20; i++) {
         const m = new FileLockManager()
         m.on('waiting', () => {})
         await (await m.acquireLock(file)).release()
         await m.close()
         registry.register(m, i)
       }
       for (let i = 0; i < 10 && collected < 10; i++) {
         global.gc()
         await new Promise((resolve) => setTimeout(resolve, 20))
       }
       console.log('collected', collected)`,
      ['--expose-gc'],
    )
    const { code, out } = await within(run.exited, 15000, 'the snippet')
    expect(code).toBe(0)
    const collected = Number(/collected (\d+)/.exec(out)?.[1] ?? -1)
    expect(collected).toBeGreaterThanOrEqual(10)
  })
})

describe('lock file safety', () => {
  const manager = useScratchDir()
  const sidecar = () => path.join(dir, '.roles.json.lock')

  it('refuses a sidecar that is a symlink (ELOOP) and leaves its target alone', async () => {
    const target = path.join(dir, 'elsewhere')
    fs.writeFileSync(target, 'precious')
    fs.symlinkSync(target, sidecar())
    const m = manager()
    await expect(m.acquireLock(file, { timeoutMs: 100, retries: 1 })).rejects.toMatchObject({ code: 'ELOOP' })
    await m.close()
    expect(fs.readFileSync(target, 'utf8')).toBe('precious')
    expect(fs.lstatSync(sidecar()).isSymbolicLink()).toBe(true)
  })

  it.runIf(process.getuid?.() === 0)('refuses (ELOCKFOREIGN) and keeps a sidecar owned by another user', async () => {
    fs.writeFileSync(sidecar(), '')
    fs.chownSync(sidecar(), 65534, 65534)
    const m = manager()
    const error = await m.acquireLock(file, { timeoutMs: 100, retries: 1 }).catch((e) => e)
    expect(error.code).toBe('ELOCKFOREIGN')
    expect(error.message).toMatch(/another user/)
    await m.close()
    expect(fs.statSync(sidecar()).uid).toBe(65534)
  })

  it('a holder whose lock file is deleted learns it: ECOMPROMISED on its signal and a compromised event', async () => {
    const m = manager()
    const compromised = new Promise((resolve) => m.once('compromised', resolve))
    const lock = await m.acquireLock(file)
    fs.unlinkSync(sidecar())
    const event = await within(compromised, 5000, 'the compromised event')
    expect(event.filePath).toBe(file)
    expect(event.message).toMatch(/deleted or replaced/)
    expect(lock.signal.aborted).toBe(true)
    expect(lock.signal.reason.code).toBe('ECOMPROMISED')
    const other = manager()
    const fresh = await other.acquireLock(file, { timeoutMs: 0, retries: 1 })
    await fresh.release()
  })
})
