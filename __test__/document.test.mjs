// JsonDocument: no lost updates across processes (each commit letting its lock
// go right after its rename), group commit, coalescing, read-your-writes, where
// a changed file is read, bad files never overwritten, writes that wait for the lock.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { Child, dir, file, FIXTURES, incrementFromProcesses, sleep, startLockChild, useScratchDir, waitUntil, within } from './helpers.mjs'
import { replaceFile } from '../testkit/replace.mjs'

const require = createRequire(import.meta.url)
const manager = useScratchDir()
const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8'))

describe('JsonDocument', () => {
  it('6 processes x 100 updates of one document lose nothing', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    await incrementFromProcesses(Array(6).fill(file), 100)
    expect(onDisk()).toEqual({ counter: 600 })
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  }, 120000)

  it('4 processes x 150 durable updates: every resolved update is on disk, each value seen once', async () => {
    // The commit lets the lock go right after its rename, before the directory
    // fsync: the next holder must still build on every write, and each
    // promise resolves with a value no other update resolved with.
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const reports = await incrementFromProcesses(Array(4).fill(file), 150)
    const values = reports.flatMap((r) => r.values).sort((a, b) => a - b)
    expect(values).toEqual(Array.from({ length: 600 }, (_, i) => i + 1))
    for (const report of reports) expect(report.values).toEqual([...report.values].sort((a, b) => a - b))
    expect(onDisk()).toEqual({ counter: 600 })
  }, 120000)

  it('a small changed file is read on the JS thread only under an OS lock (a local disk), never under lock files (a share)', async () => {
    const addon = require('../native.js')
    const { readSmallDocument } = addon
    const onThisThread = []
    addon.readSmallDocument = (...args) => {
      onThisThread.push(args[0])
      return readSmallDocument(...args)
    }
    try {
      for (const strategy of ['auto', 'lockfile']) {
        // A file per strategy: the two never meet on one lock (mixing them is another test's subject).
        const file = path.join(dir, `${strategy}.json`)
        fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
        const doc = await manager({ strategy }).openDocument(file, { watch: false })
        onThisThread.length = 0
        fs.writeFileSync(file, JSON.stringify({ counter: 5 })) // another instance
        expect(await doc.update((v) => ({ counter: v.counter + 1 }))).toEqual({ counter: 6 })
        fs.writeFileSync(file, JSON.stringify({ counter: 9 }))
        expect(await doc.read()).toEqual({ counter: 9 })
        expect(onThisThread.length).toBe(strategy === 'auto' ? 2 : 0)
        await doc.close()
      }
    } finally {
      addon.readSmallDocument = readSmallDocument
    }
  })

  it('a locked write reads the file only when the stat in the same call says it changed since the version held', async () => {
    const addon = require('../native.js')
    const { readSmallDocument } = addon
    const kinds = []
    addon.readSmallDocument = (...args) => {
      const found = readSmallDocument(...args)
      kinds.push(found?.kind)
      return found
    }
    try {
      fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
      const m = manager()
      m.on('acquired', () => {}) // every write takes the lock on the JS thread
      const doc = await m.openDocument(file, { watch: false })
      kinds.length = 0
      await doc.update((v) => ({ counter: v.counter + 1 }))
      await doc.update((v) => ({ counter: v.counter + 1 }))
      expect(kinds).toEqual(['held', 'held'])
      fs.writeFileSync(file, JSON.stringify({ counter: 10 })) // another program
      kinds.length = 0
      expect(await doc.update((v) => ({ counter: v.counter + 1 }))).toEqual({ counter: 11 })
      expect(kinds).toEqual(['file'])
      expect(onDisk()).toEqual({ counter: 11 })
      await doc.close()
    } finally {
      addon.readSmallDocument = readSmallDocument
    }
  })

  it('a write lets its lock go itself: one acquired and one released event each, nothing left held', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const m = manager()
    const events = []
    m.on('acquired', (e) => events.push(`acquired ${e.exclusive}`))
    m.on('released', (e) => events.push(`released ${e.exclusive} ${e.reason}`))
    const doc = await m.openDocument(file, { watch: false })
    events.length = 0
    for (let i = 0; i < 3; i++) await doc.update((v) => ({ counter: v.counter + 1 }))
    await Promise.all([doc.update((v) => ({ counter: v.counter + 1 })), doc.set({ counter: 10 })])
    expect(events).toEqual(Array(4).fill(['acquired true', 'released true released']).flat())
    expect(m.heldCount).toBe(0)
    // Free at once, for this process and any other.
    const lock = await m.acquireLock(file, { timeoutMs: 0 })
    await lock.release()
    expect(onDisk()).toEqual({ counter: 10 })
    await doc.close()
  })

  it('a file rewritten by a program that takes no lock while fn runs: nothing written over it, fn applied again to it', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0, by: 'start' }))
    const doc = await manager().openDocument(file, { watch: false })
    let calls = 0
    const written = await doc.update((v) => {
      // Under our lock, after the read: only the commit's version check can see it.
      if (++calls === 1) fs.writeFileSync(file, JSON.stringify({ counter: 5, by: 'other' }))
      return { ...v, counter: v.counter + 1 }
    })
    expect(calls).toBe(2)
    expect(written).toEqual({ counter: 6, by: 'other' })
    expect(onDisk()).toEqual({ counter: 6, by: 'other' })
    // The version held is the one written: the next update builds on it.
    await doc.update((v) => ({ ...v, counter: v.counter + 1 }))
    expect(onDisk()).toEqual({ counter: 7, by: 'other' })
    await doc.close()
  })

  it('its own writes are never taken for external changes, though each lets its lock go before it is done', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const doc = await manager().openDocument(file)
    const external = []
    doc.on('external-change', (e) => external.push(e.origin))
    for (let i = 0; i < 30; i++) {
      // A read() while the write is in flight, and the watch's look at it.
      await Promise.all([doc.update((v) => ({ counter: v.counter + 1 })), sleep(i % 3).then(() => doc.read())])
    }
    await sleep(100)
    expect(external).toEqual([])
    expect(doc.get()).toEqual({ counter: 30 })
    await doc.close()
  })

  it('calls made together become one durable write (group commit) and sets coalesce', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { counter: 0 } })
    const saved = []
    doc.on('saved', (e) => saved.push(e))
    const updates = Array.from({ length: 50 }, () => doc.update((v) => ({ counter: v.counter + 1 })))
    expect(doc.get()).toEqual({ counter: 50 }) // read-your-writes before anything is on disk
    const sets = [doc.set({ counter: 1000 }), doc.set({ counter: 2000 })]
    expect(doc.get()).toEqual({ counter: 2000 })
    const results = await Promise.all([...updates, ...sets])
    expect(results[49]).toEqual({ counter: 50 })
    expect(results.at(-1)).toEqual({ counter: 2000 })
    expect(saved.length).toBe(1)
    expect(onDisk()).toEqual({ counter: 2000 })
    await doc.close()
  })

  it('read() sees another writer (by content), get() keeps pending edits', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { roles: [] } })
    const other = await manager().openDocument(file)
    await other.update((v) => {
      v.roles.push({ id: 'a' })
    })
    expect(await doc.read()).toEqual({ roles: [{ id: 'a' }] })
    const pending = doc.update((v) => {
      v.roles.push({ id: 'b' })
    })
    expect(doc.get().roles.map((r) => r.id)).toEqual(['a', 'b'])
    await pending
    expect(onDisk().roles.map((r) => r.id)).toEqual(['a', 'b'])
  })

  it('a file that does not parse is never overwritten: ECORRUPT with a backup of its bytes', async () => {
    fs.writeFileSync(file, '{"roles": [')
    const error = await manager().openDocument(file).catch((e) => e)
    expect(error.code).toBe('ECORRUPT')
    expect(fs.readFileSync(error.backupPath, 'utf8')).toBe('{"roles": [')
    expect(fs.readFileSync(file, 'utf8')).toBe('{"roles": [')
    fs.writeFileSync(file, '42')
    expect((await manager().openDocument(file).catch((e) => e)).code).toBe('ECORRUPT')
  })

  it('a missing file is created from defaultValue; without one, or without its directory, it is ENOENT', async () => {
    await manager().openDocument(file, { defaultValue: { created: true } })
    expect(onDisk()).toEqual({ created: true })
    expect((await manager().openDocument(path.join(dir, 'none.json')).catch((e) => e)).code).toBe('ENOENT')
    expect((await manager().openDocument(path.join(dir, 'missing', 'x.json'), { defaultValue: {} }).catch((e) => e)).code).toBe('ENOENT')
    await expect(manager().openDocument(file, { durability: 'sometimes' })).rejects.toBeInstanceOf(RangeError)
  })

  it('a write that cannot get the lock stays queued, says so, and lands when the holder lets go', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const doc = await manager().openDocument(file, { timeoutMs: 100 })
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const timeouts = []
    doc.on('lock-timeout', (e) => timeouts.push(e))
    const write = doc.set({ counter: 7 })
    await within(
      (async () => {
        while (timeouts.length === 0) await sleep(20)
      })(),
      5000,
      'a lock-timeout event',
    )
    expect(timeouts[0].holder.sameProcess).toBe(false)
    expect(typeof timeouts[0].retry).toBe('function')
    expect(onDisk()).toEqual({ counter: 0 })
    await child.request({ cmd: 'release' }, 'released')
    timeouts[0].retry()
    await within(write, 10000, 'the queued write')
    expect(onDisk()).toEqual({ counter: 7 })
  })
})

