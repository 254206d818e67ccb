// JsonDocument under stress and on hostile storage: many processes, group
// commit across processes, writers killed mid-write, a full disk, unreadable
// files, read-only files, directories and mounts, a 50 MB value.
// Tests marked "(a regression)" were found failing, then fixed.
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, DOC_KILL_WRITER, file, FileLockManager, FIXTURES, incrementFromProcesses, rejectionOf, sleep, startLockChild, useScratchDir, waitUntil, within } from './helpers.mjs'

const addon = createRequire(import.meta.url)('../native.js')
const manager = useScratchDir()
const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8'))
const isRoot = process.getuid?.() === 0
const randomInt = (max) => Math.floor(Math.random() * (max + 1))

/** Temp files of atomic writes (`.<name>.<pid>.<token>.tmp`, see atomic_write.rs) in `root`, or anywhere under it. */
function tempFiles(root, { recursive = true } = {}) {
  return fs.readdirSync(root, { recursive }).filter((name) => String(name).endsWith('.tmp'))
}

/** Mounts a tmpfs on `target`; null when done, else why it could not be. */
function mountTmpfs(target, size) {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', target], { stdio: 'pipe' })
    return null
  } catch (error) {
    return String(error.stderr || error.message).trim()
  }
}

/** Unmounts `target`; lazily if still busy, so that no mount outlives the test. */
function unmount(target) {
  try {
    execFileSync('umount', [target], { stdio: 'pipe' })
  } catch (error) {
    execFileSync('umount', ['-l', target], { stdio: 'pipe' })
    throw new Error(`${target} was still busy at the end of the test (unmounted lazily): ${String(error.stderr || error.message).trim()}`)
  }
}

/** Skips the running test, saying why in the output (a bare skip is easy to miss). */
function skipBecause(ctx, reason) {
  console.warn(`[document-durability] skipped "${ctx.task.name}": ${reason}`)
  ctx.skip()
}

if (!isRoot) console.warn('[document-durability] not root: the ENOSPC, read-only and EROFS tests are skipped (they need mount and setuid)')

