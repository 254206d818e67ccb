// clock-jumps: the lock-file strategy (strategy 'lockfile', staleMs 400) facing
// lock files whose times say nothing true: mtimes far in the past or the
// future (fs.utimesSync, re-applied every 10 ms, since the holder's heartbeat
// rewrites the file), and planted holder records (the format of
// crates/file-lock-core/src/lock/holder_record.rs: pid, hostname, startTime, acquiredAt, heartbeat, …)
// with absurd times. Staleness must follow liveness (a pid on this host) or
// our own monotonic clock (another host's record), never timestamps:
//
// (a) a LIVE holder is never taken over early, whatever its times say;
// (b) a DEAD holder's lock file does not stick, even with times in the future
//     (dead pid: at once; another host's unchanged record: after staleMs);
// (c) a live holder with a future mtime releases: the waiter gets it.
// A reclaimed lock file must also be reported ('stale-lock-removed' with the
// right reason). Each case uses fresh processes; a1–a4 last WAIT_LIVE_MS each.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Child, check, sidecarOf, sleep, verdict } from '../lib/harness.mjs'

const STALE_MS = 400
const PAST = new Date('1990-01-01T00:00:00Z')
const FUTURE = new Date('2100-01-01T00:00:00Z')
const AT_ONCE_MS = STALE_MS // a dead pid must be seen at once, without waiting for staleness
const HANDOFF_MS = 500 // (c): the waiter gets a released lock within this

/** Field 22 of /proc/<pid>/stat: the start time the library records (crates/file-lock-core/src/process.rs). */
function startTimeOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

