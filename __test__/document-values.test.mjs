// Values at the edges of JSON, through the merge and the document: strings with
// lone UTF-16 surrogates, nesting up to and past the package's one limit
// (MAX_JSON_DEPTH, 1000 levels), values a file cannot hold (set/update/edit and
// defaultValue checked alike), saveDelayMs at its extremes, and failures inside
// the save/merge path: every one settles with a code, never a hang, never an
// unhandled rejection, and unsaved edits are kept.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dir, file, nextEvent, rejectionOf, runSnippet, sleep, useScratchDir, waitUntil, within } from './helpers.mjs'

const require = createRequire(import.meta.url)
const mergeModule = require('../lib/merge.js')
const { mergeJson, diffJson, MAX_JSON_DEPTH } = mergeModule

const LIMIT = 1000
const lone = '🔑 Keymaster'.slice(0, 1) // '\ud83d', what cutting an emoji leaves
const roles = () => ({ roles: [{ id: 'admin', name: 'Admin' }, { id: 'viewer', name: 'Viewer' }] })

/** Arrays nested `depth` levels around `inner` (depth 0: `inner` itself). */
function nest(depth, inner = 1) {
  let value = inner
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

/** Objects nested `depth` levels: { a: { a: … inner } }. */
function nestObjects(depth, inner = 1) {
  let value = inner
  for (let i = 0; i < depth; i++) value = { a: value }
  return value
}

function caught(fn) {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw')
}

const manager = useScratchDir()
const onDisk = () => JSON.parse(fs.readFileSync(file, 'utf8'))
const backupsOf = (kind) => {
  try {
    return fs.readdirSync(path.join(dir, '.roles.json.backups')).filter((name) => name.endsWith(`.${kind}`))
  } catch {
    return []
  }
}

// Unhandled rejections in this process fail the test that caused them.
const unhandled = []
const onUnhandled = (reason) => unhandled.push(reason)
const snippets = []
beforeEach(() => {
  unhandled.length = 0
  process.on('unhandledRejection', onUnhandled)
})
afterEach(async () => {
  process.off('unhandledRejection', onUnhandled)
  for (const run of snippets.splice(0)) run.child.kill('SIGKILL')
  expect(unhandled).toEqual([])
})

/** A Node process running `body` (FileLockManager, file, fs in scope). */
function snippet(body, env = {}) {
  const run = runSnippet(file, `const fs = require('node:fs');\n${body}`, [], env)
  snippets.push(run)
  return run
}

// Another app instance: opens the file, adds a role, closes.
async function otherInstanceAddsARole(id = 'auditor') {
  const writer = snippet(`
    const manager = new FileLockManager()
    const doc = await manager.openDocument(file, { watch: false })
    await doc.update((v) => { v.roles.push({ id: ${JSON.stringify(id)}, name: 'Added elsewhere' }) })
    await doc.close()
    await manager.close()
  `)
  const { code, out } = await within(writer.exited, 20000, 'the other instance')
  expect(code, out).toBe(0)
}

describe('lone surrogates', () => {
  it('mergeJson and diffJson take them in values, keys and ids, and give them back exactly', () => {
    const high = '\ud83d'
    const low = '\ude00'
    const base = { name: '🔑 Keymaster', [`k${low}`]: 1, roles: [{ id: high, n: 1 }, { id: 'b', n: 1 }] }
    const mine = { name: high, [`k${low}`]: 1, roles: [{ id: high, n: 2 }, { id: 'b', n: 1 }] }
    const theirs = { name: '🔑 Keymaster', [`k${low}`]: `${low}${high}`, roles: [{ id: high, n: 1 }, { id: 'b', n: 3 }] }
    const result = mergeJson(base, mine, theirs)
    expect(result.clean).toBe(true)
    expect(result.merged).toStrictEqual({ name: high, [`k${low}`]: `${low}${high}`, roles: [{ id: high, n: 2 }, { id: 'b', n: 3 }] })
    expect(result.merged.name.charCodeAt(0)).toBe(0xd83d)
    expect(result.merged.name).toHaveLength(1)
    // The same whichever side runs it.
    expect(mergeJson(base, theirs, mine).merged).toStrictEqual(result.merged)
    // Conflicts carry them; paths name keys and ids holding them.
    const clash = mergeJson(base, { ...base, [`k${low}`]: high }, { ...base, [`k${low}`]: low })
    expect(clash.conflicts).toStrictEqual([{ path: `$["k${low}"]`, kind: 'both-modified', base: 1, mine: high, theirs: low }])
    const idClash = mergeJson(base, mine, { ...base, roles: [{ id: high, n: 5 }, { id: 'b', n: 1 }] })
    expect(idClash.conflicts.map((c) => [c.path, c.mine, c.theirs])).toStrictEqual([[`$.roles[id="${high}"].n`, 2, 5]])
    // A lone surrogate and its pair are different strings; pairs stay pairs.
    expect(mergeJson([high], [high], [`${high}${low}`]).merged).toStrictEqual([`${high}${low}`])
    expect(mergeJson({}, { s: `${low}${high}`, t: `a${high}${high}` }, {}).merged).toStrictEqual({ s: `${low}${high}`, t: `a${high}${high}` })
    // The text U+FDD0 (used inside as a marker) beside them survives too.
    expect(mergeJson({}, { s: `\ufdd0${high}\ufdd0\ue03d` }, {}).merged).toStrictEqual({ s: `\ufdd0${high}\ufdd0\ue03d` })
    expect(diffJson({ s: high }, { s: `x${high}` })).toStrictEqual([{ path: '$.s', kind: 'changed', before: high, after: `x${high}` }])
    expect(diffJson(base, mine).map((c) => c.path)).toStrictEqual(['$.name', `$.roles[id="${high}"].n`])
  })

  it('an arrayKey holding one is refused (ERR_INVALID_ARG_VALUE), by mergeJson and openDocument', async () => {
    const error = caught(() => mergeJson({}, {}, {}, { arrayKey: `id${lone}` }))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe('ERR_INVALID_ARG_VALUE')
    const opened = await rejectionOf(manager().openDocument(file, { defaultValue: {}, arrayKey: lone }))
    expect(opened.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(fs.existsSync(file)).toBe(false)
  })

  it('a document saves one with an unsaved edit after an external change (set, edit, read, save)', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    await doc.set({ ...roles(), motto: `x${lone}` })
    doc.edit((v) => {
      v.roles[0].name = lone
    })
    await otherInstanceAddsARole()
    await doc.read() // sees it and rebases the edit
    expect(doc.get().roles[0].name).toBe(lone)
    await doc.save()
    const saved = onDisk()
    expect(saved.roles.map((r) => r.id)).toStrictEqual(['admin', 'viewer', 'auditor'])
    expect(saved.roles[0].name).toBe(lone)
    expect(saved.motto).toBe(`x${lone}`)
    await doc.close()
  })
})

// The flow with real processes: this instance has an unsaved edit
// holding `value`, another instance writes the file, then this one saves. Run
// in a child so that an unhandled rejection would kill it (as in an app): it
// must exit cleanly, and the file must hold both edits.
const flows = [
  ['a string cut through an emoji', `'🔑 Keymaster'.slice(0, 1)`],
  ['a value nested 201 levels', `nest(201)`],
  [`a role nested ${LIMIT} levels deep in all (the limit)`, `nest(${LIMIT - 3})`],
]
const ways = [
  ['watched: the change is merged as it arrives', 'watch'],
  ['not watched: merged by save()', 'save'],
  ['not watched: an update() lands before save()', 'update'],
]

describe('the unsaved edit meets an external change, then save() (two processes)', () => {
  for (const [what, expression] of flows) {
    for (const [how, way] of ways) {
      it(`${what}; ${how}`, async () => {
        fs.writeFileSync(file, JSON.stringify(roles(), null, 2))
        const go = path.join(dir, 'go')
        const editor = snippet(`
          let unhandled = 0
          process.on('unhandledRejection', (e) => { unhandled++; console.log('UNHANDLED', e && e.stack) })
          const nest = (n) => { let v = 1; for (let i = 0; i < n; i++) v = [v]; return v }
          const value = ${expression}
          const way = ${JSON.stringify(way)}
          const manager = new FileLockManager()
          const doc = await manager.openDocument(file, { watch: way === 'watch' })
          const merged = new Promise((resolve) => doc.once('merged', resolve))
          doc.edit((v) => { v.roles[0].name = 'Administrator'; v.roles[0].extra = value })
          console.log('READY')
          while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 10))
          if (way === 'watch') {
            // (A timer keeps the process alive while it waits: the watch does not.)
            const alive = setInterval(() => {}, 1000)
            await merged
            clearInterval(alive)
          }
          if (way === 'update') await doc.update((v) => { v.version = 2 })
          doc.on('error', (e) => console.log('ERROR', e.code, e.message))
          let timer
          const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('save() did not settle')), 15000)))
          await Promise.race([doc.save(), timeout]).finally(() => clearTimeout(timer))
          console.log('SAVED', doc.hasUnsavedChanges)
          await doc.close()
          await manager.close()
          console.log('DONE', unhandled)
        `)
        await waitUntil(() => editor.output().includes('READY') || editor.child.exitCode !== null, 15000, 'the editor ready')
        expect(editor.output()).toContain('READY')
        await otherInstanceAddsARole()
        fs.writeFileSync(go, '')
        const { code, signal, out } = await within(editor.exited, 30000, 'the editor')
        expect({ code, signal, out }).toMatchObject({ code: 0, signal: null })
        expect(out).toContain('SAVED false')
        expect(out).toContain('DONE 0')
        expect(out).not.toContain('UNHANDLED')
        const saved = onDisk()
        expect(saved.roles.map((r) => r.id)).toStrictEqual(['admin', 'viewer', 'auditor'])
        expect(saved.roles[0].name).toBe('Administrator')
        const expected = expression.startsWith('nest(') ? nest(Number(expression.slice(5, -1))) : lone
        expect(saved.roles[0].extra).toStrictEqual(expected)
        if (way === 'update') expect(saved.version).toBe(2)
      })
    }
  }
})

describe('a failure inside the save/merge path', () => {
  let original
  beforeEach(() => {
    original = mergeModule.mergeTexts
  })
  afterEach(() => {
    mergeModule.mergeTexts = original
  })

  const failingMerge = (code) => () => {
    const error = new Error('injected merge failure')
    if (code) error.code = code
    throw error
  }

  it.each([
    ['an uncoded exception', 'EINTERNAL', undefined],
    ['a value the merge refuses', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_VALUE'],
  ])('%s: save() rejects with %s as its code, the edits are kept, a later save works', async (_, expected, injected) => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    doc.edit((v) => {
      v.roles[0].name = 'Administrator'
    })
    await otherInstanceAddsARole()
    mergeModule.mergeTexts = failingMerge(injected)
    const error = await rejectionOf(doc.save(), 10000, 'save()')
    expect(error.code).toBe(expected)
    expect(error.message).toMatch(/could not be merged.*injected merge failure.*kept/)
    expect(error.filePath).toBe(file)
    // Kept, and nothing of it written; the other instance's role is there.
    expect(doc.hasUnsavedChanges).toBe(true)
    expect(doc.get().roles[0].name).toBe('Administrator')
    expect(onDisk().roles.map((r) => [r.id, r.name])).toStrictEqual([['admin', 'Admin'], ['viewer', 'Viewer'], ['auditor', 'Added elsewhere']])
    // Writes of other calls are not held up by it.
    mergeModule.mergeTexts = original
    await doc.save()
    expect(doc.hasUnsavedChanges).toBe(false)
    expect(onDisk().roles.map((r) => r.name)).toStrictEqual(['Administrator', 'Viewer', 'Added elsewhere'])
    await doc.close()
  })

  it('while merging an arriving change: an error event with the code, the edits kept, then saved', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file)
    doc.edit((v) => {
      v.roles[0].name = 'Administrator'
    })
    mergeModule.mergeTexts = failingMerge()
    const failed = nextEvent(doc, 'error')
    const arrived = nextEvent(doc, 'external-change')
    await otherInstanceAddsARole()
    expect((await arrived).reloaded).toBe(false)
    const error = await failed
    expect(error.code).toBe('EINTERNAL')
    expect(doc.get().roles.map((r) => r.name)).toStrictEqual(['Administrator', 'Viewer'])
    mergeModule.mergeTexts = original
    await doc.save()
    expect(onDisk().roles.map((r) => r.name)).toStrictEqual(['Administrator', 'Viewer', 'Added elsewhere'])
    await doc.close()
  })

  it('after a write that did not carry the edits: the write resolves, the edits stay for save()', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    doc.edit((v) => {
      v.roles[0].name = 'Administrator'
    })
    await otherInstanceAddsARole()
    mergeModule.mergeTexts = failingMerge()
    const failed = nextEvent(doc, 'error')
    await doc.update((v) => {
      v.version = 2
    })
    expect((await failed).code).toBe('EINTERNAL')
    expect(onDisk().version).toBe(2)
    expect(doc.hasUnsavedChanges).toBe(true)
    const again = await rejectionOf(doc.save())
    expect(again.code).toBe('EINTERNAL')
    mergeModule.mergeTexts = original
    await doc.save()
    expect(onDisk()).toMatchObject({ version: 2, roles: [{ name: 'Administrator' }, { name: 'Viewer' }, { id: 'auditor' }] })
    await doc.close()
  })

  it('an uncoded exception while writing rejects with EINTERNAL (cause kept); the edits stay; the next write works', async () => {
    const addon = require('../native.js')
    const commitDocument = addon.commitDocument
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    doc.edit((v) => void (v.roles[0].name = 'Administrator'))
    addon.commitDocument = () => Promise.reject(new TypeError('injected write failure'))
    let error
    try {
      error = await rejectionOf(doc.save(), 10000, 'save()')
    } finally {
      addon.commitDocument = commitDocument
    }
    expect(error.code).toBe('EINTERNAL')
    expect(error.cause.message).toBe('injected write failure')
    expect(onDisk()).toStrictEqual(roles())
    expect(doc.hasUnsavedChanges).toBe(true)
    await doc.save()
    expect(onDisk().roles[0].name).toBe('Administrator')
    await doc.close()
  })
})

