// mergeJson / diffJson (merge.js): the three-way merge of a JSON document edited
// here and changed on disk elsewhere, through the package's JS surface.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'

const require = createRequire(import.meta.url)
const { mergeJson, diffJson } = require('../lib/merge.js')

const roles = () => ({
  version: 1,
  roles: [
    { id: 'admin', name: 'Admin', permissions: ['read', 'write', 'delete'] },
    { id: 'editor', name: 'Editor', permissions: ['read', 'write'] },
    { id: 'viewer', name: 'Viewer', permissions: ['read'] },
  ],
})

/** `roles()` changed by `edit`. */
function edited(edit) {
  const doc = roles()
  edit(doc)
  return doc
}
const role = (doc, id) => doc.roles.find((r) => r.id === id)
const removeRole = (doc, id) => {
  doc.roles = doc.roles.filter((r) => r.id !== id)
}
const ids = (doc) => doc.roles.map((r) => r.id)

const mirror = (c) => {
  const out = { ...c }
  delete out.mine
  delete out.theirs
  if ('mine' in c) out.theirs = c.mine
  if ('theirs' in c) out.mine = c.theirs
  if (c.deletedBy) out.deletedBy = c.deletedBy === 'mine' ? 'theirs' : 'mine'
  return out
}

/** Merges both ways round and checks that the outcome does not depend on the side. */
function merge(base, mine, theirs, options) {
  const result = mergeJson(base, mine, theirs, options)
  const swapped = mergeJson(base, theirs, mine, options)
  expect(swapped.merged).toStrictEqual(result.merged)
  expect(swapped.conflicts.map(mirror)).toStrictEqual(result.conflicts)
  expect(result.clean).toBe(result.conflicts.length === 0)
  return result
}