describe('JsonDocument across processes', () => {
  it('8 processes x 500 updates end at exactly 4000, all acknowledged, no temp file left', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 0 }))
    await incrementFromProcesses(Array(8).fill(file), 500, 110000)
    expect(onDisk()).toEqual({ counter: 4000 })
    expect(tempFiles(dir)).toEqual([])
  }, 120000)

  it('unawaited bursts from 8 processes: one write per burst, nothing lost, each sequence in call order', async () => {
    const [processes, count, burst] = [8, 200, 25]
    fs.writeFileSync(file, JSON.stringify({ counter: 0, log: {} }))
    const workers = Array.from(
      { length: processes },
      (_, p) => new Child(path.join(FIXTURES, 'doc-burst-worker.mjs'), [file, String(p), String(count), String(burst)]),
    )
    await Promise.all(workers.map((w) => w.waitFor('ready')))
    for (const w of workers) w.send({ cmd: 'go' })
    const reports = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs: 60000 })))
    const sequence = Array.from({ length: count }, (_, i) => i)
    for (const report of reports) {
      expect(report.errors).toEqual([])
      expect(report.acknowledged).toBe(count)
      // Each resolved value already held its own call, right after the calls before it.
      expect(report.misplaced).toEqual([])
      // Group commit: every burst went out as one write carrying all its calls.
      expect(report.saves).toEqual(Array(count / burst).fill(burst))
    }
    const final = onDisk()
    expect(final.counter).toBe(processes * count)
    for (let p = 0; p < processes; p++) expect(final.log[p]).toEqual(sequence)
    expect(Object.keys(final.log)).toHaveLength(processes)
    expect(tempFiles(dir)).toEqual([])
  }, 90000)

  it('writers SIGKILLed at random moments (200 kills): the file always parses, no acknowledged update is lost, reopening leaves no temp file', async () => {
    const KILLS = 200
    const WRITERS = 3
    // Padding makes each write take a moment, so that kills land inside replaceFile too.
    const pad = 'x'.repeat(64 * 1024)
    fs.writeFileSync(file, JSON.stringify({ counter: 0, pad }))

    // A raw reader, outside the library and its locks, all along the run.
    let running = true
    const seen = { reads: 0, last: 0, unreadable: [], backwards: [] }
    const reader = (async () => {
      while (running) {
        let text
        try {
          text = await fsp.readFile(file, 'utf8')
        } catch (error) {
          seen.unreadable.push(`read failed: ${error.code}`)
          continue
        }
        let counter
        try {
          counter = JSON.parse(text).counter
        } catch {
          seen.unreadable.push(JSON.stringify(text.slice(0, 100)))
          continue
        }
        if (!Number.isInteger(counter) || counter < seen.last) seen.backwards.push([seen.last, counter])
        else seen.last = counter
        seen.reads++
      }
    })()

    // Some kills fire the moment a writer's temp file appears: in the middle of replaceFile.
    const onTemp = new Map()
    const watcher = fs.watch(dir, (_, name) => {
      const pid = /^\.roles\.json\.(\d+)\..+\.tmp$/.exec(name ?? '')?.[1]
      if (pid !== undefined) onTemp.get(Number(pid))?.()
    })

    const acked = new Set()
    const duplicateAcks = []
    const failures = []
    let kills = 0
    const killedWhen = { opening: 0, writing: 0, random: 0 }
    let orphanedTemps = 0 // kills that left a temp file beside the file (the next open removes it)
    const slot = async () => {
      while (kills < KILLS) {
        const writer = new Child(DOC_KILL_WRITER, [file, JSON.stringify({ timeoutMs: 60000, retries: 1 }), JSON.stringify({ defaultValue: { counter: 0 } })])
        writer.proc.on('message', (m) => {
          if (m?.type !== 'ack') return
          if (acked.has(m.counter)) duplicateAcks.push(m.counter)
          acked.add(m.counter)
        })
        // The last round kills mid-write, so that the final open has temp files to remove.
        const dice = kills + WRITERS >= KILLS ? 0.3 : Math.random()
        const when = dice < 0.2 ? 'opening' : dice < 0.5 ? 'writing' : 'random'
        if (when === 'opening') {
          // While it removes stale temp files, reads, and backs the file up.
          await writer.waitFor('opening', { timeoutMs: 30000 })
          await sleep(randomInt(8))
        } else if (when === 'writing') {
          await writer.waitFor('ready', { timeoutMs: 30000 })
          const sighted = new Promise((resolve) => {
            onTemp.set(writer.pid, () => {
              writer.proc.kill('SIGKILL')
              resolve()
            })
          })
          await within(sighted, 30000, `a temp file of writer ${writer.pid}`).finally(() => onTemp.delete(writer.pid))
        } else {
          await writer.waitFor('ready', { timeoutMs: 30000 })
          await sleep(randomInt(30))
        }
        writer.proc.kill('SIGKILL')
        kills++
        killedWhen[when]++
        const exit = await writer.exited
        if (fs.readdirSync(dir).some((name) => name.startsWith(`.roles.json.${writer.pid}.`) && name.endsWith('.tmp'))) orphanedTemps++
        if (exit.signal !== 'SIGKILL') failures.push({ exit, stderr: writer.stderr })
        const failed = writer.messages.find((m) => m?.type === 'failed')
        if (failed) failures.push(failed)
      }
    }
    const started = Date.now()
    try {
      await within(Promise.all(Array.from({ length: WRITERS }, slot)), 100000, 'the kill loop')
    } finally {
      watcher.close()
      running = false
      await reader
    }

    expect(failures).toEqual([])
    expect(seen.unreadable).toEqual([])
    expect(seen.backwards).toEqual([]) // under the lock the counter only ever grows
    expect(seen.reads).toBeGreaterThan(100)
    expect(duplicateAcks).toEqual([]) // two acknowledged updates never produced the same value
    const final = onDisk().counter
    // Every acknowledged update is in the file; each killed writer may have made
    // at most one durable increment it could not report.
    expect(final).toBeGreaterThanOrEqual(acked.size)
    expect(Math.max(0, ...acked)).toBeLessThanOrEqual(final)
    expect(final - acked.size).toBeLessThanOrEqual(kills)
    expect(acked.size).toBeGreaterThan(KILLS / 10) // the writers did write between kills
    expect(orphanedTemps).toBeGreaterThan(0) // and were killed inside replaceFile

    // Opening once more removes the temp files of the dead writers, beside the
    // file and in its backups folder (a writer killed while opening may have
    // been writing its snapshot backup).
    const leftBehind = tempFiles(dir)
    const doc = await manager().openDocument(file)
    expect(doc.get()).toEqual({ counter: final, pad })
    expect(tempFiles(dir)).toEqual([])
    await doc.close()
    console.info(
      `[document-durability] ${kills} kills ${JSON.stringify(killedWhen)} in ${Date.now() - started} ms: ` +
        `${acked.size} acknowledged, final ${final}, ${seen.reads} raw reads; ${orphanedTemps} kills left a temp file ` +
        `beside the file; ${leftBehind.length} temp file(s) still there at the end, removed by opening`,
    )
  }, 120000)

  // A writer killed while opening (its snapshot into the backups folder is a
  // replaceFile too) leaves `.<stamp>.json.<pid>.<token>.tmp`, as large as the
  // document, in `.roles.json.backups/` (a regression: they used to stay for good).
  it('opening also removes temp files that dead writers left in the backups folder', async () => {
    fs.writeFileSync(file, JSON.stringify({ counter: 1 }))
    const gone = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => gone.on('exit', resolve)) // a pid that is no more
    const backups = path.join(dir, '.roles.json.backups')
    fs.mkdirSync(backups)
    const stale = path.join(backups, `.2020-01-01T00-00-00-000Z.json.${gone.pid}.abc-1.tmp`)
    fs.writeFileSync(stale, '{"counter"')
    await manager().openDocument(file)
    expect(fs.existsSync(stale)).toBe(false)
  })
})

