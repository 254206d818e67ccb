// The locking layer through the built native package: strategy selection and
// injection (each strategy's options really reach the native manager and show
// on disk), acquireLock / withLock, a real second process holding the lock,
// FileWatcher, and the ConflictResolver helpers.
import fs from 'node:fs'
import path from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { AppInstance, built, dir, file, readJson, rejection, sleep, useExample } from '../../__tests__/helpers.js'
import { decide, describeConflict, describePath, keepTheirDeletions, mergeValues, parsePath } from '../ConflictResolver.js'
import { FileLockManager, errorCode, type FileLockManagerConfig } from '../FileLockManager.js'
import type { FileChange } from '../FileWatcher.js'
import { FallbackLockStrategy } from '../platforms/FallbackLockStrategy.js'
import type { LockStrategy } from '../platforms/LockStrategy.js'
import { UnixLockStrategy } from '../platforms/UnixLockStrategy.js'
import { WindowsLockStrategy } from '../platforms/WindowsLockStrategy.js'
import { selectStrategy } from '../platforms/selectStrategy.js'

const isWindows = process.platform === 'win32'
const managers: FileLockManager[] = []
useExample('{ "roles": [] }\n', async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
})
let sidecar: string
beforeEach(() => {
  sidecar = path.join(dir, '.roles.json.lock')
})

function makeManager(config: FileLockManagerConfig = {}): FileLockManager {
  const manager = new FileLockManager(config)
  managers.push(manager)
  return manager
}

async function otherProcess(strategy?: 'unix' | 'fallback', manager: Record<string, unknown> = {}): Promise<AppInstance> {
  const instance = await AppInstance.start(built)
  await instance.call('open', { strategy, manager })
  return instance
}


describe('strategies', () => {
  it('selectStrategy: LockFileEx on Windows, flock on Unixes, the lock file elsewhere or when shared across machines', () => {
    expect(selectStrategy('win32')).toBeInstanceOf(WindowsLockStrategy)
    expect(selectStrategy('win32').mechanism).toBe('LockFileEx')
    for (const unix of ['linux', 'darwin', 'freebsd'] as const) expect(selectStrategy(unix)).toBeInstanceOf(UnixLockStrategy)
    expect(selectStrategy('linux').mechanism).toBe('flock')
    expect(selectStrategy('haiku')).toBeInstanceOf(FallbackLockStrategy)
    expect(selectStrategy('darwin', { sharedAcrossMachines: true })).toBeInstanceOf(FallbackLockStrategy)
    expect(new FileLockManager().strategy.name).toBe(isWindows ? 'windows' : 'unix')
  })

  it('each strategy stands for the native options it names', () => {
    expect(new UnixLockStrategy().managerOptions()).toEqual({ strategy: 'auto' }) // OS locks; the lock file on network drives
    expect(new UnixLockStrategy({ networkFallback: false }).managerOptions()).toEqual({ strategy: 'os' })
    expect(new WindowsLockStrategy().managerOptions()).toEqual({ strategy: 'auto' })
    expect(new WindowsLockStrategy({ networkFallback: false }).managerOptions()).toEqual({ strategy: 'os' })
    expect(new FallbackLockStrategy().managerOptions()).toEqual({ strategy: 'lockfile' })
    expect(new FallbackLockStrategy({ staleMs: 60000, networkTimeoutFactor: 5 }).managerOptions()).toEqual({ strategy: 'lockfile', staleMs: 60000, networkTimeoutFactor: 5 })
  })

  it('an injected strategy configures the native manager; the app’s own tuning wins', () => {
    const calls: string[] = []
    const fake: LockStrategy = {
      name: 'test-double',
      mechanism: 'whatever the test says',
      isSupported: (platform) => (calls.push(`isSupported ${platform}`), true),
      managerOptions: () => (calls.push('managerOptions'), { strategy: 'lockfile', staleMs: 12345, networkTimeoutFactor: 7 }),
    }
    const manager = makeManager({ strategy: fake, networkTimeoutFactor: 2, timeoutMs: 1500 })
    expect(manager.strategy).toBe(fake)
    expect(calls).toEqual([`isSupported ${process.platform}`, 'managerOptions'])
    expect(manager.native.options).toMatchObject({ strategy: 'lockfile', staleMs: 12345, networkTimeoutFactor: 2, timeoutMs: 1500, retries: 3 })
  })

  it.skipIf(isWindows)('a strategy for another platform is refused (EUNSUPPORTED)', () => {
    expect(() => new FileLockManager({ strategy: new WindowsLockStrategy() })).toThrow(expect.objectContaining({ code: 'EUNSUPPORTED' }))
  })
})

