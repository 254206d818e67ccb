// Big documents (past json-values.js BIG_TEXT, 1 MiB): their work is done in
// slices and off the JS thread (merges, diffs), edit() changes a spare copy
// made ahead and takes it in place. These check that nothing of that changes
// what a document does: every edit kept, through another process's writes;
// a caller's objects copied, never frozen; odd values converted or refused
// exactly as on a small document. (How long the event loop stalls is measured
// by bench/big-document.mjs, never here.)
import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { file, nextEvent, runSnippet, sleep, useScratchDir } from './helpers.mjs'

const manager = useScratchDir()
const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8'))

// ~3 MB as JsonDocument writes it.
function bigRoles() {
  const roles = []
  for (let i = 0; i < 12000; i++) roles.push({ id: `role-${i}`, name: `Role ${i}`, permissions: ['users.read', `area${i % 50}.write`], limits: { seats: i % 100 } })
  return { version: 1, roles }
}

// Lets the spare copy of a freshly changed big document be made (a few slices).
const settle = () => sleep(300)

// Another process renames one role and writes `extra` into the file, replacing it atomically.
async function otherProcessWrites(index, name, extra = '') {
  const { exited } = runSnippet(file, `
    const fs = require('node:fs')
    const v = JSON.parse(fs.readFileSync(file, 'utf8'))
    v.roles[${index}].name = ${JSON.stringify(name)}
    let text = JSON.stringify(v, null, 2)
    ${extra}
    fs.writeFileSync(file + '.tmp', text)
    fs.renameSync(file + '.tmp', file)`)
  expect((await exited).code).toBe(0)
}