// A write with nobody holding the lock goes at once: fn runs first, then one
// native call takes the lock off the JS thread, checks the file is still the
// version fn saw, writes and lets go (commitDocumentAtOnce). These show that
// it still takes the lock every time, and waits like any write when the lock
// is held (in this process or another); across processes: above.
describe('JsonDocument writes that take the lock in their commit', () => {
  const auditOps = (trail) =>
    fs
      .readFileSync(trail, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((e) => e.file === file)
      .map((e) => `${e.op}:${e.outcome}`)

  it('each of 30 updates takes the lock and lets it go (one granted and one released entry each); none is held after', async () => {
    const trail = path.join(dir, 'audit.jsonl')
    fs.writeFileSync(file, JSON.stringify({ n: 0 }))
    const m = manager({ auditLog: trail })
    const doc = await m.openDocument(file, { watch: false })
    // The open takes the lock once; a thread writes the trail, so its entries
    // (both, or only the release) may land a moment after open resolves. An
    // empty trail is balanced too: wait for the open's pair itself.
    const granted = (ops) => ops.filter((op) => op === 'acquire:granted').length
    const released = (ops) => ops.filter((op) => op === 'release:released').length
    const balancedAt = (n) => () => {
      const ops = auditOps(trail)
      return granted(ops) === n && released(ops) === n
    }
    await waitUntil(balancedAt(1), 5000, "the open's lock in the audit trail")
    const before = auditOps(trail)
    // Each goes at once (one commitDocumentAtOnce, which takes the lock itself).
    const atOnce = addon.commitDocumentAtOnce
    let calls = 0
    addon.commitDocumentAtOnce = (...args) => {
      calls++
      return atOnce(...args)
    }
    try {
      for (let i = 0; i < 30; i++) await doc.update((v) => ({ n: v.n + 1 }))
    } finally {
      addon.commitDocumentAtOnce = atOnce
    }
    expect(calls).toBe(30)
    await waitUntil(balancedAt(31), 5000, "the writes' locks in the audit trail")
    const ops = auditOps(trail).slice(before.length)
    // In the trail's order: each write's lock granted, then let go.
    expect(ops).toEqual(Array(30).fill(['acquire:granted', 'release:released']).flat())
    expect(m.heldCount).toBe(0)
    expect(onDisk()).toEqual({ n: 30 })
    await doc.close()
  })

  it('another program writes while fn runs (and a read() takes its text): the commit finds the file changed and the update is applied again over it, never written over it', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 0 }))
    const doc = await manager().openDocument(file, { watch: false })
    await doc.update((v) => ({ n: v.n + 1 }))
    let reading = null
    const written = await doc.update((v) => {
      if (reading === null) {
        fs.writeFileSync(file, JSON.stringify({ n: 100, other: true })) // a program that takes no lock
        reading = doc.read()
      }
      return { ...v, n: v.n + 1 }
    })
    await reading
    // Applied again, to what the file held (never f(ours) over theirs).
    expect(written).toEqual({ n: 101, other: true })
    expect(onDisk()).toEqual({ n: 101, other: true })
    await doc.close()
  })

  it('an update too big for maxBytes over the version held, but not over what the file holds now: written (judged on what is read under the lock)', async () => {
    fs.writeFileSync(file, JSON.stringify({ pad: 'x'.repeat(300) }))
    const doc = await manager().openDocument(file, { watch: false, maxBytes: 400 })
    await doc.update((v) => ({ ...v, n: 1 }))
    fs.writeFileSync(file, JSON.stringify({ n: 1 })) // another program shrinks it
    const written = await doc.update((v) => ({ ...v, more: 'y'.repeat(100) }))
    expect(written).toEqual({ n: 1, more: 'y'.repeat(100) })
    expect(onDisk()).toEqual({ n: 1, more: 'y'.repeat(100) })
    await doc.close()
  })

  it('leaseMs: 1, 40 durable updates of a 64 KB document: each lock lost during its write is told to its caller (ECOMPROMISED), none silently; every update settles, the file is whole', async () => {
    const trail = path.join(dir, 'audit.jsonl')
    const big = Array.from({ length: 600 }, (_, i) => ({ id: `role-${i}`, name: 'x'.repeat(80) }))
    fs.writeFileSync(file, JSON.stringify({ n: 0, roles: big }))
    const m = manager({ leaseMs: 1, auditLog: trail })
    // Opening reads under the lock too: its lease may run out as well (told, and tried again).
    const failures = []
    let doc = null
    for (let attempt = 0; doc === null && attempt < 50; attempt++) {
      doc = await m.openDocument(file, { watch: false }).catch((error) => {
        failures.push(error)
        return null
      })
    }
    expect(doc).not.toBe(null)
    const failedOpens = failures.length
    let resolved = 0
    for (let i = 0; i < 40; i++) {
      try {
        await doc.update((v) => ({ ...v, n: v.n + 1 }))
        resolved++
      } catch (error) {
        failures.push(error)
      }
    }
    await doc.close()
    expect(resolved + failures.length - failedOpens).toBe(40)
    for (const error of failures) expect(error.code).toBe('ECOMPROMISED')
    expect(m.heldCount).toBe(0)
    await m.close() // the audit trail is written by a thread: closing waits for it
    // Every lease that ran out while a lock was held was told to its caller (an open's or a write's).
    const expired = fs
      .readFileSync(trail, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((e) => e.op === 'lease-expired')
    expect(failures.length).toBe(expired.length)
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).roles).toHaveLength(600)
  })

  it('a lock another manager of this process holds: the write waits (the file untouched), then lands once it is let go', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 0 }))
    const doc = await manager().openDocument(file, { watch: false })
    await doc.update((v) => ({ n: v.n + 1 })) // a version known: the next write may go at once
    const held = await manager().acquireLock(file)
    let settled = false
    const pending = doc.update((v) => ({ n: v.n + 1 })).finally(() => (settled = true))
    await sleep(300)
    expect(settled).toBe(false)
    expect(onDisk()).toEqual({ n: 1 })
    await held.release()
    expect(await within(pending, 10000, 'the write after the release')).toEqual({ n: 2 })
    expect(onDisk()).toEqual({ n: 2 })
    await doc.close()
  })

  it('never ahead of a request queued in the same manager: the queued acquireLock gets the lock first, the write lands after it', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 0 }))
    const m = manager()
    const doc = await m.openDocument(file, { watch: false })
    await doc.update((v) => ({ n: v.n + 1 }))
    const first = await m.acquireLock(file)
    const queued = m.acquireLock(file)
    const written = doc.update((v) => ({ n: v.n + 1 }))
    await sleep(50)
    await first.release()
    const second = await within(queued, 10000, 'the queued acquisition')
    // The write did not slip in between: the file is as it was while the queued request holds it.
    await sleep(100)
    expect(onDisk()).toEqual({ n: 1 })
    await second.release()
    expect(await within(written, 10000, 'the write')).toEqual({ n: 2 })
    expect(m.heldCount).toBe(0)
    await doc.close()
  })

  it('a lock another process holds: the write waits (the file untouched), then lands over what that process wrote', async () => {
    fs.writeFileSync(file, JSON.stringify({ n: 0 }))
    const doc = await manager().openDocument(file, { watch: false })
    await doc.update((v) => ({ n: v.n + 1 }))
    const child = await startLockChild()
    child.send({ cmd: 'acquire', file, options: { exclusive: true } })
    await child.waitFor('held')
    let settled = false
    const pending = doc.update((v) => ({ n: v.n + 1 })).finally(() => (settled = true))
    await sleep(300)
    expect(settled).toBe(false)
    expect(onDisk()).toEqual({ n: 1 })
    fs.writeFileSync(file, JSON.stringify({ n: 100 })) // the holder writes, as it may
    child.send({ cmd: 'release' })
    await child.waitFor('released')
    expect(await within(pending, 10000, 'the write after the release')).toEqual({ n: 101 })
    expect(onDisk()).toEqual({ n: 101 })
    child.send({ cmd: 'exit', code: 0 })
    await doc.close()
  })
})