describe.skipIf(isWindows)('UnixLockStrategy: flock on the sidecar', () => {
  it('locks the sidecar .roles.json.lock with an OS lock that another process respects', async () => {
    const manager = makeManager({ strategy: new UnixLockStrategy({ networkFallback: false }) })
    const lock = await manager.acquireLock(file)
    expect(lock).toMatchObject({ exclusive: true, strategy: 'os', filePath: file })
    expect(lock.strategyReason).toMatch(/strategy option/)
    expect(readJson(sidecar)).toMatchObject({ strategy: 'os', mode: 'exclusive', pid: process.pid })

    const other = await otherProcess('unix', { timeoutMs: 200, retries: 1 })
    expect(errorCode(await rejection(other.call('hold', { file })))).toBe('ELOCKTIMEOUT')
    await lock.release()
    expect(await other.call('hold', { file })).toMatchObject({ strategy: 'os' })
    expect(readJson(sidecar)).toMatchObject({ pid: other.proc.pid })
  })

  it('shared locks (exclusive = false) overlap; an exclusive request waits for them', async () => {
    const manager = makeManager({ strategy: new UnixLockStrategy() })
    const a = await manager.acquireLock(file, false)
    const b = await manager.acquireLock(file, false, { timeoutMs: 0 })
    expect([a.exclusive, b.exclusive]).toEqual([false, false])
    expect(errorCode(await rejection(manager.acquireLock(file, true, { timeoutMs: 50, retries: 1 })))).toBe('ELOCKTIMEOUT')
    await Promise.all([a.release(), b.release()])
    await (await manager.acquireLock(file, true, { timeoutMs: 0 })).release()
  })
})

describe('FallbackLockStrategy: the PID lock file', () => {
  it('while held, .roles.json.lock exists holding a JSON record (pid, host, token, heartbeat); released, it is gone', async () => {
    const manager = makeManager({ strategy: new FallbackLockStrategy() })
    const lock = await manager.acquireLock(file)
    expect(lock.strategy).toBe('lockfile')
    const record = readJson<Record<string, unknown>>(sidecar)
    expect(record).toMatchObject({ strategy: 'lockfile', mode: 'exclusive', pid: process.pid, fencingToken: lock.fencingToken })
    expect(typeof record.hostname).toBe('string')
    expect(typeof record.token).toBe('string')
    expect(typeof record.heartbeat).toBe('number')
    if (!isWindows) expect(fs.statSync(sidecar).mode & 0o777).toBe(0o600)
    await lock.release()
    expect(fs.existsSync(sidecar)).toBe(false)
  })

  it('another process’s lock file makes us wait (who holds it is shown), and is reclaimed at once when that process dies', async () => {
    const other = await otherProcess('fallback')
    await other.call('hold', { file })
    expect(readJson(sidecar)).toMatchObject({ strategy: 'lockfile', pid: other.proc.pid })

    const manager = makeManager({ strategy: new FallbackLockStrategy(), timeoutMs: 200, retries: 1 })
    const waiting: string[] = []
    manager.onWaiting((e) => waiting.push(e.message))
    const timedOut = await rejection(manager.acquireLock(file))
    expect(errorCode(timedOut)).toBe('ELOCKTIMEOUT')
    expect((timedOut as { holder?: { description: string } }).holder?.description).toMatch(/^another process on this machine since /)
    expect(waiting[0]).toMatch(/waiting for another process on this machine since .* to release roles\.json/)

    const staleRemoved = new Promise((resolve) => manager.native.once('stale-lock-removed', resolve))
    await other.crash() // no release, no exit hook: the lock file stays behind
    expect(fs.existsSync(sidecar)).toBe(true)
    const lock = await manager.acquireLock(file, true, { timeoutMs: 5000 })
    expect(await staleRemoved).toMatchObject({ reason: expect.stringMatching(/exited/) })
    expect(readJson(sidecar)).toMatchObject({ pid: process.pid })
    await lock.release()
  })
})

