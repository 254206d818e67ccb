// JsonDocument meets other writers: external changes reloaded, unsaved edits
// merged three-way, conflicts raised (never resolved silently) and resolved
// each way with a backup and both versions kept until then.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, file, FIXTURES, nextEvent, sleep, useScratchDir, waitUntil } from './helpers.mjs'
import { replaceFile } from '../testkit/replace.mjs'

const manager = useScratchDir()
const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8'))
const backups = () => {
  try {
    return fs.readdirSync(path.join(dir, '.roles.json.backups')).sort()
  } catch {
    return []
  }
}
const roles = (...list) => ({ roles: list.map(([id, name]) => ({ id, name })) })

/** Another program replaces the file with `value` the atomic way (temp file, then rename), as editors and sync tools do. */
function replaceExternally(value) {
  replaceFile(file, JSON.stringify(value))
}

async function startEditor() {
  const child = new Child(path.join(FIXTURES, 'editor-child.mjs'))
  await child.waitFor('ready')
  return child
}

// Another instance saving its own edit of the roles.
async function otherInstanceSaves(edits) {
  const editor = await startEditor()
  await editor.request({ cmd: 'open', file }, 'done')
  for (const [id, name] of edits) await editor.request({ cmd: 'edit', id, name }, 'done')
  await editor.request({ cmd: 'save' }, 'done')
  await editor.request({ cmd: 'close' }, 'done')
}

