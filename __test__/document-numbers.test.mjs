// Numbers JS cannot hold exactly (exact-numbers.js, crates/file-lock-core/src/document/number_text.rs):
// a value nobody changed is written back with its own text, through every
// write path; a BigInt writes its exact digits; a number never lands in
// another element's place.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Child, dir, file, FIXTURES, nextEvent, runSnippet, useScratchDir, waitUntil } from './helpers.mjs'

const require = createRequire(import.meta.url)
const native = require('../native.js')

const manager = useScratchDir()
afterEach(() => vi.restoreAllMocks())

const onDisk = () => fs.readFileSync(file, 'utf8')
const open = (options) => manager().openDocument(file, { watch: false, ...options })

// What the document writes: JSON.stringify's text, with each placeholder
// string "@X" replaced by tokens.X (the file's own number text).
function written(value, tokens = {}) {
  return `${JSON.stringify(value, null, 2)}\n`.replace(/"@(\w+)"/g, (_, name) => tokens[name])
}

// `text` in the file, then one update(recipe) through a document: the file's text after it.
async function textAfterUpdate(text, recipe) {
  fs.writeFileSync(file, text)
  const doc = await open()
  await doc.update(recipe)
  const after = onDisk()
  await doc.close()
  return after
}

// Another instance: a fresh Node process updating the document through the package.
async function otherProcessUpdates(body) {
  const { exited } = runSnippet(file, `
    const manager = new FileLockManager()
    const doc = await manager.openDocument(file, { watch: false })
    await doc.update((v) => { ${body} })
    await doc.close()
    await manager.close()`)
  const { code, out } = await exited
  expect(code, out).toBe(0)
}

