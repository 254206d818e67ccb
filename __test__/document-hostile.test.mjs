// JsonDocument on hostile paths: symbolic links (written through, locked where
// the data lives), files that are not regular files (FIFOs, devices, folders,
// sockets: refused, never read), files too big to read (maxBytes), names near
// the file system's 255-byte limit, and folders that are missing or closed.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, file, FIXTURES, incrementFromProcesses, nextEvent, rejectionOf, runSnippet, useScratchDir, waitUntil, within } from './helpers.mjs'

const manager = useScratchDir()

const isRoot = process.getuid?.() === 0
const json = (filePath) => JSON.parse(fs.readFileSync(filePath, 'utf8'))
const isLink = (filePath) => fs.lstatSync(filePath).isSymbolicLink()
const write = (filePath, value) => fs.writeFileSync(filePath, JSON.stringify(value))
const bytes = (text) => Buffer.byteLength(text)

/** Every name under `root` (recursively), for "nothing left behind" and length checks. */
function namesUnder(root) {
  return fs.readdirSync(root, { recursive: true }).map((name) => path.basename(String(name)))
}

function mkfifo(filePath) {
  const made = spawnSync('mkfifo', [filePath])
  if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`)
}

/** The pid of a process that has exited. */
function deadPid() {
  return spawnSync(process.execPath, ['-e', '']).pid
}

// The names the package builds beside a file, as crates/file-lock-core/src/paths.rs and document.js do
// (recomputed here, so a change on either side that breaks the other shows).
function fnv1a64(text) {
  let hash = 0xcbf29ce484222325n
  for (const byte of Buffer.from(text)) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return hash.toString(16).padStart(16, '0')
}
function fitName(lead, name, tail) {
  if (bytes(lead + name + tail) <= 255) return lead + name + tail
  let kept = ''
  for (const char of name) {
    if (bytes(kept + char) > 96) break
    kept += char
  }
  return `${lead}${kept}~${fnv1a64(name)}${tail}`
}

describe('a document reached through a symbolic link', () => {
  function linkedLayout() {
    const data = path.join(dir, 'data')
    const links = path.join(dir, 'links')
    fs.mkdirSync(data)
    fs.mkdirSync(links)
    const target = path.join(data, 'roles.json')
    const link = path.join(links, 'roles.json')
    fs.symlinkSync('../data/roles.json', link) // relative, like most dotfile managers make them
    return { data, links, target, link }
  }

  it('is written through to its target and the link stays a link; lock, temp files and backups live beside the target', async () => {
    const { data, links, target, link } = linkedLayout()
    write(target, { roles: ['admin'] })
    const m = manager()
    const doc = await m.openDocument(link)
    expect(doc.get()).toEqual({ roles: ['admin'] })
    const sidecarBesideTarget = path.join(data, '.roles.json.lock')
    let sidecarsSeen
    await doc.update((value) => {
      value.roles.push('auditor')
      sidecarsSeen = [fs.existsSync(sidecarBesideTarget), fs.existsSync(path.join(links, '.roles.json.lock'))]
    })
    expect(sidecarsSeen).toEqual([true, false])
    expect(isLink(link)).toBe(true)
    expect(fs.readlinkSync(link)).toBe('../data/roles.json')
    expect(json(target)).toEqual({ roles: ['admin', 'auditor'] })
    // The lock reports where the data lives.
    const lock = await m.acquireLock(link)
    expect(lock.filePath).toBe(target)
    await lock.release()
    // The version found at open was backed up beside the target, where a writer through the target finds it.
    expect(fs.readdirSync(path.join(data, '.roles.json.backups')).some((n) => n.endsWith('.json'))).toBe(true)
    expect(fs.readdirSync(links)).toEqual(['roles.json'])
    await doc.close()
    expect(namesUnder(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('follows chains of links, and a link to a missing file creates that file (or says it is missing)', async () => {
    const { data, target } = linkedLayout()
    write(target, { v: 1 })
    const first = path.join(dir, 'first.json')
    const second = path.join(dir, 'second.json')
    fs.symlinkSync(first.replace('first', 'second'), first) // absolute → relative → relative
    fs.symlinkSync('links/roles.json', second)
    const m = manager()
    const chained = await m.openDocument(first)
    await chained.set({ v: 2 })
    expect(json(target)).toEqual({ v: 2 })
    expect([isLink(first), isLink(second), isLink(path.join(dir, 'links/roles.json'))]).toEqual([true, true, true])
    await chained.close()

    const dangling = path.join(dir, 'new.json')
    fs.symlinkSync('data/created.json', dangling)
    const refused = await rejectionOf(m.openDocument(dangling))
    expect(refused.code).toBe('ENOENT')
    expect(refused.message).toContain(`is a link to ${path.join(data, 'created.json')}, which does not exist`)
    const created = await m.openDocument(dangling, { defaultValue: { roles: [] } })
    expect(isLink(dangling)).toBe(true)
    expect(json(path.join(data, 'created.json'))).toEqual({ roles: [] })
    await created.close()

    const nowhere = path.join(dir, 'lost.json')
    fs.symlinkSync('no-such-folder/roles.json', nowhere)
    const lost = await rejectionOf(m.openDocument(nowhere, { defaultValue: {} }))
    expect(lost.code).toBe('ENOENT')
    expect(lost.message).toContain(`the folder ${path.join(dir, 'no-such-folder')} does not exist`)
    expect(lost.message).toContain('create it first')

    const loop = path.join(dir, 'loop.json')
    fs.symlinkSync('loop.json', loop)
    expect((await rejectionOf(m.openDocument(loop, { defaultValue: {} }))).code).toBe('ELOOP')
  })

  it("hears changes made through the file's own path by another process, and after the link is pointed elsewhere, the new file's", async () => {
    const { data, target, link } = linkedLayout()
    write(target, { n: 1 })
    const other = path.join(data, 'other.json')
    write(other, { n: 10 })
    const doc = await manager().openDocument(link)
    const replaceByAnotherProcess = async (file, value) => {
      const { exited } = runSnippet(file, `const fs = require('node:fs'); fs.writeFileSync(file + '.tmp', ${JSON.stringify(JSON.stringify(value))}); fs.renameSync(file + '.tmp', file)`)
      expect((await exited).code).toBe(0)
    }
    let seen = nextEvent(doc, 'external-change')
    await replaceByAnotherProcess(target, { n: 2 }) // in data/, where the link's folder hears nothing
    expect((await seen).newValue).toEqual({ n: 2 })
    expect(doc.get()).toEqual({ n: 2 })
    // Re-pointed: heard by the link's own watch; from then on the new file is the one watched.
    seen = nextEvent(doc, 'external-change')
    fs.unlinkSync(link)
    fs.symlinkSync('../data/other.json', link)
    expect((await seen).newValue).toEqual({ n: 10 })
    seen = nextEvent(doc, 'external-change')
    await replaceByAnotherProcess(other, { n: 11 })
    expect((await seen).newValue).toEqual({ n: 11 })
    await doc.close()
  })

  it('is resolved at each write: pointed elsewhere, the next write goes there, under the lock of the new target', async () => {
    const { data, target, link } = linkedLayout()
    write(target, { n: 1 })
    const other = path.join(data, 'other.json')
    write(other, { n: 10, other: true })
    const m = manager()
    const doc = await m.openDocument(link, { timeoutMs: 100, watch: false })
    await doc.update((v) => {
      v.n++
    })
    expect(json(target)).toEqual({ n: 2 })

    fs.unlinkSync(link)
    fs.symlinkSync('../data/other.json', link)
    // Another process holds the new target: the write waits for it (the old target's lock would not).
    const holder = manager()
    const oldLock = await holder.acquireLock(target)
    const newLock = await holder.acquireLock(other)
    const timedOut = new Promise((resolve) => doc.once('lock-timeout', resolve))
    const pending = doc.update((v) => {
      v.n++
    })
    await within(timedOut, 5000, 'lock-timeout while the new target is locked')
    await oldLock.release()
    await newLock.release()
    expect(await within(pending, 10000, 'the update')).toEqual({ n: 11, other: true })
    expect(json(other)).toEqual({ n: 11, other: true })
    expect(json(target)).toEqual({ n: 2 })
    expect(isLink(link)).toBe(true)
    await doc.close()
  })

  it('a link pointed elsewhere while a write holds the lock: that write is refused (EAGAIN, kept) and lands later under the right lock', async () => {
    const { data, target, link } = linkedLayout()
    write(target, { n: 1 })
    const other = path.join(data, 'other.json')
    write(other, { n: 10 })
    const m = manager()
    // An 'acquired' listener needs the lock's JS side: fn runs under the lock
    // (a write that may go at once runs fn before it takes the lock: below).
    m.on('acquired', () => {})
    const doc = await m.openDocument(link, { watch: false })
    let moved = false
    const error = await rejectionOf(
      doc.update((v) => {
        if (!moved) {
          moved = true
          fs.unlinkSync(link)
          fs.symlinkSync('../data/other.json', link)
        }
        v.added = true
      }),
    )
    expect(error.code).toBe('EAGAIN')
    expect(error.kept).toBe(true)
    expect(json(target)).toEqual({ n: 1 }) // nothing written under the wrong lock
    // The kept change is saved again by itself, merged with the new target's content.
    await waitUntil(() => json(other).added === true, 10000, 'the kept write to land in the new target')
    expect(json(other)).toEqual({ n: 10, added: true })
    expect(json(target)).toEqual({ n: 1 })
    await doc.close()
  })

  it('a link pointed elsewhere while a write that may go at once runs fn: nothing lands in the old target, the write lands in the new one', async () => {
    const { data, target, link } = linkedLayout()
    write(target, { n: 1 })
    const other = path.join(data, 'other.json')
    write(other, { n: 10 })
    const doc = await manager().openDocument(link, { watch: false })
    let calls = 0
    const written = await doc.update((v) => {
      if (calls++ === 0) {
        fs.unlinkSync(link)
        fs.symlinkSync('../data/other.json', link)
      }
      v.added = true
    })
    // fn ran again over what the new target holds, under its lock.
    expect(calls).toBe(2)
    expect(written).toEqual({ n: 10, added: true })
    expect(json(other)).toEqual({ n: 10, added: true })
    expect(json(target)).toEqual({ n: 1 })
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
    await doc.close()
  })

  it('a plain file that becomes a link while open: the next write goes to the target, under its lock, the link kept', async () => {
    const { target } = linkedLayout()
    write(target, { n: 10 })
    const plain = path.join(dir, 'plain.json')
    write(plain, { n: 1 })
    const m = manager()
    const doc = await m.openDocument(plain, { watch: false })
    await doc.update((v) => {
      v.n++
    })
    expect(json(plain)).toEqual({ n: 2 })
    fs.unlinkSync(plain)
    fs.symlinkSync(target, plain)
    // Another process holds the target: the write must wait for that lock, not the old one.
    const holder = manager()
    const held = await holder.acquireLock(target)
    const pending = doc.update((v) => {
      v.moved = true
    })
    pending.catch(() => {}) // a first attempt may be refused (EAGAIN, kept)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(json(target)).toEqual({ n: 10 }) // nothing written while the target is locked elsewhere
    await held.release()
    await waitUntil(() => json(target).moved === true, 10000, 'the write to land in the target')
    expect(json(target)).toEqual({ n: 10, moved: true })
    expect(isLink(plain)).toBe(true)
    await doc.close()
  })

  it('two processes, one through the link and one through the target, exclude each other: 2 × 150 increments, none lost, the link kept', async () => {
    const { target, link } = linkedLayout()
    write(target, { counter: 0 })
    await incrementFromProcesses([link, target], 150)
    expect(json(target)).toEqual({ counter: 300 })
    expect(isLink(link)).toBe(true)
    expect(namesUnder(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  }, 120000)
})

describe('a file that is not a regular file', () => {
  it('a FIFO named roles.json is refused at once (ENOTFILE), and the process still exits by itself', async () => {
    mkfifo(file)
    const error = await rejectionOf(manager().openDocument(file, { defaultValue: {} }), 2000, 'openDocument of a FIFO')
    expect(error.code).toBe('ENOTFILE')
    expect(error.filePath).toBe(file)
    expect(error.message).toContain('is a FIFO (named pipe), not a regular file')
    expect(fs.statSync(file).isFIFO()).toBe(true)
    // In a process of its own: it settles, and nothing keeps the process alive.
    const { exited } = runSnippet(file, `
      const manager = new FileLockManager()
      try { await manager.openDocument(file) } catch (error) { console.log('refused', error.code) }
    `)
    const { code, signal, out } = await within(exited, 10000, 'the process that opened a FIFO to exit')
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(out).toContain('refused ENOTFILE')
  })

  it('/dev/zero, /dev/null, a folder and a socket are refused the same way, and left as they are', async () => {
    const m = manager()
    const cases = [
      ['zero.json', () => fs.symlinkSync('/dev/zero', path.join(dir, 'zero.json')), 'a character device', '(a link to /dev/zero)'],
      ['null.json', () => fs.symlinkSync('/dev/null', path.join(dir, 'null.json')), 'a character device', ''],
      ['folder.json', () => fs.mkdirSync(path.join(dir, 'folder.json')), 'a folder', ''],
    ]
    const server = net.createServer()
    await new Promise((resolve) => server.listen(path.join(dir, 'socket.json'), resolve))
    cases.push(['socket.json', () => {}, 'a socket', ''])
    try {
      for (const [name, make, kind, via] of cases) {
        make()
        const started = Date.now()
        const error = await rejectionOf(m.openDocument(path.join(dir, name), { defaultValue: {} }), 2000, `openDocument of ${name}`)
        expect(Date.now() - started).toBeLessThan(1000)
        expect([name, error.code, error.kind]).toEqual([name, 'ENOTFILE', kind])
        expect(error.message).toContain(via)
      }
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    expect(fs.statSync('/dev/zero').isCharacterDevice()).toBe(true)
    expect(fs.statSync(path.join(dir, 'folder.json')).isDirectory()).toBe(true)
    expect(namesUnder(dir).filter((n) => n.endsWith('.tmp') || n.endsWith('.backups'))).toEqual([])
  })

  it('replaced by a FIFO while open: read() and update() reject with ENOTFILE instead of hanging, the FIFO is not replaced', async () => {
    write(file, { v: 1 })
    const doc = await manager().openDocument(file, { watch: false })
    fs.unlinkSync(file)
    mkfifo(file)
    expect((await rejectionOf(doc.read(), 3000, 'read() of a FIFO')).code).toBe('ENOTFILE')
    expect((await rejectionOf(doc.update((v) => ({ v: v.v + 1 })), 3000, 'update() of a FIFO')).code).toBe('ENOTFILE')
    expect((await rejectionOf(doc.set({ v: 3 }), 3000, 'set() of a FIFO')).code).toBe('ENOTFILE')
    expect(fs.statSync(file).isFIFO()).toBe(true)
    expect(doc.get()).toEqual({ v: 1 })
    await within(doc.close(), 3000, 'close()')
  })

  it('a link whose target becomes /dev/zero while open: refused (ENOTFILE), /dev/zero untouched', async () => {
    const target = path.join(dir, 'target.json')
    write(target, { v: 1 })
    fs.symlinkSync('target.json', file)
    const doc = await manager().openDocument(file, { watch: false })
    fs.unlinkSync(file)
    fs.symlinkSync('/dev/zero', file)
    expect((await rejectionOf(doc.read(), 3000, 'read() through a link to /dev/zero')).code).toBe('ENOTFILE')
    expect((await rejectionOf(doc.set({ v: 2 }), 3000, 'set() through a link to /dev/zero')).code).toBe('ENOTFILE')
    expect(fs.statSync('/dev/zero').isCharacterDevice()).toBe(true)
    expect(isLink(file)).toBe(true)
    await doc.close()
  })
})

describe('maxBytes', () => {
  it('is validated: an integer from 1 to the longest string V8 can hold', async () => {
    const m = manager()
    for (const bad of [0, -1, 1.5, NaN, Infinity, '100', 2 ** 40]) {
      const error = await rejectionOf(m.openDocument(file, { defaultValue: {}, maxBytes: bad }))
      expect([bad, error.code]).toEqual([bad, 'ERR_OUT_OF_RANGE'])
    }
    expect(fs.existsSync(file)).toBe(false)
  })

  it('a file above the default (256 MiB) is refused at once without being read, and left untouched', async () => {
    fs.writeFileSync(file, '{}')
    fs.truncateSync(file, 300 * 1024 * 1024) // sparse: no space used
    const before = fs.statSync(file)
    const rss = process.memoryUsage().rss
    const started = Date.now()
    const error = await rejectionOf(manager().openDocument(file), 5000, 'openDocument of a 300 MiB file')
    expect(Date.now() - started).toBeLessThan(2000)
    expect(error.code).toBe('ETOOBIG')
    expect(error).toMatchObject({ filePath: file, size: 300 * 1024 * 1024, maxBytes: 256 * 1024 * 1024 })
    expect(error.message).toContain('raise maxBytes')
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024)
    const after = fs.statSync(file)
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino])
    expect(fs.readdirSync(dir)).toEqual(['roles.json']) // no copy of it, no backups folder
  })

  it('reads above maxBytes are refused, also when the file grows while open', async () => {
    write(file, { data: 'x'.repeat(100) })
    const m = manager()
    const refused = await rejectionOf(m.openDocument(file, { maxBytes: 50 }))
    expect(refused).toMatchObject({ code: 'ETOOBIG', size: fs.statSync(file).size, maxBytes: 50 })

    const doc = await m.openDocument(file, { maxBytes: 1000, watch: false })
    write(file, { data: 'x'.repeat(2000) })
    const grown = fs.readFileSync(file)
    expect((await rejectionOf(doc.read())).code).toBe('ETOOBIG')
    expect((await rejectionOf(doc.update((v) => ({ ...v, more: 1 })))).code).toBe('ETOOBIG')
    expect(fs.readFileSync(file).equals(grown)).toBe(true)
    await doc.close()
  })

  it('a write above maxBytes is refused (ETOOBIG): nothing written, nothing kept, the document still works', async () => {
    const doc = await manager().openDocument(file, { defaultValue: { roles: [] }, maxBytes: 200 })
    const before = fs.readFileSync(file)
    const error = await rejectionOf(doc.set({ roles: ['x'.repeat(300)] }))
    expect(error).toMatchObject({ code: 'ETOOBIG', maxBytes: 200 })
    expect(error.size).toBeGreaterThan(200)
    expect(error.kept).toBeUndefined()
    expect(fs.readFileSync(file).equals(before)).toBe(true)
    expect(doc.hasUnsavedChanges).toBe(false)
    expect(doc.get()).toEqual({ roles: [] })
    await doc.set({ roles: ['admin'] })
    expect(json(file)).toEqual({ roles: ['admin'] })
    await doc.close()
    expect(namesUnder(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })
})

describe('names near the 255-byte limit', () => {
  const names = [
    ...Array.from({ length: 56 }, (_, i) => `${'r'.repeat(195 + i)}.json`), // 200..255 bytes
    'é'.repeat(127), // 254 bytes, 2-byte characters
    `${'日'.repeat(83)}.json`, // 254 bytes, 3-byte characters
    `${'😀'.repeat(63)}.js`, // 255 bytes, 4-byte characters
  ]

  it('every name that opens can be written, updated and backed up, and everything made beside it fits', async () => {
    const m = manager()
    for (const name of names) {
      const target = path.join(dir, name)
      write(target, { n: 0 })
      const doc = await m.openDocument(target, { watch: false }) // keeps a backup of what it found
      await doc.update((v) => {
        v.n++
      })
      await doc.set({ n: 2, name })
      await doc.close()
      expect(json(target)).toEqual({ n: 2, name })
      const backups = path.join(dir, fitName('.', name, '.backups'))
      expect(fs.readdirSync(backups).filter((n) => n.endsWith('.json')).length, `${bytes(name)} bytes`).toBeGreaterThan(0)
    }
    const made = namesUnder(dir)
    expect(made.filter((n) => bytes(n) > 255)).toEqual([])
    expect(made.filter((n) => n.endsWith('.tmp'))).toEqual([])
  }, 60000)

  it('the lock file strategy (its .break guard and aside names) and the stale temp cleanup work with them too', async () => {
    const m = manager({ strategy: 'lockfile' })
    for (const name of names.filter((_, i) => i % 7 === 0 || i >= 53)) {
      const target = path.join(dir, name)
      const doc = await m.openDocument(target, { defaultValue: { n: 0 }, watch: false })
      await doc.update((v) => {
        v.n++
      })
      await doc.close()
      // A crashed writer's temp files (shortened names), beside the file and in its backups folder.
      const dead = deadPid()
      const tail = `.${dead}.0123456789abcdef-1.tmp` // no place: judged by its pid
      const besideIt = path.join(dir, fitName('.', name, tail))
      const backups = path.join(dir, fitName('.', name, '.backups'))
      fs.mkdirSync(backups, { recursive: true })
      const inBackups = path.join(backups, `.2020-01-01T00-00-00-000Z.json${tail}`)
      fs.writeFileSync(besideIt, 'partial')
      fs.writeFileSync(inBackups, 'partial')
      const reopened = await m.openDocument(target, { watch: false })
      expect([name, fs.existsSync(besideIt), fs.existsSync(inBackups)]).toEqual([name, false, false])
      expect(reopened.get()).toEqual({ n: 1 })
      await reopened.close()
    }
    expect(namesUnder(dir).filter((n) => bytes(n) > 255 || n.endsWith('.tmp') || n.endsWith('.lock'))).toEqual([])
  }, 60000)

  it('a name longer than 255 bytes is refused at open (ENAMETOOLONG), not at a later write', async () => {
    const error = await rejectionOf(manager().openDocument(path.join(dir, 'r'.repeat(256)), { defaultValue: {} }))
    expect(error.code).toBe('ENAMETOOLONG')
  })
})

describe('a folder that cannot be used', () => {
  it('a missing folder: ENOENT, naming the folder and what to do (documents and locks alike)', async () => {
    const m = manager()
    const missing = path.join(dir, 'app', 'config', 'roles.json')
    for (const attempt of [() => m.openDocument(missing, { defaultValue: {} }), () => m.acquireLock(missing)]) {
      const error = await rejectionOf(attempt())
      expect(error.code).toBe('ENOENT')
      expect(error.message).toBe(
        `open failed for ${missing}: the folder ${path.join(dir, 'app', 'config')} does not exist, nor does ${path.join(dir, 'app')}; create it first, or correct the path`,
      )
    }
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it('a file where a folder should be: ENOTDIR, naming that file', async () => {
    const notes = path.join(dir, 'notes.txt')
    fs.writeFileSync(notes, '')
    const error = await rejectionOf(manager().openDocument(path.join(notes, 'sub', 'roles.json'), { defaultValue: {} }))
    expect(error.code).toBe('ENOTDIR')
    expect(error.message).toContain(`${notes} is a file, not a folder`)
    expect(error.message).toContain('correct the path')
  })

  it.skipIf(!isRoot)('a folder this user may not enter: EACCES, naming it (an unprivileged child)', async () => {
    const NOBODY = 65534
    fs.chownSync(dir, NOBODY, NOBODY)
    fs.chmodSync(dir, 0o755)
    const closed = path.join(dir, 'closed')
    fs.mkdirSync(closed, { mode: 0o700 }) // root's
    const child = new Child(path.join(FIXTURES, 'doc-unprivileged.mjs'))
    await child.waitFor('ready')
    child.send({ cmd: 'open', file: path.join(closed, 'roles.json'), options: { defaultValue: {} } })
    const answer = await child.waitFor('answer')
    expect(answer).toMatchObject({ ok: false, code: 'EACCES' })
    expect(answer.message).toContain(`this user may not enter the folder ${closed}`)
  })
})
