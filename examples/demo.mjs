// `npm run demo`: three app instances (real processes) save one roles.json at
// the same time. Each prints the lock events it sees as they happen; at the end
// the parent checks that every instance's edits are in the file.
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRequire } from 'node:module'

const SAVES_PER_INSTANCE = 4
const INSTANCES = ['window-1', 'window-2', 'second-app']
const colors = { 'window-1': 36, 'window-2': 35, 'second-app': 33 }
const paint = (name) => (process.stdout.isTTY ? `\x1b[${colors[name]}m${name.padEnd(10)}\x1b[0m` : name.padEnd(10))
const startedAt = Date.now()
const stamp = () => `${String(Date.now() - startedAt).padStart(5)} ms`

if (process.argv[2] === 'instance') {
  await runInstance(process.argv[3], process.argv[4])
} else {
  await runDemo()
}

async function runInstance(name, file) {
  const { FileLockManager } = createRequire(import.meta.url)('../index.js')
  const say = (text) => process.send({ name, text })
  const manager = new FileLockManager({ timeoutMs: 2000 })
  manager.on('waiting', (e) => say(`waiting  — ${e.message}`))
  manager.on('acquired', (e) => say(`acquired — fencing token ${e.fencingToken}`))
  manager.on('released', (e) => say(`released (${e.reason})`))
  manager.on('timeout', (e) => say(`timeout  — gave up after ${Math.round(e.waitedMs)} ms`))
  for (let i = 1; i <= SAVES_PER_INSTANCE; i++) {
    await manager.withLock(file, async () => {
      const roles = JSON.parse(readFileSync(file, 'utf8'))
      roles.push({ id: `${name}-${i}`, name: `Role ${i} from ${name}` })
      await sleep(120) // the "save" takes a while: the others must wait
      writeFileSync(file, JSON.stringify(roles, null, 2))
    })
    await sleep(20 + Math.random() * 60)
  }
  await manager.close()
}

async function runDemo() {
  const dir = mkdtempSync(join(tmpdir(), 'file-lock-demo-'))
  const file = join(dir, 'roles.json')
  writeFileSync(file, '[]')
  console.log(`Three instances save ${SAVES_PER_INSTANCE} roles each into ${file}\n`)
  const children = INSTANCES.map((name) => {
    const child = fork(new URL(import.meta.url).pathname, ['instance', name, file])
    child.on('message', ({ name, text }) => {
      console.log(`${stamp()}  ${paint(name)} ${text}`)
    })
    return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}`)))))
  })
  await Promise.all(children)
  const roles = JSON.parse(readFileSync(file, 'utf8'))
  const expected = INSTANCES.length * SAVES_PER_INSTANCE
  const ids = new Set(roles.map((r) => r.id))
  console.log(`\n${roles.length} roles in roles.json, ${ids.size} distinct; expected ${expected}.`)
  rmSync(dir, { recursive: true, force: true })
  if (roles.length !== expected || ids.size !== expected) {
    console.error('LOST UPDATES: some saves overwrote others')
    process.exit(1)
  }
  console.log('No edit was lost.')
}
