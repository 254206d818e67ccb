// `npm run demo`: the whole story of several app instances sharing one roles.json.
//
//   1. three app instances (real processes) add and edit roles at the same time
//      through openDocument().update(): they wait for each other, nothing is lost;
//   2. a text editor (another process, temp file + rename) changes the file: every
//      instance sees an `external-change` with the changed paths;
//   3. a clean merge: unsaved edit() in one instance + another instance's save of a
//      different role → `merged`, then save();
//   4. a conflict decided by policy: an instance opened with onConflict: 'mine' has
//      an unsaved change of the same field another instance saves → `conflict`;
//   5. a crashed instance: a 'lockfile'-strategy app holds the lock and is SIGKILLed;
//      the next save finds its lock file, sees the process is gone, removes it
//      (`stale-lock-removed`) and goes ahead;
//   6. the final check: every role and every expected value is in the file.
//
// The steps are sequenced by handshakes over IPC (each step waits for the events
// it is about), never by sleeps, so a busy machine only makes it slower.
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const tty = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text)
const COLORS = { 'window-1': 36, 'window-2': 35, 'second-app': 33, 'text-editor': 32, 'crashing-app': 31 }
const label = (name) => paint(COLORS[name] ?? 0, name.padEnd(12))
const hashOf = (value) => createHash('sha1').update(JSON.stringify(value)).digest('hex')
const WAIT_MS = 20_000 // for one awaited event; far above what any step needs

const role = process.argv[2]
if (role === 'instance') await runInstance(process.argv[3], process.argv[4], process.argv[5])
else if (role === 'text-editor') runTextEditor(process.argv[3])
else if (role === 'crashing-app') await runCrashingApp(process.argv[3])
else await runDemo()

// ---------------------------------------------------------------------------
// An app instance: opens the document, runs the commands the demo sends, and
// reports every event as it happens.

async function runInstance(name, file, onConflict) {
  const { FileLockManager } = createRequire(import.meta.url)('../index.js')
  const send = (message) => process.send(message)
  const event = (kind, text, extra) => send({ type: 'event', name, kind, text, ...extra })
  const manager = new FileLockManager({ timeoutMs: 5000 })
  manager.on('waiting', (e) => event('waiting', `waiting — ${e.message}`))
  manager.on('acquired', (e) => e.exclusive && event('acquired', `acquired the lock (fencing token ${e.fencingToken}, ${e.strategy})`))
  manager.on('timeout', (e) => event('timeout', `timeout — ${e.message}`))
  manager.on('stale-lock-removed', (e) => event('stale-lock-removed', `stale-lock-removed — ${e.message}`, { reason: e.reason }))

  const doc = await manager.openDocument(file, onConflict === 'ask' ? {} : { onConflict })
  const paths = (changes) => changes.map((c) => `${{ added: '+', removed: '-', changed: '~', reordered: '↕' }[c.kind]}${c.path}`).join(', ')
  doc.on('saved', (e) => event('saved', `saved roles.json (${e.value.roles.length} roles)`, { hash: hashOf(e.value) }))
  doc.on('external-change', (e) =>
    event('external-change', `external-change (seen at ${e.origin}${e.reloaded ? '' : ', unsaved edits here'}): ${paths(e.changes)}`, {
      hash: e.newValue && hashOf(e.newValue),
      paths: e.changes.map((c) => c.path),
    }),
  )
  doc.on('merged', (e) => event('merged', `merged — mine: ${paths(e.fromMine)}; theirs: ${paths(e.fromTheirs)}; still unsaved`))
  doc.on('conflict', (e) => {
    const at = e.conflicts.map((c) => `${c.path}: mine ${JSON.stringify(c.mine)} vs theirs ${JSON.stringify(c.theirs)}`).join('; ')
    const how = e.policy ? `resolved by the onConflict policy '${e.policy}' (the file was backed up first)` : 'waiting for resolve()'
    event('conflict', `conflict at ${at} → ${how}`, { policy: e.policy, paths: e.conflicts.map((c) => c.path) })
  })
  doc.on('lock-timeout', (e) => event('lock-timeout', `lock-timeout — retrying in ${e.retryInMs} ms`))
  doc.on('error', (error) => event('error', `error — ${error.code}: ${error.message}`))

  let held = null
  const commands = {
    hold: async () => {
      held = await manager.acquireLock(file)
    },
    release: async () => {
      await held.release()
      held = null
    },
    update: async ({ ops }) => {
      for (const batch of ops) await doc.update((value) => applyOps(value, batch))
    },
    edit: async ({ ops }) => {
      doc.edit((value) => applyOps(value, ops))
    },
    save: async () => hashOf(await doc.save()),
    read: async () => hashOf(await doc.read()),
    view: async () => ({ hash: hashOf(doc.get()), unsaved: doc.hasUnsavedChanges }),
    close: async () => {
      await doc.close()
      await manager.close()
      setImmediate(() => process.disconnect())
    },
  }
  process.on('message', async ({ id, command, args }) => {
    try {
      send({ type: 'reply', id, result: await commands[command](args) })
    } catch (error) {
      send({ type: 'reply', id, error: `${error.code ?? error.name}: ${error.message}` })
    }
  })
  send({ type: 'ready', name, hash: hashOf(doc.get()) })
}