describe('mergeJson', () => {
  it('merges edits of different fields of the same role', () => {
    const mine = edited((d) => {
      role(d, 'editor').name = 'Writer'
    })
    const theirs = edited((d) => {
      role(d, 'editor').permissions = ['read', 'write', 'publish']
      d.version = 2
    })
    expect(merge(roles(), mine, theirs)).toStrictEqual({
      merged: {
        version: 2,
        roles: [
          { id: 'admin', name: 'Admin', permissions: ['read', 'write', 'delete'] },
          { id: 'editor', name: 'Writer', permissions: ['read', 'write', 'publish'] },
          { id: 'viewer', name: 'Viewer', permissions: ['read'] },
        ],
      },
      conflicts: [],
      clean: true,
    })
  })

  it('keeps roles added on both sides, each after its predecessor', () => {
    const mine = edited((d) => {
      d.roles.splice(1, 0, { id: 'owner', name: 'Owner', permissions: [] })
    })
    const theirs = edited((d) => {
      d.roles.push({ id: 'guest', name: 'Guest', permissions: [] })
      d.roles.unshift({ id: 'root', name: 'Root', permissions: ['*'] })
    })
    const result = merge(roles(), mine, theirs)
    expect(result.conflicts).toStrictEqual([])
    expect(result.merged).toStrictEqual({
      version: 1,
      roles: [
        { id: 'root', name: 'Root', permissions: ['*'] },
        { id: 'admin', name: 'Admin', permissions: ['read', 'write', 'delete'] },
        { id: 'owner', name: 'Owner', permissions: [] },
        { id: 'editor', name: 'Editor', permissions: ['read', 'write'] },
        { id: 'viewer', name: 'Viewer', permissions: ['read'] },
        { id: 'guest', name: 'Guest', permissions: [] },
      ],
    })
  })

  it('keeps a reorder of one side together with the edits of the other', () => {
    const mine = edited((d) => {
      d.roles.reverse()
    })
    const theirs = edited((d) => {
      role(d, 'admin').name = 'Administrator'
      role(d, 'viewer').permissions = []
      d.roles.push({ id: 'guest', name: 'Guest', permissions: [] })
    })
    const result = merge(roles(), mine, theirs)
    expect(result.conflicts).toStrictEqual([])
    expect(result.merged).toStrictEqual({
      version: 1,
      roles: [
        { id: 'viewer', name: 'Viewer', permissions: [] },
        { id: 'guest', name: 'Guest', permissions: [] },
        { id: 'editor', name: 'Editor', permissions: ['read', 'write'] },
        { id: 'admin', name: 'Administrator', permissions: ['read', 'write', 'delete'] },
      ],
    })
  })

  it('reports a field changed differently on both sides and keeps its base value', () => {
    const mine = edited((d) => {
      role(d, 'admin').name = 'Administrator'
      d.version = 2
    })
    const theirs = edited((d) => {
      role(d, 'admin').name = 'Superuser'
    })
    expect(merge(roles(), mine, theirs)).toStrictEqual({
      merged: edited((d) => {
        d.version = 2
      }),
      conflicts: [{ path: '$.roles[id="admin"].name', kind: 'both-modified', base: 'Admin', mine: 'Administrator', theirs: 'Superuser' }],
      clean: false,
    })
  })

  it('reports delete against modify in both directions, naming the deleter', () => {
    const deleted = edited((d) => removeRole(d, 'editor'))
    const modified = edited((d) => {
      role(d, 'editor').permissions = ['read']
    })
    const editorBase = { id: 'editor', name: 'Editor', permissions: ['read', 'write'] }
    const editorModified = { id: 'editor', name: 'Editor', permissions: ['read'] }

    const mineDeleted = mergeJson(roles(), deleted, modified)
    expect(mineDeleted).toStrictEqual({
      merged: roles(),
      conflicts: [{ path: '$.roles[id="editor"]', kind: 'delete-modify', base: editorBase, theirs: editorModified, deletedBy: 'mine' }],
      clean: false,
    })
    expect('mine' in mineDeleted.conflicts[0]).toBe(false)

    const theirsDeleted = mergeJson(roles(), modified, deleted)
    expect(theirsDeleted).toStrictEqual({
      merged: roles(),
      conflicts: [{ path: '$.roles[id="editor"]', kind: 'delete-modify', base: editorBase, mine: editorModified, deletedBy: 'theirs' }],
      clean: false,
    })

    // An object member, the same way.
    const noVersion = edited((d) => {
      delete d.version
    })
    expect(merge(roles(), edited((d) => (d.version = 2)), noVersion)).toStrictEqual({
      merged: roles(),
      conflicts: [{ path: '$.version', kind: 'delete-modify', base: 1, mine: 2, deletedBy: 'theirs' }],
      clean: false,
    })
    // Deleted on one side, unchanged on the other: deleted.
    expect(merge(roles(), deleted, edited((d) => (d.version = 3))).merged).toStrictEqual(
      edited((d) => {
        removeRole(d, 'editor')
        d.version = 3
      }),
    )
  })

  it('takes identical edits once, deletions included', () => {
    const both = edited((d) => {
      role(d, 'admin').name = 'Administrator'
      removeRole(d, 'viewer')
      delete d.version
    })
    expect(merge(roles(), both, structuredClone(both))).toStrictEqual({ merged: both, conflicts: [], clean: true })
    const more = structuredClone(both)
    more.roles.push({ id: 'guest', name: 'Guest', permissions: [] })
    expect(merge(roles(), both, more)).toStrictEqual({ merged: more, conflicts: [], clean: true })
  })

  it('merges nested objects member by member', () => {
    const base = { ui: { theme: { dark: false, accent: 'blue' }, lang: 'en' }, window: { w: 800, h: 600 } }
    const mine = { ui: { theme: { dark: true, accent: 'blue' }, lang: 'en' }, window: { w: 1024, h: 600 } }
    const theirs = { ui: { theme: { dark: false, accent: 'red', font: 12 }, lang: 'de' }, window: { w: 800, h: 600 } }
    expect(merge(base, mine, theirs)).toStrictEqual({
      merged: { ui: { theme: { dark: true, accent: 'red', font: 12 }, lang: 'de' }, window: { w: 1024, h: 600 } },
      conflicts: [],
      clean: true,
    })
    const clash = merge(base, { ...base, window: { w: 1024 } }, { ...base, window: { w: 640, h: 480 } })
    expect(clash).toStrictEqual({
      merged: base,
      conflicts: [
        { path: '$.window.w', kind: 'both-modified', base: 800, mine: 1024, theirs: 640 },
        { path: '$.window.h', kind: 'delete-modify', base: 600, theirs: 480, deletedBy: 'mine' },
      ],
      clean: false,
    })
  })

  it('treats arrays without ids as atomic values', () => {
    const base = { tags: ['a', 'b'], other: 1 }
    expect(merge(base, { tags: ['a', 'b', 'c'], other: 1 }, { tags: ['a', 'b'], other: 2 })).toStrictEqual({
      merged: { tags: ['a', 'b', 'c'], other: 2 },
      conflicts: [],
      clean: true,
    })
    expect(merge(base, { tags: ['a', 'b', 'c'], other: 1 }, { tags: ['z', 'a', 'b'], other: 1 })).toStrictEqual({
      merged: base,
      conflicts: [{ path: '$.tags', kind: 'both-modified', base: ['a', 'b'], mine: ['a', 'b', 'c'], theirs: ['z', 'a', 'b'] }],
      clean: false,
    })
    // Permissions are plain arrays: two different changes to one role's list conflict.
    const result = merge(
      roles(),
      edited((d) => role(d, 'viewer').permissions.push('comment')),
      edited((d) => role(d, 'viewer').permissions.push('share')),
    )
    expect(result.merged).toStrictEqual(roles())
    expect(result.conflicts).toStrictEqual([
      { path: '$.roles[id="viewer"].permissions', kind: 'both-modified', base: ['read'], mine: ['read', 'comment'], theirs: ['read', 'share'] },
    ])
    // Repeated ids make an array atomic too.
    const dup = merge([{ id: 1 }], [{ id: 1 }, { id: 1, x: 1 }], [{ id: 1, y: 1 }])
    expect(dup.conflicts.map((c) => [c.path, c.kind])).toStrictEqual([['$', 'both-modified']])
  })

  it('merges a role added on both sides field by field; different values conflict', () => {
    const mine = edited((d) => d.roles.push({ id: 'guest', name: 'Visitor', permissions: ['read'], color: 'grey' }))
    const theirs = edited((d) => d.roles.push({ id: 'guest', name: 'Guest', permissions: ['read'] }))
    expect(merge(roles(), mine, theirs)).toStrictEqual({
      // "Guest" sorts before "Visitor": the same pick whichever side merges.
      merged: edited((d) => d.roles.push({ id: 'guest', name: 'Guest', permissions: ['read'], color: 'grey' })),
      conflicts: [{ path: '$.roles[id="guest"].name', kind: 'both-added', mine: 'Visitor', theirs: 'Guest' }],
      clean: false,
    })
  })

  it('reports an order conflict when both sides reorder differently, keeping base order', () => {
    const mine = edited((d) => {
      ;[d.roles[0], d.roles[1]] = [d.roles[1], d.roles[0]]
      role(d, 'viewer').name = 'Reader'
    })
    const theirs = edited((d) => {
      ;[d.roles[1], d.roles[2]] = [d.roles[2], d.roles[1]]
    })
    const result = merge(roles(), mine, theirs)
    expect(result.merged).toStrictEqual(edited((d) => (role(d, 'viewer').name = 'Reader')))
    expect(result.conflicts).toStrictEqual([
      { path: '$.roles', kind: 'order', base: ['admin', 'editor', 'viewer'], mine: ['editor', 'admin', 'viewer'], theirs: ['admin', 'viewer', 'editor'] },
    ])
  })

  it('uses the arrayKey option, names odd keys and number ids in paths', () => {
    const base = { 'odd key': [{ key: 7, v: 1 }, { key: 8, v: 1 }] }
    const result = merge(base, { 'odd key': [{ key: 7, v: 2 }, { key: 8, v: 2 }] }, { 'odd key': [{ key: 7, v: 3 }, { key: 8, v: 1 }] }, { arrayKey: 'key' })
    expect(result).toStrictEqual({
      merged: { 'odd key': [{ key: 7, v: 1 }, { key: 8, v: 2 }] },
      conflicts: [{ path: '$["odd key"][key=7].v', kind: 'both-modified', base: 1, mine: 2, theirs: 3 }],
      clean: false,
    })
    // With the default key these are plain arrays.
    expect(mergeJson(base, { 'odd key': [] }, { 'odd key': [{ key: 7, v: 1 }] }).conflicts[0].path).toBe('$["odd key"]')
  })

  it('with favor, decides every conflict for that side and still lists them', () => {
    const mine = edited((d) => {
      ;[d.roles[0], d.roles[1]] = [d.roles[1], d.roles[0]] // editor, admin, viewer
      role(d, 'admin').name = 'Administrator'
      delete d.version
    })
    const theirs = edited((d) => {
      d.roles.reverse() // viewer, editor, admin
      role(d, 'admin').name = 'Superuser'
      role(d, 'viewer').permissions = []
      d.version = 2
    })
    const plain = merge(roles(), mine, theirs)
    const summary = (result) => result.conflicts.map((c) => `${c.kind} ${c.path}`).sort()
    expect(summary(plain)).toStrictEqual(['both-modified $.roles[id="admin"].name', 'delete-modify $.version', 'order $.roles'])
    const admin = (name) => ({ id: 'admin', name, permissions: ['read', 'write', 'delete'] })
    const editor = { id: 'editor', name: 'Editor', permissions: ['read', 'write'] }
    const viewer = { id: 'viewer', name: 'Viewer', permissions: [] }

    const forMine = mergeJson(roles(), mine, theirs, { favor: 'mine' })
    expect(forMine.merged).toStrictEqual({ roles: [editor, admin('Administrator'), viewer] })
    expect(summary(forMine)).toStrictEqual(summary(plain))
    expect(forMine.clean).toBe(false)
    const forTheirs = mergeJson(roles(), mine, theirs, { favor: 'theirs' })
    expect(forTheirs.merged).toStrictEqual({ roles: [viewer, editor, admin('Superuser')], version: 2 })
    expect(mergeJson(roles(), theirs, mine, { favor: 'mine' }).merged).toStrictEqual(forTheirs.merged)

    // Delete against modify: favoring the side that modified keeps the modification.
    const deleted = edited((d) => removeRole(d, 'editor'))
    const modified = edited((d) => (role(d, 'editor').name = 'Writer'))
    expect(mergeJson(roles(), modified, deleted, { favor: 'mine' }).merged).toStrictEqual(modified)
    expect(mergeJson(roles(), modified, deleted, { favor: 'theirs' }).merged).toStrictEqual(deleted)
    // Clean merges are the same with or without favor.
    const clean = [roles(), edited((d) => (d.version = 2)), edited((d) => (role(d, 'viewer').name = 'Reader'))]
    expect(mergeJson(...clean, { favor: 'theirs' })).toStrictEqual(mergeJson(...clean))
  })

  it('validates its arguments', () => {
    const invalid = (fn, code) => {
      let error
      try {
        fn()
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe(code)
      return error
    }
    for (const arrayKey of ['', 1, null, {}]) {
      invalid(() => mergeJson({}, {}, {}, { arrayKey }), 'ERR_INVALID_ARG_TYPE')
      invalid(() => diffJson({}, {}, { arrayKey }), 'ERR_INVALID_ARG_TYPE')
    }
    invalid(() => mergeJson({}, {}, {}, null), 'ERR_INVALID_ARG_TYPE')
    invalid(() => mergeJson({}, {}, {}, 'id'), 'ERR_INVALID_ARG_TYPE')
    for (const favor of ['base', 'Mine', null, 1]) invalid(() => mergeJson({}, {}, {}, { favor }), 'ERR_INVALID_ARG_VALUE')
    const cycle = {}
    cycle.self = cycle
    expect(invalid(() => mergeJson(undefined, {}, {}), 'ERR_INVALID_ARG_VALUE').message).toMatch(/^base is not representable as JSON/)
    expect(invalid(() => mergeJson({}, () => {}, {}), 'ERR_INVALID_ARG_VALUE').message).toMatch(/^mine /)
    expect(invalid(() => mergeJson({}, {}, { n: 1n }), 'ERR_INVALID_ARG_VALUE').message).toMatch(/^theirs .*BigInt/)
    invalid(() => mergeJson({}, {}, cycle), 'ERR_INVALID_ARG_VALUE')
    invalid(() => mergeJson({}, {}, Symbol('x')), 'ERR_INVALID_ARG_VALUE')
    invalid(() => diffJson({}, undefined), 'ERR_INVALID_ARG_VALUE')
    // Nesting past the package's limit (1000 levels; document-values.test.mjs
    // has the rest, and lone surrogates, which merge like any string).
    let deep = 1
    for (let i = 0; i < 1001; i++) deep = [deep]
    expect(invalid(() => mergeJson({}, deep, {}), 'ERR_INVALID_ARG_VALUE').message).toMatch(/^mine is nested more than 1000 levels deep/)
    // Members without a JSON form are left out, as JSON.stringify (and so the saved file) does.
    expect(mergeJson({}, { a: 1, gone: undefined, f() {} }, {}).merged).toStrictEqual({ a: 1 })
    expect(mergeJson({}, { at: new Date(0) }, {}).merged).toStrictEqual({ at: '1970-01-01T00:00:00.000Z' })
  })
})

describe('diffJson', () => {
  it('lists what changed, by member and by id', () => {
    const after = edited((d) => {
      role(d, 'admin').name = 'Administrator'
      removeRole(d, 'viewer')
      d.roles.push({ id: 'guest', name: 'Guest', permissions: [] })
      d.version = 2
      d['odd key'] = true
    })
    // In document order (keys keep the order they have in the file).
    expect(diffJson(roles(), after)).toStrictEqual([
      { path: '$.version', kind: 'changed', before: 1, after: 2 },
      { path: '$.roles[id="admin"].name', kind: 'changed', before: 'Admin', after: 'Administrator' },
      { path: '$.roles[id="viewer"]', kind: 'removed', before: { id: 'viewer', name: 'Viewer', permissions: ['read'] } },
      { path: '$.roles[id="guest"]', kind: 'added', after: { id: 'guest', name: 'Guest', permissions: [] } },
      { path: '$["odd key"]', kind: 'added', after: true },
    ])
    expect(diffJson(roles(), roles())).toStrictEqual([])
  })

  it('reports a reorder once, at the array', () => {
    const after = edited((d) => {
      d.roles.reverse()
      role(d, 'editor').permissions = ['read']
    })
    expect(diffJson(roles(), after)).toStrictEqual([
      { path: '$.roles', kind: 'reordered', before: ['admin', 'editor', 'viewer'], after: ['viewer', 'editor', 'admin'] },
      { path: '$.roles[id="editor"].permissions', kind: 'changed', before: ['read', 'write'], after: ['read'] },
    ])
    expect(diffJson({ tags: [1, 2] }, { tags: [2, 1] })).toStrictEqual([{ path: '$.tags', kind: 'changed', before: [1, 2], after: [2, 1] }])
    expect(diffJson([{ n: 1, v: 1 }], [{ n: 1, v: 2 }], { arrayKey: 'n' })).toStrictEqual([{ path: '$[n=1].v', kind: 'changed', before: 1, after: 2 }])
  })
})

// mulberry32: a tiny seeded generator, so failures reproduce.
function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const below = (n) => Math.floor(next() * n)
  return { below, chance: (p) => next() < p, pick: (list) => list[below(list.length)] }
}