describe('withLock', () => {
  it('holds the lock while the operation runs and releases it however the operation ends', async () => {
    const manager = makeManager()
    const result = await manager.withLock(file, async (lock) => {
      expect(manager.native.heldCount).toBe(1)
      expect(await manager.inspect(file)).toMatchObject({ exclusive: true, sameProcess: true })
      return lock.fencingToken
    })
    expect(typeof result).toBe('number')
    expect(manager.native.heldCount).toBe(0)

    const boom = await rejection(manager.withLock(file, () => Promise.reject(new Error('boom'))))
    expect((boom as Error).message).toBe('boom')
    expect(manager.native.heldCount).toBe(0)
    await (await manager.acquireLock(file, true, { timeoutMs: 0 })).release() // free at once
  })

  it('nested use on the same file fails at once with EDEADLOCK instead of waiting for itself', async () => {
    const manager = makeManager()
    const nested = await manager.withLock(file, () => rejection(manager.withLock(file, () => 'never')))
    expect(errorCode(nested)).toBe('EDEADLOCK')
  })

  it('serializes read-modify-write cycles in this process', async () => {
    const manager = makeManager()
    const counter = path.join(dir, 'counter.txt')
    fs.writeFileSync(counter, '0')
    await Promise.all(
      Array.from({ length: 20 }, () =>
        manager.withLock(counter, async () => {
          const n = Number(fs.readFileSync(counter, 'utf8'))
          await sleep(1)
          fs.writeFileSync(counter, String(n + 1))
        }),
      ),
    )
    expect(fs.readFileSync(counter, 'utf8')).toBe('20')
  })

  it('waits for another process to release, then runs', async () => {
    const other = await otherProcess()
    await other.call('hold', { file })
    const manager = makeManager({ timeoutMs: 20000 })
    const order: string[] = []
    const running = manager.withLock(file, () => {
      order.push('operation')
    })
    await sleep(100)
    order.push('releasing')
    await other.call('release')
    await running
    expect(order).toEqual(['releasing', 'operation'])
  })
})

describe('FileWatcher', () => {
  it('reports settled changes, telling this process’s writes from another process’s', async () => {
    const manager = makeManager()
    const doc = await manager.openDocument<{ roles: { id: string; name: string; permissions: string[] }[] }>(file, { watch: false })
    const changes: FileChange[] = []
    const external: FileChange[] = []
    const logged: string[] = []
    const watcher = manager.watch(file, (c) => changes.push(c), { logger: (e) => logged.push(e.event) })
    watcher.onChange((c) => external.push(c), { externalOnly: true })
    expect(watcher.mode).toBe('events')

    await doc.update((v) => {
      v.roles.push({ id: 'mine', name: 'Mine', permissions: [] })
    })
    await expect.poll(() => changes.length, { timeout: 10000 }).toBeGreaterThanOrEqual(1)
    expect(changes[0]).toMatchObject({ kind: 'modified', external: false })
    expect(external).toEqual([])

    const other = await AppInstance.start(built)
    await other.call('open', { file })
    await other.call('add', { role: { id: 'theirs', name: 'Theirs', permissions: [] } })
    await expect.poll(() => external.length, { timeout: 10000 }).toBeGreaterThanOrEqual(1)
    expect(external.at(-1)).toMatchObject({ kind: 'modified', external: true, filePath: file })
    expect(logged).toContain('change')
    await doc.close()
    await watcher.close()
    expect(watcher.closed).toBe(true)
  })
})

describe('ConflictResolver', () => {
  it('reads merge paths for people', () => {
    expect(parsePath('$.roles[id="admin"].name')).toEqual([{ key: 'roles' }, { arrayKey: 'id', id: 'admin' }, { key: 'name' }])
    expect(parsePath('$["odd key"][n=7]')).toEqual([{ key: 'odd key' }, { arrayKey: 'n', id: 7 }])
    expect(describePath('$.roles[id="admin"].permissions')).toBe('roles › admin › permissions')
    expect(describePath('$')).toBe('the whole file')
  })

  it('describes conflicts in plain sentences and applies policies', () => {
    const base = { roles: [{ id: 'a', name: 'A', permissions: [] as string[] }, { id: 'b', name: 'B', permissions: [] as string[] }] }
    const mine = { roles: [{ id: 'a', name: 'A1', permissions: [] }, { id: 'b', name: 'B', permissions: ['x'] }] }
    const theirs = { roles: [{ id: 'a', name: 'A2', permissions: [] }] }
    const result = mergeValues(base, mine, theirs)
    expect(result.clean).toBe(false)
    const d = describeConflict(result.conflicts)
    expect(d.summary).toBe('2 conflicting changes with another window')
    expect(d.items.map((i) => i.text)).toEqual(['roles › a › name: you changed it to "A1", another window to "A2"', 'roles › b: deleted in another window while you changed it'])
    expect(decide('ask', d)).toBe('ask')
    expect(decide('mine', d)).toBe('mine')
    expect(decide(keepTheirDeletions, d)).toBe('ask') // not only deletions
    expect(decide(keepTheirDeletions, { summary: '', items: d.items.slice(1) })).toBe('theirs')
    expect(mergeValues(base, mine, theirs, { favor: 'theirs' }).merged).toEqual({ roles: [{ id: 'a', name: 'A2', permissions: [] }] })
    expect(mergeValues(base, { roles: [...base.roles, { id: 'c', name: 'C', permissions: [] }] }, theirs).clean).toBe(true)
  })
})