describe(`one nesting limit: MAX_JSON_DEPTH (${LIMIT} levels)`, () => {
  it('is exported, and mergeJson/diffJson take exactly that many levels, of arrays or objects, and refuse one more', () => {
    expect(MAX_JSON_DEPTH).toBe(LIMIT)
    expect(require('../index.js').MAX_JSON_DEPTH).toBe(LIMIT)
    for (const make of [nest, nestObjects]) {
      const ok = make(LIMIT, 'x')
      const changed = make(LIMIT, 'y')
      expect(mergeJson(ok, ok, changed)).toStrictEqual({ merged: changed, conflicts: [], clean: true })
      expect(mergeJson(ok, changed, make(LIMIT, 'z')).conflicts).toHaveLength(1)
      expect(diffJson(ok, changed)).toHaveLength(1)
      const deep = make(LIMIT + 1, 'x')
      for (const [i, name] of ['base', 'mine', 'theirs'].entries()) {
        const args = [{}, {}, {}]
        args[i] = deep
        const error = caught(() => mergeJson(...args))
        expect(error).toBeInstanceOf(TypeError)
        expect(error.code).toBe('ERR_INVALID_ARG_VALUE')
        expect(error.message).toBe(`${name} is nested more than ${LIMIT} levels deep (arrays and objects inside each other; the limit is ${LIMIT})`)
      }
      expect(caught(() => diffJson({}, deep)).message).toMatch(/^after is nested more than 1000 levels deep/)
    }
    // Far deeper than any stack (JSON.stringify gives up first): the same error.
    const error = caught(() => mergeJson({}, nest(200000), {}))
    expect(error.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(error.message).toMatch(/^mine is nested more than 1000 levels deep/)
  })

  it.each([
    ['10,000 nested arrays', 10000],
    ['one level too many', LIMIT + 1],
  ])('a file of %s: ECORRUPT, its bytes kept aside, the file untouched; recoverFromBackup restores', async (_, depth) => {
    const text = `${'['.repeat(depth)}${']'.repeat(depth)}`
    expect(() => JSON.parse(text)).not.toThrow()
    fs.writeFileSync(file, text)
    const error = await rejectionOf(manager().openDocument(file), 10000, 'openDocument')
    expect(error.code).toBe('ECORRUPT')
    expect(error.message).toContain(`nested more than ${LIMIT} levels deep`)
    expect(fs.readFileSync(error.backupPath, 'utf8')).toBe(text)
    expect(fs.readFileSync(file, 'utf8')).toBe(text)
    // With a good backup to go back to.
    fs.writeFileSync(file, JSON.stringify(roles()))
    await (await manager().openDocument(file)).close()
    fs.writeFileSync(file, text)
    const doc = await manager().openDocument(file, { recoverFromBackup: true })
    expect(doc.get()).toStrictEqual(roles())
    expect(fs.readFileSync(doc.recovery.corruptPath, 'utf8')).toBe(text)
    await doc.close()
  })

  it(`a file nested exactly ${LIMIT} levels opens, merges, saves and reads back`, async () => {
    const value = { roles: [{ id: 'deep', tree: nest(LIMIT - 3) }] }
    fs.writeFileSync(file, JSON.stringify(value))
    const doc = await manager().openDocument(file, { watch: false })
    expect(doc.get()).toStrictEqual(value)
    let innermost = doc.get().roles[0].tree
    while (Array.isArray(innermost[0])) innermost = innermost[0]
    expect(Object.isFrozen(innermost)).toBe(true)
    doc.edit((v) => {
      v.roles[0].name = 'Deep'
    })
    await otherInstanceAddsARole()
    await doc.save()
    expect(onDisk().roles.map((r) => r.id)).toStrictEqual(['deep', 'auditor'])
    expect(onDisk().roles[0]).toStrictEqual({ id: 'deep', tree: nest(LIMIT - 3), name: 'Deep' })
    await doc.close()
  })

  it.each([false, true])('a too-deep file arriving while edits are unsaved (watch: %s): ECORRUPT (coded, no hang), edits kept; saved once the file is fixed', async (watch) => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch })
    doc.edit((v) => {
      v.roles[0].name = 'Administrator'
    })
    const text = `{"roles":${'['.repeat(5000)}${']'.repeat(5000)}}`
    const seen = watch ? nextEvent(doc, 'error') : null
    fs.writeFileSync(file, text)
    if (watch) {
      const event = await seen
      expect(event.code).toBe('ECORRUPT')
      expect(event.message).toContain('nested more than 1000 levels deep')
      expect(doc.hasUnsavedChanges).toBe(true)
    }
    const error = await rejectionOf(doc.save(), 10000, 'save()')
    expect(error.code).toBe('ECORRUPT')
    expect(fs.readFileSync(error.backupPath, 'utf8')).toBe(text)
    expect(fs.readFileSync(file, 'utf8')).toBe(text)
    expect(doc.hasUnsavedChanges).toBe(true)
    fs.writeFileSync(file, JSON.stringify(roles()))
    await doc.save()
    expect(onDisk().roles[0].name).toBe('Administrator')
    await doc.close()
  })

  it('set, update, edit and defaultValue: up to the limit accepted, past it ERR_INVALID_ARG_VALUE and nothing written', async () => {
    const atLimit = { tree: nest(LIMIT - 1) }
    const tooDeep = { tree: nest(LIMIT) }
    const created = await manager().openDocument(file, { defaultValue: atLimit })
    expect(onDisk()).toStrictEqual(atLimit)
    await created.close()
    fs.rmSync(file)
    const refused = await rejectionOf(manager().openDocument(file, { defaultValue: tooDeep }))
    expect(refused).toBeInstanceOf(TypeError)
    expect(refused.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(refused.message).toBe(`options.defaultValue is nested more than ${LIMIT} levels deep (arrays and objects inside each other; the limit is ${LIMIT})`)
    expect(fs.existsSync(file)).toBe(false)

    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    for (const deep of [tooDeep, { tree: nestObjects(LIMIT) }, nest(20000)]) {
      const setError = await rejectionOf(doc.set(deep))
      expect([setError.constructor, setError.code]).toStrictEqual([TypeError, 'ERR_INVALID_ARG_VALUE'])
      expect(setError.message).toMatch(/^value is nested more than 1000 levels deep/)
    }
    const updateError = await rejectionOf(doc.update(() => tooDeep))
    expect(updateError.code).toBe('ERR_INVALID_ARG_VALUE')
    const mutateError = await rejectionOf(doc.update((v) => void (v.tree = nest(LIMIT))))
    expect(mutateError.code).toBe('ERR_INVALID_ARG_VALUE')
    const editError = caught(() => doc.edit(() => tooDeep))
    expect(editError.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(doc.hasUnsavedChanges).toBe(false)
    expect(onDisk()).toStrictEqual(roles())
    await doc.set(atLimit)
    expect(onDisk()).toStrictEqual(atLimit)
    doc.edit((v) => void (v.more = nest(LIMIT - 1)))
    await doc.save()
    expect(onDisk()).toStrictEqual({ ...atLimit, more: nest(LIMIT - 1) })
    await doc.close()
  })
})