describe('the issue: untouched numbers keep their text', () => {
  it('9007199254740993, a snowflake id and 1e400 survive update(v => { v.other = 2 }) byte for byte', async () => {
    fs.writeFileSync(file, '{"big": 9007199254740993, "snowflake": 1234567890123456789, "huge": 1e400}')
    const doc = await open()
    // Reads give what JSON.parse gives.
    expect(doc.get()).toStrictEqual({ big: 9007199254740992, snowflake: 1234567890123456800, huge: Infinity })
    await doc.update((v) => {
      v.other = 2
    })
    expect(onDisk()).toBe('{\n  "big": 9007199254740993,\n  "snowflake": 1234567890123456789,\n  "huge": 1e400,\n  "other": 2\n}\n')
    // get() is what any reader of the file gets.
    expect(doc.get()).toStrictEqual({ big: 9007199254740992, snowflake: 1234567890123456800, huge: Infinity, other: 2 })
    // And again: the texts are kept write after write.
    await doc.update((v) => {
      v.other = 3
    })
    expect(onDisk()).toBe('{\n  "big": 9007199254740993,\n  "snowflake": 1234567890123456789,\n  "huge": 1e400,\n  "other": 3\n}\n')
    await doc.close()
  })

  it('every kind of token JS changes: long integers and decimals, overflow, underflow, negative zero', async () => {
    const tokens = {
      int: '-123456789012345678901234567890',
      decimal: '0.1000000000000000055511151231257827',
      pi: '3.14159265358979323846264338327950288',
      over: '1e400',
      negOver: '-1e400',
      upper: '1E400',
      under: '1e-400',
      negUnder: '-1e-400',
      zero: '-0',
      zeroDecimal: '-0.0',
      sub: '2e-324',
    }
    fs.writeFileSync(file, `{${Object.entries(tokens).map(([k, t]) => `"${k}": ${t}`).join(', ')}}`)
    const doc = await open()
    await doc.update((v) => {
      v.other = true
    })
    const placeholders = Object.fromEntries(Object.keys(tokens).map((k) => [k, `@${k}`]))
    expect(onDisk()).toBe(written({ ...placeholders, other: true }, tokens))
    await doc.close()
  })

  it('a token that only changes its spelling is written as JSON.stringify spells it (same value)', async () => {
    expect(await textAfterUpdate('{"a": 1.0, "b": 1E2, "c": 0.10, "d": 100000000000000000000, "e": 1e21}', (v) => void (v.other = 1))).toBe(written({ a: 1, b: 100, c: 0.1, d: 1e20, e: 1e21, other: 1 }))
  })

  it('nested objects and arrays, any depth', async () => {
    fs.writeFileSync(
      file,
      '{"roles": [{"id": "a", "perms": [1, 9007199254740993, {"q": [1e400]}]}], "matrix": [[1, [2, -0]], [1234567890123456789]], "deep": {"x": {"y": {"z": 0.1000000000000000055511151231257827}}}}',
    )
    const doc = await open()
    await doc.update((v) => {
      v.roles[0].name = 'Admin'
      v.matrix.push([3])
    })
    expect(onDisk()).toBe(
      written(
        { roles: [{ id: 'a', perms: [1, '@A', { q: ['@B'] }], name: 'Admin' }], matrix: [[1, [2, '@C']], ['@D'], [3]], deep: { x: { y: { z: '@E' } } } },
        { A: '9007199254740993', B: '1e400', C: '-0', D: '1234567890123456789', E: '0.1000000000000000055511151231257827' },
      ),
    )
    await doc.close()
  })

  it('keys with escapes, unicode and lone surrogates are matched decoded', async () => {
    expect(await textAfterUpdate('{"a\\"b": 9007199254740993, "\\u0041": 1e400, "é😀": -0, "\\ud83d\\ude00": 1e-400, "\\ud800": 1234567890123456789, "\\ud801": 1}', (v) => void (v.other = 1))).toBe(
      written(
        { 'a"b': '@P', A: '@Q', 'é😀': '@R', '😀': '@S', '\ud800': '@T', '\ud801': 1, other: 1 },
        { P: '9007199254740993', Q: '1e400', R: '-0', S: '1e-400', T: '1234567890123456789' },
      ),
    )
  })

  it('a key that appears twice keeps the text of the occurrence JSON.parse kept, never the other', async () => {
    expect(await textAfterUpdate('{"a": 9007199254740993, "a": 5, "b": 1, "b": 9007199254740995, "h": 1e400, "h": null}', (v) => void (v.other = 1))).toBe(written({ a: 5, b: '@B', h: null, other: 1 }, { B: '9007199254740995' }))
  })

  it('a byte order mark before the text does not shift anything', async () => {
    expect(await textAfterUpdate('\ufeff{"big": 9007199254740993}', (v) => void (v.other = 1))).toBe(written({ big: '@B', other: 1 }, { B: '9007199254740993' }))
  })
})