describe('JsonDocument close()', () => {
  it('writes what is pending, and reports (EUNSAVED) what the lock never allowed, instead of dropping it', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const doc = await manager().openDocument(file, { timeoutMs: 50 })
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const write = doc.set({ counter: 9 })
    write.catch(() => {})
    const error = await within(doc.close().catch((e) => e), 10000, 'close()')
    expect(error.code).toBe('EUNSAVED')
    expect(error.unsaved).toEqual([{ set: { counter: 9 } }])
    await expect(write).rejects.toMatchObject({ code: 'EUNSAVED' })
    expect(onDisk()).toEqual({ counter: 0 })
    await child.request({ cmd: 'release' }, 'released')
  })

  it('flush() waits through a lock timeout until the write lands', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const doc = await manager().openDocument(file, { timeoutMs: 50 })
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    doc.set({ counter: 3 })
    const flushed = doc.flush()
    await sleep(300)
    await child.request({ cmd: 'release' }, 'released')
    await within(flushed, 10000, 'flush()')
    expect(onDisk()).toEqual({ counter: 3 })
    await doc.close()
  })
})

describe('JsonDocument open', () => {
  it('removes temp files left by writers that died, and keeps those of live ones', async () => {
    fs.writeFileSync(file, '{}')
    const { spawn } = await import('node:child_process')
    const gone = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => gone.on('exit', resolve))
    const stale = path.join(dir, `.roles.json.${gone.pid}.abc-1.tmp`)
    const live = path.join(dir, `.roles.json.${process.pid}.abc-2.tmp`)
    fs.writeFileSync(stale, '{"half')
    fs.writeFileSync(live, '{"half')
    await manager().openDocument(file)
    expect(fs.existsSync(stale)).toBe(false)
    expect(fs.existsSync(live)).toBe(true)
  })
})

