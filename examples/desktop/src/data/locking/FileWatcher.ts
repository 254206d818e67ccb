// FileWatcher: change detection for one file (roles.json), over the package's
// watcher: its directory is watched (inotify / FSEvents / ReadDirectoryChangesW,
// polling on network shares), bursts are settled, and each change says whether
// it is `external` (content this process did not write). Listeners get settled
// changes; failures go to onError listeners (or the logger), never unhandled.
import type { FileChange, FileLockError, FileLockManager as NativeManager, Watcher, WatchOptions } from 'file-lock-manager'

export type { FileChange } from 'file-lock-manager'

export interface FileWatcherOptions extends WatchOptions {
  /** Every change and error, for the app's log ("log all detected changes"). */
  logger?: (entry: { event: 'change'; change: FileChange } | { event: 'error'; error: FileLockError }) => void
}

type Unsubscribe = () => void

export class FileWatcher {
  readonly filePath: string
  readonly #watcher: Watcher
  readonly #listeners = new Set<(change: FileChange) => void>()
  readonly #errorListeners = new Set<(error: FileLockError) => void>()
  readonly #logger: FileWatcherOptions['logger']

  constructor(native: Pick<NativeManager, 'watch'>, filePath: string, options: FileWatcherOptions = {}) {
    const { logger, ...watchOptions } = options
    this.filePath = filePath
    this.#logger = logger
    this.#watcher = native.watch(filePath, (change) => this.#onChange(change), watchOptions)
    this.#watcher.on('error', (error) => this.#onError(error))
  }

  /** Calls `listener` with each settled change (only other writers' with `externalOnly`). */
  onChange(listener: (change: FileChange) => void, { externalOnly = false } = {}): Unsubscribe {
    const wrapped = externalOnly ? (change: FileChange) => change.external && listener(change) : listener
    this.#listeners.add(wrapped)
    return () => this.#listeners.delete(wrapped)
  }

  /** The file could not be read (permissions, I/O). */
  onError(listener: (error: FileLockError) => void): Unsubscribe {
    this.#errorListeners.add(listener)
    return () => this.#errorListeners.delete(listener)
  }

  /** 'events' (OS notifications, no CPU while idle) or 'polling' (network shares). */
  get mode(): 'events' | 'polling' {
    return this.#watcher.mode
  }

  /** The share's file system ('nfs', 'smb'…) when the file is on a network drive. */
  get network(): string | null {
    return this.#watcher.network
  }

  get closed(): boolean {
    return this.#watcher.closed
  }

  async close(): Promise<void> {
    this.#listeners.clear()
    this.#errorListeners.clear()
    await this.#watcher.close()
  }

  #onChange(change: FileChange): void {
    this.#logger?.({ event: 'change', change })
    for (const listener of [...this.#listeners]) listener(change)
  }

  #onError(error: FileLockError): void {
    this.#logger?.({ event: 'error', error })
    for (const listener of [...this.#errorListeners]) listener(error)
  }
}
