// The `file-lock-manager` CLI (bin/file-lock-manager.js), run as a real
// process: status, watch, break and doctor against locks held by other real
// processes (lock-child), their --json shapes, exit codes and bad usage.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { dir, file, makeScratchDir, removeDir, sleep, startLockChild, useScratchDir, waitUntil, within } from './helpers.mjs'

const native = createRequire(import.meta.url)('../native.js')
const CLI = fileURLToPath(new URL('../bin/file-lock-manager.js', import.meta.url))
const isRoot = process.getuid?.() === 0
const NOBODY = 65534

const manager = useScratchDir()
const lockFile = () => path.join(dir, '.roles.json.lock')

/** A running CLI process; `lines` are its stdout lines so far. */
function startCli(args, { env = {}, uid, gid } = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    ...(uid === undefined ? {} : { uid, gid }),
  })
  const run = { child, stdout: '', stderr: '' }
  child.stdout.on('data', (d) => (run.stdout += d))
  child.stderr.on('data', (d) => (run.stderr += d))
  run.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout: run.stdout, stderr: run.stderr })))
  run.lines = () => run.stdout.split('\n').filter((line) => line.length > 0)
  return run
}

/** Runs the CLI to its end: `{ code, signal, stdout, stderr }`. */
async function cli(args, options) {
  const run = startCli(args, options)
  try {
    return await within(run.exited, 20000, `file-lock-manager ${args.join(' ')}`)
  } finally {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
  }
}

