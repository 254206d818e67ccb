// manager.watch(): external atomic replaces, deletes and re-creations seen;
// our own writes told apart by content; bursts settled into their final state.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, file, FIXTURES, sleep, useScratchDir, waitUntil } from './helpers.mjs'

const manager = useScratchDir()

async function startEditor() {
  const child = new Child(path.join(FIXTURES, 'editor-child.mjs'))
  await child.waitFor('ready')
  return child
}

function collect(m, options) {
  const changes = []
  const watcher = m.watch(file, (change) => changes.push({ ...change, text: readOrNull() }), options)
  return { watcher, changes }
}

const readOrNull = () => {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

describe('manager.watch', () => {
  it('sees each of 100 atomic replaces made by another process, with its content', async () => {
    fs.writeFileSync(file, '{}')
    const m = manager()
    const { watcher, changes } = collect(m)
    expect(watcher.mode).toBe('events')
    const editor = await startEditor()
    for (let i = 1; i <= 100; i++) {
      const text = JSON.stringify({ version: i })
      await editor.request({ cmd: 'replace', file, text }, 'done')
      await waitUntil(() => changes.length >= i, 5000, `change ${i}`)
      expect(changes[i - 1]).toMatchObject({ kind: 'modified', external: true, filePath: file, text })
    }
    await sleep(100)
    expect(changes).toHaveLength(100)
  }, 60000)

  it('never reports its own writes as external, also while another process writes', async () => {
    fs.writeFileSync(file, JSON.stringify({ by: 'nobody' }))
    const m = manager()
    const { changes } = collect(m)
    const doc = await m.openDocument(file, { watch: false })
    const editor = await startEditor()
    // Alternating: each write seen before the next, so each is judged alone.
    for (let i = 0; i < 20; i++) {
      await doc.set({ by: 'me', i })
      await waitUntil(() => changes.length === 2 * i + 1, 5000, `own write ${i}`)
      expect(changes.at(-1).external).toBe(false)
      await editor.request({ cmd: 'replace', file, text: JSON.stringify({ by: 'other', i }) }, 'done')
      await waitUntil(() => changes.length === 2 * i + 2, 5000, `external write ${i}`)
      expect(changes.at(-1).external).toBe(true)
    }
    // At the same time: a change is external exactly when the file then holds another process's content.
    changes.length = 0
    const burst = editor.request({ cmd: 'burst', file, count: 300 }, 'done', 30000)
    for (let i = 0; i < 100; i++) await doc.set({ by: 'me', n: i })
    await burst
    await sleep(400)
    await doc.set({ by: 'me', final: true })
    await waitUntil(() => changes.at(-1)?.text?.includes('final'), 5000, 'the last own write')
    expect(changes.at(-1).external).toBe(false)
    for (const change of changes) {
      const holder = JSON.parse(change.text)
      // The content was read right after the event: it may be newer, but an event
      // marked ours whose file holds the other's content (or vice versa) must
      // have been overtaken by a later event.
      if ((holder.by === 'me') === !change.external) continue
      expect(changes.indexOf(change)).toBeLessThan(changes.length - 1)
    }
    await doc.close()
  }, 60000)

  // A regression: the first watcher to see a write used it up, so a second
  // watcher of the same file (a document's and the app's) called it external.
  it('every watcher of the process knows its own writes, not only the first to look', async () => {
    fs.writeFileSync(file, '{}')
    const m = manager()
    const doc = await m.openDocument(file) // watches the file too
    const first = collect(m)
    const second = collect(m)
    for (let i = 0; i < 30; i++) {
      await doc.set({ i })
      await waitUntil(() => first.changes.length === i + 1 && second.changes.length === i + 1, 5000, `write ${i} seen by both`)
    }
    expect(first.changes.filter((c) => c.external)).toEqual([])
    expect(second.changes.filter((c) => c.external)).toEqual([])
    await doc.close()
  })

  it('survives delete and re-create', async () => {
    fs.writeFileSync(file, '{"a":1}')
    const { changes } = collect(manager())
    const editor = await startEditor()
    await editor.request({ cmd: 'remove', file }, 'done')
    await waitUntil(() => changes.length === 1, 5000, 'the delete')
    expect(changes[0]).toMatchObject({ kind: 'deleted', external: true, size: null })
    await editor.request({ cmd: 'replace', file, text: '{"a":2}' }, 'done')
    await waitUntil(() => changes.length === 2, 5000, 'the re-creation')
    expect(changes[1]).toMatchObject({ kind: 'created', external: true, text: '{"a":2}' })
    await editor.request({ cmd: 'replace', file, text: '{"a":3}' }, 'done')
    await waitUntil(() => changes.length === 3, 5000, 'a change after re-creation')
    expect(changes[2]).toMatchObject({ kind: 'modified', text: '{"a":3}' })
  })

  // A rename into place, or a written file closed, ends a write: the change is
  // reported then, not after the quiet period (an hour here). A write still
  // open says nothing has ended: it waits, and is reported once closed.
  it('reports a write as soon as an event says it ended, and waits for one that has not', async () => {
    fs.writeFileSync(file, JSON.stringify({ v: 0 }))
    const m = manager()
    const { changes } = collect(m, { debounceMs: 3_600_000, maxDelayMs: 3_600_000 })
    await sleep(50)
    const editor = await startEditor()
    await editor.request({ cmd: 'replace', file, text: JSON.stringify({ v: 1 }) }, 'done')
    await waitUntil(() => changes.length === 1, 5000, 'the rename into place')
    expect(changes[0]).toMatchObject({ kind: 'modified', external: true, text: JSON.stringify({ v: 1 }) })
    const fd = fs.openSync(file, 'r+')
    fs.writeSync(fd, JSON.stringify({ v: 2 }), 0)
    await sleep(300)
    expect(changes).toHaveLength(1) // written, not closed: not over yet
    fs.closeSync(fd)
    await waitUntil(() => changes.length === 2, 5000, 'the close of the write')
    expect(changes[1]).toMatchObject({ kind: 'modified', external: true, text: JSON.stringify({ v: 2 }) })
  })

  it('settles a burst of 1000 writes into few changes ending with the final state', async () => {
    fs.writeFileSync(file, '{"n":0}')
    const { changes } = collect(manager())
    const editor = await startEditor()
    await editor.request({ cmd: 'burst', file, count: 1000 }, 'done', 30000)
    await waitUntil(() => changes.at(-1)?.text === '{"n":1000}', 5000, 'the final state')
    await sleep(300)
    expect(changes.at(-1)).toMatchObject({ kind: 'modified', external: true, size: '{"n":1000}'.length })
    expect(changes.length).toBeLessThan(1000)
    console.log(`[watch] a burst of 1000 replaces arrived as ${changes.length} change(s)`)
  }, 40000)

  it('ignores other files in the directory, and costs nothing while idle', async () => {
    fs.writeFileSync(file, '{}')
    const { changes } = collect(manager())
    fs.writeFileSync(path.join(dir, 'other.json'), '{}')
    fs.writeFileSync(path.join(dir, '.roles.json.lock'), '')
    const before = process.cpuUsage()
    await sleep(500)
    const used = process.cpuUsage(before)
    expect(changes).toEqual([])
    console.log(`[watch] idle 500 ms: ${(used.user + used.system) / 1000} ms of CPU in this process`)
  })

  it('polls when asked to (network shares do this automatically)', async () => {
    fs.writeFileSync(file, '{}')
    const { watcher, changes } = collect(manager(), { poll: true, pollIntervalMs: 50 })
    expect(watcher.mode).toBe('polling')
    const editor = await startEditor()
    await editor.request({ cmd: 'replace', file, text: '{"polled":true}' }, 'done')
    await waitUntil(() => changes.length === 1, 5000, 'the polled change')
    expect(changes[0]).toMatchObject({ kind: 'modified', external: true })
  })

  it('close() stops it, and the manager closes its watchers', async () => {
    fs.writeFileSync(file, '{}')
    const m = manager()
    const a = collect(m)
    const b = collect(m)
    await a.watcher.close()
    await a.watcher.close()
    fs.writeFileSync(file, '{"x":1}')
    await waitUntil(() => b.changes.length === 1, 5000, 'the change seen by the open watcher')
    expect(a.changes).toEqual([])
    await m.close()
    expect(b.watcher.closed).toBe(true)
    fs.writeFileSync(file, '{"x":2}')
    await sleep(200)
    expect(b.changes).toHaveLength(1)
  })

  it('rejects bad arguments with coded errors', () => {
    const m = manager()
    expect(() => m.watch(file)).toThrow(TypeError)
    expect(() => m.watch(file, () => {}, { pollIntervalMs: -1 })).toThrow(RangeError)
    expect(() => m.watch(file, () => {}, { poll: 'yes' })).toThrow(TypeError)
    expect(() => m.watch(dir, () => {})).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => m.watch(path.join(dir, 'missing', 'x.json'), () => {})).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })
})
