// Watchers at scale: every watch and document of a process shares one OS
// watcher (one inotify instance, two threads), each directory is watched once
// and unwatched with its last watch, and a watch that cannot be set up says
// why (EWATCHLIMIT) instead of failing silently.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Child, FIXTURES, killAllChildren, makeScratchDir, removeDir, waitUntil } from './helpers.mjs'

const COUNT = 200
const SCALE_CHILD = path.join(FIXTURES, 'watch-scale-child.mjs')
const PACKAGE = fileURLToPath(new URL('../index.js', import.meta.url))
const linux = process.platform === 'linux'

let root = null
afterEach(async () => {
  await killAllChildren()
  removeDir(root)
  root = null
})

let serial = 0
/** An atomic replace, as editors and other instances do it: temp file, then rename. */
function replace(file, text) {
  const temp = path.join(path.dirname(file), `.other-${process.pid}-${serial++}.tmp`)
  fs.writeFileSync(temp, text)
  fs.renameSync(temp, file)
}

const inode = (p) => fs.statSync(p).ino.toString()

/** Whether another process of this user can still fs.watch a directory. */
function fsWatchInAnotherProcess(dir) {
  const source = `try { require('node:fs').watch(${JSON.stringify(dir)}).close(); console.log('ok') } catch (e) { console.log(e.code) }`
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  return new Promise((resolve) => child.on('exit', () => resolve(out.trim())))
}

/**
 * 200 documents open in a child process (`layout`: one folder each, or all in
 * one folder), replaced by this process; what the child reports about itself.
 */
async function twoHundredDocuments(layout) {
  root = makeScratchDir()
  const dirs = layout === 'folders' ? Array.from({ length: COUNT }, (_, i) => path.join(root, `app-${i}`)) : [path.join(root, 'shared')]
  for (const dir of dirs) fs.mkdirSync(dir)
  const files = Array.from({ length: COUNT }, (_, i) => (layout === 'folders' ? path.join(dirs[i], 'roles.json') : path.join(dirs[0], `roles-${i}.json`)))
  for (const file of files) fs.writeFileSync(file, '{"roles":[]}\n')

  const child = new Child(SCALE_CHILD)
  await child.waitFor('ready')
  const opened = await child.request({ cmd: 'open', files }, 'opened', 20000)
  expect(opened.errors).toEqual([])
  expect(opened.watchErrors).toEqual([])
  expect(opened.watching).toBe(COUNT)
  // One inotify instance for all of them, each folder watched once.
  expect(opened.inotify.instances.length).toBeLessThanOrEqual(2)
  const watchedInodes = opened.inotify.watches.map((w) => w.ino)
  for (const dir of dirs) expect(watchedInodes.filter((ino) => ino === inode(dir))).toHaveLength(1)
  const threadDelta = opened.threadsAfter - opened.threadsBefore
  expect(threadDelta).toBeLessThanOrEqual(20)

  // Another process replaces all 200 files at once; every document sees its own.
  const t0 = {}
  for (const [i, file] of files.entries()) {
    t0[file] = process.hrtime.bigint()
    replace(file, JSON.stringify({ roles: [{ id: 'r', name: `changed ${i}` }] }))
  }
  let stamps = {}
  await waitUntil(
    async () => {
      stamps = (await child.request({ cmd: 'seen' }, 'seen')).stamps
      return files.every((f) => f in stamps)
    },
    5000,
    'every document seeing its external change',
  ).catch((error) => {
    error.message += ` (${Object.keys(stamps).length}/${COUNT} seen)`
    throw error
  })
  const latencies = files.map((f) => Number(BigInt(stamps[f]) - t0[f]) / 1e6)
  const worst = Math.max(...latencies)
  expect(worst).toBeLessThanOrEqual(1500)

  // manager.watch() still works (in a folder of its own, which is one more inotify watch).
  const extraDir = path.join(root, 'extra')
  fs.mkdirSync(extraDir)
  const extra = path.join(extraDir, 'settings.json')
  fs.writeFileSync(extra, '{}')
  await child.request({ cmd: 'watch', file: extra }, 'watching')
  replace(extra, '{"theme":"dark"}')
  expect(await child.waitFor('change', { timeoutMs: 5000 })).toMatchObject({ file: extra, kind: 'modified', external: true })

  // Other programs of this user can still watch files.
  const otherProcess = await fsWatchInAnotherProcess(root)
  expect(otherProcess).toBe('ok')

  // Closing the documents of a folder unwatches it; the others stay watched.
  let unwatched
  if (layout === 'folders') {
    const { inotify } = await child.request({ cmd: 'close', files: [files[0]] }, 'closed')
    expect(inotify.watches.map((w) => w.ino)).not.toContain(inode(dirs[0]))
    expect(inotify.watches.map((w) => w.ino)).toContain(inode(dirs[1]))
    unwatched = 'closing its one document unwatched app-0, app-1 still watched'
  } else {
    let { inotify } = await child.request({ cmd: 'close', files: files.slice(0, COUNT - 1) }, 'closed')
    expect(inotify.watches.filter((w) => w.ino === inode(dirs[0]))).toHaveLength(1)
    ;({ inotify } = await child.request({ cmd: 'close', files: [files[COUNT - 1]] }, 'closed'))
    expect(inotify.watches.map((w) => w.ino)).not.toContain(inode(dirs[0]))
    unwatched = 'the folder stayed watched while 1 of its 200 documents was open, and was unwatched with the last'
  }
  const closedAll = await child.request({ cmd: 'close', files: layout === 'folders' ? files.slice(1) : [] }, 'closed')
  const ours = new Set(dirs.map(inode))
  expect(closedAll.inotify.watches.filter((w) => ours.has(w.ino))).toEqual([])
  expect(closedAll.inotify.watches.map((w) => w.ino)).toEqual([inode(extraDir)])

  const sorted = [...latencies].sort((a, b) => a - b)
  console.log(
    `[watch-scale] ${layout === 'folders' ? '200 folders' : 'one folder'}: ${opened.watching}/${COUNT} watching; ` +
      `inotify instances ${opened.inotify.instances.length}, inotify watches ${opened.inotify.watches.length}; ` +
      `threads ${opened.threadsBefore} → ${opened.threadsAfter} (+${threadDelta}: ${opened.threadNames.join(', ')}); ` +
      `external replace seen by all 200: p50 ${sorted[COUNT / 2].toFixed(1)} ms, worst ${worst.toFixed(1)} ms; ` +
      `manager.watch() after: ok; another process fs.watch: ${otherProcess}; ${unwatched}`,
  )
  await child.kill()
}