/** Runs the CLI with --json and parses its one JSON object. */
async function cliJson(args, options) {
  const result = await cli([...args, '--json'], options)
  const lines = result.stdout.trim().split('\n')
  expect(lines, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toHaveLength(1)
  return { ...result, json: JSON.parse(lines[0]) }
}

function expectNoStackTrace(result) {
  expect(result.stderr).not.toMatch(/\n\s+at /)
  expect(result.stdout).not.toMatch(/\n\s+at /)
}

/** A lock file left by a lock-file holder that was SIGKILLed (nobody cleaned it). */
async function deadHoldersLockFile() {
  const child = await startLockChild({ strategy: 'lockfile' })
  await child.request({ cmd: 'acquire', file }, 'held')
  child.proc.kill('SIGKILL')
  await child.exited
  expect(fs.existsSync(lockFile())).toBe(true)
}

function plantOtherHost() {
  const record = { pid: 4242, hostname: 'some-other-host', startTime: null, acquiredAt: Date.now(), mode: 'exclusive', token: 'theirs', fencingToken: 1, strategy: 'lockfile', heartbeat: Date.now() }
  fs.writeFileSync(lockFile(), `${JSON.stringify(record)}\n`)
}

const STATUS_KEYS = [
  'command', 'filePath', 'lockPath', 'locked', 'summary', 'lockFileExists', 'lockFileSize', 'strategy', 'strategyEvidence', 'osLock',
  'osLockDetail', 'holder', 'record', 'stale', 'staleReason', 'staleByTime', 'staleAfterMs', 'fileSystem', 'autoStrategy', 'autoStrategyReason',
]

describe('status', () => {
  it('of a free file: not locked, local disk, auto picks os; nothing is created', async () => {
    const text = await cli(['status', file])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^roles\.json is not locked \(there is no lock file\)/)
    expect(text.stdout).toMatch(/file system\s+local disk/)
    const { code, json } = await cliJson(['status', file])
    expect(code).toBe(0)
    expect(Object.keys(json)).toEqual(STATUS_KEYS)
    expect(json).toMatchObject({
      command: 'status',
      filePath: file,
      lockPath: lockFile(),
      locked: false,
      lockFileExists: false,
      lockFileSize: null,
      strategy: null,
      holder: null,
      record: null,
      stale: null,
      staleAfterMs: 30000,
      fileSystem: { network: false, name: 'local' },
      autoStrategy: 'os',
      autoStrategyReason: 'OS locks work on this local disk',
    })
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it('of a file locked by another process (OS lock): who, exclusive or shared, never stale; the pid only with --show-pid', async () => {
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const { code, json } = await cliJson(['status', file])
    expect(code).toBe(0)
    expect(json).toMatchObject({
      locked: true,
      lockFileExists: true,
      strategy: 'os',
      osLock: 'exclusive',
      stale: null,
      staleReason: expect.stringMatching(/never stale/),
      holder: { exclusive: true, strategy: 'os', sameProcess: false, sameHost: true, hostname: os.hostname(), pid: null },
      record: { strategy: 'os', pid: null, sameHost: true },
    })
    expect(json.holder.description).toMatch(/^another process on this machine since \d\d:\d\d:\d\d \(UTC\)$/)
    // The same words as the package's own inspect().
    expect((await manager().inspect(file)).description).toBe(json.holder.description)
    expect(json.summary).toBe(`roles.json is locked exclusively with an OS lock by ${json.holder.description}`)

    const shown = await cliJson(['status', '--show-pid', file])
    expect(shown.json.holder.pid).toBe(child.pid)
    expect(shown.json.record.pid).toBe(child.pid)
    expect(shown.json.holder.description).toContain(`(pid ${child.pid})`)
    const text = await cli(['status', file])
    expect(text.stdout).toMatch(/locked exclusively with an OS lock by another process on this machine/)
    expect(text.stdout).toMatch(/OS lock\s+held \(exclusive\)/)
    expect(text.stdout).not.toContain(String(child.pid))

    await child.request({ cmd: 'release' }, 'released')
    await child.request({ cmd: 'acquire', file, options: { exclusive: false } }, 'held')
    const shared = await cliJson(['status', file])
    expect(shared.json).toMatchObject({ locked: true, osLock: 'shared', holder: { exclusive: false } })
    expect(shared.json.summary).toMatch(/locked shared with an OS lock/)

    await child.request({ cmd: 'release' }, 'released')
    const idle = await cliJson(['status', file])
    expect(idle.json).toMatchObject({ locked: false, strategy: 'os', osLock: 'free', holder: null })
    expect(idle.json.summary).toMatch(/not locked \(its sidecar is idle/)
  })

  it("of a file locked with strategy 'lockfile': the lock file's record, its heartbeat, not stale while its process lives", async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    await child.request({ cmd: 'acquire', file }, 'held')
    const { code, json } = await cliJson(['status', file])
    expect(code).toBe(0)
    expect(json).toMatchObject({
      locked: true,
      strategy: 'lockfile',
      strategyEvidence: expect.stringMatching(/lock-file record/),
      osLock: 'exclusive', // a lock-file holder also holds the OS lock where there is one
      stale: false,
      staleReason: 'its process is alive on this host',
      staleByTime: false,
      holder: { strategy: 'lockfile', sameHost: true, pid: null },
      record: { strategy: 'lockfile', hostname: os.hostname(), heartbeat: expect.any(Number) },
    })
    expect(json.summary).toMatch(/locked exclusively with a lock file by another process on this machine/)
    const text = await cli(['status', file])
    expect(text.stdout).toMatch(/strategy\s+lockfile: /)
    expect(text.stdout).toMatch(/stale\s+no: its process is alive on this host/)
    await child.request({ cmd: 'release' }, 'released')
    expect((await cliJson(['status', file])).json).toMatchObject({ locked: false, lockFileExists: false })
  })

  it("of a dead holder's lock file: stale, and why", async () => {
    await deadHoldersLockFile()
    const { code, json } = await cliJson(['status', file])
    expect(code).toBe(0)
    expect(json).toMatchObject({ locked: true, strategy: 'lockfile', osLock: 'free', stale: true, staleReason: 'its process has exited' })
    expect(json.summary).toMatch(/has a stale lock file \(its process has exited\)/)
    const text = await cli(['status', file])
    expect(text.stdout).toMatch(/stale\s+yes: its process has exited/)
    expect(text.stdout).toMatch(/last holder\s+another process on this machine/)
    expect(fs.existsSync(lockFile())).toBe(true) // looking removes nothing
  })

  it("of another host's lock file: held until it stays unchanged for staleMs (stretched by nothing on a local disk)", async () => {
    plantOtherHost()
    const { json } = await cliJson(['status', '--stale-ms', '5000', file])
    expect(json).toMatchObject({
      locked: true,
      stale: false,
      staleByTime: true,
      staleAfterMs: 5000,
      holder: { sameHost: false, hostname: 'some-other-host' },
    })
    expect(json.staleReason).toMatch(/another host \(some-other-host\).*unchanged for 5000 ms while watched/)
    expect(json.holder.description).toMatch(/^a process on some-other-host since/)
  })

  it.runIf(isRoot)('of a lock file of another user: refused with ELOCKFOREIGN (exit 1), never read as ours', async () => {
    await deadHoldersLockFile()
    fs.chownSync(lockFile(), NOBODY, NOBODY)
    const result = await cli(['status', file])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/belongs to another user/)
    expectNoStackTrace(result)
    const json = await cliJson(['status', file])
    expect(json.code).toBe(1)
    expect(json.json).toMatchObject({ command: 'status', error: { code: 'ELOCKFOREIGN' } })
    const refused = await cli(['break', file])
    expect(refused.code).toBe(1)
    expect(fs.existsSync(lockFile())).toBe(true)
  })
})

describe('watch', () => {
  /** Replaces `target` from another process (temp file + rename, as editors and sync tools do). */
  async function writeFromAnotherProcess(target, text) {
    const writer = spawn(process.execPath, ['-e', `const fs = require('fs'); fs.writeFileSync(process.argv[1] + '.tmp', process.argv[2]); fs.renameSync(process.argv[1] + '.tmp', process.argv[1])`, target, text], { stdio: 'ignore' })
    const code = await new Promise((resolve) => writer.on('exit', resolve))
    expect(code).toBe(0)
  }

  it('--json: one JSON object per line for a change made by another process; exits 0 on SIGINT', async () => {
    const run = startCli(['watch', file, '--json'])
    await waitUntil(() => run.lines().length >= 1, 10000, 'the watching line')
    expect(JSON.parse(run.lines()[0])).toEqual({ type: 'watching', filePath: file, mode: 'events', network: null })
    await writeFromAnotherProcess(file, '{"roles":[1]}')
    await waitUntil(() => run.lines().length >= 2, 10000, 'the change line')
    const change = JSON.parse(run.lines()[1])
    expect(change).toMatchObject({ type: 'change', filePath: file, kind: 'created', external: true, size: 13, rescan: false })
    expect(Date.parse(change.time)).toBeGreaterThan(Date.now() - 10000)
    await writeFromAnotherProcess(file, '{"roles":[1,2]}')
    await waitUntil(() => run.lines().length >= 3, 10000, 'the second change line')
    expect(JSON.parse(run.lines()[2])).toMatchObject({ type: 'change', kind: 'modified', external: true, size: 15 })
    run.child.kill('SIGINT')
    const { code, signal, stdout } = await within(run.exited, 10000, 'the exit on SIGINT')
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(lines.at(-1)).toEqual({ type: 'stopped', signal: 'SIGINT', changes: 2 })
  })

  it('prints one line per change (time, kind, external, size) until SIGINT', async () => {
    fs.writeFileSync(file, '{}')
    const run = startCli(['watch', file])
    await waitUntil(() => run.stderr.includes('watching'), 10000, 'the watching notice')
    expect(run.stderr).toContain(`watching ${file} (OS events); Ctrl-C to stop`)
    await writeFromAnotherProcess(file, '{"a":1}')
    await waitUntil(() => run.lines().length >= 1, 10000, 'the change line')
    expect(run.lines()[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}modified {2}external {2}7 bytes$/)
    fs.unlinkSync(file)
    await waitUntil(() => run.lines().length >= 2, 10000, 'the deletion line')
    expect(run.lines()[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}deleted {3}external {2}-$/)
    run.child.kill('SIGINT')
    const { code } = await within(run.exited, 10000, 'the exit on SIGINT')
    expect(code).toBe(0)
  })

  it('of a file in a missing directory: exit 2 with the reason', async () => {
    const result = await cli(['watch', path.join(dir, 'nope', 'roles.json')])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/cannot watch .*does not exist/)
    expectNoStackTrace(result)
  })
})