export default {
  name: 'clock-jumps',
  title: `lock-file strategy (staleMs ${STALE_MS}) vs. lock files with mtimes in 1990/2100 and holder records with absurd times: live holders kept, dead ones reclaimed, releases handed on`,
  budgetMs: { quick: 40_000, full: 90_000 },

  async run({ quick, tmp, log, partial }) {
    if (process.platform !== 'linux') return { skipped: 'reads /proc for process start times (Linux only)' }
    const ROUNDS = quick ? 1 : 3
    // A waiter facing a live holder gives up after this: it must not steal meanwhile.
    const WAIT_LIVE_MS = (quick ? 3 : 5) * STALE_MS
    const options = JSON.stringify({ strategy: 'lockfile', staleMs: STALE_MS, exposePids: true })
    const file = path.join(tmp, 'roles.json')
    const lockFile = sidecarOf(file)
    fs.writeFileSync(file, '{}')
    const agent = async () => {
      const child = new Child('lock-agent.mjs', [options])
      await child.waitFor('ready')
      return child
    }
    const acquire = (child, timeoutMs) => {
      child.send({ cmd: 'acquire', file, options: { timeoutMs, retries: 1 } })
      return Promise.race([child.waitFor('held', { timeoutMs: timeoutMs + 5000 }), child.waitFor('acquire-failed', { timeoutMs: timeoutMs + 5000 })]).then((m) => ({
        granted: m.type === 'held',
        ...m,
      }))
    }
    /** Keeps setting the lock file's times to `when` (every 10 ms) until stopped. */
    const skew = (when) => {
      const apply = () => {
        try {
          fs.utimesSync(lockFile, when, when)
        } catch {}
      }
      apply()
      const timer = setInterval(apply, 10)
      return () => clearInterval(timer)
    }
    const plant = (fields) => {
      const record = { pid: 0, hostname: os.hostname(), startTime: null, acquiredAt: 0, mode: 'exclusive', token: `planted-${Math.random().toString(16).slice(2)}`, fencingToken: 1, strategy: 'lockfile', heartbeat: 0, ...fields }
      fs.writeFileSync(lockFile, `${JSON.stringify(record)}\n`, { mode: 0o600 })
      return record
    }
    const holderPid = () => {
      try {
        return JSON.parse(fs.readFileSync(lockFile, 'utf8').split('\n')[0]).pid
      } catch {
        return null
      }
    }
    /** The reason of the waiter's 'stale-lock-removed' event (it may trail the grant a little). */
    const staleEvent = (child) =>
      child
        .waitFor('event', { filter: (m) => m.name === 'stale-lock-removed', timeoutMs: 1000 })
        .then((m) => m.payload?.reason ?? m.payload?.message ?? JSON.stringify(m.payload))
        .catch(() => 'NO stale-lock-removed event')

    const results = {} // case → [{ pass, text, ms }]
    const record = (key, pass, text, ms) => {
      ;(results[key] ??= []).push({ pass, text, ms })
      log(`${pass ? 'pass' : 'FAIL'} ${key}: ${text}`)
    }

    for (let round = 0; round < ROUNDS; round++) {
      // ---- (a1) live holder, mtime far in the past
      {
        const holder = await agent()
        const held = await acquire(holder, 5000)
        const stop = skew(PAST)
        const waiter = await agent()
        const got = await acquire(waiter, WAIT_LIVE_MS)
        stop()
        const kept = holderPid() === holder.pid && !holder.messages.some((m) => m.type === 'lost')
        record('a1', held.granted && !got.granted && got.code === 'ELOCKTIMEOUT' && kept, `waiter ${got.granted ? 'TOOK IT' : got.code} after ${got.elapsed.toFixed(0)} ms; holder ${kept ? 'kept it' : 'LOST it'}`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await holder.request({ cmd: 'release' }, 'released')
        await Promise.all([holder.kill(), waiter.kill()])
      }

      // ---- (a2, a3) a live process's planted record with times in 1970 / 2100
      for (const [key, when] of [
        ['a2', { at: 0, mtime: PAST }],
        ['a3', { at: FUTURE.getTime(), mtime: FUTURE }],
      ]) {
        const sleeper = new Child('sleeper.mjs')
        await sleeper.waitFor('ready')
        const planted = plant({ pid: sleeper.pid, startTime: startTimeOf(sleeper.pid), acquiredAt: when.at, heartbeat: when.at })
        const bytes = fs.readFileSync(lockFile)
        const stop = skew(when.mtime)
        const waiter = await agent()
        const got = await acquire(waiter, WAIT_LIVE_MS)
        stop()
        const untouched = fs.existsSync(lockFile) && fs.readFileSync(lockFile).equals(bytes)
        record(key, !got.granted && got.code === 'ELOCKTIMEOUT' && untouched, `waiter ${got.granted ? 'TOOK IT' : got.code} after ${got.elapsed.toFixed(0)} ms; record ${untouched ? 'untouched' : 'CHANGED'}`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')

        // ---- (b2) the same record once its process is dead: reclaimed at once
        if (key === 'a3') {
          await sleeper.kill('SIGKILL') // reaped: the pid no longer exists
          if (!fs.existsSync(lockFile)) plant({ ...planted })
          const stop2 = skew(FUTURE)
          const waiter2 = await agent()
          const got2 = await acquire(waiter2, 5000)
          stop2()
          const why = await staleEvent(waiter2)
          record('b2', got2.granted && got2.elapsed < AT_ONCE_MS && why.includes('exited'), `${got2.granted ? 'granted' : got2.code} after ${got2.elapsed.toFixed(1)} ms (${why})`, got2.elapsed)
          if (got2.granted) await waiter2.request({ cmd: 'release' }, 'released')
          await waiter2.kill()
        }
        await Promise.all([sleeper.kill(), waiter.kill()])
        fs.rmSync(lockFile, { force: true })
      }

      // ---- (b1) a holder SIGKILLed while holding, its lock file's mtime in 2100
      {
        const holder = await agent()
        await acquire(holder, 5000)
        await holder.kill('SIGKILL')
        const left = fs.existsSync(lockFile) && holderPid() === holder.pid
        const stop = skew(FUTURE)
        const waiter = await agent()
        const got = await acquire(waiter, 5000)
        stop()
        const why = await staleEvent(waiter)
        record('b1', left && got.granted && got.elapsed < AT_ONCE_MS && why.includes('exited'), `${left ? '' : '(NO lock file left by the kill) '}${got.granted ? 'granted' : got.code} after ${got.elapsed.toFixed(1)} ms (${why})`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await waiter.kill()
      }

      // ---- (b3) a live pid with another start time (the pid was reused), times in 2100
      {
        const sleeper = new Child('sleeper.mjs')
        await sleeper.waitFor('ready')
        plant({ pid: sleeper.pid, startTime: startTimeOf(sleeper.pid) + 1, acquiredAt: FUTURE.getTime(), heartbeat: FUTURE.getTime() })
        const stop = skew(FUTURE)
        const waiter = await agent()
        const got = await acquire(waiter, 5000)
        stop()
        const why = await staleEvent(waiter)
        record('b3', got.granted && got.elapsed < AT_ONCE_MS && why.includes('reused'), `${got.granted ? 'granted' : got.code} after ${got.elapsed.toFixed(1)} ms (${why})`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await Promise.all([sleeper.kill(), waiter.kill()])
        fs.rmSync(lockFile, { force: true })
      }

      // ---- (b4) another host's record, times in 2100, never refreshed: stale after staleMs by our clock
      {
        plant({ pid: 4242, hostname: 'another-host.example', acquiredAt: FUTURE.getTime(), heartbeat: FUTURE.getTime() })
        const stop = skew(FUTURE)
        const waiter = await agent()
        const got = await acquire(waiter, 5000)
        stop()
        const why = await staleEvent(waiter)
        record('b4', got.granted && got.elapsed >= STALE_MS && got.elapsed <= STALE_MS + 1000 && why.includes('refreshed'), `${got.granted ? 'granted' : got.code} after ${got.elapsed.toFixed(0)} ms (${why})`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await waiter.kill()
        fs.rmSync(lockFile, { force: true })
      }

      // ---- (a4) another host's record refreshed every staleMs/4 with a clock 36 years behind, mtime 1990: held
      {
        const planted = plant({ pid: 4242, hostname: 'another-host.example', acquiredAt: PAST.getTime(), heartbeat: PAST.getTime() })
        const fd = fs.openSync(lockFile, 'r+')
        let beat = 0
        const refresh = setInterval(() => {
          // As the library does: one positioned write over the record, no truncate.
          const heartbeat = PAST.getTime() + ++beat * 100
          fs.writeSync(fd, Buffer.from(`${JSON.stringify({ ...planted, heartbeat })}\n`), 0, undefined, 0)
          fs.utimesSync(lockFile, PAST, PAST)
        }, STALE_MS / 4)
        const waiter = await agent()
        const got = await acquire(waiter, WAIT_LIVE_MS)
        clearInterval(refresh)
        fs.closeSync(fd)
        const still = fs.existsSync(lockFile) && holderPid() === 4242
        record('a4', !got.granted && got.code === 'ELOCKTIMEOUT' && still, `waiter ${got.granted ? 'TOOK IT' : got.code} after ${got.elapsed.toFixed(0)} ms; remote record ${still ? 'kept' : 'BROKEN'} (${beat} heartbeats)`, got.elapsed)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await waiter.kill()
        fs.rmSync(lockFile, { force: true })
      }

      // ---- (c) live holder, mtime in 2100, releases while a waiter waits
      {
        const holder = await agent()
        await acquire(holder, 5000)
        const stop = skew(FUTURE)
        const waiter = await agent()
        const waiting = acquire(waiter, 5000)
        await sleep(3 * STALE_MS) // well past staleMs: it must still be waiting
        const early = waiter.messages.some((m) => m.type === 'held')
        const released = await holder.request({ cmd: 'release' }, 'released')
        const got = await waiting
        stop()
        const handoff = got.granted ? got.at - released.at : NaN
        const pass = got.granted && !early && got.at >= released.releasingAt && handoff < HANDOFF_MS
        record('c', pass, `${early ? 'waiter TOOK IT before the release; ' : ''}${got.granted ? `granted ${Math.max(0, handoff)} ms after the release` : got.code}`, handoff)
        if (got.granted) await waiter.request({ cmd: 'release' }, 'released')
        await Promise.all([holder.kill(), waiter.kill()])
      }
      partial(Object.entries(results).map(([k, v]) => verdict(`case ${k}`, v.every((r) => r.pass))))
    }

    const CASES = {
      a1: 'live holder (a lock-file holder process), mtime 1990: not taken over',
      a2: "live process's record, acquiredAt/heartbeat 1970, mtime 1990: not taken over",
      a3: "live process's record, acquiredAt/heartbeat 2100, mtime 2100: not taken over",
      a4: "another host's record refreshed every staleMs/4, clock 36 years behind, mtime 1990: not taken over",
      b1: 'holder SIGKILLed while holding, mtime 2100: reclaimed at once',
      b2: "dead process's record, times 2100: reclaimed at once",
      b3: 'pid alive but reused (other start time), times 2100: reclaimed at once',
      b4: "another host's record, times 2100, unchanged: reclaimed after staleMs",
      c: 'live holder, mtime 2100, releases: the waiter gets it',
    }
    const figures = []
    for (const [key, label] of Object.entries(CASES)) {
      const runs = results[key] ?? []
      const worst = runs.find((r) => !r.pass) ?? runs[runs.length - 1]
      const ms = runs.map((r) => r.ms)
      const pass = runs.length === ROUNDS && runs.every((r) => r.pass)
      const value = runs.length === 0 ? 'not run' : worst.text
      let target = 'pass'
      if (key.startsWith('a')) target = `waiter times out (${WAIT_LIVE_MS} ms)`
      else if (key === 'b4') target = `granted in ${STALE_MS} … ${STALE_MS + 1000} ms`
      else if (key.startsWith('b')) target = `granted < ${AT_ONCE_MS} ms`
      else if (key === 'c') target = `granted < ${HANDOFF_MS} ms after release`
      figures.push(verdict(`(${key}) ${label}`, pass, runs.length > 1 ? `${value} (${runs.length} runs: ${ms.map((x) => Math.round(x)).join(', ')} ms)` : value, target))
    }
    const leftovers = fs.readdirSync(tmp).filter((name) => name !== 'roles.json')
    figures.push(check('files left beside roles.json at the end (lock files, guards, renamed-aside files)', leftovers.length, '=', 0, '', { detail: leftovers.join(' ') }))
    return { figures }
  },
}