describe('JsonDocument on a full disk', () => {
  it.skipIf(!isRoot)('ENOSPC: the write rejects with a coded error, the old file stays, no temp file; the value is kept and lands when space is freed', async (ctx) => {
    const small = path.join(dir, 'small')
    fs.mkdirSync(small)
    const failed = mountTmpfs(small, '256k')
    if (failed !== null) return skipBecause(ctx, `cannot mount a tmpfs: ${failed}`)
    const m = new FileLockManager() // closed before the unmount: it keeps the lock sidecar open
    try {
      const target = path.join(small, 'roles.json')
      fs.writeFileSync(target, JSON.stringify({ roles: ['admin'] }))
      const before = fs.readFileSync(target)
      const { ino } = fs.statSync(target)
      const doc = await m.openDocument(target)
      const { bavail, bsize } = fs.statfsSync(small)
      const big = { roles: ['admin'], blob: 'x'.repeat(bavail * bsize + 64 * 1024) }

      const error = await rejectionOf(doc.set(big), 10000, 'the oversized set')
      expect(error.code).toBe('ENOSPC')
      expect(error.filePath).toBe(target)
      expect(m.heldCount).toBe(0) // the lock the commit took is let go
      expect(fs.readFileSync(target)).toEqual(before)
      expect(fs.statSync(target).ino).toBe(ino)
      expect(tempFiles(small)).toEqual([])
      // Kept as unsaved edits (never lost), retried in the background; discard() gives it up.
      expect(error.kept).toBe(true)
      expect(doc.hasUnsavedChanges).toBe(true)
      expect(doc.get()).toEqual(big)
      expect(doc.discard()).toEqual({ roles: ['admin'] })

      // Calls sharing the failing write fail with it: none is half applied.
      const together = [doc.update((v) => void v.roles.push('editor')), doc.set(big)]
      for (const call of together) expect((await rejectionOf(call, 10000, 'a call in the failed write')).code).toBe('ENOSPC')
      expect(fs.readFileSync(target)).toEqual(before)
      expect(tempFiles(small)).toEqual([])
      doc.discard()

      // The space the failed temp files took was given back.
      expect(await doc.update((v) => void v.roles.push('editor'))).toEqual({ roles: ['admin', 'editor'] })
      expect(JSON.parse(fs.readFileSync(target, 'utf8'))).toEqual({ roles: ['admin', 'editor'] })

      // The fault clears (the disk grows): the kept write lands by itself.
      const huge = { roles: ['admin', 'editor'], blob: big.blob }
      expect((await rejectionOf(doc.set(huge), 10000, 'the second oversized set')).kept).toBe(true)
      const saved = new Promise((resolve) => doc.once('saved', resolve))
      execFileSync('mount', ['-o', 'remount,size=4m', small], { stdio: 'pipe' })
      await within(saved, 15000, 'the kept write landing after the disk grew')
      expect(JSON.parse(fs.readFileSync(target, 'utf8'))).toEqual(huge)
      expect(doc.hasUnsavedChanges).toBe(false)
      await doc.close()
    } finally {
      await m.close()
      unmount(small)
    }
  })
})