describe('every write path', () => {
  const text = '{"big": 9007199254740993, "huge": 1e400, "roles": [{"id": "a", "n": 1234567890123456789}]}'
  const expected = (extra) => written({ big: '@B', huge: '@H', roles: [{ id: 'a', n: '@N' }], ...extra }, { B: '9007199254740993', H: '1e400', N: '1234567890123456789' })

  it('set() of the value read, changed elsewhere', async () => {
    fs.writeFileSync(file, text)
    const doc = await open()
    await doc.set({ ...doc.get(), other: 1 })
    expect(onDisk()).toBe(expected({ other: 1 }))
    await doc.close()
  })

  it('edits saved by save(), and by close()', async () => {
    fs.writeFileSync(file, text)
    const doc = await open()
    doc.edit((v) => void (v.other = 1))
    await doc.save()
    expect(onDisk()).toBe(expected({ other: 1 }))
    doc.edit((v) => void (v.other = 2))
    await doc.close()
    expect(onDisk()).toBe(expected({ other: 2 }))
  })

  it('a write after another instance wrote: the texts of the version read last are kept', async () => {
    fs.writeFileSync(file, text)
    const doc = await open()
    // The other process changes one of them (exactly, with a BigInt) and adds one.
    await otherProcessUpdates('v.big = 9007199254740995n; v.added = 1234567890123456790n')
    await doc.update((v) => void (v.other = 1))
    expect(onDisk()).toBe(
      written({ big: '@B', huge: '@H', roles: [{ id: 'a', n: '@N' }], added: '@A', other: 1 }, { B: '9007199254740995', H: '1e400', N: '1234567890123456789', A: '1234567890123456790' }),
    )
    await doc.close()
  })

  it('unsaved edits merged with a change another process saved: untouched numbers of both keep their text', async () => {
    fs.writeFileSync(file, '{"big": 9007199254740993, "huge": 1e400, "z": -0, "roles": [{"id": "a", "name": "A", "n": 1234567890123456789}]}')
    const doc = await manager().openDocument(file) // watching: the change is merged as it arrives
    doc.edit((v) => void (v.roles[0].name = 'Admin'))
    const merged = nextEvent(doc, 'merged')
    // Another instance, its own process, with its own edits saved through the package.
    const editor = new Child(path.join(FIXTURES, 'editor-child.mjs'))
    await editor.waitFor('ready')
    await editor.request({ cmd: 'open', file, options: { watch: false } }, 'done')
    await editor.request({ cmd: 'edit', id: 'b', name: 'B' }, 'done')
    await editor.request({ cmd: 'save' }, 'done')
    await editor.request({ cmd: 'close' }, 'done')
    // Their write kept the texts (it went through the same code, in that process).
    expect(onDisk()).toContain('"n": 1234567890123456789')
    await merged
    await doc.save()
    expect(onDisk()).toBe(
      written(
        { big: '@B', huge: '@H', z: '@Z', roles: [{ id: 'a', name: 'Admin', n: '@N' }, { id: 'b', name: 'B' }] },
        { B: '9007199254740993', H: '1e400', Z: '-0', N: '1234567890123456789' },
      ),
    )
    await doc.close()
  })

  it('unsaved edits merged at save() with a raw rewrite by another program: theirs are the texts kept', async () => {
    fs.writeFileSync(file, '{"big": 9007199254740993, "roles": [{"id": "a", "name": "A", "n": 1234567890123456789}]}')
    const doc = await open()
    doc.edit((v) => void (v.roles[0].name = 'Admin'))
    // A text editor: changes big to another number with the same JS value, adds a role.
    const editor = new Child(path.join(FIXTURES, 'editor-child.mjs'))
    await editor.waitFor('ready')
    const theirs = '{"big": 9007199254740992.5, "roles": [{"id": "b", "n": 1234567890123456791}, {"id": "a", "name": "A", "n": 1234567890123456789}]}'
    await editor.request({ cmd: 'replace', file, text: theirs }, 'done')
    await doc.save()
    expect(onDisk()).toBe(
      written(
        { big: '@B', roles: [{ id: 'b', n: '@M' }, { id: 'a', name: 'Admin', n: '@N' }] },
        { B: '9007199254740992.5', M: '1234567890123456791', N: '1234567890123456789' },
      ),
    )
    await doc.close()
  })

  it('recovery from a backup restores its numbers exactly', async () => {
    const good = '{"big": 9007199254740993, "list": [1e400, -0]}'
    fs.writeFileSync(file, good)
    await (await open()).close() // the open keeps this version as a backup
    fs.writeFileSync(file, '{"big": 90071992547') // torn by some other program
    const doc = await open({ recoverFromBackup: true })
    expect(doc.recovery).not.toBeNull()
    expect(onDisk()).toBe(written({ big: '@B', list: ['@H', '@Z'] }, { B: '9007199254740993', H: '1e400', Z: '-0' }))
    await doc.update((v) => void (v.other = 1))
    expect(onDisk()).toBe(written({ big: '@B', list: ['@H', '@Z'], other: 1 }, { B: '9007199254740993', H: '1e400', Z: '-0' }))
    await doc.close()
  })
})

