// What exact number text costs (exact-numbers.js, crates/file-lock-core/src/document/number_text.rs):
// the scan every read makes, next to JSON.parse of the same text, for
// documents whose numbers are all exact (the common case) and documents with
// inexact ones; and the write side (JSON.stringify, then the splice when
// something is kept). Not part of `npm run bench`: run it by hand.
//
//   node bench/numbers.mjs [megabytes=10] [runs=15]
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { inexactNumberTokens } = require('../native.js')
const { ExactNumbers } = require('../lib/exact-numbers.js')

const megabytes = Number(process.argv[2] ?? 10)
const runs = Number(process.argv[3] ?? 15)

// A roles-like document of about `bytes` (2-space JSON, as documents write):
// strings, small integers, decimals, booleans, nested arrays of objects.
// `inexact`: how many 19-digit snowflake ids to put in it (spread evenly).
function documentText(bytes, inexact) {
  const roles = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const role = {
      id: `role-${i}`,
      name: `Role number ${i} "quoted" \\ with escapes é`,
      level: i % 17,
      weight: (i % 1000) / 8,
      ratio: 0.1 * (i % 7),
      createdAt: 1_700_000_000_000 + i,
      active: i % 3 === 0,
      permissions: [`read:${i % 11}`, `write:${i % 5}`, { scope: 'org', limit: i % 100 }],
    }
    roles.push(role)
    size += JSON.stringify(role, null, 2).length + 6
  }
  let text = JSON.stringify({ version: 3, roles }, null, 2)
  if (inexact > 0) {
    const every = Math.max(1, Math.floor(roles.length / inexact))
    let n = 0
    text = text.replace(/"createdAt": (\d+)/g, (all, digits) => (n++ % every === 0 ? `"createdAt": ${1234567890123456789n + BigInt(digits)}` : all))
  }
  return text
}

function median(fn) {
  const times = []
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    fn()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

const ms = (t) => `${t.toFixed(1).padStart(7)} ms`
console.log(`node ${process.version}, ${megabytes} MB documents, median of ${runs} runs\n`)
console.log('read side                      JSON.parse   scan (native)   scan / parse   found')
for (const inexact of [0, 1, 100, 10_000]) {
  const text = documentText(megabytes * 1024 * 1024, inexact)
  const parse = median(() => JSON.parse(text))
  const scan = median(() => inexactNumberTokens(text))
  const found = inexactNumberTokens(text)
  const count = found === null ? 0 : JSON.parse(found).length
  const label = `${(text.length / 1024 / 1024).toFixed(1)} MB, ${inexact} inexact`.padEnd(28)
  console.log(`${label} ${ms(parse)}   ${ms(scan)}      ${((scan / parse) * 100).toFixed(1).padStart(5)} %   ${String(count).padStart(6)}`)
}

// The scan beside everything else a document does with a text it reads.
{
  const text = documentText(megabytes * 1024 * 1024, 0)
  const bytes = Buffer.from(text)
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  const freeze = (value) => {
    const pending = [value]
    while (pending.length > 0) {
      const object = pending.pop()
      Object.freeze(object)
      for (const key of Object.keys(object)) if (object[key] !== null && typeof object[key] === 'object') pending.push(object[key])
    }
  }
  const steps = {
    decode: median(() => decoder.decode(bytes)),
    sha256: median(() => createHash('sha256').update(text).digest('hex')),
    'parse + freeze': median(() => freeze(JSON.parse(text))),
  }
  const read = Object.values(steps).reduce((a, b) => a + b)
  const scan = median(() => inexactNumberTokens(text))
  console.log(`\na read of the ${(text.length / 1024 / 1024).toFixed(1)} MB text: ${Object.entries(steps).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} = ${read.toFixed(1)} ms; the scan adds ${scan.toFixed(1)} ms (${((scan / read) * 100).toFixed(1)} %)`)
}

console.log('\nwrite side (an update of one member)   JSON.stringify   ExactNumbers.stringify   + wrote (re-scan)')
for (const inexact of [0, 1, 100, 10_000]) {
  const text = documentText(megabytes * 1024 * 1024, inexact)
  const value = JSON.parse(text)
  const numbers = new ExactNumbers()
  numbers.read(text, value)
  const next = structuredClone(value)
  next.version = 4
  const plain = median(() => JSON.stringify(next, null, 2))
  const exact = median(() => numbers.stringify(next, 'id'))
  // After a spliced write the document reads its own text's numbers again.
  const wroteTimes = []
  for (let i = 0; i < runs; i++) {
    numbers.read(text, value)
    const written = numbers.stringify(next, 'id')
    const start = process.hrtime.bigint()
    numbers.wrote(written, next)
    wroteTimes.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  const wrote = wroteTimes.sort((a, b) => a - b)[Math.floor(runs / 2)]
  console.log(`${`${inexact} inexact`.padEnd(38)} ${ms(plain)}        ${ms(exact)}           ${ms(wrote)}`)
}
