// Windows: LockFileEx on the sidecar `.roles.json.lock` (the native package's
// OS lock on win32). Mandatory locks: another process cannot read the holder
// record while the lock is held, so "who holds it" may be unknown there.
import { osLockOptions, type LockStrategy, type LockStrategyOptions, type OsLockStrategyOptions } from './LockStrategy.js'

export class WindowsLockStrategy implements LockStrategy {
  readonly name = 'windows'
  readonly mechanism = 'LockFileEx'
  readonly #options: OsLockStrategyOptions

  constructor(options: OsLockStrategyOptions = {}) {
    this.#options = { ...options }
  }

  isSupported(platform: NodeJS.Platform): boolean {
    return platform === 'win32'
  }

  managerOptions(): LockStrategyOptions {
    return osLockOptions(this.#options)
  }
}
