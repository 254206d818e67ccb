// macOS / Linux (and other Unixes): flock on the sidecar `.roles.json.lock`
// (the native package's OS lock there). The kernel drops it when the process
// dies, so a crash never leaves the file locked.
import { OsLockStrategy } from './LockStrategy.js'

const UNIXES: readonly NodeJS.Platform[] = ['linux', 'darwin', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix', 'android']

export class UnixLockStrategy extends OsLockStrategy {
  readonly name = 'unix'
  readonly mechanism = 'flock'

  isSupported(platform: NodeJS.Platform): boolean {
    return UNIXES.includes(platform)
  }
}
