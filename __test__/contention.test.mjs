// Case 1: real cross-process contention on one JSON file.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, FIXTURES, useScratchDir } from './helpers.mjs'

const PROCESSES = 8
const ITERATIONS = 500

describe('cross-process mutual exclusion', () => {
  useScratchDir()

  it.each(['os', 'lockfile', 'mixed'])(`strategy %s: ${PROCESSES} processes x ${ITERATIONS} read-modify-write increments of roles.json end at exactly ${PROCESSES * ITERATIONS}, never two holders at once`, async (strategy) => {
    const dataFile = path.join(dir, 'roles.json')
    const goFile = path.join(dir, 'go')
    const markerFile = path.join(dir, 'occupied')
    fs.writeFileSync(dataFile, JSON.stringify({ counter: 0 }))

    const workers = Array.from(
      { length: PROCESSES },
      // 'mixed': half the processes use OS locks, half lock files, on the same file.
      (_, i) => new Child(path.join(FIXTURES, 'counter-worker.mjs'), [dataFile, goFile, markerFile, String(ITERATIONS), strategy === 'mixed' ? (i % 2 ? 'os' : 'lockfile') : strategy]),
    )
    // Start barrier: every process is up with the addon loaded before any begins.
    await Promise.all(workers.map((w) => w.waitFor('ready')))
    fs.writeFileSync(goFile, '')

    const reports = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs: 100000 })))
    const exits = await Promise.all(workers.map((w) => w.exited))

    for (const report of reports) {
      expect(report.errors).toEqual([])
      expect(report.increments).toBe(ITERATIONS)
    }
    expect(reports.reduce((n, r) => n + r.doubleHolders, 0)).toBe(0)
    expect(reports.reduce((n, r) => n + r.tornReads, 0)).toBe(0)
    expect(exits.every((e) => e.code === 0)).toBe(true)
    expect(JSON.parse(fs.readFileSync(dataFile, 'utf8'))).toEqual({ counter: PROCESSES * ITERATIONS })
    expect(fs.existsSync(markerFile)).toBe(false)
    // Lock files are removed on release; nothing renamed aside is left behind either.
    if (strategy === 'lockfile') expect(fs.readdirSync(dir).filter((n) => n.startsWith('.roles.json.lock'))).toEqual([])
  }, 120000)
})