describe('JsonDocument and unreadable files', () => {
  // The cases of document.test.mjs ('{"roles": [', and 42 for the code only) are not repeated.
  const cases = [
    ['an empty file', ''],
    ['only whitespace', ' \n\t\n'],
    ['zeros (a crash before the data reached the disk)', '\0'.repeat(64)],
    ['text that is not JSON', 'roles: [admin, editor]\n'],
    ['JSON with a trailing comma', '{"roles": ["admin",]}'],
    ['two JSON documents', '{"roles": []}{"roles": []}'],
    ['a JSON string', '"x"'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['a JSON number', '-12.5e3'],
  ]

  it.each(cases)('%s: ECORRUPT, its exact bytes in backupPath, the file untouched (even with a defaultValue)', async (_, text) => {
    const bytes = Buffer.from(text)
    fs.writeFileSync(file, bytes)
    const { ino, mtimeMs } = fs.statSync(file)
    const error = await rejectionOf(manager().openDocument(file, { defaultValue: { roles: [] } }), 10000, 'openDocument')
    expect(error.code).toBe('ECORRUPT')
    expect(error.filePath).toBe(file)
    expect(path.dirname(error.backupPath)).toBe(path.join(dir, '.roles.json.backups'))
    expect(fs.readFileSync(error.backupPath)).toEqual(bytes)
    expect(fs.readFileSync(file)).toEqual(bytes)
    expect(fs.statSync(file)).toMatchObject({ ino, mtimeMs })
    expect(tempFiles(dir)).toEqual([])
  })

  it('a file damaged after open is never overwritten: update, set and read reject with ECORRUPT', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { roles: ['admin'] } })
    const damaged = Buffer.from('{"roles": ["admin", "edi')
    fs.writeFileSync(file, damaged)
    for (const call of [() => doc.update((v) => void v.roles.push('x')), () => doc.set({ roles: [] }), () => doc.read()]) {
      const error = await rejectionOf(call(), 10000, 'a call on the damaged file')
      expect(error.code).toBe('ECORRUPT')
      expect(fs.readFileSync(error.backupPath)).toEqual(damaged)
      expect(fs.readFileSync(file)).toEqual(damaged)
    }
    expect(doc.get()).toEqual({ roles: ['admin'] })
    // Once repaired, the document carries on from the repaired content.
    fs.writeFileSync(file, JSON.stringify({ roles: ['admin', 'repaired'] }))
    expect(await doc.update((v) => void v.roles.push('x'))).toEqual({ roles: ['admin', 'repaired', 'x'] })
    await doc.close()
  })

  // Regressions: the file was read with readFile(…, 'utf8'), which turns bytes
  // that are not UTF-8 into U+FFFD, and the backup was written from that string;
  // and a UTF-8 byte order mark, part of the file, was left out of the backup.
  it.each([
    ['Latin-1 text, cut short', Buffer.from('{"roles": ["caf\xe9", "na\xefve"', 'latin1')],
    ['UTF-16LE with a byte order mark (Notepad "Unicode")', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"roles":[]}', 'utf16le')])],
    ['UTF-8 with a byte order mark (BOM included in the backup), cut short', Buffer.from('\uFEFF{"roles": ["admin", "edi', 'utf8')],
  ])('%s: ECORRUPT, and the backup holds the exact bytes (not a decoded copy)', async (_, bytes) => {
    fs.writeFileSync(file, bytes)
    const error = await rejectionOf(manager().openDocument(file), 10000, 'openDocument')
    expect(error.code).toBe('ECORRUPT')
    expect(fs.readFileSync(file)).toEqual(bytes)
    expect(fs.readFileSync(error.backupPath).equals(bytes)).toBe(true)
  })

  // With lossy decoding a Latin-1 file that is otherwise valid JSON "parses":
  // it opens with U+FFFD in place of é, and the next write destroys the
  // original bytes without any backup (a regression).
  it('a file that is not valid UTF-8 is ECORRUPT, never decoded lossily and rewritten', async () => {
    const bytes = Buffer.from('{"roles": ["caf\xe9"]}', 'latin1')
    fs.writeFileSync(file, bytes)
    const opened = await manager()
      .openDocument(file)
      .then((doc) => doc.update((v) => void v.roles.push('x')).then(() => null), (error) => error)
    expect(fs.readFileSync(file).equals(bytes)).toBe(true)
    expect(opened?.code).toBe('ECORRUPT')
  })
})

