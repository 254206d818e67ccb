#!/usr/bin/env node
'use strict'
// file-lock-manager: a command line to look at the lock of a file (status),
// follow its changes (watch), remove a lock file that is provably stale
// (break), and check that locks work in a directory (doctor).
//
// Invariants:
// - No rule of its own: staleness, breaking, the strategy `auto` picks and the
//   holder descriptions come from the native core (crates/file-lock-core/src/diagnose/, over
//   lockfile.rs), the defaults from the package's DEFAULTS. Nothing here
//   judges a lock.
// - Exit codes: 0 done (or healthy), 1 refused, unhealthy, or the OS refused;
//   2 bad usage or a path that cannot name what the command needs. Bad input
//   gets one clear line on stderr, never a stack trace.
// - With --json, stdout carries exactly one JSON object (watch: one per line)
//   and nothing else; errors are JSON objects too.

const path = require('node:path')
const { parseArgs } = require('node:util')

const EXIT_OK = 0
const EXIT_REFUSED = 1
const EXIT_USAGE = 2

// Codes meaning "the argument does not name what the command needs".
const BAD_INPUT_CODES = new Set(['ENOENT', 'ENOTDIR', 'EINVAL', 'EISDIR', 'ENAMETOOLONG', 'ERR_INVALID_ARG_TYPE'])

const HELP = {
  main: `Usage: file-lock-manager <command> [options]

Look at and repair the locks of file-lock-manager, and check a directory.

Commands:
  status <file>   who holds the lock of <file>, which strategy is in use, whether a
                  lock file is stale and why, local disk or network share
  watch <file>    print changes of <file> as they happen, until Ctrl-C
  break <file>    remove the lock file of <file> only when it is provably stale
  doctor <dir>    check that locks and atomic saves work in <dir>

Every command takes --json (machine-readable output) and --help.
Exit codes: 0 ok, 1 refused or unhealthy, 2 bad usage.`,

  status: `Usage: file-lock-manager status <file> [--json] [--show-pid] [--stale-ms <ms>]

Shows whether <file> is locked and by whom, which strategy is in use on it (an OS
lock on its sidecar .<name>.lock, or a lock file written by the lock-file
strategy), whether a lock file is stale by the library's rules (on this host: its
process is gone; on another host: unchanged for the stale time), and whether the
file is on a local disk or a network share. Looks only: creates and changes nothing.

Options:
  --json                     one JSON object on stdout
  --show-pid                 include the holder's pid (exposePids)
  --stale-ms <ms>            staleMs of the apps using the file (default 30000)
  --network-timeout-factor <n>
                             networkTimeoutFactor of the apps (default 3): on a
                             network share the stale time is stretched by it
  -h, --help                 this help

Exit codes: 0 shown (locked or not), 1 the lock file could not be read, 2 bad usage.`,

  watch: `Usage: file-lock-manager watch <file> [--json] [--poll]

Prints each change of <file> as it happens (time, kind, external or own, size),
until Ctrl-C. The file need not exist; its directory must.

Options:
  --json    one JSON object per line: {"type":"watching"}, then {"type":"change"} each
  --poll    stat the file every second instead of OS events (as on network shares)
  -h, --help

Exit codes: 0 stopped by Ctrl-C (or SIGTERM), 1 the watch failed, 2 bad usage.`,

  break: `Usage: file-lock-manager break <file> [--json] [--wait] [--stale-ms <ms>]

Removes the lock file of <file> only when it is provably stale, by the same rules
and the same guarded removal the library uses: on this host, when its process has
exited (or its pid was reused); on another host, or when it cannot be read, only
once it stayed byte-for-byte unchanged for the stale time while watched (--wait).
Anything else is refused: a live process on this host, another host's lock file
not yet stale, an OS lock that is held.

Options:
  --json                     one JSON object on stdout
  --wait                     watch a lock file only time can judge for the stale
                             time; break it if it stays unchanged, refuse as soon
                             as its holder refreshes it
  --stale-ms <ms>            staleMs of the apps using the file (default 30000)
  --network-timeout-factor <n>
                             networkTimeoutFactor of the apps (default 3)
  --show-pid                 include the holder's pid in what is shown
  -h, --help

Exit codes: 0 removed (or nothing to remove), 1 refused, 2 bad usage.`,

  doctor: `Usage: file-lock-manager doctor <dir> [--json]

Checks that locks work in <dir>: the directory is writable, exclusive create
(O_EXCL) works, OS locks (flock / LockFileEx) exclude a second handle, local disk
or network share, a temp file renamed over a file replaces it atomically, file and
directory fsync succeed (timed). Removes its probe files, and says which strategy
'auto' picks there.

Options:
  --json      one JSON object on stdout
  -h, --help

Exit codes: 0 healthy, 1 a check failed, 2 bad usage.`,
}

