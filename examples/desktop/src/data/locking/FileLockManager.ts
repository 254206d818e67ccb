// FileLockManager: the app's lock manager. A thin typed layer over the native
// `file-lock-manager` package, with the platform strategy injected (see
// platforms/; default: selectStrategy(process.platform)). Locks sit on the
// sidecar `.roles.json.lock`; each attempt waits `timeoutMs` (5 s), 3 attempts
// with jittered exponential backoff, a lock held past `leaseMs` (30 s) is
// released, and the OS drops locks of a process that dies.
import { FileLockManager as NativeManager } from 'file-lock-manager'
import type { AcquireOptions, FileLockManagerOptions, HolderInfo, JsonDocument, Lock, OpenDocumentOptions, WaitingEvent } from 'file-lock-manager'
import { FileWatcher, type FileChange, type FileWatcherOptions } from './FileWatcher.js'
import type { LockStrategy } from './platforms/LockStrategy.js'
import { selectStrategy } from './platforms/selectStrategy.js'

export type { AcquireOptions, HolderInfo, JsonDocument, Lock, OpenDocumentOptions, WaitingEvent } from 'file-lock-manager'

/** The native options, except `strategy`: that is the injected LockStrategy's call. */
export interface FileLockManagerConfig extends Omit<FileLockManagerOptions, 'strategy'> {
  /** Default: selectStrategy(process.platform). */
  strategy?: LockStrategy
}

/** An error of this layer or the package: always has a stable `code`. */
export class LockingError extends Error {
  override readonly name = 'LockingError'
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

/** The `code` of an error thrown by the package or this layer, if any. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

export class FileLockManager {
  readonly strategy: LockStrategy
  /** The package's manager, for what this layer does not wrap (events, inspect details). */
  readonly native: NativeManager

  constructor(config: FileLockManagerConfig = {}) {
    const { strategy = selectStrategy(process.platform), ...tuning } = config
    if (!strategy.isSupported(process.platform)) {
      throw new LockingError('EUNSUPPORTED', `the ${strategy.name} lock strategy (${strategy.mechanism}) does not run on ${process.platform}`)
    }
    this.strategy = strategy
    // The app's tuning (timeouts, audit log…) wins over a strategy's defaults.
    this.native = new NativeManager({ ...strategy.managerOptions(), ...tuning })
  }

  /** Takes the lock (exclusive by default; `false`: shared, for readers). Release it with `lock.release()`. */
  acquireLock(filePath: string, exclusive = true, options: Omit<AcquireOptions, 'exclusive'> = {}): Promise<Lock> {
    return this.native.acquireLock(filePath, { ...options, exclusive })
  }

  /**
   * Runs `operation` holding the exclusive lock, released however it ends.
   * Nested use on the same file fails at once with `EDEADLOCK`; a lock lost
   * while running (lease expired) rejects with `ECOMPROMISED`.
   */
  withLock<T>(filePath: string, operation: (lock: Lock) => Promise<T> | T, options: AcquireOptions = {}): Promise<T> {
    return this.native.withLock(filePath, operation, options)
  }

  /** Who holds the lock, as a UI can show it ("another process on this machine since 14:03:12"); null when free. */
  inspect(filePath: string): Promise<HolderInfo | null> {
    return this.native.inspect(filePath)
  }

  /** The file as a shared JSON document (see RolesRepository.ts). */
  openDocument<T extends object>(filePath: string, options?: OpenDocumentOptions<T>): Promise<JsonDocument<T>> {
    return this.native.openDocument<T>(filePath, options)
  }

  /** Watches `filePath`; `listener` (optional) gets each settled change. Close the watcher when done. */
  watch(filePath: string, listener?: (change: FileChange) => void, options?: FileWatcherOptions): FileWatcher {
    const watcher = new FileWatcher(this.native, filePath, options)
    if (listener) watcher.onChange(listener)
    return watcher
  }

  /** "Waiting for another process … to release roles.json": feedback while a lock is contended. */
  onWaiting(listener: (event: WaitingEvent) => void): () => void {
    this.native.on('waiting', listener)
    return () => this.native.off('waiting', listener)
  }

  get closed(): boolean {
    return this.native.closed
  }

  /** Releases every lock, stops watchers and removes unused lock files. Call on app quit. */
  close(): Promise<void> {
    return this.native.close()
  }
}