describe('JsonDocument cached value', () => {
  // update() hands `fn` a copy; what get(), update() and set() hand back or
  // take must not be the cached value itself, or a caller changing it changes
  // what the next write, even an unrelated update, puts on disk (a regression).
  // Changing it may throw (frozen) or be ignored.
  it('changing a value got from get(), update() or given to set() does not leak into the document', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { roles: ['admin'] } })
    const tryTo = (change) => {
      try {
        change()
      } catch {
        // Frozen: fine.
      }
    }
    tryTo(() => doc.get().roles.push('from get()'))
    const updated = await doc.update((v) => void v.roles.push('editor'))
    tryTo(() => updated.roles.push('from update()'))
    const mine = { roles: ['admin', 'editor'] }
    const written = doc.set(mine)
    tryTo(() => mine.roles.push('from set() argument'))
    await written
    await doc.update((v) => {
      v.other = 1
    })
    expect(onDisk()).toEqual({ roles: ['admin', 'editor'], other: 1 })
    expect(doc.get()).toEqual({ roles: ['admin', 'editor'], other: 1 })
  })
})

describe.skipIf(!isRoot)('JsonDocument and permissions (an unprivileged child: root ignores permission bits)', () => {
  const NOBODY = 65534

  /** A child running as uid/gid 65534; `ask` sends a command and returns its answer. */
  async function startUnprivileged() {
    const child = new Child(path.join(FIXTURES, 'doc-unprivileged.mjs'))
    const ready = await child.waitFor('ready')
    expect(ready).toMatchObject({ uid: NOBODY, gid: NOBODY })
    child.ask = async (message) => {
      child.send(message)
      return child.waitFor('answer', { timeoutMs: 15000 })
    }
    return child
  }

  /** `dir` owned by the unprivileged user, holding its `roles.json`. */
  function handOver(contents, fileMode = 0o644) {
    fs.writeFileSync(file, contents)
    fs.chownSync(dir, NOBODY, NOBODY)
    fs.chownSync(file, NOBODY, NOBODY)
    fs.chmodSync(file, fileMode)
    fs.chmodSync(dir, 0o755)
  }

  // A rename replaces a read-only file as easily as any other, since it needs
  // only the directory's write permission (a regression: the 0444 file was
  // silently replaced, and the new one made 0444 again).
  it('a read-only file (0444): opened and read by its owner; a write rejects with EACCES (kept as unsaved), the file stays', async () => {
    handOver('{"v":1}', 0o444)
    const child = await startUnprivileged()
    expect(await child.ask({ cmd: 'open', file })).toMatchObject({ ok: true, value: { v: 1 } })
    expect(await child.ask({ cmd: 'read' })).toMatchObject({ ok: true, value: { v: 1 } })
    const failed = await child.ask({ cmd: 'set', value: { v: 2 } })
    expect(fs.readFileSync(file, 'utf8')).toBe('{"v":1}')
    expect(failed).toMatchObject({ ok: false, code: 'EACCES', kept: true, during: { v: 2 }, after: { v: 2 } })
    expect(tempFiles(dir)).toEqual([])
  })

  it('a read-only directory: reads work, a write rejects with EACCES (kept), the file stays; writable again, the kept write lands', async () => {
    handOver('{"v":1}')
    const child = await startUnprivileged()
    // Opened while writable: the lock sidecar exists when the directory turns read-only.
    expect(await child.ask({ cmd: 'open', file })).toMatchObject({ ok: true, value: { v: 1 } })
    fs.chmodSync(dir, 0o555)
    expect(await child.ask({ cmd: 'read' })).toMatchObject({ ok: true, value: { v: 1 } })

    const failed = await child.ask({ cmd: 'set', value: { v: 2 } })
    expect(failed).toMatchObject({ ok: false, code: 'EACCES', kept: true, during: { v: 2 }, after: { v: 2 } })
    expect(fs.readFileSync(file, 'utf8')).toBe('{"v":1}')
    expect(tempFiles(dir)).toEqual([])
    expect(await child.ask({ cmd: 'get' })).toMatchObject({ ok: true, value: { v: 2 } })

    // Writable again: the kept write lands by itself (retried with backoff).
    fs.chmodSync(dir, 0o755)
    const deadline = Date.now() + 10000
    while (fs.readFileSync(file, 'utf8').includes('"v": 1') || fs.readFileSync(file, 'utf8') === '{"v":1}') {
      if (Date.now() > deadline) throw new Error('the kept write never landed')
      await sleep(50)
    }
    expect(onDisk()).toEqual({ v: 2 })
    expect(await child.ask({ cmd: 'set', value: { v: 3 } })).toMatchObject({ ok: true, value: { v: 3 } })
    expect(onDisk()).toEqual({ v: 3 })
    expect((await child.ask({ cmd: 'close' })).ok).toBe(true)
  })

  // No lock sidecar can be created there, yet reading needs no lock to be safe
  // (writers replace the file by rename). A regression: the open failed (EACCES).
  it('a read-only directory without a lock sidecar: the document opens for reading, writes reject with EACCES, nothing is created', async () => {
    handOver('{"v":1}')
    fs.chmodSync(dir, 0o555)
    const child = await startUnprivileged()
    expect(await child.ask({ cmd: 'open', file })).toMatchObject({ ok: true, value: { v: 1 } })
    expect(await child.ask({ cmd: 'read' })).toMatchObject({ ok: true, value: { v: 1 } })
    expect(await child.ask({ cmd: 'set', value: { v: 2 } })).toMatchObject({ ok: false, code: 'EACCES', during: { v: 2 }, after: { v: 1 } })
    expect(fs.readdirSync(dir)).toEqual(['roles.json'])
    expect(fs.readFileSync(file, 'utf8')).toBe('{"v":1}')
    expect((await child.ask({ cmd: 'close' })).ok).toBe(true)
  })
})

