// lock-stress: 16 processes for the whole run, each looping on acquireLock of
// one file, 30% exclusive and 70% shared, holding 0–20 ms, with the default
// timeout (5 s, one attempt). Two phases of equal length:
// - saturated: think times 0–20 ms. The offered load exceeds what any lock can
//   serve (30% of requests want the file alone for 10 ms on average, arriving
//   faster than that): waits there are queueing, whatever the lock. Shown with
//   the average wait an ideal lock (zero overhead) would give on the same
//   workload, simulated below.
// - moderate: think times 0–100 ms, where an ideal lock waits ~25 ms on
//   average: the "average wait < 50 ms" target applies here.
//
// Overlaps are detected two ways (see children/stress-worker.mjs):
// 1. each hold is recorded as [enter, leave] on CLOCK_MONOTONIC, which every
//    process of the machine shares; enter is taken after the grant and leave
//    before release(), so a recorded interval lies inside the real hold and two
//    recorded intervals that intersect (one of them exclusive) prove a real
//    overlap: no false positives. An overlap shorter than the gaps between the
//    grant and `enter` (or `leave` and the unlock) could be missed.
// 2. marker files created inside each hold (O_EXCL `excl` for exclusive holds,
//    `shared.<pid>` for shared ones) and checked for the conflicting kind right
//    away: an independent check that needs no clock.
import fs from 'node:fs'
import path from 'node:path'
import { Child, check, fmt, info, stats } from '../lib/harness.mjs'

const PROCESSES = 16
const EXCLUSIVE_SHARE = 0.3

/** Pairs of recorded holds that intersect while one of them is exclusive. */
/**
 * Average wait of an ideal reader-writer lock (no overhead; readers admitted
 * whenever no writer holds, as flock does) on the workload of a phase: a
 * discrete-event simulation of `simMs` of its time.
 */
export function idealAverageWait({ processes, exclusiveShare, holdMaxMs, thinkMaxMs, simMs = 300_000 }) {
  const delay = (max) => {
    const x = Math.random() * max
    return x >= 1 ? x + 0.1 : 0 // as the workers: under 1 ms no timer, else a timer (~0.1 ms late)
  }
  const events = Array.from({ length: processes }, (_, p) => ({ at: Math.random() * thinkMaxMs, p, kind: 'request' }))
  const queue = []
  let shared = 0
  let exclusive = false
  let total = 0
  let count = 0
  const grantWhatCan = (now) => {
    for (let i = 0; i < queue.length; ) {
      const q = queue[i]
      if (exclusive || (q.exclusive && shared > 0)) {
        i++
        continue
      }
      queue.splice(i, 1)
      total += now - q.at
      count++
      if (q.exclusive) exclusive = true
      else shared++
      events.push({ at: now + delay(holdMaxMs), p: q.p, kind: q.exclusive ? 'release-x' : 'release-s' })
    }
  }
  for (;;) {
    events.sort((a, b) => a.at - b.at)
    const event = events.shift()
    if (event.at > simMs) break
    if (event.kind === 'request') {
      queue.push({ at: event.at, p: event.p, exclusive: Math.random() < exclusiveShare })
    } else {
      if (event.kind === 'release-x') exclusive = false
      else shared--
      events.push({ at: event.at + delay(thinkMaxMs), p: event.p, kind: 'request' })
    }
    grantWhatCan(event.at)
  }
  return total / count
}

export function findOverlaps(holds) {
  const sorted = [...holds].sort((a, b) => a.enter - b.enter)
  const found = []
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]
    for (let j = i + 1; j < sorted.length && sorted[j].enter < a.leave; j++) {
      const b = sorted[j]
      if (a.exclusive || b.exclusive) found.push([a, b])
    }
  }
  return found
}