// Every command takes these; status and break also judge staleness.
const COMMON_OPTIONS = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }
const STALENESS_OPTIONS = { 'show-pid': { type: 'boolean' }, 'stale-ms': { type: 'string' }, 'network-timeout-factor': { type: 'string' } }

const COMMAND_OPTIONS = {
  status: { ...COMMON_OPTIONS, ...STALENESS_OPTIONS },
  watch: { ...COMMON_OPTIONS, poll: { type: 'boolean' } },
  break: { ...COMMON_OPTIONS, wait: { type: 'boolean' }, ...STALENESS_OPTIONS },
  doctor: { ...COMMON_OPTIONS },
}

/** A failure with a chosen exit code; `code` is the error code shown. */
class CliError extends Error {
  constructor(exitCode, code, message) {
    super(message)
    this.exitCode = exitCode
    this.code = code
  }
}

const usageError = (message) => new CliError(EXIT_USAGE, 'EUSAGE', message)

// stdout may be a closed pipe (`| head`): that ends the command quietly.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(EXIT_OK)
})

function out(line) {
  process.stdout.write(`${line}\n`)
}

function err(line) {
  process.stderr.write(`${line}\n`)
}

function printJson(value) {
  out(JSON.stringify(value))
}

function parse(command, args) {
  try {
    return parseArgs({ args, options: COMMAND_OPTIONS[command], allowPositionals: true, strict: true })
  } catch (error) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION, ERR_PARSE_ARGS_INVALID_OPTION_VALUE…
    throw usageError(error.message.split('\n')[0])
  }
}

function onePath(command, positionals, what) {
  if (positionals.length === 0) throw usageError(`${command}: missing <${what}>`)
  if (positionals.length > 1) throw usageError(`${command}: expected one <${what}>, got ${positionals.length}: ${positionals.join(' ')}`)
  const [value] = positionals
  if (value.length === 0) throw usageError(`${command}: <${what}> is empty`)
  if (value.includes('\0')) throw usageError(`${command}: <${what}> contains a NUL character`)
  return value
}

function number(name, text, { min, max, fallback }) {
  if (text === undefined) return fallback
  const value = text.trim() === 'Infinity' ? Infinity : Number(text)
  if (text.trim() === '' || Number.isNaN(value) || value < min || value > max) {
    throw usageError(`--${name} must be a number from ${min} to ${max === Infinity ? 'Infinity' : max}, got '${text}'`)
  }
  return value
}

function loadPackage() {
  // Loading the native addon can fail (unsupported platform, missing build):
  // that is an environment problem, reported as one line, not a stack trace.
  try {
    return { index: require('../index.js'), native: require('../native.js') }
  } catch (error) {
    throw new CliError(EXIT_REFUSED, error.code ?? 'ELOAD', `cannot load file-lock-manager: ${error.message.split('\n')[0]}`)
  }
}

function rulesFrom(values, DEFAULTS) {
  return {
    staleMs: number('stale-ms', values['stale-ms'], { min: 0, max: Infinity, fallback: DEFAULTS.staleMs }),
    networkTimeoutFactor: number('network-timeout-factor', values['network-timeout-factor'], {
      min: 1,
      max: 100,
      fallback: DEFAULTS.networkTimeoutFactor,
    }),
    exposePids: values['show-pid'] === true,
  }
}

/**
 * A native error (coded) as a CliError: bad input → 2, anything else → 1.
 * `subject` is the path as the user typed it; `kind` what it should name.
 */