describe.skipIf(!isRoot)('JsonDocument on a read-only mount', () => {
  /**
   * A tmpfs in `dir` holding roles.json, remounted read-only. Its lock sidecar
   * is there already, so that only the mount, not a missing sidecar, is in the way.
   */
  function readOnlyMount(ctx) {
    const mount = path.join(dir, 'ro')
    fs.mkdirSync(mount)
    const failed = mountTmpfs(mount, '1m')
    if (failed !== null) return skipBecause(ctx, `cannot mount a tmpfs: ${failed}`)
    const target = path.join(mount, 'roles.json')
    fs.writeFileSync(target, '{"v":1}')
    fs.writeFileSync(path.join(mount, '.roles.json.lock'), '', { mode: 0o600 })
    try {
      execFileSync('mount', ['-o', 'remount,ro', mount], { stdio: 'pipe' })
    } catch (error) {
      unmount(mount)
      return skipBecause(ctx, `cannot remount the tmpfs read-only: ${String(error.stderr || error.message).trim()}`)
    }
    return { mount, target, before: fs.readdirSync(mount).sort() }
  }

  // The sidecar is there, but it is opened read-write to be locked: EROFS. Yet
  // nobody can write the file on a read-only mount, so reading it is safe. A
  // regression: the open failed (EROFS).
  it('the document opens for reading, a write rejects with EROFS and is not kept, nothing is changed', async (ctx) => {
    const { mount, target, before } = readOnlyMount(ctx)
    const m = new FileLockManager()
    try {
      const doc = await m.openDocument(target)
      expect(doc.get()).toEqual({ v: 1 })
      expect(await doc.read()).toEqual({ v: 1 })
      const error = await rejectionOf(doc.set({ v: 2 }), 10000, 'a write')
      expect(error.code).toBe('EROFS')
      expect(doc.get()).toEqual({ v: 1 })
      expect(fs.readFileSync(target, 'utf8')).toBe('{"v":1}')
      expect(fs.readdirSync(mount).sort()).toEqual(before)
    } finally {
      await m.close()
      unmount(mount)
    }
  })
})