describe('break', () => {
  it("removes a SIGKILLed lock-file holder's lock file, saying why; the file can be locked at once", async () => {
    await deadHoldersLockFile()
    const result = await cli(['break', file])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(`removed the stale lock file ${lockFile()}: its process has exited`)
    expect(fs.existsSync(lockFile())).toBe(false)
    expect(fs.readdirSync(dir)).toEqual([]) // no guard or renamed-aside file left
    const lock = await manager({ strategy: 'lockfile' }).acquireLock(file, { timeoutMs: 0, retries: 1 })
    await lock.release()
  })

  it('--json: broken, with the status it was judged on', async () => {
    await deadHoldersLockFile()
    const { code, json } = await cliJson(['break', file])
    expect(code).toBe(0)
    expect(json).toMatchObject({
      command: 'break',
      filePath: file,
      lockPath: lockFile(),
      broken: true,
      outcome: 'broken',
      reason: 'its process has exited',
      staleByTime: false,
      before: { locked: true, strategy: 'lockfile', stale: true },
    })
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  it("refuses a live holder's lock file (exit 1): it stays, and its holder keeps the lock", async () => {
    const child = await startLockChild({ strategy: 'lockfile' })
    const held = await child.request({ cmd: 'acquire', file }, 'held')
    const before = fs.readFileSync(lockFile())
    const result = await cli(['break', file])
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^refused: .* was not removed: its process is alive on this host/)
    expect(result.stdout).toMatch(/holder: another process on this machine since/)
    const { code, json } = await cliJson(['break', '--wait', file]) // waiting cannot help a live local holder
    expect(code).toBe(1)
    expect(json).toMatchObject({ broken: false, outcome: 'refused', staleByTime: false, before: { stale: false } })
    expect(fs.existsSync(lockFile())).toBe(true)
    expect(JSON.parse(fs.readFileSync(lockFile(), 'utf8').split('\n')[0]).token).toBe(JSON.parse(before.toString().split('\n')[0]).token)
    await sleep(1200) // a heartbeat later, the holder still has it
    expect(child.has('lost')).toBe(false)
    const released = await child.request({ cmd: 'release' }, 'released')
    expect(released.at).toBeGreaterThanOrEqual(held.at)
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  it('refuses while an OS lock is held, and leaves an idle sidecar alone (exit 0: nothing to break)', async () => {
    const child = await startLockChild()
    await child.request({ cmd: 'acquire', file }, 'held')
    const refused = await cliJson(['break', file])
    expect(refused.code).toBe(1)
    expect(refused.json).toMatchObject({ outcome: 'refused', broken: false })
    expect(refused.json.reason).toMatch(/OS lock is held by another process on this machine.*never stale/)
    await child.request({ cmd: 'release' }, 'released')
    const idle = await cliJson(['break', file])
    expect(idle.code).toBe(0)
    expect(idle.json).toMatchObject({ outcome: 'nothing', broken: false })
    expect(idle.json.reason).toMatch(/OS-lock sidecar that nobody holds/)
    expect(fs.existsSync(lockFile())).toBe(true)
    // And a free file has nothing to break either.
    fs.unlinkSync(lockFile())
    const none = await cli(['break', file])
    expect(none.code).toBe(0)
    expect(none.stdout.trim()).toBe(`nothing to break for ${file}: there is no lock file`)
  })

  it("another host's lock file: refused at once (exit 1), broken with --wait once it stayed unchanged for staleMs", async () => {
    plantOtherHost()
    const refused = await cli(['break', '--stale-ms', '400', file])
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/its holder runs on another host \(some-other-host\)/)
    expect(refused.stdout).toMatch(/run again with --wait to watch it for 400 ms/)
    expect(fs.existsSync(lockFile())).toBe(true)
    const started = Date.now()
    const { code, json, stderr } = await cliJson(['break', '--wait', '--stale-ms', '400', file])
    expect(code).toBe(0)
    expect(stderr).toMatch(/watching .* for up to 400 ms/)
    expect(json).toMatchObject({ broken: true, outcome: 'broken' })
    expect(json.reason).toMatch(/its holder on some-other-host has not refreshed it for 400 ms/)
    expect(json.waitedMs).toBeGreaterThanOrEqual(400)
    expect(Date.now() - started).toBeGreaterThanOrEqual(400)
    expect(fs.existsSync(lockFile())).toBe(false)
  })

  it("--wait refuses as soon as another host's lock file is refreshed", async () => {
    plantOtherHost()
    const run = startCli(['break', '--wait', '--stale-ms', '20000', file, '--json'])
    await waitUntil(() => run.stderr.includes('watching'), 10000, 'the watching notice')
    await sleep(100)
    plantOtherHost() // its holder's heartbeat
    const { code, stdout } = await within(run.exited, 10000, 'the refusal')
    expect(code).toBe(1)
    expect(JSON.parse(stdout)).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/refreshed its heartbeat/) })
    expect(fs.existsSync(lockFile())).toBe(true)
  })
})