function fromNative(error, what, subject, kind = 'file') {
  if (error instanceof CliError) return error
  const code = typeof error?.code === 'string' ? error.code : 'EIO'
  const exitCode = BAD_INPUT_CODES.has(code) ? EXIT_USAGE : EXIT_REFUSED
  let message = `${what}: ${error?.message ?? String(error)}`
  if (kind === 'file' && code === 'ENOENT') message = `${what}: its directory ${path.dirname(path.resolve(subject))} does not exist`
  if (kind === 'file' && code === 'EINVAL' && /directory/.test(error?.message)) message = `${what}: ${subject} is a directory, not a file`
  if (kind === 'dir' && code === 'ENOENT') message = `${what}: no such directory: ${subject}`
  if (kind === 'dir' && (code === 'EINVAL' || code === 'ENOTDIR')) message = `${what}: ${subject} is not a directory`
  return new CliError(exitCode, code, message)
}

const clock = (ms) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')

function seconds(ms) {
  if (ms === Infinity || ms === null) return 'forever'
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}

// ---------------------------------------------------------------- status

const nullable = (value) => (value === undefined ? null : value)

/** A LockFileStatus with every key present (null when absent), in a fixed order. */
function statusJson(s) {
  const holder = s.holder && {
    exclusive: s.holder.exclusive,
    strategy: s.holder.strategy,
    sameProcess: s.holder.sameProcess,
    sameHost: s.holder.sameHost,
    hostname: nullable(s.holder.hostname),
    pid: nullable(s.holder.pid),
    acquiredAt: nullable(s.holder.acquiredAt),
    fencingToken: nullable(s.holder.fencingToken),
    description: s.holder.description,
  }
  const record = s.record && {
    strategy: s.record.strategy,
    hostname: s.record.hostname,
    pid: nullable(s.record.pid),
    sameHost: s.record.sameHost,
    exclusive: s.record.exclusive,
    acquiredAt: s.record.acquiredAt,
    heartbeat: nullable(s.record.heartbeat),
    fencingToken: s.record.fencingToken,
  }
  return {
    filePath: s.filePath,
    lockPath: s.lockPath,
    locked: s.locked,
    summary: s.summary,
    lockFileExists: s.lockFileExists,
    lockFileSize: nullable(s.lockFileSize),
    strategy: nullable(s.strategy),
    strategyEvidence: s.strategyEvidence,
    osLock: s.osLock,
    osLockDetail: nullable(s.osLockDetail),
    holder: nullable(holder),
    record: nullable(record),
    stale: nullable(s.stale),
    staleReason: s.staleReason,
    staleByTime: s.staleByTime,
    staleAfterMs: s.staleAfterMs === Infinity ? null : s.staleAfterMs,
    fileSystem: { network: s.fileSystem.network, name: s.fileSystem.name, fsType: nullable(s.fileSystem.fsType) },
    autoStrategy: s.autoStrategy,
    autoStrategyReason: s.autoStrategyReason,
  }
}

function statusLines(s) {
  const lines = [s.summary]
  const row = (label, value) => lines.push(`  ${label.padEnd(12)} ${value}`)
  row('file', s.filePath)
  row('lock file', s.lockFileExists ? `${s.lockPath} (${s.lockFileSize} bytes)` : `${s.lockPath} (none)`)
  if (s.lockFileExists) {
    row('strategy', `${s.strategy ?? 'unknown'}: ${s.strategyEvidence}`)
    const held = s.osLock === 'shared' || s.osLock === 'exclusive'
    row('OS lock', held ? `held (${s.osLock})` : s.osLockDetail ? `${s.osLock}: ${s.osLockDetail}` : s.osLock)
  }
  if (s.holder) row(s.stale === true ? 'last holder' : 'holder', s.holder.description)
  if (s.record?.heartbeat !== undefined && s.record?.heartbeat !== null) {
    row('heartbeat', `${clock(s.record.heartbeat)} (by the holder's clock)`)
  }
  if (s.stale === true) row('stale', `yes: ${s.staleReason}`)
  else if (s.stale === false) row('stale', `no: ${s.staleReason}`)
  else if (s.lockFileExists) row('stale', `n/a: ${s.staleReason}`)
  const fs = s.fileSystem.network
    ? `network share (${s.fileSystem.name}${s.fileSystem.fsType ? `, ${s.fileSystem.fsType}` : ''})`
    : `local disk${s.fileSystem.fsType ? ` (${s.fileSystem.fsType})` : ''}`
  row('file system', fs)
  row('auto picks', `${s.autoStrategy}: ${s.autoStrategyReason}`)
  return lines
}