describe('changing such a value is explicit', () => {
  it('BigInts in unsaved edits meet another instance\'s change: merged, each written as its digits where the merge kept it', async () => {
    fs.writeFileSync(file, JSON.stringify({ roles: [{ id: 'a', n: 1 }, { id: 'b', n: 2 }, { id: 'c', n: 3 }], note: 'x' }))
    const doc = await open()
    doc.edit((v) => {
      v.roles[0].n = 12345678901234567890n // an edit of an element another instance moves
      v.roles.push({ id: 'd', n: -98765432109876543210n, list: [1n, 'keep'] }) // an element of its own
      v.total = 9007199254740993n
    })
    // The other instance reverses the roles and changes c and the note.
    await otherProcessUpdates(`v.roles.reverse(); v.roles[0].n = 30; v.note = 'theirs'`)
    const saved = await doc.save()
    expect(doc.conflict).toBe(null)
    expect(onDisk()).toContain('"n": 12345678901234567890')
    expect(onDisk()).toContain('"n": -98765432109876543210')
    expect(onDisk()).toContain('"total": 9007199254740993')
    const read = JSON.parse(onDisk())
    // d lands after its neighbour in mine (c), as the merge places added elements.
    expect(read.roles.map((r) => r.id)).toEqual(['c', 'd', 'b', 'a'])
    expect(read.roles[0].n).toBe(30)
    expect(read.roles[1].list).toEqual([1, 'keep'])
    expect(read.note).toBe('theirs')
    expect(saved.roles[3].n).toBe(12345678901234567890n) // the value written, as merged
  })

  it('a BigInt edit and another instance\'s change of the same member: a conflict, both kept, resolved either way', async () => {
    fs.writeFileSync(file, JSON.stringify({ id: 1 }))
    const doc = await open()
    doc.edit((v) => void (v.id = 1234567890123456789n))
    await otherProcessUpdates('v.id = 2')
    const error = await doc.save().catch((e) => e)
    expect(error.code).toBe('ECONFLICT')
    expect(doc.hasUnsavedChanges).toBe(true)
    // Both versions are kept while the conflict waits (written as the document writes).
    const kept = () => (fs.existsSync(path.join(dir, '.roles.json.backups')) ? fs.readdirSync(path.join(dir, '.roles.json.backups')) : [])
    await waitUntil(() => kept().some((name) => name.endsWith('.conflict-mine')), 5000, 'the conflict backups')
    const mineKept = kept().find((name) => name.endsWith('.conflict-mine'))
    expect(fs.readFileSync(path.join(dir, '.roles.json.backups', mineKept), 'utf8')).toBe('{\n  "id": 1234567890123456789\n}\n')
    await doc.conflict.resolve('mine')
    expect(onDisk()).toBe('{\n  "id": 1234567890123456789\n}\n')
  })

  it('a BigInt writes its exact digits (update, set, edit, defaultValue); reads give JS numbers again', async () => {
    fs.writeFileSync(file, '{"big": 9007199254740993}')
    const doc = await open()
    const result = await doc.update((v) => {
      v.big = 9007199254740995n
      v.list = [1n, -123456789012345678901234567890n, Object(5n)]
    })
    expect(result.big).toBe(9007199254740995n) // the value written, as given
    expect(onDisk()).toBe(written({ big: '@B', list: [1, '@L', 5] }, { B: '9007199254740995', L: '-123456789012345678901234567890' }))
    expect(doc.get().big).toBe(9007199254740996) // what a reader of the file gets
    // Kept from then on like any number read.
    await doc.update((v) => void (v.other = 1))
    expect(onDisk()).toContain('"big": 9007199254740995,')
    await doc.set({ ...doc.get(), big: 12345678901234567890n })
    expect(onDisk()).toContain('"big": 12345678901234567890,')
    doc.edit((v) => void (v.big = 98765432109876543210n))
    await doc.save()
    expect(onDisk()).toContain('"big": 98765432109876543210,')
    await doc.close()
    fs.rmSync(file)
    await (await open({ defaultValue: { id: 1234567890123456789n } })).close()
    expect(onDisk()).toBe('{\n  "id": 1234567890123456789\n}\n')
  })

  it('a string that looks like a BigInt’s digits (or anything else) stays a string', async () => {
    fs.writeFileSync(file, '{}')
    const doc = await open()
    const looksLikeOne = { [Symbol.toStringTag]: 'BigInt', digits: '5' }
    await doc.set({ s: '12345678901234567890', n: 12345678901234567890n, t: '"12345678901234567890"', list: ['1', 1n, '1'], o: looksLikeOne })
    expect(onDisk()).toBe(
      written({ s: '12345678901234567890', n: '@N', t: '"12345678901234567890"', list: ['1', '@X', '1'], o: { digits: '5' } }, { N: '12345678901234567890', X: '1' }),
    )
    await doc.close()
  })

  it('a plain number writes what JS has; the very number JS read there is no change', async () => {
    expect(await textAfterUpdate('{"a": 9007199254740993, "b": 9007199254740993, "c": 1e400, "d": 1e400, "z": -0}', (v) => {
      v.a = 5 // a change
      v.b = 9007199254740992 // what JS read there: not a change
      v.c = 1e308 // a change
      delete v.d // gone
      v.z = 0n // 0 exactly (a plain 0 is -0's JSON form: not a change)
    })).toBe(written({ a: 5, b: '@B', c: 1e308, z: '@Z' }, { B: '9007199254740993', Z: '0' }))
  })
})

