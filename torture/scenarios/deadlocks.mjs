// deadlocks: nested and crossed acquisitions that would wait forever without
// timeouts or re-entry detection. Each round:
// - cross-process ABBA: process A holds file1 and asks file2 while B holds
//   file2 and asks file1 (each in withLock, inner timeouts 50–300 ms at random,
//   one attempt): one or both time out, releasing their outer lock, and the
//   other may then be granted;
// - a nested request for the same file inside its own withLock, in one of six
//   shapes (acquireLock, withLock, shared, Promise.all branches, after a timer,
//   through another file's withLock): must fail with EDEADLOCK at once;
// - every 4th round: ABBA between two async chains of one process (timeouts
//   50–300 ms), and
//   acquireLock twice on one file outside withLock (not detectable: must end
//   by ELOCKTIMEOUT).
// Every attempt must END (granted, EDEADLOCK or ELOCKTIMEOUT) within its
// timeout plus slack; one that does not answer within timeout + 5 s is a hang
// (its processes are killed and replaced).
import fs from 'node:fs'
import path from 'node:path'
import { Child, check, info, randomInt, within } from '../lib/harness.mjs'

const SLACK_MS = 500 // an attempt must end within its timeout + this
const HANG_MS = 5000 // no answer within timeout + this: a hang
const AT_ONCE_MS = 50 // EDEADLOCK "at once"
const VARIANTS = ['acquireLock in withLock', 'withLock in withLock', 'shared in exclusive withLock', 'Promise.all branches', 'after a timer', 'through another file']

