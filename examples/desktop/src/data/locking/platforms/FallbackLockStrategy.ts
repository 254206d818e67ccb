// Fallback: the PID lock file. The lock is the existence of `.roles.json.lock`
// (created O_EXCL, mode 0600) holding pid, host, process start time, a token and
// a heartbeat. For folders shared by several machines (network drives) and file
// systems without working OS locks. Every process sharing a file must use it.
import type { LockStrategy, LockStrategyOptions } from './LockStrategy.js'

export interface FallbackLockStrategyOptions {
  /** Another host's lock file unrefreshed this long (ms) is stale. Default: the package's (30 s). */
  staleMs?: number
  /** On a network share each attempt waits `timeoutMs` × this. Default: the package's (3). */
  networkTimeoutFactor?: number
}

export class FallbackLockStrategy implements LockStrategy {
  readonly name = 'fallback'
  readonly mechanism = 'PID lock file'
  readonly #options: FallbackLockStrategyOptions

  constructor(options: FallbackLockStrategyOptions = {}) {
    this.#options = { ...options }
  }

  isSupported(): boolean {
    return true // plain files: works wherever O_EXCL create does
  }

  managerOptions(): LockStrategyOptions {
    const { staleMs, networkTimeoutFactor } = this.#options
    return {
      strategy: 'lockfile',
      ...(staleMs === undefined ? {} : { staleMs }),
      ...(networkTimeoutFactor === undefined ? {} : { networkTimeoutFactor }),
    }
  }
}