describe('mergeJson properties', () => {
  const KEYS = ['a', 'b', 'name', 'odd key']
  const IDS = ['admin', 'editor', 'viewer', 1, 2]
  const scalar = (r) => r.pick([null, true, false, 0, 1, 2.5, 'x', 'y'])
  const value = (r, depth) => {
    if (depth === 0 || r.chance(0.4)) return scalar(r)
    const kind = r.below(3)
    if (kind === 0) return object(r, depth - 1)
    if (kind === 1) return idArray(r, depth - 1)
    return Array.from({ length: r.below(3) }, () => scalar(r))
  }
  const object = (r, depth) => Object.fromEntries(Array.from({ length: r.below(4) }, () => [r.pick(KEYS), value(r, depth)]))
  const idArray = (r, depth) => {
    const out = []
    for (let i = r.below(5); i > 0; i--) {
      const id = r.pick(IDS)
      if (!out.some((e) => e.id === id)) out.push({ ...object(r, depth), id })
    }
    return out
  }
  const isIdArray = (v) => Array.isArray(v) && v.length > 0 && v.every((e) => e && typeof e === 'object' && !Array.isArray(e) && (typeof e.id === 'string' || typeof e.id === 'number'))
  const edit = (r, v, inElement) => {
    if (r.chance(0.08)) return value(r, 2)
    if (isIdArray(v)) {
      const items = [...v]
      const op = r.below(5)
      if (op <= 1) {
        const i = r.below(items.length)
        items[i] = edit(r, items[i], true)
      } else if (op === 2) items.splice(r.below(items.length), 1)
      else if (op === 3) {
        const id = r.pick(IDS)
        if (!items.some((e) => e.id === id)) items.splice(r.below(items.length + 1), 0, { ...object(r, 1), id })
      } else items.splice(r.below(items.length), 0, ...items.splice(r.below(items.length), 1))
      return items
    }
    if (Array.isArray(v)) return r.chance(0.5) ? [...v, scalar(r)] : v.slice(1)
    if (v && typeof v === 'object') {
      const out = { ...v }
      const keys = Object.keys(out).filter((k) => !(inElement && k === 'id'))
      const op = r.below(4)
      if (op <= 1 && keys.length) {
        const k = r.pick(keys)
        out[k] = edit(r, out[k], false)
      } else if (op === 2 && keys.length) delete out[r.pick(keys)]
      else out[r.pick(KEYS)] = value(r, 2)
      return out
    }
    return scalar(r)
  }
  const edits = (r, doc, max) => {
    let out = doc
    for (let i = r.below(max + 1); i > 0; i--) out = r.chance(0.5) ? { ...out, roles: edit(r, out.roles, false) } : edit(r, out, false)
    return out
  }

  it('x/x, b/y and y/b merge cleanly to the edit; the result does not depend on the side (with favor: mirrored)', () => {
    const r = rng(20240611)
    let conflicted = 0
    for (let n = 0; n < 400; n++) {
      const base = { ...object(r, 2), roles: idArray(r, 2) }
      const mine = edits(r, base, 3)
      const theirs = r.chance(0.15) ? edits(r, mine, 1) : edits(r, base, 3)
      for (const x of [mine, theirs]) {
        const json = JSON.parse(JSON.stringify(x))
        expect(mergeJson(base, x, x)).toStrictEqual({ merged: json, conflicts: [], clean: true })
        expect(mergeJson(base, base, x)).toStrictEqual({ merged: json, conflicts: [], clean: true })
        expect(mergeJson(base, x, base)).toStrictEqual({ merged: json, conflicts: [], clean: true })
      }
      if (!merge(base, mine, theirs).clean) conflicted++
      const forMine = mergeJson(base, mine, theirs, { favor: 'mine' })
      const swapped = mergeJson(base, theirs, mine, { favor: 'theirs' })
      expect(swapped.merged).toStrictEqual(forMine.merged)
      expect(swapped.conflicts.map(mirror)).toStrictEqual(forMine.conflicts)
    }
    expect(conflicted).toBeGreaterThan(20)
  })
})