// Small edits described as data, so the demo can send them over IPC.
function applyOps(value, ops) {
  for (const op of ops) {
    const target = value.roles.find((r) => r.id === op.id)
    if (op.op === 'add-role') value.roles.push(op.role)
    else if (op.op === 'set') target[op.key] = op.value
    else if (op.op === 'push') target[op.key].push(op.value)
  }
}

// A text editor: no lock, writes a temp file beside the original and renames it over.
function runTextEditor(file) {
  const value = JSON.parse(readFileSync(file, 'utf8'))
  value.roles.find((r) => r.id === 'guest').name = 'Guest (edited in a text editor)'
  value.roles.push({ id: 'contractor', name: 'Contractor', permissions: ['read'] })
  const temp = join(dirname(file), `.${basename(file)}.swp`)
  writeFileSync(temp, `${JSON.stringify(value, null, 4)}\n`)
  renameSync(temp, file)
  process.send({ type: 'saved' })
}

// An instance on the lock-file strategy (as on a network drive) that takes the
// lock for a save and dies in the middle of it.
async function runCrashingApp(file) {
  const { FileLockManager } = createRequire(import.meta.url)('../index.js')
  const manager = new FileLockManager({ strategy: 'lockfile' })
  const lock = await manager.acquireLock(file)
  process.send({ type: 'held', strategy: lock.strategy, fencingToken: lock.fencingToken })
  setInterval(() => {}, 60_000) // "saving…" until killed
}

// ---------------------------------------------------------------------------
// The demo: starts the processes and sequences the story.

