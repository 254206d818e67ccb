// Big texts parsed a piece at a time and big values stringified a range at a
// time (json-values.js, crates/file-lock-core/src/document/json_chunks.rs): the result must be
// exactly what one JSON.parse / JSON.stringify gives, whatever the text holds.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'

const require = createRequire(import.meta.url)
const { parseInPieces, stringifyInPieces } = require('../lib/json-values.js')

function lcg(seed) {
  let s = seed >>> 0
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % n
  }
}

const STRINGS = ['', 'plain', 'naïve', '🔑 Keymaster', '日本語', 'quote " and \\ backslash', 'line\nbreak', '\u2028', '\ud83d', '__proto__', '1', '-0']

// A value of about `n` leaves, with big id arrays, big objects, deep bits.
function value(next, depth, leaves) {
  if (depth > 6 || leaves < 2) {
    switch (next(6)) {
      case 0: return next(1000) / 8 - 50
      case 1: return STRINGS[next(STRINGS.length)]
      case 2: return next(2) === 0
      case 3: return null
      case 4: return []
      default: return {}
    }
  }
  const count = Math.max(1, Math.min(leaves, next(3) === 0 ? leaves : 1 + next(8)))
  const share = Math.max(1, Math.floor(leaves / count))
  if (next(2) === 0) return Array.from({ length: count }, (_, i) => (next(3) === 0 ? { id: `r${i}`, name: STRINGS[next(STRINGS.length)], v: value(next, depth + 1, share - 1) } : value(next, depth + 1, share)))
  const out = {}
  for (let i = 0; i < count; i++) out[next(4) === 0 ? STRINGS[next(STRINGS.length)] + i : `k${i}`] = value(next, depth + 1, share)
  return out
}

describe('parseInPieces', () => {
  it('gives what JSON.parse gives on big random texts, pretty and compact', async () => {
    const next = lcg(11)
    for (let round = 0; round < 6; round++) {
      const doc = value(next, 0, 150000)
      const text = round % 2 === 0 ? JSON.stringify(doc, null, 2) : JSON.stringify(doc)
      expect(text.length).toBeGreaterThan(1 << 20) // cut in pieces (PIECE is 1 MiB)
      expect(await parseInPieces(text)).toStrictEqual(JSON.parse(text))
    }
  })

  it('duplicate keys (the last wins, in place of the first), "__proto__" as an own member, a top-level array', async () => {
    const filler = Array.from({ length: 30000 }, (_, i) => ({ id: i, pad: 'x'.repeat(30) }))
    const text = `{"a": 1, "__proto__": {"polluted": true}, "big": ${JSON.stringify(filler)}, "a": ${JSON.stringify(filler)}, "z": 2, "a": 3}`
    const parsed = await parseInPieces(text)
    expect(parsed).toStrictEqual(JSON.parse(text))
    expect(Object.keys(parsed)).toEqual(Object.keys(JSON.parse(text)))
    expect(Object.hasOwn(parsed, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype)
    const array = JSON.stringify([filler, 'é🔑', filler])
    expect(await parseInPieces(array)).toStrictEqual(JSON.parse(array))
  })

  it('a text that is not JSON throws what JSON.parse throws', async () => {
    const big = JSON.stringify(Array.from({ length: 50000 }, (_, i) => ({ id: i })))
    for (const bad of [`${big.slice(0, -1)}`, `${big},`, `{"a": ${big}`, `${big}]`]) {
      let expected
      try {
        JSON.parse(bad)
      } catch (error) {
        expected = error
      }
      await expect(parseInPieces(bad)).rejects.toThrow(expected.message)
    }
  })
})

describe('stringifyInPieces', () => {
  it('gives what JSON.stringify gives (pretty and compact) on big random values', async () => {
    const next = lcg(5)
    for (let round = 0; round < 6; round++) {
      const doc = value(next, 0, 40000)
      expect(await stringifyInPieces(doc, true)).toBe(JSON.stringify(doc, null, 2))
      expect(await stringifyInPieces(doc, false)).toBe(JSON.stringify(doc))
    }
  })

  it('containers of exactly and just past the range size, nested big ones, empty ones, "__proto__" as a member', async () => {
    const doc = JSON.parse('{"__proto__": {"x": 1}}')
    doc.exact = Array.from({ length: 2000 }, (_, i) => i)
    doc.past = Array.from({ length: 2001 }, (_, i) => ({ i, e: [], o: {} }))
    doc.nested = [[], {}, Array.from({ length: 4500 }, (_, i) => [i, { deep: Array.from({ length: 2100 }, () => 'é') }][i % 2])]
    doc.wide = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`k${i}`, i % 3 === 0 ? { a: [] } : 'v']))
    expect(await stringifyInPieces(doc, true)).toBe(JSON.stringify(doc, null, 2))
    expect(await stringifyInPieces(doc, false)).toBe(JSON.stringify(doc))
  })
})
