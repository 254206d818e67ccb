// What keeps a Node process alive: a waiting acquisition must (the caller awaits
// it), events and held locks must not (a library must never stop an app from exiting).
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { dir, file, FileLockManager, runSnippet, sleep, useScratchDir, within } from './helpers.mjs'


describe('process lifetime', () => {
  useScratchDir()

  it('event listeners and a finished acquisition do not keep the process alive', async () => {
    const run = runSnippet(
      file,
      `const m = new FileLockManager()
       for (const e of ['waiting', 'acquired', 'released', 'timeout', 'lease-expired']) m.on(e, () => {})
       const lock = await m.acquireLock(file)
       await lock.release()
       console.log('done')`,
    )
    const { code, out } = await within(run.exited, 10000, 'the idle process to exit')
    expect(code).toBe(0)
    expect(out).toContain('done')
  })

  it('a lock held and never released does not keep the process alive, and exit frees it', async () => {
    const run = runSnippet(file, `const m = new FileLockManager(); await m.acquireLock(file); console.log('held')`)
    const { code, out } = await within(run.exited, 10000, 'the holding process to exit')
    expect(code).toBe(0)
    expect(out).toContain('held')
    const manager = new FileLockManager()
    const lock = await manager.acquireLock(file, { timeoutMs: 0, retries: 1 })
    await lock.release()
    await manager.close()
  })

  it('a process waiting for a lock stays alive until it gets it', async () => {
    const manager = new FileLockManager()
    const held = await manager.acquireLock(file)
    const run = runSnippet(
      file,
      `const m = new FileLockManager()
       const lock = await m.acquireLock(file, { timeoutMs: 20000, retries: 1 })
       console.log('acquired after wait')
       await lock.release()`,
    )
    await sleep(800)
    expect(run.child.exitCode).toBe(null) // still waiting, not exited
    await held.release()
    const { code, out } = await within(run.exited, 10000, 'the waiting process')
    expect(code).toBe(0)
    expect(out).toContain('acquired after wait')
    await manager.close()
  })
})