function runStatus(args) {
  const { values, positionals } = parse('status', args)
  if (values.help) return help('status')
  const file = onePath('status', positionals, 'file')
  const { index, native } = loadPackage()
  const rules = rulesFrom(values, index.DEFAULTS)
  let status
  try {
    status = native.lockFileStatus(path.resolve(file), rules)
  } catch (error) {
    throw fromNative(error, `cannot read the lock of ${file}`, file)
  }
  if (values.json) printJson({ command: 'status', ...statusJson(status) })
  else for (const line of statusLines(status)) out(line)
  return EXIT_OK
}

// ---------------------------------------------------------------- watch

function runWatch(args) {
  const { values, positionals } = parse('watch', args)
  if (values.help) return help('watch')
  const file = onePath('watch', positionals, 'file')
  const { index } = loadPackage()
  const manager = new index.FileLockManager()
  let watcher
  let changes = 0
  const json = values.json === true
  try {
    watcher = manager.watch(
      path.resolve(file),
      (change) => {
        changes += 1
        const now = Date.now()
        if (json) {
          printJson({
            type: 'change',
            time: new Date(now).toISOString(),
            filePath: change.filePath,
            kind: change.kind,
            external: change.external,
            size: change.size ?? null,
            mtimeMs: change.mtimeMs ?? null,
            rescan: change.rescan === true,
          })
        } else {
          const time = new Date(now).toISOString().slice(11, 23)
          const size = change.size === null || change.size === undefined ? '-' : `${change.size} bytes`
          out(`${time}  ${change.kind.padEnd(8)}  ${(change.external ? 'external' : 'own').padEnd(8)}  ${size}`)
        }
      },
      { poll: values.poll === true },
    )
  } catch (error) {
    manager.close()
    throw fromNative(error, `cannot watch ${file}`, file)
  }
  watcher.on('error', (error) => {
    if (json) printJson({ type: 'error', time: new Date().toISOString(), code: error.code ?? 'EIO', message: error.message })
    else err(`${new Date().toISOString().slice(11, 23)}  error: ${error.code ?? 'EIO'}: ${error.message}`)
  })
  const how = watcher.mode === 'polling' ? `polling${watcher.network ? `: a network share (${watcher.network})` : ''}` : 'OS events'
  if (json) printJson({ type: 'watching', filePath: watcher.filePath, mode: watcher.mode, network: watcher.network })
  err(`watching ${watcher.filePath} (${how}); Ctrl-C to stop`)
  let stopping = false
  const stop = async (signal) => {
    if (stopping) return
    stopping = true
    await watcher.close()
    await manager.close()
    if (json) printJson({ type: 'stopped', signal, changes })
    else err(`stopped (${signal}) after ${changes} change(s)`)
    process.exitCode = EXIT_OK
    // Let stdout drain, then leave (the watcher no longer holds the loop open).
    process.stdout.write('', () => process.exit(EXIT_OK))
  }
  // Our own handlers: the package then leaves these signals to us (it cleans
  // up its managers only for apps that do not handle them).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    if (process.platform === 'win32' && signal !== 'SIGINT') continue
    process.on(signal, () => stop(signal))
  }
  return null // keeps running
}

// ---------------------------------------------------------------- break

async function runBreak(args) {
  const { values, positionals } = parse('break', args)
  if (values.help) return help('break')
  const file = onePath('break', positionals, 'file')
  const { index, native } = loadPackage()
  const rules = rulesFrom(values, index.DEFAULTS)
  const target = path.resolve(file)
  const wait = values.wait === true
  if (wait) {
    // Only a message: the break itself judges again from scratch.
    let before
    try {
      before = native.lockFileStatus(target, rules)
    } catch (error) {
      throw fromNative(error, `cannot read the lock of ${file}`, file)
    }
    if (before.staleByTime && before.staleAfterMs !== Infinity) {
      err(`watching ${before.lockPath} for up to ${seconds(before.staleAfterMs)}: it is removed only if it stays unchanged (Ctrl-C to stop)`)
    }
  }
  const outcome = await native.breakStaleLock(target, { ...rules, wait })
  if (outcome.failure) throw fromNative(outcome.failure, `cannot break the lock of ${file}`, file)
  const result = outcome.result
  const refused = result.outcome === 'refused'
  if (values.json) {
    printJson({
      command: 'break',
      filePath: result.before.filePath,
      lockPath: result.before.lockPath,
      broken: result.broken,
      outcome: result.outcome,
      reason: result.reason,
      staleByTime: result.staleByTime,
      waitedMs: Math.round(result.waitedMs * 10) / 10,
      before: statusJson(result.before),
    })
  } else {
    const lockPath = result.before.lockPath
    if (result.outcome === 'broken') out(`removed the stale lock file ${lockPath}: ${result.reason}`)
    else if (result.outcome === 'nothing') out(`nothing to break for ${result.before.filePath}: ${result.reason}`)
    else {
      out(`refused: ${lockPath} was not removed: ${result.reason}`)
      if (result.before.holder) out(`  holder: ${result.before.holder.description}`)
      if (result.staleByTime && !wait) {
        out(`  run again with --wait to watch it for ${seconds(result.before.staleAfterMs)} and remove it if it stays unchanged`)
      }
    }
  }
  return refused ? EXIT_REFUSED : EXIT_OK
}

