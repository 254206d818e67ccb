// The audit trail: every acquisition, release, timeout and lease expiry, as
// JSON lines in a file (0600, rotated) and/or through a logger callback.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { dir, file, sleep, useScratchDir, waitUntil } from './helpers.mjs'

const manager = useScratchDir()

function readTrail(trail) {
  if (!fs.existsSync(trail)) return []
  return fs
    .readFileSync(trail, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
}

describe('audit trail', () => {
  it('records acquisitions, releases, timeouts and lease expiries as JSON lines', async () => {
    const trail = path.join(dir, 'audit.jsonl')
    const m = manager({ auditLog: trail, leaseMs: 200 })
    const lock = await m.acquireLock(file)
    const timedOut = await m.acquireLock(file, { timeoutMs: 30, retries: 1 }).catch((e) => e)
    expect(timedOut.code).toBe('ELOCKTIMEOUT')
    await lock.release()
    const expiring = await m.acquireLock(file, { exclusive: false })
    await waitUntil(() => expiring.released, 3000, 'the lease to expire')
    await waitUntil(() => readTrail(trail).length >= 5, 3000, 'five audit lines')
    const lines = readTrail(trail)
    const summary = lines.map((e) => `${e.op}:${e.outcome}`)
    expect(summary).toEqual(['acquire:granted', 'acquire:timeout', 'release:released', 'acquire:granted', 'lease-expired:lease-expired'])
    for (const entry of lines) {
      expect(entry.file).toBe(file)
      expect(entry.strategy).toBe('os')
      expect(typeof entry.time).toBe('number')
    }
    expect(lines[0].fencingToken).toBe(lock.fencingToken)
    expect(lines[1].waitedMs).toBeGreaterThanOrEqual(25)
    expect(lines[3].exclusive).toBe(false)
    expect(lines[4].heldMs).toBeGreaterThanOrEqual(150)
    if (process.platform !== 'win32') expect(fs.statSync(trail).mode & 0o777).toBe(0o600) // Windows: ACLs, no mode bits
  })

  it('hands the same entries to a logger, and a throwing logger does not disturb the lock', async () => {
    const entries = []
    const m = manager({ logger: (entry) => entries.push(entry) })
    const lock = await m.acquireLock(file)
    await lock.release()
    await waitUntil(() => entries.length >= 2, 3000, 'two logger entries')
    expect(entries.map((e) => `${e.op}:${e.outcome}`)).toEqual(['acquire:granted', 'release:released'])
  })

  it("records a document's writes (the lock its commit lets go) and the external changes it sees", async () => {
    const trail = path.join(dir, 'audit.jsonl')
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const m = manager({ auditLog: trail })
    const doc = await m.openDocument(file, { watch: false })
    await doc.update((v) => ({ counter: v.counter + 1 }))
    fs.writeFileSync(file, JSON.stringify({ counter: 5 })) // another program
    await doc.update((v) => ({ counter: v.counter + 1 }))
    // A thread writes the trail: closing the manager waits until it is written.
    await doc.close()
    await m.close()
    const ops = readTrail(trail).map((e) => `${e.op}:${e.outcome}`)
    expect(ops.filter((op) => op === 'release:released').length).toBe(ops.filter((op) => op === 'acquire:granted').length)
    expect(ops).toContain('external-change:reloaded')
    expect(ops.filter((op) => op.startsWith('weak-flush'))).toEqual([]) // a full flush here
  })

  it('says once per document when durable writes get a plain fsync (F_FULLFSYNC refused, as on a macOS SMB share)', () => {
    // The refusal is injected in a child process (the fault is read once per process).
    const trail = path.join(dir, 'audit.jsonl')
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    const script = `
      const { FileLockManager } = require(${JSON.stringify(path.resolve('index.js'))})
      const m = new FileLockManager({ auditLog: ${JSON.stringify(trail)} })
      ;(async () => {
        const doc = await m.openDocument(${JSON.stringify(file)}, { watch: false })
        for (let i = 0; i < 3; i++) await doc.update((v) => ({ counter: v.counter + 1 }))
        await doc.close()
        await m.close()
      })()`
    execFileSync(process.execPath, ['-e', script], { env: { ...process.env, FILE_LOCK_MANAGER_FAULT_FULLFSYNC: 'ENOTSUP' } })
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ counter: 3 }) // every write landed
    const weak = readTrail(trail).filter((e) => e.op === 'weak-flush')
    expect(weak).toHaveLength(1)
    expect(weak[0]).toMatchObject({ outcome: 'plain-fsync', file: fs.realpathSync(file) })
    expect(weak[0].detail).toMatch(/F_FULLFSYNC was refused .*plain fsync/)
  })

  it('rotates the trail at its size limit and keeps the previous ones', async () => {
    const trail = path.join(dir, 'audit.jsonl')
    const m = manager({ auditLog: trail, auditLogMaxBytes: 4096 })
    for (let i = 0; i < 60; i++) await (await m.acquireLock(file)).release()
    await waitUntil(() => fs.existsSync(`${trail}.1`), 3000, 'a rotation')
    await sleep(50)
    expect(fs.statSync(trail).size).toBeLessThanOrEqual(4096)
    expect(readTrail(`${trail}.1`).length).toBeGreaterThan(0)
  })
})