// What set() refuses, defaultValue refuses the same way, and nothing is written.
class Role {
  constructor() {
    this.id = 'r'
  }
}
const cycle = { roles: [] }
cycle.roles.push(cycle)
const notAContainer = [
  ['5', 5],
  ['a string', 'str'],
  ['null', null],
  ['true', true],
  ['a Date', new Date(0)],
  ['a Map', new Map([['a', 1]])],
  ['a class instance', new Role()],
  ['a function', () => ({ roles: [] })],
  ['a symbol', Symbol('doc')],
  ['a BigInt', 5n],
]
const badInside = [
  ['a cycle', cycle],
  ['a function inside', { roles: [], load() {} }],
  ['a symbol inside', { roles: [Symbol('x')] }],
  ['a throwing toJSON', { roles: [], at: { toJSON: () => { throw new Error('no JSON') } } }],
]

describe('defaultValue: a plain object or an array, checked as set() checks values', () => {
  it.each([...notAContainer, ...badInside])('%s: TypeError ERR_INVALID_ARG_VALUE at once, like set(); no file, nothing beside it', async (_, value) => {
    const error = await rejectionOf(manager().openDocument(file, { defaultValue: value }))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(error.message).toMatch(/^options\.defaultValue /)
    expect(fs.readdirSync(dir)).toStrictEqual([])
    // set() says the same of it.
    const other = path.join(dir, 'other.json')
    fs.writeFileSync(other, '{}')
    const doc = await manager().openDocument(other, { watch: false })
    const setError = await rejectionOf(doc.set(value))
    expect([setError.constructor, setError.code]).toStrictEqual([TypeError, 'ERR_INVALID_ARG_VALUE'])
    expect(setError.message.replace(/^value /, '')).toBe(error.message.replace(/^options\.defaultValue /, ''))
    await doc.close()
    expect(fs.readFileSync(other, 'utf8')).toBe('{}')
  })

  it('plain objects (any realm, no prototype) and arrays are written as JSON has them', async () => {
    const bare = Object.assign(Object.create(null), { roles: [], gone: undefined, at: new Date(0) })
    await (await manager().openDocument(file, { defaultValue: bare })).close()
    expect(fs.readFileSync(file, 'utf8')).toBe('{\n  "roles": [],\n  "at": "1970-01-01T00:00:00.000Z"\n}\n')
    fs.rmSync(file)
    const otherRealm = require('node:vm').runInNewContext('({ roles: [{ id: "a" }] })')
    await (await manager().openDocument(file, { defaultValue: otherRealm })).close()
    expect(onDisk()).toStrictEqual({ roles: [{ id: 'a' }] })
    fs.rmSync(file)
    await (await manager().openDocument(file, { defaultValue: [1, undefined] })).close()
    expect(onDisk()).toStrictEqual([1, null])
  })

  it('the value is copied when opening: changing the caller’s object later changes nothing', async () => {
    const value = { roles: [] }
    const doc = await manager().openDocument(file, { defaultValue: value })
    value.roles.push('late')
    expect(doc.get()).toStrictEqual({ roles: [] })
    expect(onDisk()).toStrictEqual({ roles: [] })
    await doc.close()
  })
})