async function runDemo() {
  const startedAt = performance.now()
  const stamp = () => paint(90, `${String(Math.round(performance.now() - startedAt)).padStart(5)} ms`)
  const say = (name, text) => console.log(`${stamp()}  ${label(name)} ${text}`)
  const heading = (text) => console.log(`\n${paint(1, text)}`)
  const note = (text) => console.log(`${' '.repeat(10)}${paint(90, text)}`)

  const dir = mkdtempSync(join(tmpdir(), 'file-lock-demo-'))
  const file = join(dir, 'roles.json')
  const initial = {
    roles: [
      { id: 'admin', name: 'Administrator', permissions: ['*'] },
      { id: 'viewer', name: 'Viewer', permissions: ['read'] },
    ],
  }
  writeFileSync(file, `${JSON.stringify(initial, null, 2)}\n`)

  const children = new Set()
  const log = [] // every message from every process, in arrival order
  const waiters = new Set()
  const watchdog = setTimeout(() => fail('the demo did not finish within 90 s'), 90_000)
  watchdog.unref()
  let failing = false
  function fail(message) {
    if (failing) return
    failing = true
    console.error(`\n${paint(31, '✗')} ${message}`)
    for (const child of children) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    process.exit(1)
  }
  function onMessage(child, message) {
    log.push(message)
    if (message.type === 'event') say(message.name, message.text)
    else if (message.type === 'reply') child.replies.get(message.id)?.(message)
    for (const waiter of waiters) waiter()
  }
  // Resolves with the first message (from index `since` of the log on) that matches.
  function until(what, matches, since = 0) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => fail(`gave up waiting for ${what} after ${WAIT_MS / 1000} s`), WAIT_MS)
      const check = () => {
        const found = log.slice(since).find(matches)
        if (found === undefined) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve(found)
      }
      waiters.add(check)
      check()
    })
  }
  function start(name, args) {
    const child = fork(self, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.name = name
    child.replies = new Map()
    child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    child.on('message', (message) => onMessage(child, message))
    child.on('exit', (code, signal) => {
      children.delete(child)
      if (code !== 0 && signal !== 'SIGKILL' && !failing) fail(`${name} exited with ${code ?? signal}`)
    })
    children.add(child)
    return child
  }
  let nextId = 0
  function call(child, command, args) {
    const id = ++nextId
    return new Promise((resolve) => {
      child.replies.set(id, (reply) => {
        child.replies.delete(id)
        if (reply.error) fail(`${child.name}: ${command} failed: ${reply.error}`)
        else resolve(reply.result)
      })
      child.send({ id, command, args })
    })
  }
  // Waits until every instance has seen the file as it is now (through its own
  // saves and external-change events); falls back to a read() if one's watch is slow.
  const lastSeen = new Map()
  async function allSeeTheFile(instances) {
    const hash = hashOf(JSON.parse(readFileSync(file, 'utf8')))
    await Promise.all(
      instances.map(async (child) => {
        const seen = (m) => m.name === child.name && (m.kind === 'saved' || m.kind === 'external-change') && m.hash === hash
        const since = lastSeen.get(child.name) ?? 0
        if (log.slice(since).some(seen)) return
        await until(`${child.name} to see the latest roles.json`, seen, since)
      }),
    )
    for (const child of instances) lastSeen.set(child.name, log.length)
  }

  console.log(paint(1, 'file-lock-manager demo') + ` — three app instances, a text editor and a crash share ${file}`)

  // Start the three instances; second-app resolves conflicts by policy ('mine').
  heading('0. Three app instances open roles.json (openDocument)')
  const w1 = start('window-1', ['instance', 'window-1', file, 'ask'])
  const w2 = start('window-2', ['instance', 'window-2', file, 'ask'])
  const app = start('second-app', ['instance', 'second-app', file, 'mine'])
  const instances = [w1, w2, app]
  await Promise.all(instances.map((child) => until(`${child.name} to open roles.json`, (m) => m.type === 'ready' && m.name === child.name)))
  note("window-1, window-2 and second-app have it open (second-app with onConflict: 'mine')")

  // 1 ------------------------------------------------------------------------
  heading('1. Three instances add and edit roles at the same time (doc.update)')
  note('each adds two roles and grants the shared "viewer" role a permission per role it adds')
  const addRoles = (ids) =>
    ids.map((id) => [
      { op: 'add-role', role: { id, name: id[0].toUpperCase() + id.slice(1), permissions: ['read'] } },
      { op: 'push', id: 'viewer', key: 'permissions', value: `reports:${id}` },
    ])
  const plan = { 'window-1': ['editor', 'support'], 'window-2': ['auditor', 'billing'], 'second-app': ['guest', 'ops'] }
  await call(w1, 'hold')
  say('window-1', 'holds the lock for a slow save; the others must wait')
  let mark = log.length
  const adding = [call(w2, 'update', { ops: addRoles(plan['window-2']) }), call(app, 'update', { ops: addRoles(plan['second-app']) })]
  await Promise.all([w2, app].map((child) => until(`${child.name} to wait for the lock`, (m) => m.name === child.name && m.kind === 'waiting', mark)))
  await call(w1, 'release')
  say('window-1', 'released the lock, and adds its own roles')
  adding.push(call(w1, 'update', { ops: addRoles(plan['window-1']) }))
  await Promise.all(adding)
  await allSeeTheFile(instances)
  note('all three instances see the same roles.json: 8 roles, viewer has 7 permissions')

  // 2 ------------------------------------------------------------------------
  heading('2. A text editor changes roles.json (temp file + rename, no lock)')
  mark = log.length
  const editor = start('text-editor', ['text-editor', file])
  await until('the text editor to save', (m) => m.type === 'saved', mark)
  say('text-editor', 'renamed the guest role and added "contractor"')
  await editor.exited
  await Promise.all(
    instances.map((child) =>
      until(`${child.name} to see the editor's change`, (m) => m.name === child.name && m.kind === 'external-change' && m.paths?.some((p) => p.includes('contractor')), mark),
    ),
  )
  await allSeeTheFile(instances)

  // 3 ------------------------------------------------------------------------
  heading('3. A clean merge: unsaved edits here, another role saved there')
  await call(w1, 'edit', { ops: [{ op: 'push', id: 'editor', key: 'permissions', value: 'publish' }] })
  say('window-1', 'edit(): grants "editor" the publish permission — not saved yet')
  mark = log.length
  say('window-2', 'update(): renames "auditor"')
  await call(w2, 'update', { ops: [[{ op: 'set', id: 'auditor', key: 'name', value: 'Auditor (renamed by window-2)' }]] })
  await until('window-1 to merge', (m) => m.name === 'window-1' && m.kind === 'merged', mark)
  await allSeeTheFile([w2, app])
  say('window-1', 'save()')
  await call(w1, 'save')
  await allSeeTheFile(instances)

  // 4 ------------------------------------------------------------------------
  heading("4. A conflict decided by policy: both change the viewer's name")
  await call(app, 'edit', { ops: [{ op: 'set', id: 'viewer', key: 'name', value: 'Viewer (second-app)' }] })
  say('second-app', 'edit(): renames "viewer" — not saved yet')
  mark = log.length
  say('window-2', 'update(): renames "viewer" too, and grants it "export"')
  await call(w2, 'update', {
    ops: [[{ op: 'set', id: 'viewer', key: 'name', value: 'Viewer (window-2)' }, { op: 'push', id: 'viewer', key: 'permissions', value: 'export' }]],
  })
  await until('second-app to report the conflict', (m) => m.name === 'second-app' && m.kind === 'conflict', mark)
  await until('second-app to save the resolution', (m) => m.name === 'second-app' && m.kind === 'saved', mark)
  await allSeeTheFile(instances)
  note("mine won the conflicting name; window-2's non-conflicting \"export\" permission was merged in")

  // 5 ------------------------------------------------------------------------
  heading('5. A crashed instance: its lock is recovered')
  mark = log.length
  const crashing = start('crashing-app', ['crashing-app', file])
  const held = await until('crashing-app to take the lock', (m) => m.type === 'held', mark)
  say('crashing-app', `acquired the lock (${held.strategy} strategy, as on a network drive) and starts saving…`)
  crashing.kill('SIGKILL')
  const { signal } = await crashing.exited
  const lockFile = join(dir, `.${basename(file)}.lock`)
  const record = existsSync(lockFile) ? JSON.parse(readFileSync(lockFile, 'utf8').split('\n')[0]) : null
  say('crashing-app', `killed (${signal}) while holding it; its lock file stays behind: ${record ? `${basename(lockFile)} (pid ${record.pid}, ${record.strategy})` : 'none?'}`)
  if (record?.strategy !== 'lockfile') fail('the crashed instance left no lock file record')
  mark = log.length
  say('window-2', 'update(): adds "on-call"')
  await call(w2, 'update', { ops: addRoles(['on-call']) })
  // The event travels apart from the grant: wait for it (the demo would otherwise
  // close first). Whichever instance takes the lock first after the crash reports it.
  await until('a stale-lock-removed event', (m) => m.kind === 'stale-lock-removed', mark)
  await allSeeTheFile(instances)
  note("the dead app's lock file did not block anyone: its process was gone, so it was removed at once")

  // 6 ------------------------------------------------------------------------
  heading('6. Nothing was lost?')
  const final = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(final.roles.map((r) => [r.id, r]))
  const problems = []
  const expectRoles = ['admin', 'viewer', ...Object.values(plan).flat(), 'contractor', 'on-call']
  for (const id of expectRoles) if (!byId.has(id)) problems.push(`role "${id}" is missing`)
  if (final.roles.length !== expectRoles.length) problems.push(`${final.roles.length} roles, expected ${expectRoles.length} (a duplicate?)`)
  const check = (what, actual, expected) => {
    const ok = JSON.stringify(actual) === JSON.stringify(expected)
    if (!ok) problems.push(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
    console.log(`  ${ok ? paint(32, '✓') : paint(31, '✗')} ${what}: ${JSON.stringify(actual)}`)
  }
  check('roles (2 at the start, 6 from step 1, 1 from the editor, 1 from step 5)', final.roles.map((r) => r.id).sort(), [...expectRoles].sort())
  const grants = [...Object.values(plan).flat(), 'on-call'].map((id) => `reports:${id}`)
  check('viewer permissions (a grant per role added by an instance, and "export")', [...byId.get('viewer').permissions].sort(), ['read', ...grants, 'export'].sort())
  check('guest name (text editor)', byId.get('guest')?.name, 'Guest (edited in a text editor)')
  check('editor permissions (window-1, merged)', byId.get('editor')?.permissions, ['read', 'publish'])
  check('auditor name (window-2, merged)', byId.get('auditor')?.name, 'Auditor (renamed by window-2)')
  check("viewer name (conflict, policy 'mine')", byId.get('viewer')?.name, 'Viewer (second-app)')
  const views = await Promise.all(instances.map((child) => call(child, 'view')))
  const fileHash = hashOf(final)
  check('every instance sees exactly this file, nothing unsaved', views.map((v) => v.hash === fileHash && !v.unsaved), [true, true, true])

  await Promise.all(instances.map((child) => call(child, 'close')))
  const exits = await Promise.all(instances.map((child) => child.exited))
  if (exits.some((e) => e.code !== 0)) problems.push(`an instance exited with ${JSON.stringify(exits)}`)
  clearTimeout(watchdog)
  rmSync(dir, { recursive: true, force: true })
  if (problems.length) {
    console.error(`\n${paint(31, 'LOST OR WRONG:')}\n  ${problems.join('\n  ')}`)
    process.exit(1)
  }
  console.log(`\n${paint(32, 'nothing was lost ✓')} (${(performance.now() - startedAt).toFixed(0)} ms)`)
}
