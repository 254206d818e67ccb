// Windows: LockFileEx on the sidecar `.roles.json.lock` (the native package's
// OS lock on win32). Mandatory locks: another process cannot read the holder
// record while the lock is held, so "who holds it" may be unknown there.
import { OsLockStrategy } from './LockStrategy.js'

export class WindowsLockStrategy extends OsLockStrategy {
  readonly name = 'windows'
  readonly mechanism = 'LockFileEx'

  isSupported(platform: NodeJS.Platform): boolean {
    return platform === 'win32'
  }
}