describe('JsonDocument and external changes', () => {
  it('reloads an external change when it has no unsaved edits, and says what changed', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'])))
    const m = manager()
    const doc = await m.openDocument(file)
    expect(doc.watching).toBe(true)
    const forwarded = nextEvent(m, 'external-change')
    const seen = nextEvent(doc, 'external-change')
    await otherInstanceSaves([['b', 'Editor']])
    const event = await seen
    expect(event.reloaded).toBe(true)
    expect(event.oldValue).toEqual(roles(['a', 'Admin']))
    expect(event.newValue).toEqual(roles(['a', 'Admin'], ['b', 'Editor']))
    expect(event.changes).toEqual([expect.objectContaining({ path: '$.roles[id="b"]', kind: 'added' })])
    expect(doc.get()).toEqual(roles(['a', 'Admin'], ['b', 'Editor']))
    expect((await forwarded).filePath).toBe(file)
    await doc.close()
  })

  it('merges unsaved edits with an external change to another role, then saves both', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'], ['b', 'Editor'])))
    const doc = await manager().openDocument(file)
    doc.edit((v) => {
      v.roles[0].name = 'Administrator'
    })
    expect(doc.hasUnsavedChanges).toBe(true)
    const merged = nextEvent(doc, 'merged')
    await otherInstanceSaves([['b', 'Writer']])
    const event = await merged
    expect(event.merged).toEqual(roles(['a', 'Administrator'], ['b', 'Writer']))
    expect(event.fromMine.map((c) => c.path)).toEqual(['$.roles[id="a"].name'])
    expect(event.fromTheirs.map((c) => c.path)).toEqual(['$.roles[id="b"].name'])
    expect(doc.get()).toEqual(roles(['a', 'Administrator'], ['b', 'Writer']))
    expect(onDisk()).toEqual(roles(['a', 'Admin'], ['b', 'Writer'])) // not saved yet
    await doc.save()
    expect(doc.hasUnsavedChanges).toBe(false)
    expect(onDisk()).toEqual(roles(['a', 'Administrator'], ['b', 'Writer']))
    await doc.close()
  })

  it('two processes with unsaved edits to different roles both end up in the file', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'])))
    const doc = await manager().openDocument(file, { watch: false }) // the merge happens at save time
    const editor = await startEditor()
    await editor.request({ cmd: 'open', file, options: { watch: false } }, 'done')
    doc.edit((v) => {
      v.roles.push({ id: 'mine', name: 'Mine' })
    })
    await editor.request({ cmd: 'edit', id: 'theirs', name: 'Theirs' }, 'done')
    await editor.request({ cmd: 'save' }, 'done')
    await doc.save()
    await editor.request({ cmd: 'close' }, 'done')
    expect(onDisk().roles.map((r) => r.id).sort()).toEqual(['a', 'mine', 'theirs'])
    await doc.close()
  })

  for (const [choice, expected] of [
    ['mine', 'Mine'],
    ['theirs', 'Theirs'],
    ['merged', 'Admin'], // the merge keeps the base value where the sides conflict
    [{ roles: [{ id: 'a', name: 'Chosen' }] }, 'Chosen'],
  ]) {
    it(`a conflict is announced, backed up, and resolved with ${JSON.stringify(choice)}`, async () => {
      fs.writeFileSync(file, JSON.stringify({ roles: [{ id: 'a', name: 'Admin' }], version: 1 }))
      const doc = await manager().openDocument(file)
      doc.edit((v) => {
        v.roles[0].name = 'Mine'
      })
      const conflicted = nextEvent(doc, 'conflict')
      // The other side renames the same role and, independently, bumps `version`.
      replaceExternally({ roles: [{ id: 'a', name: 'Theirs' }], version: 2 })
      const conflict = await conflicted
      expect(conflict.conflicts).toEqual([expect.objectContaining({ path: '$.roles[id="a"].name', kind: 'both-modified' })])
      expect(doc.conflict).not.toBeNull()
      await expect(doc.save()).rejects.toMatchObject({ code: 'ECONFLICT' })
      // Both versions are kept until it is resolved.
      await waitUntil(() => backups().some((n) => n.endsWith('.conflict-mine')) && backups().some((n) => n.endsWith('.conflict-theirs')), 5000, 'both versions preserved')
      const goodBefore = backups().filter((n) => n.endsWith('.json')).length
      const written = await conflict.resolve(choice)
      expect(written.roles[0].name).toBe(expected)
      const onDiskNow = onDisk()
      expect(onDiskNow.roles[0].name).toBe(expected)
      if (typeof choice === 'string') expect(onDiskNow.version).toBe(2) // the clean part of the merge is kept
      // The file as it was before the resolution was backed up; the two versions are gone.
      expect(backups().filter((n) => n.endsWith('.json')).length).toBe(goodBefore + 1)
      await waitUntil(() => !backups().some((n) => n.includes('.conflict-')), 5000, 'preserved versions removed')
      expect(doc.conflict).toBeNull()
      expect(doc.hasUnsavedChanges).toBe(false)
      await expect(conflict.resolve('mine')).rejects.toMatchObject({ code: 'ECONFLICT' })
      await doc.close()
    })
  }

  it('delete vs modify is a conflict; an onConflict policy resolves it without asking', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'], ['b', 'Editor'])))
    const doc = await manager().openDocument(file, { onConflict: 'mine' })
    doc.edit((v) => {
      v.roles[1].name = 'Renamed'
    })
    const conflicted = nextEvent(doc, 'conflict')
    const saved = nextEvent(doc, 'saved')
    replaceExternally(roles(['a', 'Admin']))
    const conflict = await conflicted
    expect(conflict.policy).toBe('mine')
    expect(conflict.conflicts).toEqual([expect.objectContaining({ path: '$.roles[id="b"]', kind: 'delete-modify', deletedBy: 'theirs' })])
    await saved
    expect(onDisk()).toEqual(roles(['a', 'Admin'], ['b', 'Renamed']))
    await doc.close()
  })

  it('close() with an unresolved conflict reports the edits (EUNSAVED) instead of dropping them', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'])))
    const doc = await manager().openDocument(file)
    doc.edit((v) => {
      v.roles[0].name = 'Mine'
    })
    const conflicted = nextEvent(doc, 'conflict')
    replaceExternally(roles(['a', 'Theirs']))
    await conflicted
    const error = await doc.close().catch((e) => e)
    expect(error.code).toBe('EUNSAVED')
    expect(error.unsaved).toEqual([{ edits: roles(['a', 'Mine']) }])
    expect(error.conflict.conflicts).toHaveLength(1)
    expect(onDisk()).toEqual(roles(['a', 'Theirs']))
  })

  it('saveDelayMs saves edits by itself; discard() drops them', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'])))
    const doc = await manager().openDocument(file, { saveDelayMs: 50 })
    const saved = nextEvent(doc, 'saved')
    doc.edit((v) => {
      v.roles[0].name = 'Auto'
    })
    await saved
    expect(onDisk()).toEqual(roles(['a', 'Auto']))
    doc.edit((v) => {
      v.roles[0].name = 'Dropped'
    })
    expect(doc.discard()).toEqual(roles(['a', 'Auto']))
    await sleep(150)
    expect(onDisk()).toEqual(roles(['a', 'Auto']))
    await doc.close()
  })

  it('logs changes, merges, conflicts and resolutions in the audit trail', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'], ['b', 'Editor'])))
    const audit = []
    const doc = await manager({ logger: (e) => audit.push(e) }).openDocument(file)
    doc.edit((v) => {
      v.roles[0].name = 'Mine'
    })
    const merged = nextEvent(doc, 'merged')
    replaceExternally(roles(['a', 'Admin'], ['b', 'Theirs']))
    await merged
    const conflicted = nextEvent(doc, 'conflict')
    replaceExternally(roles(['a', 'Other'], ['b', 'Theirs']))
    await (await conflicted).resolve('theirs')
    await waitUntil(() => audit.some((e) => e.op === 'conflict-resolved'), 5000, 'the resolution audited')
    const ops = audit.filter((e) => e.file === file && !['acquire', 'release'].includes(e.op)).map((e) => `${e.op}:${e.outcome}`)
    expect(ops).toEqual(expect.arrayContaining(['external-change:pending', 'merged:applied', 'conflict:pending', 'conflict-resolved:theirs']))
    await doc.close()
  })
})

describe('JsonDocument edits during a conflict', () => {
  it('the conflict follows later edits: resolving uses the newest, and undoing the clash ends it', async () => {
    fs.writeFileSync(file, JSON.stringify(roles(['a', 'Admin'], ['b', 'Editor'])))
    const doc = await manager().openDocument(file)
    doc.edit((v) => {
      v.roles[0].name = 'Mine'
    })
    const conflicted = nextEvent(doc, 'conflict')
    replaceExternally(roles(['a', 'Theirs'], ['b', 'Editor']))
    await conflicted
    doc.edit((v) => {
      v.roles[1].name = 'Also mine'
    })
    expect(doc.conflict.mine).toEqual(roles(['a', 'Mine'], ['b', 'Also mine']))
    // Undo the clashing edit: nothing conflicts any more, the rest is merged and unsaved.
    const merged = nextEvent(doc, 'merged')
    doc.edit((v) => {
      v.roles[0].name = 'Admin'
    })
    await merged
    expect(doc.conflict).toBeNull()
    expect(doc.get()).toEqual(roles(['a', 'Theirs'], ['b', 'Also mine']))
    await doc.save()
    expect(onDisk()).toEqual(roles(['a', 'Theirs'], ['b', 'Also mine']))
    await doc.close()
  })
})