export default {
  name: 'lock-stress',
  title: `${PROCESSES} processes mix shared and exclusive acquireLock (${EXCLUSIVE_SHARE * 100}% exclusive), holds of 0–20 ms, think times of 0–20 ms (saturated) then 0–100 ms (moderate), default timeout; overlaps checked on the monotonic clock and with marker files`,
  budgetMs: { quick: 30_000, full: 150_000 },

  async run({ quick, tmp, log, partial }) {
    const PHASE_MS = quick ? 4000 : 30_000
    const phases = [
      { name: 'saturated', runMs: PHASE_MS, holdMaxMs: 20, thinkMaxMs: 20 },
      { name: 'moderate', runMs: PHASE_MS, holdMaxMs: 20, thinkMaxMs: 100 },
    ]
    const file = path.join(tmp, 'roles.json')
    const markers = path.join(tmp, 'markers')
    fs.writeFileSync(file, '{}')
    fs.mkdirSync(markers)

    const workers = Array.from({ length: PROCESSES }, () => new Child('stress-worker.mjs', [file, markers]))
    await Promise.all(workers.map((w) => w.waitFor('ready', { timeoutMs: 30000 })))
    const base = process.hrtime.bigint()
    for (const w of workers) w.send({ cmd: 'go', phases, exclusiveShare: EXCLUSIVE_SHARE, base: base.toString() })
    log(`${PROCESSES} workers started: ${phases.map((p) => `${p.name} ${p.runMs / 1000} s`).join(', then ')}`)
    partial([info('processes', PROCESSES)])
    // A worker ends after the phases, plus at most one wait (5 s) and a hold.
    const reports = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs: 2 * PHASE_MS + 20_000 })))
    const elapsedS = Number(process.hrtime.bigint() - base) / 1e9

    const holds = []
    const failures = []
    const markerOverlaps = []
    reports.forEach((report, worker) => {
      for (const [requested, enter, leave, exclusive, phase] of report.records) holds.push({ worker, requested, enter, leave, exclusive: exclusive === 1, phase })
      for (const [requested, waited, code, phase] of report.failures) failures.push({ worker, requested, waited, code, phase })
      markerOverlaps.push(...report.markerOverlaps)
    })
    const overlaps = findOverlaps(holds)
    const attempts = holds.length + failures.length
    const successPct = attempts === 0 ? NaN : (holds.length / attempts) * 100
    const exclusiveCount = holds.filter((h) => h.exclusive).length
    const describe = (h) => `worker ${h.worker} ${h.exclusive ? 'exclusive' : 'shared'} [${h.enter.toFixed(3)}, ${h.leave.toFixed(3)}] ms`
    const example = overlaps[0] ? `e.g. ${describe(overlaps[0][0])} and ${describe(overlaps[0][1])}` : ''

    const figures = [
      info('processes × run time', `${PROCESSES} × ${(2 * PHASE_MS) / 1000} s`),
      info('acquisitions granted (exclusive / shared)', `${fmt(holds.length)} (${fmt(exclusiveCount)} / ${fmt(holds.length - exclusiveCount)})`),
      check('overlaps of an exclusive hold with another hold (monotonic-clock intervals)', overlaps.length, '=', 0, '', { detail: example }),
      check('overlaps seen by the marker files', markerOverlaps.length, '=', 0, '', { detail: markerOverlaps.slice(0, 3).join(' | ') }),
      check('granted within the default timeout (5 s, one attempt)', successPct, '>=', 100, '%', {
        detail: `${failures.length} of ${attempts} failed${failures.length ? `: ${[...new Set(failures.map((f) => f.code))].join(', ')}` : ''}; spec: > 95%`,
      }),
    ]
    phases.forEach((phase, index) => {
      const mine = holds.filter((h) => h.phase === index)
      const failed = failures.filter((f) => f.phase === index)
      const w = stats([...mine.map((h) => h.enter - h.requested), ...failed.map((f) => f.waited)])
      const wx = stats(mine.filter((h) => h.exclusive).map((h) => h.enter - h.requested))
      const ws = stats(mine.filter((h) => !h.exclusive).map((h) => h.enter - h.requested))
      const held = stats(mine.map((h) => h.leave - h.enter))
      const ideal = idealAverageWait({ processes: PROCESSES, exclusiveShare: EXCLUSIVE_SHARE, holdMaxMs: phase.holdMaxMs, thinkMaxMs: phase.thinkMaxMs })
      const tag = `${phase.name} (think 0–${phase.thinkMaxMs} ms)`
      log(
        `${tag}: ${mine.length} acquisitions, ${failed.length} failed, wait avg ${w.mean.toFixed(1)} / p99 ${w.p99.toFixed(0)} / max ${w.max.toFixed(0)} ms ` +
          `(exclusive avg ${wx.mean.toFixed(1)} / max ${wx.max.toFixed(0)}), ideal lock avg ${ideal.toFixed(1)} ms, hold avg ${held.mean.toFixed(1)} ms`,
      )
      figures.push(
        info(`${tag}: acquisitions`, `${fmt(mine.length)} (${fmt(mine.length / (phase.runMs / 1000))}/s)`),
        phase.name === 'moderate' ? check(`${tag}: average wait`, w.mean, '<', 50, 'ms') : info(`${tag}: average wait`, w.mean, 'ms'),
        info(`${tag}: an ideal lock's average wait on this workload (simulated)`, ideal, 'ms'),
        info(`${tag}: wait p50 / p99 / max`, `${w.p50.toFixed(1)} / ${w.p99.toFixed(0)} / ${w.max.toFixed(0)}`, 'ms'),
        info(`${tag}: exclusive wait avg / p99 / max`, `${wx.mean.toFixed(1)} / ${wx.p99.toFixed(0)} / ${wx.max.toFixed(0)}`, 'ms'),
        info(`${tag}: shared wait avg / p99 / max`, `${ws.mean.toFixed(1)} / ${ws.p99.toFixed(0)} / ${ws.max.toFixed(0)}`, 'ms'),
        info(`${tag}: hold avg (asked: 10 ms)`, held.mean, 'ms'),
      )
    })
    figures.push(info('total run', elapsedS, 's'))
    return { figures }
  },
}
