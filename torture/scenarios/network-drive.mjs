// network-drive: a simulated network share (flm-netsim, a FUSE pass-through
// with latency that refuses flock/fcntl locks and reports no change events to
// the other mount), mounted twice over one directory to stand for two
// machines. On it the manager must detect a network file system, fall back to
// lock files, stretch its timeouts, and its watcher must poll; processes on
// both mounts incrementing one document must lose nothing.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { Child, PACKAGE, check, info, kitChild, nowMs, verdict, within } from '../lib/harness.mjs'
import * as netsim from '../lib/netsim.mjs'

const { FileLockManager } = createRequire(import.meta.url)(PACKAGE)

export default {
  name: 'network-drive',
  title: 'two mounts of one directory through flm-netsim (FUSE, subtype sshfs, per-call latency, flock/fcntl refused with ENOLCK, no change events across mounts): detection, lock-file fallback, stretched timeouts, polling watcher, increments from both mounts',
  budgetMs: { quick: 240_000, full: 420_000 },

  async run({ quick, tmp, log }) {
    const why = netsim.unavailable()
    if (why !== null) return { skipped: why }
    netsim.build(log)
    const backing = path.join(tmp, 'backing')
    const latency = quick ? '1-4' : '2-20'
    const args = ['--subtype', 'sshfs', '--refuse-locks', '--latency-ms', latency]
    const a = await netsim.mount(backing, path.join(tmp, 'machine-a'), args)
    const b = await netsim.mount(backing, path.join(tmp, 'machine-b'), args)
    const figures = []
    const managers = []
    const children = []
    try {
      const fileA = path.join(a.mountpoint, 'roles.json')
      const fileB = path.join(b.mountpoint, 'roles.json')
      fs.writeFileSync(path.join(backing, 'roles.json'), JSON.stringify({ counter: 0 }))
      figures.push(info('per-call latency of the simulated share', latency, 'ms'))

      // Detection and fallback.
      const m = new FileLockManager({ timeoutMs: 300, retries: 1 })
      managers.push(m)
      const lock = await m.acquireLock(fileA)
      figures.push(verdict('network share detected, lock-file strategy chosen', lock.strategy === 'lockfile' && /network/.test(lock.strategyReason ?? ''), `${lock.strategy}: ${lock.strategyReason}`))
      await lock.release()
      const forced = new FileLockManager({ strategy: 'os', timeoutMs: 300, retries: 1 })
      managers.push(forced)
      // strategy 'os' forced: the share refuses flock (ENOLCK), so the lock file is used after all.
      const forcedLock = await forced.acquireLock(fileA).catch((e) => e)
      figures.push(verdict("strategy 'os' forced on it: the share's ENOLCK is seen and lock files are used", forcedLock.strategy === 'lockfile', forcedLock.strategy ?? `${forcedLock.code}: ${forcedLock.message}`))
      if (forcedLock.strategy) await forcedLock.release()

      // Stretched timeouts: a holder on machine A, a waiter on machine B.
      const holder = new Child('lock-agent.mjs', [JSON.stringify({})])
      children.push(holder)
      await holder.waitFor('ready', { timeoutMs: 30000 })
      await holder.request({ cmd: 'acquire', file: fileA }, 'held', 30000)
      const t0 = nowMs()
      const timedOut = await m.acquireLock(fileB, { timeoutMs: 300, retries: 1 }).then((l) => l.release().then(() => null), (e) => e)
      const waited = nowMs() - t0
      figures.push(verdict('a lock held on the other machine is respected (ELOCKTIMEOUT)', timedOut?.code === 'ELOCKTIMEOUT', timedOut?.code ?? 'granted'))
      figures.push(check('timeout stretched on the share (300 ms × networkTimeoutFactor 3)', waited, '>=', 900, 'ms'))
      figures.push(verdict('the error names the share', timedOut?.network === 'sshfs', String(timedOut?.network)))
      await holder.request({ cmd: 'release' }, 'released', 30000)
      await holder.request({ cmd: 'close' }, 'closed', 30000)

      // The watcher polls: a change made through machine B is seen on machine A.
      const changes = []
      const watcher = m.watch(fileA, (c) => changes.push(c), { pollIntervalMs: 250 })
      figures.push(verdict('the watcher polls on the share', watcher.mode === 'polling' && watcher.network === 'sshfs', `${watcher.mode} (${watcher.network})`))
      const w0 = nowMs()
      fs.writeFileSync(`${fileB}.tmp`, JSON.stringify({ counter: 0, touched: true }))
      fs.renameSync(`${fileB}.tmp`, fileB)
      await within((async () => {
        while (changes.length === 0) await new Promise((r) => setTimeout(r, 20))
      })(), 10000, 'the change seen by polling').catch(() => {})
      figures.push(verdict("a change made on the other machine is seen", changes.length > 0 && changes[0].external, changes.length ? `${changes[0].kind}, external` : 'not seen'))
      if (changes.length) figures.push(check('… seen after', nowMs() - w0, '<', 2000, 'ms'))
      await watcher.close()
      fs.writeFileSync(path.join(backing, 'roles.json'), JSON.stringify({ counter: 0 }))

      // Increments from both machines.
      const PER = quick ? 15 : 60
      const workers = [fileA, fileA, fileB, fileB].map((f) => new Child(kitChild('doc-incrementer.mjs'), [f, PER, JSON.stringify({ timeoutMs: 10000 }), JSON.stringify({ watch: false })]))
      children.push(...workers)
      await Promise.all(workers.map((w) => w.waitFor('ready', { timeoutMs: 60000 })))
      const i0 = nowMs()
      for (const w of workers) w.send({ cmd: 'go' })
      const reports = await Promise.all(workers.map((w) => w.waitFor('done', { timeoutMs: quick ? 150000 : 360000 })))
      const acked = reports.reduce((n, r) => n + r.acknowledged, 0)
      const final = JSON.parse(fs.readFileSync(path.join(backing, 'roles.json'), 'utf8')).counter
      figures.push(info('increments made (2 processes per machine)', 4 * PER))
      figures.push(check('increments acknowledged', acked, '=', 4 * PER))
      figures.push(check('lost increments (acknowledged − in the file)', acked - final, '=', 0))
      figures.push(info('increments/s across the two machines', Number(((4 * PER) / ((nowMs() - i0) / 1000)).toFixed(1))))
      const errors = reports.flatMap((r) => r.errors)
      if (errors.length) log(`worker errors: ${errors.slice(0, 3).join('; ')}`)
      const leftovers = fs.readdirSync(backing).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock'))
      figures.push(check('temp or lock files left on the share', leftovers.length, '=', 0, '', { detail: leftovers.join(', ') }))
      return { figures }
    } finally {
      for (const child of children) await child.kill('SIGKILL')
      for (const manager of managers) await manager.close()
      await a.unmount()
      await b.unmount()
    }
  },
}