describe('mergeJson on a 1 MB document', () => {
  it('merges 5000 roles edited on both sides', () => {
    const permissions = ['read', 'write', 'delete', 'share', 'comment', 'publish', 'archive', 'export']
    const base = {
      version: 1,
      roles: Array.from({ length: 5000 }, (_, i) => ({
        id: `role-${i}`,
        name: `Role number ${i}`,
        description: `A generated role used to measure the merge of a large document (${i})`,
        permissions: permissions.filter((_, p) => (i >> p) & 1),
        meta: { created: 1700000000000 + i, owner: `user-${i % 97}` },
      })),
    }
    const size = JSON.stringify(base).length
    const mine = structuredClone(base)
    for (let i = 0; i < 5000; i += 50) mine.roles[i].name += ' (renamed)'
    mine.roles.splice(100, 10)
    mine.roles.push({ id: 'mine-new', name: 'Mine', permissions: [] })
    const theirs = structuredClone(base)
    for (let i = 25; i < 5000; i += 50) theirs.roles[i].permissions = ['read']
    theirs.roles.reverse()
    theirs.version = 2

    const times = []
    let result
    for (let run = 0; run < 5; run++) {
      const start = process.hrtime.bigint()
      result = mergeJson(base, mine, theirs)
      times.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
    expect(result.conflicts).toStrictEqual([])
    expect(result.merged.version).toBe(2)
    expect(result.merged.roles.length).toBe(5000 - 10 + 1)
    expect(result.merged.roles[0].id).toBe('role-4999') // theirs reversed
    expect(result.merged.roles.find((x) => x.id === 'role-50').name).toBe('Role number 50 (renamed)')
    expect(result.merged.roles.find((x) => x.id === 'role-75').permissions).toStrictEqual(['read'])
    expect(result.merged.roles.some((x) => x.id === 'role-105')).toBe(false)
    const diffStart = process.hrtime.bigint()
    const changes = diffJson(base, theirs)
    const diffMs = Number(process.hrtime.bigint() - diffStart) / 1e6
    const permissionChanges = base.roles.filter((x, i) => i % 50 === 25 && x.permissions.join() !== 'read').length
    expect(changes.length).toBe(1 + permissionChanges + 1) // reordered, permissions, version
    expect(changes.find((c) => c.kind === 'reordered')).toMatchObject({ path: '$.roles' })
    times.sort((a, b) => a - b)
    console.log(`mergeJson of a ${(size / 1e6).toFixed(2)} MB document (5000 roles): median ${times[2].toFixed(1)} ms, min ${times[0].toFixed(1)} ms; diffJson ${diffMs.toFixed(1)} ms`)
  })
})
