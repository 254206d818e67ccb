// lock-stress worker: on {cmd:'go', phases: [{runMs, holdMaxMs, thinkMaxMs}],
// exclusiveShare, base} it runs each phase for its time: acquireLock (shared
// or exclusive at random), hold 0–holdMaxMs, release, think 0–thinkMaxMs.
// While holding it
// - records [enter, leave] on CLOCK_MONOTONIC (process.hrtime, shared by all
//   processes of the machine), taken after the grant and before release(), so
//   the recorded interval lies inside the real hold: recorded intervals that
//   overlap prove real holds overlapped;
// - keeps a marker file: `excl` (O_EXCL) for an exclusive hold, `shared.<pid>`
//   for a shared one, created after the grant and removed before release();
//   an exclusive holder that finds any other marker, or a shared holder that
//   finds `excl`, saw an overlap as it happened.
// Answers {type:'done', records, failures, markerOverlaps} at the end.
// argv: file, markerDir
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const { FileLockManager } = createRequire(import.meta.url)('../../index.js')
const [file, markerDir] = process.argv.slice(2)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const send = (message) => new Promise((resolve) => process.send(message, () => resolve()))
process.on('disconnect', () => process.exit(0))

// Defaults (timeoutMs 5000), one attempt: a failure is "not granted within the default timeout".
const manager = new FileLockManager({ retries: 1 })
const EXCL = path.join(markerDir, 'excl')
const MINE = path.join(markerDir, `shared.${process.pid}`)

const records = [] // [requestedAt, enter, leave, exclusive ? 1 : 0, phase]
const failures = [] // [requestedAt, waitedMs, code, phase]
const markerOverlaps = []

async function cycle(at, phase, exclusive, holdMaxMs) {
  const requested = at()
  let lock
  try {
    lock = await manager.acquireLock(file, { exclusive })
  } catch (error) {
    failures.push([requested, at() - requested, error.code, phase])
    return
  }
  const enter = at()
  let created = false
  if (exclusive) {
    try {
      fs.closeSync(fs.openSync(EXCL, 'wx'))
      created = true
    } catch (error) {
      markerOverlaps.push(`exclusive holder found ${error.code === 'EEXIST' ? 'another exclusive marker' : error.code}`)
    }
    const others = fs.readdirSync(markerDir).filter((name) => name !== 'excl')
    if (others.length > 0) markerOverlaps.push(`exclusive holder found shared marker(s) ${others.join(',')}`)
  } else {
    fs.closeSync(fs.openSync(MINE, 'wx'))
    if (fs.existsSync(EXCL)) markerOverlaps.push('shared holder found the exclusive marker')
  }
  const hold = Math.random() * holdMaxMs
  if (hold >= 1) await sleep(hold)
  const leave = at()
  // Only our own marker: another exclusive holder's marker is theirs to remove.
  if (created) fs.rmSync(EXCL, { force: true })
  if (!exclusive) fs.rmSync(MINE, { force: true })
  await lock.release()
  records.push([requested, enter, leave, exclusive ? 1 : 0, phase])
}

process.on('message', async (message) => {
  if (message?.cmd !== 'go') return
  const base = BigInt(message.base)
  const at = () => Number(process.hrtime.bigint() - base) / 1e6 // ms since the parent's base, monotonic
  let end = 0
  for (const [phase, { runMs, holdMaxMs, thinkMaxMs }] of message.phases.entries()) {
    end += runMs
    while (at() < end) {
      await cycle(at, phase, Math.random() < message.exclusiveShare, holdMaxMs)
      const think = Math.random() * thinkMaxMs
      if (think >= 1) await sleep(think)
    }
  }
  await manager.close()
  await send({ type: 'done', records, failures, markerOverlaps })
})

await send({ type: 'ready' })