describe('JsonDocument with a large value', () => {
  it('a ~50 MB document: set, another manager reads it whole, one update on it lands', async () => {
    const count = 250_000
    const roles = Array.from({ length: count }, (_, i) => ({
      id: `role-${i}`,
      name: `Role number ${i}`,
      permissions: ['read', 'write', i % 3 ? 'admin' : 'audit'],
      createdAt: 1_700_000_000_000 + i,
      active: i % 2 === 0,
    }))
    const digest = (value) => createHash('sha256').update(JSON.stringify(value)).digest('hex')
    const expected = digest({ roles })

    const doc = await manager().openDocument(file, { defaultValue: { roles: [] } })
    await doc.set({ roles })
    expect(fs.statSync(file).size).toBeGreaterThan(50 * 1000 * 1000)

    const other = await manager().openDocument(file)
    expect(digest(other.get())).toBe(expected)
    expect(digest(await other.read())).toBe(expected)
    const updated = await other.update((v) => {
      v.roles.push({ id: 'role-new', name: 'New', permissions: [], createdAt: 0, active: true })
    })
    expect(updated.roles).toHaveLength(count + 1)

    const fresh = await doc.read()
    expect(fresh.roles).toHaveLength(count + 1)
    expect(fresh.roles[count].id).toBe('role-new')
    expect(digest({ roles: fresh.roles.slice(0, count) })).toBe(expected)
    const disk = onDisk()
    expect(disk.roles).toHaveLength(count + 1)
    expect(disk.roles.at(-1).id).toBe('role-new')
    expect(tempFiles(dir)).toEqual([])
    await other.close()
    await doc.close()
  }, 60000)
})