describe('doctor', () => {
  it('on a local temp dir: every check ✓, verdict os, its probe files removed', async () => {
    fs.writeFileSync(file, '{}')
    const result = await cli(['doctor', dir])
    expect(result.code).toBe(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines[0]).toBe(`doctor ${dir}`)
    const checks = lines.filter((line) => /^ {2}\S /.test(line))
    expect(checks).toHaveLength(8)
    for (const line of checks) expect(line).toMatch(/^ {2}✓ /)
    expect(result.stdout).toMatch(/✓ directory is writable/)
    expect(result.stdout).toMatch(/✓ exclusive create \(O_EXCL\)/)
    expect(result.stdout).toMatch(/✓ OS locks \(flock\): .*second handle is excluded/)
    expect(result.stdout).toMatch(/✓ local disk or network share: a local file system/)
    expect(result.stdout).toMatch(/✓ atomic replace \(temp file \+ rename\)/)
    expect(result.stdout).toMatch(/✓ fsync of a file: 64 KiB written and flushed in \d+\.\d ms/)
    expect(result.stdout).toMatch(/✓ fsync of the directory/)
    expect(result.stdout).toMatch(/✓ probe files removed/)
    expect(result.stdout).toMatch(/verdict: strategy 'auto' picks 'os' here \(OS locks work on this local disk\)/)
    expect(lines.at(-1)).toBe('healthy: locks work here')
    expect(fs.readdirSync(dir)).toEqual(['roles.json'])
  })

  it('--json: the checks, their timings, the verdict', async () => {
    const { code, json } = await cliJson(['doctor', dir])
    expect(code).toBe(0)
    expect(json).toMatchObject({
      command: 'doctor',
      directory: dir,
      healthy: true,
      verdict: 'os',
      fileSystem: { network: false, name: 'local' },
      osLocks: { supported: true, tested: true, code: null },
      advice: [],
    })
    expect(json.checks.map((c) => c.id)).toEqual(['writable', 'exclusive-create', 'os-locks', 'network', 'rename', 'fsync-file', 'fsync-dir', 'cleanup'])
    for (const check of json.checks) {
      expect(Object.keys(check)).toEqual(['id', 'title', 'status', 'detail', 'ms'])
      expect(check.status).toBe('ok')
    }
    for (const id of ['rename', 'fsync-file', 'fsync-dir']) {
      expect(json.checks.find((c) => c.id === id).ms).toBeGreaterThanOrEqual(0)
    }
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("where the file system refuses OS locks (forced ENOLCK): ! OS locks, verdict 'lockfile', still healthy", async () => {
    const { code, json } = await cliJson(['doctor', dir], { env: { FILE_LOCK_MANAGER_FAULT_FLOCK: 'ENOLCK' } })
    expect(code).toBe(0)
    expect(json).toMatchObject({ healthy: true, verdict: 'lockfile', osLocks: { supported: false, code: 'ENOLCK' } })
    expect(json.verdictReason).toMatch(/refused OS locks/)
    expect(json.checks.find((c) => c.id === 'os-locks')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/auto uses the lock file/) })
    const text = await cli(['doctor', dir], { env: { FILE_LOCK_MANAGER_FAULT_FLOCK: 'ENOLCK' } })
    expect(text.stdout).toMatch(/ {2}! OS locks \(flock\)/)
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it.runIf(isRoot)('in a directory it cannot write: ✗ writable, the rest skipped, exit 1', async () => {
    const outer = makeScratchDir()
    try {
      fs.chmodSync(outer, 0o755) // readable and searchable by everyone, writable by root only
      const result = await cli(['doctor', outer], { uid: NOBODY, gid: NOBODY })
      expect(result.code).toBe(1)
      expect(result.stdout).toMatch(/ {2}✗ directory is writable: EACCES/)
      expect(result.stdout).toMatch(/ {2}- fsync of a file: needs a writable directory/)
      expect(result.stdout.trim().split('\n').at(-1)).toMatch(/^unhealthy/)
      expectNoStackTrace(result)
    } finally {
      removeDir(outer)
    }
  })
})

describe('usage', () => {
  const cases = [
    [[], /Usage: file-lock-manager <command>/],
    [['frobnicate', 'x'], /unknown command 'frobnicate'/],
    [['--json'], /expected a command before --json/],
    [['status'], /status: missing <file>/],
    [['status', 'a', 'b'], /status: expected one <file>, got 2/],
    [['status', '--bogus', 'x'], /Unknown option '--bogus'/],
    [['status', '--stale-ms', 'soon', 'x'], /--stale-ms must be a number/],
    [['break', '--network-timeout-factor', '0', 'x'], /--network-timeout-factor must be a number from 1 to 100/],
    [['watch'], /watch: missing <file>/],
    [['doctor'], /doctor: missing <dir>/],
    [['watch', '--wait', 'x'], /Unknown option '--wait'/],
  ]
  for (const [args, message] of cases) {
    it(`file-lock-manager ${args.join(' ')} → exit 2`, async () => {
      const result = await cli(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
      expectNoStackTrace(result)
    })
  }

  it('paths that cannot name what the command needs → exit 2 with the reason, never a stack trace', async () => {
    const missingDir = path.join(dir, 'nope')
    for (const [args, message] of [
      [['status', path.join(missingDir, 'roles.json')], /its directory .*nope does not exist/],
      [['status', dir], /is a directory, not a file/],
      [['break', path.join(missingDir, 'roles.json')], /its directory .*nope does not exist/],
      [['doctor', missingDir], /no such directory/],
      [['doctor', file], /no such directory/],
    ]) {
      const result = await cli(args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr).toMatch(message)
      expectNoStackTrace(result)
    }
    fs.writeFileSync(file, '{}')
    const notDir = await cli(['doctor', file])
    expect(notDir.code).toBe(2)
    expect(notDir.stderr).toMatch(/is not a directory/)
  })

  it('--json errors are one JSON object on stdout', async () => {
    const usage = await cliJson(['status'])
    expect(usage.code).toBe(2)
    expect(usage.json).toEqual({ command: 'status', error: { code: 'EUSAGE', message: 'status: missing <file>' } })
    const missing = await cliJson(['doctor', path.join(dir, 'nope')])
    expect(missing.code).toBe(2)
    expect(missing.json).toMatchObject({ command: 'doctor', error: { code: 'ENOENT' } })
  })

  it('--help of every command → exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help', 'break'], ['status', '--help'], ['watch', '-h'], ['break', '--help'], ['doctor', '--help']]) {
      const result = await cli(args)
      expect(result.code, args.join(' ')).toBe(0)
      expect(result.stdout).toMatch(/^Usage: file-lock-manager/)
    }
    expect((await cli(['status', '--help'])).stdout).toMatch(/--show-pid/)
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('is the package bin, a CommonJS script with a node shebang', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect(pkg.bin).toEqual({ 'file-lock-manager': 'bin/file-lock-manager.js' })
    expect(pkg.files).toContain('bin/')
    expect(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    if (process.platform !== 'win32') expect(fs.statSync(CLI).mode & 0o111).not.toBe(0)
  })
})

describe('native diagnostics (native.js)', () => {
  it('fsKindOf and probeOsLocks describe a directory; bad paths throw coded errors', () => {
    expect(native.fsKindOf(dir)).toMatchObject({ network: false, name: 'local' })
    expect(native.probeOsLocks(dir)).toMatchObject({ supported: true, tested: true })
    expect(() => native.fsKindOf(path.join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    fs.writeFileSync(file, '{}')
    expect(() => native.probeOsLocks(file)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => native.lockFileStatus(dir, { staleMs: 1000, networkTimeoutFactor: 3 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => native.lockFileStatus(file, { staleMs: Number.NaN, networkTimeoutFactor: 3 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })

  it('breakStaleLock and diagnoseDirectory resolve with a failure, never reject, for bad paths', async () => {
    const rules = { staleMs: 30000, networkTimeoutFactor: 3 }
    expect((await native.breakStaleLock(dir, rules)).failure).toMatchObject({ code: 'EINVAL' })
    expect((await native.diagnoseDirectory(path.join(dir, 'nope'))).failure).toMatchObject({ code: 'ENOENT' })
  })
})