// ---------------------------------------------------------------- doctor

const GLYPH = { ok: '✓', warn: '!', fail: '✗', skip: '-' }

async function runDoctor(args) {
  const { values, positionals } = parse('doctor', args)
  if (values.help) return help('doctor')
  const dir = onePath('doctor', positionals, 'dir')
  const { native } = loadPackage()
  const outcome = await native.diagnoseDirectory(path.resolve(dir))
  if (outcome.failure) {
    throw fromNative(outcome.failure, `cannot check ${dir}`, dir, 'dir')
  }
  const report = outcome.result
  if (values.json) {
    printJson({
      command: 'doctor',
      directory: report.directory,
      healthy: report.healthy,
      verdict: report.verdict,
      verdictReason: report.verdictReason,
      fileSystem: { network: report.fileSystem.network, name: report.fileSystem.name, fsType: nullable(report.fileSystem.fsType) },
      osLocks: { supported: report.osLocks.supported, tested: report.osLocks.tested, code: nullable(report.osLocks.code), reason: report.osLocks.reason },
      checks: report.checks.map((c) => ({ id: c.id, title: c.title, status: c.status, detail: c.detail, ms: c.ms === undefined ? null : Math.round(c.ms * 1000) / 1000 })),
      advice: report.advice,
    })
  } else {
    out(`doctor ${report.directory}`)
    for (const check of report.checks) {
      out(`  ${GLYPH[check.status] ?? '?'} ${check.title}: ${check.detail}`)
    }
    out(`verdict: strategy 'auto' picks '${report.verdict}' here (${report.verdictReason})`)
    for (const advice of report.advice) out(`advice: ${advice}`)
    out(report.healthy ? 'healthy: locks work here' : 'unhealthy: see the ✗ checks above')
  }
  return report.healthy ? EXIT_OK : EXIT_REFUSED
}

// ---------------------------------------------------------------- main

function help(topic) {
  out(HELP[topic])
  return EXIT_OK
}

const COMMANDS = { status: runStatus, watch: runWatch, break: runBreak, doctor: runDoctor }

async function main(argv) {
  const [command, ...rest] = argv
  if (command === undefined) {
    err(HELP.main)
    return EXIT_USAGE
  }
  if (command === '--help' || command === '-h' || command === 'help') return help(rest[0] in HELP ? rest[0] : 'main')
  if (command === '--version' || command === '-v') {
    out(require('../package.json').version)
    return EXIT_OK
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined
  if (run === undefined) {
    throw usageError(command.startsWith('-') ? `expected a command before ${command}` : `unknown command '${command}'`)
  }
  return run(rest)
}

function fail(error, json, command) {
  const known = error instanceof CliError
  const exitCode = known ? error.exitCode : EXIT_REFUSED
  const code = known ? error.code : (error?.code ?? 'EIO')
  const message = known ? error.message : `unexpected error: ${error?.message ?? String(error)}`
  if (json) printJson({ command: command ?? null, error: { code, message } })
  err(`file-lock-manager: ${message}`)
  if (exitCode === EXIT_USAGE && code === 'EUSAGE') err(`see: file-lock-manager ${command && command in HELP ? `${command} ` : ''}--help`)
  process.exitCode = exitCode
}

const argv = process.argv.slice(2)
const wantsJson = argv.includes('--json')
main(argv).then(
  (code) => {
    if (code !== null) process.exitCode = code
  },
  (error) => fail(error, wantsJson, argv[0]),
)
