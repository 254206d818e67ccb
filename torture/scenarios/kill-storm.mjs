// kill-storm: writer processes loop on JsonDocument.update (counter++) on a
// padded document while the harness SIGKILLs a random one at random moments
// and at once starts a replacement. A raw reader process parses the file every
// 2 ms all along; a probe in this process measures, after a sample of the
// kills, how long until the lock can be taken by a third party.
//
// What must hold:
// - acked ≤ counter ≤ acked + kills: no acknowledged update is lost, and each
//   kill adds at most the one write it had in flight;
// - the raw reader never sees a torn or unparsable file;
// - after a clean reopen and close: no temp file and no lock file remain;
// - a killed holder never leaves the lock unavailable (probe within 5 s).
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { Child, PACKAGE, between, kitChild, check, fmt, info, lockFilesUnder, nowMs, randomBetween, sleep, stats, tempFilesUnder, verdict, within } from '../lib/harness.mjs'

const { FileLockManager } = createRequire(import.meta.url)(PACKAGE)

const WRITERS = 4
const PAD_BYTES = 48 * 1024
const READ_EVERY_MS = 2
const PROBE_TIMEOUT_MS = 5000
const ARMED_SHARE = 0.3 // of the kills: at the moment a writer's temp file appears

export default {
  name: 'kill-storm',
  title: `${WRITERS} writer processes loop on JsonDocument.update (48 KiB document) while random ones are SIGKILLed and replaced; a raw reader parses the file every ${READ_EVERY_MS} ms`,
  budgetMs: { quick: 30_000, full: 240_000 },

  async run({ quick, tmp, log, partial, deadline }) {
    const KILLS = quick ? 60 : 1000
    const MEAN_INTERVAL_MS = quick ? 110 : 120
    const PROBE_EVERY = quick ? 2 : 4 // kills
    const file = path.join(tmp, 'roles.json')
    const pad = 'x'.repeat(PAD_BYTES)
    fs.writeFileSync(file, JSON.stringify({ counter: 0, pad }))

    const reader = new Child('raw-reader.mjs', [file, READ_EVERY_MS])
    await reader.waitFor('ready')

    // ---- writers
    const acked = new Set()
    let duplicateAcks = 0
    let maxAcked = 0
    let lastAckAt = null
    let longestStall = 0
    let stallKills = 0 // kills during the longest stall
    const killTimes = []
    const failures = []
    const slots = []
    const exits = []
    const channels = [] // of every killed writer: closed once all its messages are read
    let tempsLeftByKills = 0
    const killsByPhase = { boot: 0, booted: 0, opening: 0, ready: 0 }
    const killsByHow = { random: 0, 'on-temp-file': 0 }

    const spawnWriter = () => {
      const writer = new Child(kitChild('doc-kill-writer.mjs'), [file], {
        onMessage: (m) => {
          if (m?.type === 'ack') {
            if (acked.has(m.counter)) duplicateAcks++
            acked.add(m.counter)
            maxAcked = Math.max(maxAcked, m.counter)
            const now = nowMs()
            if (lastAckAt !== null && now - lastAckAt > longestStall) {
              longestStall = now - lastAckAt
              stallKills = killTimes.filter((t) => t >= lastAckAt).length
            }
            lastAckAt = now
            writer.acks++
          } else if (m?.type === 'failed') {
            failures.push(`${m.code}: ${m.message}`)
          } else if (typeof m?.type === 'string') {
            writer.phase = m.type
          }
          return true
        },
      })
      writer.phase = 'boot'
      writer.acks = 0
      return writer
    }
    for (let i = 0; i < WRITERS; i++) slots.push(spawnWriter())

    const kill = (writer, why) => {
      writer.kill('SIGKILL')
      channels.push(writer.disconnected)
      exits.push(
        writer.exited.then((exit) => {
          if (exit.signal !== 'SIGKILL') failures.push(`writer ${writer.pid} ${why}: exited ${JSON.stringify(exit)} ${writer.stderr.slice(-300)}`)
          // A kill inside replaceFile leaves its temp file until the next open.
          if (fs.readdirSync(tmp).some((name) => name.startsWith(`.roles.json.${writer.pid}.`) && name.endsWith('.tmp'))) tempsLeftByKills++
        }),
      )
    }

    // ---- the probe: how long the lock stays unavailable after a kill
    const probe = new FileLockManager({ timeoutMs: PROBE_TIMEOUT_MS, retries: 1 })
    const unavailable = []
    let probeTimeouts = 0
    let probing = null
    const probeAfter = (killedAt) =>
      (async () => {
        try {
          const lock = await probe.acquireLock(file, { timeoutMs: PROBE_TIMEOUT_MS, retries: 1 })
          unavailable.push(nowMs() - killedAt)
          await lock.release()
        } catch (error) {
          probeTimeouts++
          unavailable.push(nowMs() - killedAt)
          failures.push(`probe: ${error.code} ${error.message}`)
        }
      })().finally(() => (probing = null))

    // Let the first writers start before the storm.
    for (let waited = 0; acked.size === 0 && waited < 20000; waited += 10) await sleep(10)

    // ---- the storm
    const started = nowMs()
    const stopBy = deadline - (quick ? 8000 : 25000) // leave time to tear down and check
    let kills = 0
    const killNow = (victim, how) => {
      const killedAt = nowMs()
      killTimes.push(killedAt)
      killsByPhase[victim.phase]++
      killsByHow[how]++
      kill(victim, 'during the storm')
      kills++
      slots[slots.indexOf(victim)] = spawnWriter()
      if (kills % PROBE_EVERY === 0 && probing === null) probing = probeAfter(killedAt)
      if (kills % 100 === 0) {
        log(`${kills} kills, ${acked.size} updates acknowledged, ${unavailable.length} probes (max ${Math.round(Math.max(0, ...unavailable))} ms)`)
        partial([info('kills so far', kills), info('updates acknowledged so far', acked.size)])
      }
    }
    // Armed kills fire the moment a writer's temp file appears: inside replaceFile.
    let armed = null
    const watcher = fs.watch(tmp, (_, name) => {
      const pid = /^\.roles\.json\.(\d+)\..+\.tmp$/.exec(name ?? '')?.[1]
      const victim = pid === undefined ? undefined : slots.find((w) => w.pid === Number(pid) && w.alive)
      if (armed !== null && victim !== undefined) {
        const fire = armed
        armed = null
        killNow(victim, 'on-temp-file')
        fire()
      }
    })
    try {
      while (kills < KILLS && Date.now() < stopBy) {
        const pause = randomBetween(0.5, 1.5) * MEAN_INTERVAL_MS
        if (Math.random() < ARMED_SHARE) {
          // Wait for the next temp file (kill at that moment), at most the pause.
          await sleep(pause / 2)
          const fired = await Promise.race([new Promise((resolve) => (armed = () => resolve(true))), sleep(pause).then(() => false)])
          armed = null
          if (fired) continue
        } else {
          await sleep(pause)
        }
        // Mostly writers that are writing, sometimes any (booting, opening).
        const ready = slots.filter((w) => w.phase === 'ready')
        const pool = ready.length > 0 && Math.random() < 0.8 ? ready : slots
        killNow(pool[Math.floor(Math.random() * pool.length)], 'random')
      }
    } finally {
      watcher.close()
    }
    const stormMs = nowMs() - started
    await probing

    // ---- stop: the last writers are killed too (they may have a write in flight)
    let finalKills = 0
    for (const writer of slots) {
      if (writer.alive) {
        killsByPhase[writer.phase]++
        kill(writer, 'at the end')
        finalKills++
      }
    }
    await Promise.all(slots.map((w) => w.exited))
    await Promise.all(exits)
    // Acks still in the pipes of killed writers are read before their channel closes.
    await within(Promise.all(channels), 5000, 'IPC channels to close').catch(() => log('some IPC channels did not close within 5 s'))
    const seen = await reader.request({ cmd: 'stop' }, 'summary')
    const totalKills = kills + finalKills

    const counter = JSON.parse(fs.readFileSync(file, 'utf8')).counter
    const tempsBeforeReopen = tempFilesUnder(tmp)
    await probe.close()

    // ---- a clean reopen and close with a fresh manager
    const fresh = new FileLockManager()
    let reopened = null
    let reopenError = null
    try {
      const doc = await fresh.openDocument(file)
      reopened = doc.get()
      await doc.close()
    } catch (error) {
      reopenError = `${error.code}: ${error.message}`
    }
    await fresh.close()
    const tempsAfter = tempFilesUnder(tmp)
    const locksAfter = lockFilesUnder(tmp)

    const lostAcks = Math.max(0, acked.size - counter, maxAcked - counter)
    const extra = counter - acked.size
    const u = stats(unavailable)
    log(
      `${totalKills} kills in ${(stormMs / 1000).toFixed(1)} s (${JSON.stringify(killsByPhase)}), ${acked.size} acked, counter ${counter}, ` +
        `${seen.reads} raw reads, ${tempsLeftByKills} kills left a temp file, ${tempsBeforeReopen.length} temp file(s) before reopen`,
    )
    if (locksAfter.length > 0) log(`lock files left after the clean close: ${locksAfter.join(', ')}`)
    if (seen.samples.length > 0) log(`raw reader samples: ${seen.samples.join(' | ')}`)
    for (const failure of failures.slice(0, 5)) log(`failure: ${failure}`)

    return {
      figures: [
        check('kills (SIGKILL)', totalKills, '>=', KILLS),
        info('kills by phase: booting / opening / writing', `${killsByPhase.boot + killsByPhase.booted} / ${killsByPhase.opening} / ${killsByPhase.ready}`),
        info('kills at random moments / the moment a temp file appeared', `${killsByHow.random} / ${killsByHow['on-temp-file']}`),
        info('kills that left a temp file (killed inside replaceFile)', tempsLeftByKills),
        info('storm duration', stormMs / 1000, 's'),
        check('updates acknowledged', acked.size, '>=', Math.ceil(KILLS / 10), '', { detail: 'the writers must make progress between kills' }),
        info('updates in the file (counter)', counter),
        check('acknowledged updates lost (acked − counter)', lostAcks, '=', 0),
        between('unacknowledged writes that landed (counter − acked)', extra, 0, totalKills, '', { detail: 'at most one write in flight per kill' }),
        check('duplicate acknowledged values', duplicateAcks, '=', 0),
        info('raw reads', seen.reads),
        check('unparsable or failed raw reads', seen.unparsable + seen.readErrors + seen.notCounter, '=', 0, '', { detail: seen.samples.join(' | ') }),
        check('raw reads seeing the counter go backwards', seen.backwards, '=', 0),
        check('writer failures (errors, exits other than our SIGKILL, probe errors)', failures.length, '=', 0, '', { detail: failures.slice(0, 3).join(' | ') }),
        info('temp files left by the dead writers before reopening', tempsBeforeReopen.length),
        verdict('clean reopen reads the counter and padding intact', reopened !== null && reopened.counter === counter && reopened.pad === pad, reopenError ?? (reopened?.counter === counter ? 'yes' : `counter ${reopened?.counter}`), 'yes'),
        check('temp files left after a clean reopen', tempsAfter.length, '=', 0, '', { detail: tempsAfter.join(' ') }),
        check('lock files left after a clean close', locksAfter.length, '=', 0, '', { detail: locksAfter.join(' ') }),
        info('probes of the lock after a kill', u.n),
        check('lock unavailable after a kill, p99', u.p99, '<', 1000, 'ms'),
        check('lock unavailable after a kill, max', u.max, '<', PROBE_TIMEOUT_MS, 'ms', { detail: `${probeTimeouts} probe(s) timed out` }),
        info('longest stall of acknowledged updates (kills during it)', `${fmt(longestStall)} ms (${stallKills})`),
      ],
    }
  },
}