describe('JsonDocument backups and recovery', () => {
  it('keeps the version found at open as a good backup, once per distinct content', async () => {
    fs.writeFileSync(file, JSON.stringify({ v: 1 }))
    await (await manager().openDocument(file)).close()
    await (await manager().openDocument(file)).close() // same bytes: no second copy
    const backups = path.join(dir, '.roles.json.backups')
    expect(fs.readdirSync(backups).filter((n) => n.endsWith('.json'))).toHaveLength(1)
    fs.writeFileSync(file, JSON.stringify({ v: 2 }))
    await (await manager().openDocument(file, { backups: 1 })).close()
    const good = fs.readdirSync(backups).filter((n) => n.endsWith('.json'))
    expect(good).toHaveLength(1) // newest `backups` kept
    expect(JSON.parse(fs.readFileSync(path.join(backups, good[0]), 'utf8'))).toEqual({ v: 2 })
  })

  it('recoverFromBackup restores the newest good backup, keeps the bad bytes, and audits it', async () => {
    fs.writeFileSync(file, JSON.stringify({ roles: ['admin'] }))
    await (await manager().openDocument(file)).close()
    fs.writeFileSync(file, '{"roles": ["adm') // a torn write by some other program
    // Without consent: ECORRUPT and nothing touched.
    expect((await manager().openDocument(file).catch((e) => e)).code).toBe('ECORRUPT')
    expect(fs.readFileSync(file, 'utf8')).toBe('{"roles": ["adm')

    const audit = []
    const doc = await manager({ logger: (entry) => audit.push(entry) }).openDocument(file, { recoverFromBackup: true })
    expect(doc.get()).toEqual({ roles: ['admin'] })
    expect(onDisk()).toEqual({ roles: ['admin'] })
    expect(fs.readFileSync(doc.recovery.corruptPath, 'utf8')).toBe('{"roles": ["adm')
    expect(JSON.parse(fs.readFileSync(doc.recovery.backupPath, 'utf8'))).toEqual({ roles: ['admin'] })
    await waitUntil(() => audit.some((e) => e.op === 'recovered'), 5000, 'the recovered audit entry')
    expect(audit.find((e) => e.op === 'recovered')).toMatchObject({ file, outcome: 'applied' })
    await doc.close()
  })

  it('recoverFromBackup without any good backup still fails with ECORRUPT', async () => {
    fs.writeFileSync(file, '')
    const error = await manager().openDocument(file, { recoverFromBackup: true }).catch((e) => e)
    expect(error.code).toBe('ECORRUPT')
    expect(error.message).toMatch(/no good backup/)
    expect(fs.readFileSync(file, 'utf8')).toBe('')
    await expect(manager().openDocument(file, { recoverFromBackup: 'yes' })).rejects.toBeInstanceOf(TypeError)
  })
})

