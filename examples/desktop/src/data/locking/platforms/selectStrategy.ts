// The default strategy for a platform: what FileLockManager.ts uses when none
// is injected. Windows → LockFileEx, Unixes → flock, anything else (or a data
// folder shared by several machines) → the PID lock file.
import { FallbackLockStrategy } from './FallbackLockStrategy.js'
import type { LockStrategy } from './LockStrategy.js'
import { UnixLockStrategy } from './UnixLockStrategy.js'
import { WindowsLockStrategy } from './WindowsLockStrategy.js'

export interface SelectStrategyOptions {
  /**
   * The data folder is used by several machines (a network drive some of them
   * see as a local disk): OS locks of one machine are invisible to the others,
   * so every machine must use the lock file. Default false.
   */
  sharedAcrossMachines?: boolean
}

export function selectStrategy(platform: NodeJS.Platform = process.platform, options: SelectStrategyOptions = {}): LockStrategy {
  if (options.sharedAcrossMachines) return new FallbackLockStrategy()
  for (const strategy of [new WindowsLockStrategy(), new UnixLockStrategy()]) {
    if (strategy.isSupported(platform)) return strategy
  }
  return new FallbackLockStrategy()
}
