// Mounting flm-netsim (torture/netsim: a FUSE pass-through standing in for a
// network drive, with latency, refused locks and injected faults) for the
// scenarios. It needs root and /dev/fuse; `unavailable()` says why not, so a
// scenario can skip visibly instead of failing.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { TORTURE, within } from './harness.mjs'

const MANIFEST = path.join(TORTURE, 'netsim', 'Cargo.toml')
const BINARY = path.join(TORTURE, 'netsim', 'target', 'release', 'flm-netsim')

/** Null when FUSE mounts can be made here, else the reason. */
export function unavailable() {
  if (process.platform !== 'linux') return 'FUSE simulation is Linux-only'
  if (process.getuid?.() !== 0) return 'not root (flm-netsim mounts with mount(2))'
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse'
  if (!fs.readFileSync('/proc/filesystems', 'utf8').includes('\tfuse\n')) return 'the kernel has no fuse file system'
  return null
}

/** Builds flm-netsim once (cargo, release); returns the binary's path. */
export function build(log) {
  if (fs.existsSync(BINARY)) {
    const sources = path.join(TORTURE, 'netsim', 'src')
    const newest = Math.max(...fs.readdirSync(sources).map((f) => fs.statSync(path.join(sources, f)).mtimeMs))
    if (fs.statSync(BINARY).mtimeMs >= newest) return BINARY
  }
  log('building flm-netsim (cargo build --release)…')
  execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', MANIFEST], { stdio: ['ignore', 'ignore', 'pipe'] })
  return BINARY
}

/**
 * Mounts `backing` at `mountpoint` with flm-netsim `args`; resolves once it
 * prints "mounted". `unmount()` ends it (SIGTERM) and waits for it.
 */
export async function mount(backing, mountpoint, args = []) {
  fs.mkdirSync(backing, { recursive: true })
  fs.mkdirSync(mountpoint, { recursive: true })
  const proc = spawn(BINARY, [backing, mountpoint, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  proc.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4096)))
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  const mounted = new Promise((resolve, reject) => {
    let out = ''
    proc.stdout.on('data', (d) => {
      out += d
      if (out.includes('mounted')) resolve()
    })
    exited.then((e) => reject(new Error(`flm-netsim exited before mounting (${JSON.stringify(e)}): ${stderr}`)))
  })
  await within(mounted, 20000, `mounting flm-netsim at ${mountpoint}`)
  return {
    mountpoint,
    get stderr() {
      return stderr
    },
    async unmount() {
      proc.kill('SIGTERM')
      const end = await within(exited, 10000, `unmounting ${mountpoint}`).catch(() => {
        proc.kill('SIGKILL')
        try {
          execFileSync('umount', ['-l', mountpoint], { stdio: 'ignore' })
        } catch {}
        return null
      })
      return end
    },
  }
}

/** Writes the control file atomically and waits until flm-netsim has surely re-read it. */
export async function control(file, settings) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(settings))
  fs.renameSync(`${file}.tmp`, file)
  await new Promise((resolve) => setTimeout(resolve, 120))
}