export default {
  name: 'deadlocks',
  title: 'cross-process ABBA on two files (A: file1→file2, B: file2→file1) with timeouts, nested same-file requests inside withLock (EDEADLOCK), in-process ABBA and double acquireLock',
  budgetMs: { quick: 30_000, full: 150_000 },

  async run({ quick, tmp, log, partial }) {
    const ROUNDS = quick ? 20 : 200
    const file1 = path.join(tmp, 'file1.json')
    const file2 = path.join(tmp, 'file2.json')
    for (const f of [file1, file2]) fs.writeFileSync(f, '{}')
    const own = (agent) => ({ file: path.join(tmp, `nested-${agent}.json`), other: path.join(tmp, `nested-${agent}-other.json`) })

    const start = async () => {
      const agents = [new Child('deadlock-agent.mjs'), new Child('deadlock-agent.mjs')]
      await Promise.all(agents.map((a) => a.waitFor('ready', { timeoutMs: 30000 })))
      return agents
    }
    let agents = await start()
    const attempts = []
    const hangs = []
    let id = 0
    let completed = 0 // rounds in which every attempt answered

    /** Waits for an answer; a missing one is a hang: the agents are replaced. */
    const answer = async (agent, type, msgId, limitMs, what) => {
      try {
        return await agent.waitFor(type, { filter: (m) => m.id === msgId, timeoutMs: limitMs })
      } catch (error) {
        hangs.push(`${what}: ${error.message}`)
        log(`HANG: ${what}: ${error.message}`)
        return null
      }
    }
    const replaceAgents = async () => {
      await Promise.all(agents.map((a) => a.kill('SIGKILL')))
      agents = await start()
    }

    for (let round = 0; round < ROUNDS; round++) {
      const hangsBefore = hangs.length
      // ---- cross-process ABBA
      const [a, b] = Math.random() < 0.5 ? agents : [...agents].reverse()
      const timeouts = [randomInt(50, 300), randomInt(50, 300)]
      const ids = [++id, ++id]
      a.send({ cmd: 'abba', id: ids[0], outer: file1, inner: file2, innerTimeoutMs: timeouts[0], holdMs: randomInt(0, 5) })
      b.send({ cmd: 'abba', id: ids[1], outer: file2, inner: file1, innerTimeoutMs: timeouts[1], holdMs: randomInt(0, 5) })
      const held = await Promise.all([answer(a, 'outer-held', ids[0], 10000, `round ${round} A outer`), answer(b, 'outer-held', ids[1], 10000, `round ${round} B outer`)])
      if (held.includes(null)) {
        await replaceAgents()
        continue
      }
      a.send({ cmd: 'go', id: ids[0] })
      b.send({ cmd: 'go', id: ids[1] })
      const done = await Promise.all([
        answer(a, 'inner-done', ids[0], timeouts[0] + HANG_MS, `round ${round} A: file1 held, asking file2 (timeout ${timeouts[0]} ms)`),
        answer(b, 'inner-done', ids[1], timeouts[1] + HANG_MS, `round ${round} B: file2 held, asking file1 (timeout ${timeouts[1]} ms)`),
      ])
      for (const d of done) if (d) attempts.push(d.result)
      const released = await Promise.all([answer(a, 'outer-released', ids[0], HANG_MS, `round ${round} A release`), answer(b, 'outer-released', ids[1], HANG_MS, `round ${round} B release`)])
      if (done.includes(null) || released.includes(null)) {
        await replaceAgents()
        continue
      }

      // ---- nested same-file requests, in each agent
      for (const [index, agent] of agents.entries()) {
        const variant = VARIANTS[(round * 2 + index) % VARIANTS.length]
        const nestedId = ++id
        agent.send({ cmd: 'nested', id: nestedId, ...own(index), variant, timeoutMs: 2000 })
        const got = await answer(agent, 'nested-done', nestedId, 2000 + HANG_MS, `round ${round} nested (${variant})`)
        if (got) attempts.push({ ...got.result, expected: 'EDEADLOCK' })
        else await replaceAgents()
      }

      // ---- in one process: two chains ABBA, and acquireLock twice
      if (round % 4 === 3) {
        const timeoutMs = randomInt(50, 300)
        const [x, y] = agents
        const ipId = ++id
        x.send({ cmd: 'in-process-abba', id: ipId, f1: own(0).file, f2: own(0).other, timeouts: [timeoutMs, randomInt(50, 300)] })
        const swId = ++id
        y.send({ cmd: 'self-wait', id: swId, file: own(1).file, timeoutMs })
        const [ip, sw] = await Promise.all([
          answer(x, 'in-process-done', ipId, timeoutMs + HANG_MS, `round ${round} in-process ABBA`),
          answer(y, 'self-wait-done', swId, timeoutMs + HANG_MS, `round ${round} acquireLock twice`),
        ])
        if (ip) attempts.push(...ip.results)
        if (sw) attempts.push({ ...sw.result, expected: 'ELOCKTIMEOUT' })
        if (!ip || !sw) await replaceAgents()
      }
      if (hangs.length === hangsBefore) completed++
      if ((round + 1) % 50 === 0) {
        log(`${round + 1} rounds, ${attempts.length} attempts, ${hangs.length} hangs`)
        partial([info('rounds so far', round + 1), check('hangs so far', hangs.length, '=', 0)])
      }
    }
    await within(Promise.all(agents.map((a) => a.kill('SIGKILL'))), 10000, 'agents to exit').catch(() => {})

    // ---- figures
    const count = (pred) => attempts.filter(pred).length
    const byOutcome = (kind) => {
      const mine = attempts.filter((x) => x.kind.startsWith(kind))
      const tally = {}
      for (const x of mine) tally[x.outcome] = (tally[x.outcome] ?? 0) + 1
      return Object.entries(tally)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')
    }
    const ends = ['granted', 'EDEADLOCK', 'ELOCKTIMEOUT']
    const other = attempts.filter((x) => !ends.includes(x.outcome))
    const overshoots = attempts.map((x) => x.elapsed - x.timeoutMs)
    const nested = attempts.filter((x) => x.expected === 'EDEADLOCK')
    const nestedWrong = nested.filter((x) => x.outcome !== 'EDEADLOCK')
    const deadlockLatency = Math.max(0, ...nested.filter((x) => x.outcome === 'EDEADLOCK').map((x) => x.elapsed))
    const early = attempts.filter((x) => x.outcome === 'ELOCKTIMEOUT' && x.elapsed < x.timeoutMs - 1)
    const selfWait = attempts.filter((x) => x.expected === 'ELOCKTIMEOUT')
    const worst = attempts.reduce((w, x) => (w === null || x.elapsed - x.timeoutMs > w.elapsed - w.timeoutMs ? x : w), null)
    log(`outcomes: ${ends.map((e) => `${e} ${count((x) => x.outcome === e)}`).join(', ')}, other ${other.length}; worst: ${worst ? `${worst.kind} ${worst.outcome} after ${worst.elapsed.toFixed(1)} ms (timeout ${worst.timeoutMs})` : '-'}`)
    for (const x of [...other, ...nestedWrong].slice(0, 5)) log(`unexpected: ${x.kind}: ${x.outcome} after ${x.elapsed.toFixed(1)} ms ${x.message ?? ''}`)

    return {
      figures: [
        check('rounds completed (every attempt answered)', completed, '=', ROUNDS),
        info('attempts (each timed from request to end)', attempts.length),
        info('outcomes: granted / EDEADLOCK / ELOCKTIMEOUT', ends.map((e) => count((x) => x.outcome === e)).join(' / ')),
        check('other outcomes (errors that are not an end)', other.length, '=', 0, '', { detail: other.slice(0, 3).map((x) => `${x.kind}: ${x.outcome}`).join(' | ') }),
        check('hangs (no end within timeout + 5 s)', hangs.length, '=', 0, '', { detail: hangs.slice(0, 3).join(' | ') }),
        info('cross-process ABBA', byOutcome('cross-process ABBA')),
        info('in-process ABBA (two async chains)', byOutcome('in-process ABBA')),
        check('nested same-file requests refused with EDEADLOCK', nested.length - nestedWrong.length, '=', nested.length, '', {
          detail: nestedWrong.slice(0, 3).map((x) => `${x.kind}: ${x.outcome}`).join(' | '),
        }),
        check('EDEADLOCK latency, max', deadlockLatency, '<', AT_ONCE_MS, 'ms'),
        check('acquireLock twice outside withLock: ended by ELOCKTIMEOUT', selfWait.filter((x) => x.outcome === 'ELOCKTIMEOUT').length, '=', selfWait.length),
        check('max time to end beyond the timeout', Math.max(...overshoots), '<', SLACK_MS, 'ms', {
          detail: worst ? `${worst.kind}: ${worst.outcome} after ${worst.elapsed.toFixed(1)} ms, timeout ${worst.timeoutMs} ms` : '',
        }),
        info('max time to end', Math.max(...attempts.map((x) => x.elapsed)), 'ms'),
        check('timeouts that fired before their timeoutMs', early.length, '=', 0),
      ],
    }
  },
}