describe('JsonDocument read() cache and errors', () => {
  it('read() answers from the cache while the file is unchanged and sees an in-place rewrite', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 1 }))
    const doc = await manager().openDocument(file)
    await sleep(150) // past the window in which a stat is not trusted
    expect(await doc.read()).toEqual({ n: 1 })
    // Cached: answered without the shared lock, so even a held exclusive lock does not delay it.
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    expect(await within(doc.read(), 2000, 'a cached read() while another process holds the lock')).toEqual({ n: 1 })
    await child.request({ cmd: 'release' }, 'released')
    // Same size, rewritten in place (same inode): still seen.
    fs.writeFileSync(file, JSON.stringify({ n: 2 }))
    expect(await doc.read()).toEqual({ n: 2 })
    fs.writeFileSync(file, JSON.stringify({ n: 3 }))
    expect(await doc.read()).toEqual({ n: 3 })
    await doc.close()
  })

  // A write checks the file is the version it read, in one trip with the
  // write: a rewrite in place right before it (same size, same inode, within
  // the timestamp granularity: a stat cannot tell) is found by content, read,
  // and the update applied to it, never written over.
  it('an update right after a same-size rewrite in place applies to what the file holds', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 10, by: 'aa' }))
    const doc = await manager().openDocument(file, { watch: false })
    for (let i = 0; i < 20; i++) {
      const { n, by } = onDisk()
      fs.writeFileSync(file, JSON.stringify({ n: n + 1, by: by === 'aa' ? 'bb' : 'aa' }))
      await doc.update((v) => ({ ...v, n: v.n + 1 }))
    }
    expect(onDisk().n).toBe(10 + 2 * 20)
    await doc.close()
  })

  it("a failed write rejects its callers and is reported through 'error' when listened to", async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 1 }))
    const doc = await manager().openDocument(file)
    const reported = []
    doc.on('error', (error) => reported.push(error))
    fs.writeFileSync(file, 'not json') // damaged behind the document's back
    const error = await doc.set({ n: 2 }).catch((e) => e)
    expect(error.code).toBe('ECORRUPT')
    expect(reported.map((e) => e.code)).toEqual(['ECORRUPT'])
    expect(fs.readFileSync(file, 'utf8')).toBe('not json') // never overwritten blindly
    await doc.close()
  })
})

describe('JsonDocument while another process holds the lock', () => {
  // Regressions found by the desktop example.
  it('cancel() during a retry that waits for the lock drops the write, and later writes still land', async () => {
    fs.writeFileSync(file, JSON.stringify({ roles: [] }))
    const doc = await manager().openDocument(file, { timeoutMs: 100 })
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const timedOut = new Promise((resolve) => doc.once('lock-timeout', resolve))
    const first = doc.set({ roles: ['cancelled'] })
    const event = await timedOut
    await sleep(event.retryInMs + 30) // the automatic retry is now waiting for the lock
    event.cancel()
    expect((await within(first.catch((e) => e), 5000, 'the cancelled write')).code).toBe('ECANCELED')
    const second = doc.set({ roles: ['second'] })
    await child.request({ cmd: 'release' }, 'released')
    expect(await within(second, 10000, 'the write after the cancel')).toEqual({ roles: ['second'] })
    expect(onDisk()).toEqual({ roles: ['second'] })
    await doc.close()
  })

  it('get() previews queued updates without throwing for one whose fn throws', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { n: 1 } })
    const failing = doc.update(() => {
      throw new Error('duplicate id')
    })
    const fine = doc.update((v) => ({ n: v.n + 1 }))
    expect(doc.get()).toEqual({ n: 2 })
    await expect(failing).rejects.toThrow('duplicate id')
    expect(await fine).toEqual({ n: 2 })
    await doc.close()
  })

  it('open and read() do not wait out a long-held lock: they read the last whole version', async () => {
    fs.writeFileSync(file, JSON.stringify({ v: 1 }))
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const m = manager({ timeoutMs: 300, retries: 1 })
    const doc = await within(m.openDocument(file), 3000, 'openDocument while the lock is held')
    expect(doc.get()).toEqual({ v: 1 })
    replaceFile(file, JSON.stringify({ v: 2 }))
    expect(await within(doc.read(), 3000, 'read() while the lock is held')).toEqual({ v: 2 })
    await child.request({ cmd: 'release' }, 'released')
    await doc.close()
  })
})