describe('array elements never lend their numbers to others', () => {
  // Two snowflake ids a double cannot tell apart (both 1234567890123456800 in JS).
  const A = '1234567890123456789'
  const B = '1234567890123456790'

  it('elements with ids are found by id: removed, reordered, inserted', async () => {
    fs.writeFileSync(file, `{"roles": [{"id": "a", "n": ${A}}, {"id": "b", "n": ${B}}, {"id": "c", "n": 1}]}`)
    const doc = await open()
    await doc.update((v) => void v.roles.reverse())
    expect(onDisk()).toBe(written({ roles: [{ id: 'c', n: 1 }, { id: 'b', n: '@B' }, { id: 'a', n: '@A' }] }, { A, B }))
    await doc.update((v) => void v.roles.splice(2, 1)) // a is gone
    await doc.update((v) => void v.roles.unshift({ id: 'x', n: 1234567890123456800 }))
    expect(onDisk()).toBe(written({ roles: [{ id: 'x', n: 1234567890123456800 }, { id: 'c', n: 1 }, { id: 'b', n: '@B' }] }, { B }))
    await doc.close()
  })

  it('elements without ids: kept while their place is certain, else written as JS has them', async () => {
    fs.writeFileSync(file, `{"list": [{"name": "a", "n": ${A}}, {"name": "b", "n": ${B}}], "ids": [${A}, 9007199254740993, 7], "same": [${A}, ${B}, 7]}`)
    const doc = await open()
    // Swapped: either could be either, so neither gets a text it may not own.
    await doc.update((v) => void v.list.reverse())
    const swapped = onDisk()
    expect(swapped).not.toMatch(new RegExp(`"name": "b",\\s+"n": ${A}`))
    expect(swapped).not.toMatch(new RegExp(`"name": "a",\\s+"n": ${B}`))
    // Untouched arrays keep theirs.
    expect(swapped).toContain(`"ids": [\n    ${A},\n    9007199254740993,\n    7\n  ]`)
    expect(swapped).toContain(`"same": [\n    ${A},\n    ${B},\n    7\n  ]`)
    // The first removed: the rest shift and keep theirs. Of two equal JS
    // values, which one went is unknown: the one left gets neither text.
    await doc.update((v) => {
      v.ids.shift()
      v.same.shift()
    })
    expect(onDisk()).toContain(`"ids": [\n    9007199254740993,\n    7\n  ]`)
    expect(onDisk()).toContain(`"same": [\n    1234567890123456800,\n    7\n  ]`)
    await doc.close()
  })

  it('an element changed in place, and elements added around others, keep their numbers', async () => {
    fs.writeFileSync(file, `{"list": [{"name": "a", "n": ${A}}, {"name": "b", "n": ${B}}]}`)
    const doc = await open()
    await doc.update((v) => void (v.list[1].name = 'B'))
    expect(onDisk()).toBe(written({ list: [{ name: 'a', n: '@A' }, { name: 'B', n: '@B' }] }, { A, B }))
    await doc.update((v) => {
      v.list.push({ name: 'c' })
      v.list.splice(1, 0, { name: 'm' })
      v.list.unshift({ name: 'z' })
    })
    expect(onDisk()).toBe(written({ list: [{ name: 'z' }, { name: 'a', n: '@A' }, { name: 'm' }, { name: 'B', n: '@B' }, { name: 'c' }] }, { A, B }))
    await doc.close()
  })
})

