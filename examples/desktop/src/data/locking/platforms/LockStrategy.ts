// The lock strategy contract: what FileLockManager.ts gets injected. A strategy
// does not lock anything itself; the native package does (flock / LockFileEx /
// PID lock file, chosen by its `strategy` option). A strategy says which of
// those to use on which platform, with what tuning, and names it for logs and UI.
import type { FileLockManagerOptions } from 'file-lock-manager'

/** The options of the native manager a strategy decides. */
export type LockStrategyOptions = Pick<FileLockManagerOptions, 'strategy' | 'staleMs' | 'networkTimeoutFactor'>

export interface LockStrategy {
  /** Short id for logs and settings: 'windows', 'unix', 'fallback'. */
  readonly name: string
  /** What does the locking, for people: 'LockFileEx', 'flock', 'PID lock file'. */
  readonly mechanism: string
  /** Whether this strategy can run on `platform` (`process.platform` values). */
  isSupported(platform: NodeJS.Platform): boolean
  /** The native manager's options this strategy stands for. */
  managerOptions(): LockStrategyOptions
}

/** Options of the OS-lock strategies (Windows, Unix). */
export interface OsLockStrategyOptions {
  /**
   * true (default): OS locks on local disks, and the package's PID lock file on a
   * network share or a file system that refuses OS locks (`strategy: 'auto'`).
   * false: OS locks everywhere (`strategy: 'os'`), also on shares whose servers
   * may emulate or ignore them.
   */
  networkFallback?: boolean
}

export function osLockOptions(options: OsLockStrategyOptions): LockStrategyOptions {
  return { strategy: options.networkFallback === false ? 'os' : 'auto' }
}

/** The OS-lock strategies (Windows, Unix): the same options; each names its platforms. */
export abstract class OsLockStrategy implements LockStrategy {
  abstract readonly name: string
  abstract readonly mechanism: string
  readonly #options: OsLockStrategyOptions

  constructor(options: OsLockStrategyOptions = {}) {
    this.#options = { ...options }
  }

  abstract isSupported(platform: NodeJS.Platform): boolean

  managerOptions(): LockStrategyOptions {
    return osLockOptions(this.#options)
  }
}