describe('values a file cannot hold, through set, update and edit', () => {
  it.each([...notAContainer, ...badInside])('%s: refused with ERR_INVALID_ARG_VALUE, nothing changed', async (_, value) => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    const [setError, updateError] = await Promise.all([rejectionOf(doc.set(value)), rejectionOf(doc.update(() => value))])
    for (const error of [setError, updateError, caught(() => doc.edit(() => value))]) {
      expect([error.constructor, error.code]).toStrictEqual([TypeError, 'ERR_INVALID_ARG_VALUE'])
    }
    expect(doc.hasUnsavedChanges).toBe(false)
    expect(doc.get()).toStrictEqual(roles())
    expect(onDisk()).toStrictEqual(roles())
    await doc.close()
  })

  it('a refused update in a batch fails alone: the calls beside it are written', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { watch: false })
    const results = await Promise.allSettled([
      doc.update((v) => void (v.a = 1)),
      doc.update((v) => void (v.bad = () => 1)),
      doc.update((v) => void (v.b = 2)),
    ])
    expect(results.map((r) => r.status)).toStrictEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(results[1].reason.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(onDisk()).toStrictEqual({ ...roles(), a: 1, b: 2 })
    await doc.close()
  })
})

describe('saveDelayMs', () => {
  /** Runs `fn`: no timer of it may be too long for Node (which would emit a TimeoutOverflowWarning and fire at once). */
  async function withoutTimeoutOverflow(fn) {
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      await fn()
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning')
  }

  it('Infinity: edits are saved only by save() or close(), never by a timer', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    await withoutTimeoutOverflow(async () => {
      const doc = await manager().openDocument(file, { saveDelayMs: Infinity, watch: false })
      doc.edit((v) => void (v.n = 1))
      await sleep(300)
      expect(onDisk()).toStrictEqual(roles())
      expect(doc.hasUnsavedChanges).toBe(true)
      await doc.save()
      expect(onDisk().n).toBe(1)
      doc.edit((v) => void (v.n = 2))
      await sleep(100)
      expect(onDisk().n).toBe(1)
      await doc.close()
      expect(onDisk().n).toBe(2)
    })
  })

  it('the longest timer (2^31 - 1 ms) is accepted and does not fire early; close() saves', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    await withoutTimeoutOverflow(async () => {
      const doc = await manager().openDocument(file, { saveDelayMs: 2 ** 31 - 1, watch: false })
      doc.edit((v) => void (v.n = 1))
      await sleep(300)
      expect(onDisk()).toStrictEqual(roles())
      await doc.close()
      expect(onDisk().n).toBe(1)
    })
  })

  it.each([
    ['2^31 + 1', 2 ** 31 + 1],
    ['2^31', 2 ** 31],
    ['Number.MAX_VALUE', Number.MAX_VALUE],
    ['-1', -1],
    ['NaN', NaN],
    ['-Infinity', -Infinity],
  ])('%s: RangeError ERR_OUT_OF_RANGE, nothing created', async (_, saveDelayMs) => {
    const error = await rejectionOf(manager().openDocument(file, { defaultValue: {}, saveDelayMs }))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.code).toBe('ERR_OUT_OF_RANGE')
    expect(error.message).toMatch(/^options\.saveDelayMs /)
    expect(fs.existsSync(file)).toBe(false)
  })

  it('not a number: TypeError ERR_INVALID_ARG_TYPE', async () => {
    const error = await rejectionOf(manager().openDocument(file, { defaultValue: {}, saveDelayMs: '50' }))
    expect([error.constructor, error.code]).toStrictEqual([TypeError, 'ERR_INVALID_ARG_TYPE'])
  })

  it('0 saves right after the edit', async () => {
    fs.writeFileSync(file, JSON.stringify(roles()))
    const doc = await manager().openDocument(file, { saveDelayMs: 0, watch: false })
    const saved = nextEvent(doc, 'saved')
    doc.edit((v) => void (v.n = 1))
    await saved
    expect(onDisk().n).toBe(1)
    await doc.close()
  })
})