describe('cost', () => {
  it('a document whose numbers are all exact is written with no native splice at all', async () => {
    const splice = vi.spyOn(native, 'spliceNumberTokens')
    fs.writeFileSync(file, '{"roles": [{"id": "a", "n": 1, "x": 0.5}], "t": 1700000000000}')
    const doc = await open()
    await doc.update((v) => void (v.other = 1))
    await doc.set({ ...doc.get(), more: 2 })
    expect(onDisk()).toBe(written({ roles: [{ id: 'a', n: 1, x: 0.5 }], t: 1700000000000, other: 1, more: 2 }))
    expect(splice).not.toHaveBeenCalled()
    await doc.close()
  })
})

describe('which tokens are inexact: V8 itself is the judge', () => {
  // "-0012.3400e2" → digits without the zeros around them, and the power of the first.
  function decimal(text) {
    const t = text.replace(/^-/, '')
    const [mantissa, exp = '0'] = t.split(/e/i)
    const point = mantissa.includes('.') ? mantissa.indexOf('.') : mantissa.length
    const digits = mantissa.replace('.', '')
    const lead = digits.length - digits.replace(/^0+/, '').length
    const sig = digits.replace(/^0+/, '').replace(/0+$/, '')
    return sig === '' ? 'zero' : `${sig}e${point - 1 - lead + Number(exp)}`
  }
  // JSON.stringify(JSON.parse(token)) denotes another value (or drops -0's sign).
  const changedByJs = (token) => {
    const value = JSON.parse(token)
    if (Object.is(value, -0) || !Number.isFinite(value)) return true
    return decimal(token) !== decimal(JSON.stringify(value))
  }

  it('agrees with JSON.parse + JSON.stringify on 100,000 generated tokens', () => {
    let seed = 0x2545f491
    const random = (n) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const digits = (n) => Array.from({ length: n }, () => random(10)).join('')
    let inexact = 0
    for (let i = 0; i < 100_000; i++) {
      let int = digits(1 + random(22)).replace(/^0+(?=\d)/, '')
      if (random(8) === 0) int = '0'
      let token = (random(4) === 0 ? '-' : '') + int
      if (random(2) === 0) token += `.${digits(1 + random(22))}`
      if (random(3) === 0) token += `${random(2) ? 'e' : 'E'}${['', '+', '-'][random(3)]}${random(340)}`
      const expected = changedByJs(token)
      const found = native.inexactNumberTokens(`[${token}]`) !== null
      if (found !== expected) throw new Error(`${token}: native says ${found ? 'inexact' : 'exact'}, V8 says ${expected ? 'inexact' : 'exact'}`)
      if (expected) inexact++
    }
    expect(inexact).toBeGreaterThan(10_000)
    expect(inexact).toBeLessThan(90_000)
  })

  it('what JSON.stringify writes is never reported', () => {
    const view = new DataView(new ArrayBuffer(8))
    const values = []
    for (let i = 0; i < 50_000; i++) {
      view.setUint32(0, (Math.random() * 2 ** 32) >>> 0)
      view.setUint32(4, (Math.random() * 2 ** 32) >>> 0)
      const value = view.getFloat64(0)
      if (Number.isFinite(value) && !Object.is(value, -0)) values.push(value)
    }
    expect(native.inexactNumberTokens(JSON.stringify(values))).toBeNull()
  })
})