describe('a big document', () => {
  it('update, edit + save, and an external change merged with unsaved edits: every change kept', async () => {
    fs.writeFileSync(file, `${JSON.stringify(bigRoles(), null, 2)}\n`)
    expect(fs.statSync(file).size).toBeGreaterThan(2 * 1024 * 1024)
    const doc = await manager().openDocument(file)
    await settle()
    await doc.update((v) => { v.roles[0].name = 'updated' })
    doc.edit((v) => { v.roles[1].name = 'edited' })
    await doc.save()
    await settle()
    // An unsaved edit; another process changes another role; the watch rebases the edit.
    doc.edit((v) => { v.roles[2].name = 'mine' })
    const seen = nextEvent(doc, 'merged')
    await otherProcessWrites(3, 'theirs')
    const merged = await seen
    expect(merged.fromMine.map((c) => c.path)).toEqual(['$.roles[id="role-2"].name'])
    expect(merged.fromTheirs.map((c) => c.path)).toEqual(['$.roles[id="role-3"].name'])
    await doc.save()
    // The same without the watch's help: the save finds the change under the lock.
    await doc.close()
    const quiet = await manager().openDocument(file, { watch: false })
    await settle()
    quiet.edit((v) => { v.roles[4].name = 'mine 2' })
    await otherProcessWrites(5, 'theirs 2')
    await quiet.save()
    const names = onDisk().roles.slice(0, 6).map((r) => r.name)
    expect(names).toEqual(['updated', 'edited', 'mine', 'theirs', 'mine 2', 'theirs 2'])
    expect(onDisk().roles).toHaveLength(12000)
    expect(Object.isFrozen(quiet.get().roles[4])).toBe(true)
  })

  it("edit() copies what the caller puts in (never freezes the caller's objects) and keeps the rest", async () => {
    fs.writeFileSync(file, `${JSON.stringify(bigRoles(), null, 2)}\n`)
    const doc = await manager().openDocument(file)
    await settle()
    const role = { id: 'new', name: 'New', permissions: ['a'] }
    const next = doc.edit((v) => {
      v.roles.push(role)
      v.roles = v.roles.filter((r) => r.id !== 'role-7') // a new array of the document's own objects
    })
    expect(Object.isFrozen(role)).toBe(false)
    expect(Object.isFrozen(role.permissions)).toBe(false)
    role.name = 'changed afterwards'
    role.permissions.push('b')
    expect(next.roles.at(-1)).toEqual({ id: 'new', name: 'New', permissions: ['a'] })
    expect(Object.isFrozen(next.roles.at(-1))).toBe(true)
    expect(Object.isFrozen(next.roles)).toBe(true)
    expect(next.roles.some((r) => r.id === 'role-7')).toBe(false)
    expect(doc.get()).toBe(next)
    await doc.save()
    const saved = onDisk()
    expect(saved.roles.at(-1)).toEqual({ id: 'new', name: 'New', permissions: ['a'] })
    expect(saved.roles).toHaveLength(12000)
  })

  it('edit() converts and refuses values exactly as on a small document', async () => {
    fs.writeFileSync(file, `${JSON.stringify(bigRoles(), null, 2)}\n`)
    const doc = await manager().openDocument(file)
    await settle()
    // Converted as JSON converts them: a Date to its string, undefined members left out, -0 and NaN.
    const when = new Date('2024-05-06T07:08:09.000Z')
    const next = doc.edit((v) => {
      v.roles[0].createdAt = when
      v.roles[0].gone = undefined
      v.roles[0].limits.seats = -0
      v.roles[1].limits.seats = Number.NaN
    })
    expect(next.roles[0].createdAt).toBe('2024-05-06T07:08:09.000Z')
    expect('gone' in next.roles[0]).toBe(false)
    expect(Object.is(next.roles[0].limits.seats, 0)).toBe(true)
    expect(next.roles[1].limits.seats).toBe(null)
    await settle()
    // Refused, nothing changed: a function member, a cycle, a BigInt-free class instance.
    const before = doc.get()
    expect(() => doc.edit((v) => { v.roles[0].run = () => 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(doc.get()).toBe(before)
    await settle()
    expect(() => doc.edit((v) => { v.roles[0].self = v })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(doc.get()).toBe(before)
    await settle()
    expect(() => doc.edit((v) => { v.roles[0].limits = new Map() })).not.toThrow() // JSON makes {} of a Map
    expect(doc.get().roles[0].limits).toEqual({})
    // Two edits in one tick (the second finds no spare copy made yet): both apply.
    doc.edit((v) => { v.roles[5].name = 'first' })
    doc.edit((v) => { v.roles[6].name = 'second' })
    expect(doc.get().roles.slice(5, 7).map((r) => r.name)).toEqual(['first', 'second'])
    await doc.save()
    expect(onDisk().roles.slice(5, 7).map((r) => r.name)).toEqual(['first', 'second'])
  })

  it("an update whose fn throws rejects that call only; the document's next edit and update still work", async () => {
    fs.writeFileSync(file, `${JSON.stringify(bigRoles(), null, 2)}\n`)
    const doc = await manager().openDocument(file)
    await settle()
    const failed = doc.update((v) => {
      v.roles[0].name = 'half-done'
      throw new Error('changed my mind')
    })
    await expect(failed).rejects.toThrow('changed my mind')
    expect(doc.get().roles[0].name).toBe('Role 0')
    await settle()
    doc.edit((v) => { v.roles[1].name = 'edited' })
    await doc.update((v) => { v.roles[2].name = 'updated' })
    await doc.save()
    expect(onDisk().roles.slice(0, 3).map((r) => r.name)).toEqual(['Role 0', 'edited', 'updated'])
  })
})

describe('a big document holding numbers JS cannot hold exactly', () => {
  it('keeps their text through update, edit + save and a merge with another process\'s change', async () => {
    const doc0 = bigRoles()
    doc0.snowflake = '@S'
    fs.writeFileSync(file, `${JSON.stringify(doc0, null, 2).replace('"@S"', '1234567890123456789')}\n`)
    const doc = await manager().openDocument(file)
    await doc.update((v) => { v.roles[0].name = 'updated' })
    doc.edit((v) => { v.roles[1].name = 'edited' })
    await otherProcessWrites(2, 'theirs', `text = text.replace('"snowflake": 1234567890123456800', '"snowflake": 1234567890123456789')`)
    await doc.save()
    const text = fs.readFileSync(file, 'utf8')
    expect(text).toContain('"snowflake": 1234567890123456789')
    expect(JSON.parse(text).roles.slice(0, 3).map((r) => r.name)).toEqual(['updated', 'edited', 'theirs'])
  })
})

describe('numbers written by other programs', () => {
  it('a file another program wrote with 1.0 and 1e2 merges with unsaved edits without a conflict', async () => {
    fs.writeFileSync(file, `${JSON.stringify({ version: 1, roles: [{ id: 'a', name: 'A', seats: 1 }, { id: 'b', name: 'B', seats: 100 }] }, null, 2)}\n`)
    const doc = await manager().openDocument(file, { watch: false })
    // Mine changes a's seats; theirs only rewrites them in another spelling
    // (Python's json.dumps writes floats as 1.0; some writers use exponents).
    doc.edit((v) => { v.roles[0].name = 'mine'; v.roles[0].seats = 2 })
    await otherProcessWrites(1, 'theirs', `text = text.replace(/"seats": 1$/m, '"seats": 1.0').replace(/"seats": 100$/m, '"seats": 1e2')`)
    expect(fs.readFileSync(file, 'utf8')).toMatch(/"seats": 1\.0\s[\s\S]*"seats": 1e2\s/)
    const saved = await doc.save()
    expect(doc.conflict).toBe(null)
    expect(saved.roles).toEqual([{ id: 'a', name: 'mine', seats: 2 }, { id: 'b', name: 'theirs', seats: 100 }])
  })
})

describe("a merge's result shares what it kept with the version on disk", () => {
  it('unchanged parts are the very objects of the version read (no copy), changed ones new; __proto__ stays a member', async () => {
    const text = '{"__proto__": {"polluted": true}, "roles": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}, {"id": "c", "name": "C"}]}'
    fs.writeFileSync(file, text)
    const doc = await manager().openDocument(file)
    doc.edit((v) => { v.roles[0].name = 'mine' })
    const arrived = nextEvent(doc, 'external-change')
    const merged = nextEvent(doc, 'merged')
    await otherProcessWrites(1, 'theirs')
    const theirs = (await arrived).newValue
    await merged
    const now = doc.get()
    expect(now.roles.map((r) => r.name)).toEqual(['mine', 'theirs', 'C'])
    expect(now.roles[1]).toBe(theirs.roles[1])
    expect(now.roles[2]).toBe(theirs.roles[2])
    expect(now.roles[0]).not.toBe(theirs.roles[0])
    expect(Object.isFrozen(now.roles)).toBe(true)
    expect(Object.isFrozen(now.roles[0])).toBe(true)
    // JSON.parse's own "__proto__" member, kept as a member: no prototype was set.
    expect(Object.hasOwn(now, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(now)).toBe(Object.prototype)
    expect(now.polluted).toBe(undefined)
    await doc.save()
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(JSON.parse('{"__proto__": {"polluted": true}, "roles": [{"id": "a", "name": "mine"}, {"id": "b", "name": "theirs"}, {"id": "c", "name": "C"}]}'))
  })
})