describe.runIf(linux)('200 documents in one process', () => {
  it('in 200 folders: one inotify instance, all watching, every external replace seen', async () => {
    await twoHundredDocuments('folders')
  }, 30000)

  it('in one folder: the folder is watched once, and unwatched with its last document', async () => {
    await twoHundredDocuments('one')
  }, 30000)
})

// inotify's limits are per user namespace (/proc/sys/user/max_inotify_*), so a
// child in a user namespace of its own can run into them without touching
// anyone else's: a real EMFILE from inotify_init1, a real ENOSPC from
// inotify_add_watch.
const canLimit =
  linux &&
  spawnSync('unshare', ['-Ur', 'sh', '-c', 'echo 1 > /proc/sys/user/max_inotify_instances'], { stdio: 'ignore' }).status === 0

function runWithInotifyLimit(setting, file, body) {
  const source = `const { FileLockManager } = require(${JSON.stringify(PACKAGE)});\nconst file = ${JSON.stringify(file)};\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(2) })`
  const child = spawn('unshare', ['-Ur', 'sh', '-c', `echo 0 > /proc/sys/user/${setting} && exec "$0" -e "$1"`, process.execPath, source], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })))
}

// The child's report: what openDocument and manager.watch() did at the limit.
const AT_THE_LIMIT = `
  const manager = new FileLockManager()
  const heardByManager = []
  manager.on('error', (error) => heardByManager.push(error.code))
  const doc = await manager.openDocument(file)
  let timer
  const emitted = await new Promise((resolve) => {
    doc.on('error', resolve) // added after the open resolved: still in time
    timer = setTimeout(() => resolve(null), 2000)
  })
  clearTimeout(timer)
  // A document nobody listens to: its manager's 'error' hears it.
  const other = await manager.openDocument(file.replace(/\.json$/, '-other.json'), { defaultValue: {} })
  await new Promise((resolve) => setTimeout(resolve, 50))
  let thrown = null
  try {
    manager.watch(file, () => {})
  } catch (error) {
    thrown = { name: error.name, code: error.code, message: error.message, filePath: error.filePath }
  }
  console.log(JSON.stringify({
    watching: doc.watching,
    watchError: doc.watchError && { name: doc.watchError.name, code: doc.watchError.code, message: doc.watchError.message },
    emitted: emitted && { code: emitted.code, same: emitted === doc.watchError },
    other: { watching: other.watching, code: other.watchError?.code },
    heardByManager,
    thrown,
    value: doc.get(),
  }))
  await manager.close()
`

describe.runIf(canLimit)('a watch that cannot be set up', () => {
  it.each([
    ['max_inotify_instances', 'max_user_instances'],
    ['max_inotify_watches', 'max_user_watches'],
  ])('at inotify %s: the document says why (watchError, error event), manager.watch() throws EWATCHLIMIT', async (setting, named) => {
    root = makeScratchDir()
    const file = path.join(root, 'roles.json')
    fs.writeFileSync(file, '{"roles":[]}')
    const { code, out } = await runWithInotifyLimit(setting, file, AT_THE_LIMIT)
    expect(code, out).toBe(0)
    const report = JSON.parse(out.trim().split('\n').at(-1))
    expect(report.value).toEqual({ roles: [] }) // the document itself works
    expect(report.watching).toBe(false)
    expect(report.watchError).toMatchObject({ name: 'FileLockError', code: 'EWATCHLIMIT' })
    expect(report.watchError.message).toContain(`fs.inotify.${named}`)
    expect(report.watchError.message).toContain('sudo sysctl')
    expect(report.watchError.message).toContain(file)
    expect(report.emitted).toEqual({ code: 'EWATCHLIMIT', same: true })
    expect(report.other).toEqual({ watching: false, code: 'EWATCHLIMIT' })
    expect(report.heardByManager).toEqual(['EWATCHLIMIT'])
    expect(report.thrown).toMatchObject({ name: 'FileLockError', code: 'EWATCHLIMIT', filePath: file })
    expect(report.thrown.message).toContain(`fs.inotify.${named}`)
    console.log(`[watch-scale] at ${setting} = 0: ${report.watchError.message}`)
  }, 15000)
})
