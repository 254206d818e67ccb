// faults: the disk fails under a JsonDocument. Through flm-netsim (a FUSE
// pass-through whose control file injects errors on chosen calls) and a small
// tmpfs: ENOSPC, EIO and EACCES on write / fsync / rename, EDQUOT on create,
// and a read-only remount in the middle of a run. For every fault:
// - the write rejects with the fault's coded error;
// - the file on disk stays byte-for-byte the previous version, and parses;
// - nothing is lost: the value is kept in the document (error.kept, get()) and
//   saved by itself once the fault clears; no temp file is left behind.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { PACKAGE, check, info, nowMs, tempFilesUnder, verdict, within } from '../lib/harness.mjs'
import * as netsim from '../lib/netsim.mjs'

const { FileLockManager } = createRequire(import.meta.url)(PACKAGE)

const FAULTS = [
  { label: 'ENOSPC on write', rule: { op: 'write', errno: 'ENOSPC' }, code: 'ENOSPC' },
  { label: 'EIO on fsync', rule: { op: 'fsync', errno: 'EIO' }, code: 'EIO' },
  { label: 'EACCES on rename', rule: { op: 'rename', errno: 'EACCES' }, code: 'EACCES' },
  { label: 'EDQUOT on create', rule: { op: 'create', errno: 'EDQUOT' }, code: 'EDQUOT' },
  { label: 'EIO on write, the 2nd call only', rule: { op: 'write', errno: 'EIO', after: 1, count: 1 }, code: 'EIO' },
  { label: 'read-only remount', readOnly: true, code: 'EROFS' },
]

export default {
  name: 'faults',
  title: 'ENOSPC / EIO / EACCES / EDQUOT injected on write, fsync, rename and create (flm-netsim control file), a read-only remount mid-run, and a full tmpfs: coded errors, the previous file intact, the value kept and saved when the fault clears',
  budgetMs: { quick: 180_000, full: 300_000 },

  async run({ quick, tmp, log }) {
    const figures = []
    const rounds = quick ? 1 : 5
    const why = netsim.unavailable()
    if (why !== null) {
      figures.push(info('injected faults (flm-netsim)', `skipped: ${why}`))
    } else {
      netsim.build(log)
      const controlFile = path.join(tmp, 'control.json')
      fs.writeFileSync(controlFile, '')
      const disk = await netsim.mount(path.join(tmp, 'backing'), path.join(tmp, 'disk'), ['--subtype', 'flmfaults', '--control', controlFile])
      const manager = new FileLockManager({ timeoutMs: 2000 })
      try {
        const file = path.join(disk.mountpoint, 'roles.json')
        fs.writeFileSync(file, JSON.stringify({ version: 0, roles: ['admin'] }))
        const doc = await manager.openDocument(file, { watch: false })
        let version = 0
        for (const fault of FAULTS) {
          const seen = { rejected: 0, coded: 0, intact: 0, kept: 0, saved: 0, noTemp: 0, n: 0, landMs: [] }
          for (let round = 0; round < rounds; round++) {
            seen.n++
            const before = fs.readFileSync(file)
            const pathContains = 'roles.json'
            await netsim.control(controlFile, fault.readOnly ? { readOnly: true } : { faults: [{ ...fault.rule, pathContains }] })
            const next = { version: ++version, roles: ['admin', `role-${version}`] }
            const error = await doc.set(next).then(() => null, (e) => e)
            if (error !== null) seen.rejected++
            if (error?.code === fault.code) seen.coded++
            else if (error) log(`${fault.label}: rejected with ${error.code}: ${error.message}`)
            const after = fs.readFileSync(file)
            let parses = true
            try {
              JSON.parse(after)
            } catch {
              parses = false
            }
            if (after.equals(before) && parses) seen.intact++
            if (error?.kept === true && doc.hasUnsavedChanges && JSON.stringify(doc.get()) === JSON.stringify(next)) seen.kept++
            // The fault clears: the kept value lands by itself.
            const cleared = nowMs()
            const saved = new Promise((resolve) => doc.once('saved', resolve))
            await netsim.control(controlFile, {})
            const landed = await within(saved, 40000, 'the kept write landing').then(() => true, () => false)
            if (landed && JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8'))) === JSON.stringify(next)) {
              seen.saved++
              seen.landMs.push(nowMs() - cleared)
            }
            if (tempFilesUnder(disk.mountpoint).length === 0) seen.noTemp++
          }
          const all = (k) => `${seen[k]}/${seen.n}`
          figures.push(check(`${fault.label}: writes rejected with ${fault.code}`, seen.coded, '=', seen.n, '', { value: all('coded') }))
          figures.push(check(`${fault.label}: previous file intact and parseable`, seen.intact, '=', seen.n, '', { value: all('intact') }))
          figures.push(check(`${fault.label}: value kept (error.kept, get())`, seen.kept, '=', seen.n, '', { value: all('kept') }))
          figures.push(check(`${fault.label}: kept value saved once the fault cleared`, seen.saved, '=', seen.n, '', { value: all('saved') }))
          figures.push(check(`${fault.label}: no temp file left`, seen.noTemp, '=', seen.n, '', { value: all('noTemp') }))
          if (seen.landMs.length) figures.push(info(`${fault.label}: landed after the fault cleared, max`, Math.round(Math.max(...seen.landMs)), 'ms'))
        }
        await doc.close()
      } finally {
        await manager.close()
        await disk.unmount()
      }
    }

    // A real full disk: a 256 KiB tmpfs, then grown.
    if (process.getuid?.() !== 0) {
      figures.push(info('ENOSPC on a small tmpfs', 'skipped: not root (mount)'))
      return { figures }
    }
    const small = path.join(tmp, 'tmpfs')
    fs.mkdirSync(small)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small])
    const manager = new FileLockManager()
    try {
      const file = path.join(small, 'roles.json')
      fs.writeFileSync(file, JSON.stringify({ roles: ['admin'] }))
      const before = fs.readFileSync(file)
      const doc = await manager.openDocument(file, { watch: false })
      const big = { roles: ['admin'], blob: 'x'.repeat(400 * 1024) }
      const error = await doc.set(big).then(() => null, (e) => e)
      figures.push(verdict('full tmpfs: the write rejects with ENOSPC', error?.code === 'ENOSPC', error?.code ?? 'resolved'))
      figures.push(verdict('full tmpfs: previous file intact, no temp file', fs.readFileSync(file).equals(before) && tempFilesUnder(small).length === 0))
      const saved = new Promise((resolve) => doc.once('saved', resolve))
      execFileSync('mount', ['-o', 'remount,size=4m', small])
      const landed = await within(saved, 40000, 'the kept write').then(() => true, () => false)
      figures.push(verdict('full tmpfs: kept value saved once the disk grew', landed && JSON.parse(fs.readFileSync(file, 'utf8')).blob?.length === big.blob.length))
      await doc.close()
    } finally {
      await manager.close()
      try {
        execFileSync('umount', [small])
      } catch {
        execFileSync('umount', ['-l', small])
      }
    }
    return { figures }
  },
}