describe("a document's copy of a value is JSON.parse(JSON.stringify(value)), frozen", () => {
  const { documentValue } = require('../lib/json-values.js')
  const { lcg } = require('../testkit/random.mjs')
  const KEYS = ['a', 'b', '__proto__', '2', '10', 'toString', lone, 'z']
  const LEAVES = [0, -0, 1.5, -1e300, NaN, Infinity, 5e-324, '', 'x', lone, true, false, null, undefined]

  // Plain data of every kind the fast path copies, and now and then one it must not.
  function randomValue(random, depth, odd) {
    const pick = (xs) => xs[Math.floor(random() * xs.length)]
    if (depth > 4 || random() < 0.3) {
      if (odd && random() < 0.05) return pick([new Date(0), { toJSON: () => 'j' }, Object.create({ inherited: 1 }), Object(5), Object('s')])
      return pick(LEAVES)
    }
    if (random() < 0.4) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1, odd))
    const object = random() < 0.1 ? Object.create(null) : {}
    for (let i = Math.floor(random() * 5); i > 0; i--) {
      const key = pick(KEYS)
      const member = randomValue(random, depth + 1, odd)
      Object.defineProperty(object, key, { value: member, enumerable: true, writable: true, configurable: true })
    }
    return object
  }

  // Deep equality that also compares key order, prototypes and frozenness.
  function expectSameAsRoundTrip(value) {
    const copy = documentValue(value)
    const expected = JSON.parse(JSON.stringify(value))
    const walk = (a, b) => {
      expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b))
      expect(Object.isFrozen(a)).toBe(true)
      expect(Object.keys(a)).toEqual(Object.keys(b))
      for (const key of Object.keys(b)) {
        if (b[key] !== null && typeof b[key] === 'object') walk(a[key], b[key])
        else expect(Object.is(a[key], b[key])).toBe(true)
      }
    }
    walk(copy, expected)
    expect(copy).not.toBe(value)
  }

  it('for 3,000 seeded random values of plain data, and values with Dates, toJSON and boxed members among them', () => {
    for (const [seed, odd] of [[1, false], [2, true]]) {
      const random = lcg(seed)
      for (let i = 0; i < 1500; i++) {
        const value = random() < 0.5 ? { root: randomValue(random, 0, odd) } : [randomValue(random, 0, odd)]
        expectSameAsRoundTrip(value)
      }
    }
  })

  it('owns nothing of the value it was given: changing that value later changes no copy', () => {
    const value = { roles: [{ id: 'a', permissions: ['read'] }] }
    const copy = documentValue(value)
    value.roles[0].permissions.push('write')
    value.roles.push({ id: 'b' })
    expect(copy).toEqual({ roles: [{ id: 'a', permissions: ['read'] }] })
  })

  it('calls a getter once, and a throwing one is refused with a code', () => {
    let calls = 0
    const value = { get n() {
      calls++
      return 1
    } }
    expect(documentValue(value)).toEqual({ n: 1 })
    expect(calls).toBe(1)
    expect(() => documentValue({ get n() {
      throw new Error('boom')
    } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })
})
