// Benchmark worker process: `node bench/child.mjs <role> <lib> <config-json>`,
// forked by bench/run.mjs with an IPC channel. Roles:
//   uncontended  acquire+release N times after a warm-up; sends per-op latencies (µs).
//   handoff      obeys 'acquire' / 'release' commands from the parent (ping-pong);
//                sends hrtime stamps: t1 when acquire resolved, t0 when release began.
//   increment    on 'go', loops until a deadline doing acquire → read JSON counter →
//                +1 → write → release; sends its increment count.
// All timestamps are process.hrtime.bigint() (CLOCK_MONOTONIC, comparable across
// processes on Linux).

import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { reportCrashes, send } from '../testkit/in-child.mjs'
import { openLib } from './libs.mjs'

const [role, libName, configJson] = process.argv.slice(2)
const cfg = JSON.parse(configJson)
const now = () => process.hrtime.bigint()

const fail = reportCrashes()

const lib = await openLib(libName, cfg.file)

if (role === 'uncontended') {
  for (let i = 0; i < cfg.warmup; i++) {
    const release = await lib.acquire()
    await release()
  }
  const samples = new Float64Array(cfg.iterations)
  for (let i = 0; i < cfg.iterations; i++) {
    const t = now()
    const release = await lib.acquire()
    await release()
    samples[i] = Number(now() - t) / 1000
  }
  await lib.close()
  await send({ type: 'done', samples })
  process.disconnect()
} else if (role === 'handoff') {
  let release = null
  process.on('message', async (msg) => {
    try {
      if (msg.type === 'acquire') {
        if (release !== null) throw new Error('asked to acquire while holding')
        const pending = lib.acquire()
        await send({ type: 'waiting' }) // the request is issued (and pending if contended)
        release = await pending
        const t1 = now()
        await send({ type: 'acquired', t1 })
      } else if (msg.type === 'release') {
        if (release === null) throw new Error('asked to release while not holding')
        await sleep(msg.holdMs) // the peer's request is already pending: let it block in earnest
        const r = release
        release = null
        const t0 = now()
        await r()
        await send({ type: 'released', t0 })
      } else if (msg.type === 'stop') {
        if (release !== null) await release()
        await lib.close()
        await send({ type: 'stopped' })
        process.disconnect()
      }
    } catch (error) {
      fail(error)
    }
  })
  await send({ type: 'ready' })
} else if (role === 'increment') {
  process.once('message', async (msg) => {
    try {
      const start = BigInt(msg.startNs)
      const end = start + BigInt(msg.durationNs)
      const wait = Number(start - now()) / 1e6
      if (wait > 0) await sleep(wait)
      while (now() < start) {} // spin the last fraction of a millisecond
      let count = 0
      let maxWaitNs = 0n
      while (now() < end) {
        const t = now()
        const release = await lib.acquire()
        const waited = now() - t
        if (waited > maxWaitNs) maxWaitNs = waited
        const data = JSON.parse(fs.readFileSync(cfg.file, 'utf8'))
        data.count += 1
        fs.writeFileSync(cfg.file, JSON.stringify(data))
        await release()
        count++
      }
      const finished = now()
      await lib.close()
      await send({ type: 'done', count, finishedNs: String(finished), maxWaitMs: Number(maxWaitNs) / 1e6 })
      process.disconnect()
    } catch (error) {
      fail(error)
    }
  })
  await send({ type: 'ready' })
} else {
  throw new Error(`unknown role ${role}`)
}
