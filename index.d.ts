// Public types of file-lock-manager. The shapes that cross the native edge
// (holder, grant, failure) are generated from the Rust doc comments into
// native.d.ts and re-used here, so the two cannot drift apart: `npm test`
// rebuilds native.d.ts and compiles __test__/types/usage.ts against this file.

import { EventEmitter } from 'node:events'
import type { HolderInfo } from './native'
import type { JsonChange, MergeConflict } from './lib/merge'

export type { HolderInfo } from './native'
export { mergeJson, diffJson, MAX_JSON_DEPTH } from './lib/merge'
export type { JsonValue, JsonPath, JsonChange, JsonChangeKind, MergeConflict, MergeConflictKind, MergeOptions, MergeResult, DiffOptions } from './lib/merge'

/** Error codes of this package (see README "Error codes"). */
export type FileLockErrorCode =
  | 'ELOCKTIMEOUT'
  | 'ABORT_ERR'
  | 'ECOMPROMISED'
  | 'EDEADLOCK'
  | 'ECLOSED'
  | 'EINVAL'
  | 'ENOENT'
  | 'EACCES'
  | 'EPERM'
  | 'EROFS'
  | 'ELOOP'
  | 'ELOCKFOREIGN'
  | 'ECORRUPT'
  | 'EINTERNAL'
  | 'ENOTFILE'
  | 'ETOOBIG'
  | 'ECANCELED'
  | 'EUNSAVED'
  | 'ECONFLICT'
  | 'ENOSPC'
  | 'ENOLCK'
  | 'EWATCHLIMIT'
  | (string & {})

/** Options of `new FileLockManager(options)`. */
export interface FileLockManagerOptions {
  /** How long one acquisition attempt waits, in ms. Default 5000; `Infinity`: no limit; `0`: do not wait. */
  timeoutMs?: number
  /** Attempts per acquisition, with jittered exponential backoff between them. Default 3. */
  retries?: number
  /**
   * A lock held longer than this (ms) is released by the manager and its holder told. Default 30000.
   * At least 1: `0`, negatives and `NaN` throw a `RangeError` (`ERR_OUT_OF_RANGE`). `Infinity`: no lease
   * (a finite value too large for the clock acts the same). A lease that runs out before `acquireLock`
   * could resolve makes it reject with `ECOMPROMISED` instead of handing out a lost `Lock`.
   */
  leaseMs?: number
  /** Lock-file strategy: another host's lock file unrefreshed this long (by our clock) is stale (ms). Default 30000. */
  staleMs?: number
  /** `'auto'` (default) or `'os'`: flock / LockFileEx on the sidecar. `'lockfile'`: the PID lock file with heartbeats (all processes using a file must use the same strategy). */
  strategy?: 'auto' | 'os' | 'lockfile'
  /** Path of an append-only JSON-lines audit trail (mode 0600, rotated at `auditLogMaxBytes`, 3 old files kept). */
  auditLog?: string
  /** Size at which the audit trail is rotated. Default 10 MiB, at least 4096. */
  auditLogMaxBytes?: number
  /** Receives every audit entry (with or without `auditLog`). */
  logger?: (entry: AuditEntry) => void
  /** Describe holders with their pid in events, errors and `inspect()`. Default false. */
  exposePids?: boolean
  /** On a network share (NFS, SMB, sshfs…) each attempt waits this many times `timeoutMs`. Default 3, from 1 to 100. */
  networkTimeoutFactor?: number
}

export interface OpenDocumentOptions<T> {
  /**
   * Written when the file does not exist. Checked (and copied) at once, as `set()` checks a value: a
   * plain object or an array (not a Date, Map, class instance…), whose JSON form exists (no cycle, no
   * throwing `toJSON`), holds no function or symbol and nests at most `MAX_JSON_DEPTH` (1000)
   * levels; `undefined` members are left out as `JSON.stringify` does, a `bigint` is written as its
   * exact digits. Anything else rejects with a
   * `TypeError`, code `ERR_INVALID_ARG_VALUE`, and nothing is created.
   */
  defaultValue?: T
  /** `'fsync'` (default): a resolved write survives a power loss. `'none'`: atomic only. */
  durability?: 'fsync' | 'none'
  /** How many backups of each kind to keep in `.<name>.backups/`: good versions
   * (`<time>.json`, one taken at each open when the content changed) and copies of
   * unreadable files (`<time>.corrupt`). Default 5, from 1 to 1000. */
  backups?: number
  /** When the file does not parse at open: copy its bytes aside and restore the
   * newest good backup (see `JsonDocument.recovery`) instead of failing with
   * `ECORRUPT`. Default false: an unreadable file is never replaced without consent. */
  recoverFromBackup?: boolean
  /** Per-attempt lock timeout for this document's writes (default: the manager's). */
  timeoutMs?: number
  /** The member that identifies elements of arrays of objects when merging (`roles[id="admin"]`). Default `'id'`. */
  arrayKey?: string
  /**
   * What happens when unsaved edits conflict with a change on disk. `'ask'` (default): a
   * `conflict` event with `resolve()`; the edits wait (save() rejects with `ECONFLICT`).
   * `'mine'` / `'theirs'`: that side wins each conflict, the rest merges; `'merged'`: the
   * merge with base values at conflicts. The file is backed up first either way.
   */
  onConflict?: 'ask' | 'mine' | 'theirs' | 'merged'
  /**
   * Save `edit()`s by themselves this many ms after the last one: 0 to 2147483647 (2^31 - 1, the
   * longest Node timer; more is a `RangeError`, code `ERR_OUT_OF_RANGE`, rather than a timer that
   * fires at once). `Infinity`, like the default: only on `save()`/`close()`.
   */
  saveDelayMs?: number
  /** Watch the file and react to external changes as they happen (default true); false: seen at read/write only. */
  watch?: boolean
  /**
   * Largest file this document reads or writes, in bytes. Default 256 MiB; an integer from 1 to V8's
   * longest string (`buffer.constants.MAX_STRING_LENGTH`). A bigger file is refused with `ETOOBIG`
   * (left untouched, never read whole); so is a write whose JSON would be bigger (nothing is written).
   */
  maxBytes?: number
}

/** The file changed on disk, by someone else. */
export interface DocumentExternalChangeEvent<T> {
  filePath: string
  oldValue: T
  /** `null` when the file was deleted (the document keeps its value; the next write re-creates it). */
  newValue: T | null
  /** What changed, by JSON path; computed only when someone listens to this event. */
  changes: JsonChange[]
  /** True when the document took the new value as is (it had no unsaved edits); otherwise a `merged` or `conflict` event follows. */
  reloaded: boolean
  /** Where it was noticed: the watch, a `read()`, or the re-read before a write. */
  origin: 'watch' | 'read' | 'write'
  deleted?: true
}

/** Unsaved edits and an external change merged cleanly. */
export interface DocumentMergedEvent<T> {
  filePath: string
  base: T
  mine: T
  theirs: T
  merged: T
  /** What came from each side, by JSON path. */
  fromMine: JsonChange[]
  fromTheirs: JsonChange[]
}

/** Unsaved edits and an external change changed the same values differently. */
export interface DocumentConflictEvent<T> {
  filePath: string
  base: T
  mine: T
  theirs: T
  /** The merge so far: base values at the conflicts. */
  merged: T
  conflicts: MergeConflict[]
  /** Set when the `onConflict` policy resolved it already. */
  policy?: 'mine' | 'theirs' | 'merged'
  /**
   * Resolves the conflict: `'mine'` / `'theirs'` (that side wins each conflict, the rest
   * merges), `'merged'`, or a value. Backs up the file first; resolves with the value once
   * durable. Rejects with `ECONFLICT` if the conflict is no longer current.
   */
  resolve(choice: 'mine' | 'theirs' | 'merged' | T): Promise<T>
}

/** One settled change of a watched file. */
export interface FileChange {
  filePath: string
  kind: 'modified' | 'created' | 'deleted'
  /** False when the file holds content this process wrote (judged by content hash, not by timing). */
  external: boolean
  size: number | null
  mtimeMs: number | null
  /** The OS reported an overflow; the change was found by looking again. */
  rescan: boolean
}

export interface WatchOptions {
  /** A burst of events is over after this many ms without one. Default 15. */
  debounceMs?: number
  /** ... or this many ms after its first event. Default 150. */
  maxDelayMs?: number
  /** Poll (stat) instead of OS events; automatic on network shares. */
  poll?: boolean
  /** Poll interval in ms. Default 1000. */
  pollIntervalMs?: number
  /** Keep Node alive while watching, like fs.watch. Default true. */
  persistent?: boolean
}

/** A watch of one file: its directory is watched, so replaces, deletes and re-creations are all seen. */
export declare class Watcher extends EventEmitter {
  private constructor()
  readonly filePath: string
  /** `'events'` (OS notifications, no CPU while idle) or `'polling'` (network shares). */
  readonly mode: 'events' | 'polling'
  /** The share's file system when the file is on a network drive, else null. */
  readonly network: string | null
  readonly closed: boolean
  close(): Promise<void>
  on(event: 'change', listener: (change: FileChange) => void): this
  /** The file could not be read; without a listener it goes to the manager's 'error'. */
  on(event: 'error', listener: (error: FileLockError) => void): this
}

export interface DocumentSavedEvent<T> {
  filePath: string
  value: T
  /** How many `set`/`update` calls this one write carried. */
  operations: number
}

export interface DocumentLockTimeoutEvent {
  filePath: string
  waitedMs: number
  holder: HolderInfo | null
  /** Writes still queued (none is dropped). */
  pending: number
  retryInMs: number
  /** Try again now. */
  retry(): void
  /** Give up the queued writes (their promises reject with `ECANCELED`). */
  cancel(): void
}

/** A JSON file read and written under the lock, atomically and durably. */
export declare class JsonDocument<T extends object = any> extends EventEmitter {
  private constructor()
  readonly filePath: string
  /** Set when `recoverFromBackup` restored a good backup at open. */
  readonly recovery: { backupPath: string; corruptPath: string | null } | null
  /** Null, or why the document could only be opened for reading (EACCES/EPERM/EROFS); writes fail with it. */
  readonly readOnly: FileLockError | null
  /** Whether external changes are seen as they happen (false with `watch: false`, after close, or when `watchError` is set). */
  readonly watching: boolean
  /**
   * Why the document does not watch its file, when its watch could not be set up (e.g. `EWATCHLIMIT`:
   * an OS limit on watches, named in the message with how to raise it); null otherwise. The same error
   * is emitted as `error` once the open has resolved (to the manager's `error` when the document has no
   * listener). The document still sees changes at `read()` and before each write.
   */
  readonly watchError: FileLockError | null
  /** Whether `edit()`s are waiting to be saved. */
  readonly hasUnsavedChanges: boolean
  /** The unresolved conflict, or null. */
  readonly conflict: DocumentConflictEvent<T> | null
  /** The current value (read-only: frozen), unsaved edits and accepted but unwritten calls included. */
  get(): T
  /** Re-reads the file when its content changed; the value with pending edits. */
  read(): Promise<T>
  /**
   * Read-modify-write under the exclusive lock (fn gets a copy; return the next value or mutate it). Resolves when durable.
   *
   * Numbers read are JS numbers (as `JSON.parse` gives them); one the file spells more exactly than a
   * JS number holds (`9007199254740993`, `1e400`, `-0`) is written back with its own text while it is
   * left as read. To write such a value exactly, assign a `bigint` (`v.id = 1234567890123456790n`):
   * its digits are written; a plain number is written as `JSON.stringify` writes it.
   */
  update(fn: (value: T) => T | void): Promise<T>
  /**
   * Replaces the value; rapid calls are coalesced. Resolves when durable. A `bigint` anywhere in it is
   * written as its exact digits; numbers left as read keep their text in the file (see `update`).
   */
  set(value: T): Promise<T>
  /** Changes the value locally without saving (fn gets a copy; return the next value or mutate it). */
  edit(fn: (value: T) => T | void): T
  /** Saves the edits, three-way merged with what changed on disk; rejects with `ECONFLICT` (edits kept) on a conflict. */
  save(): Promise<T>
  /** Drops the unsaved edits (and an unresolved conflict); returns the value without them. */
  discard(): T
  /** Resolves when everything accepted so far is written. */
  flush(): Promise<void>
  /** Writes what is pending (up to 3 lock timeouts), then closes; rejects with `EUNSAVED` listing writes that could not be saved. */
  close(): Promise<void>
  on(event: 'saved', listener: (e: DocumentSavedEvent<T>) => void): this
  on(event: 'lock-timeout', listener: (e: DocumentLockTimeoutEvent) => void): this
  on(event: 'external-change', listener: (e: DocumentExternalChangeEvent<T>) => void): this
  on(event: 'merged', listener: (e: DocumentMergedEvent<T>) => void): this
  on(event: 'conflict', listener: (e: DocumentConflictEvent<T>) => void): this
  /** A write failed (its caller's promise rejects with the same error); only emitted when listened to. */
  on(event: 'error', listener: (error: FileLockError) => void): this
}

/** One audited lock operation or document event (a line of the audit trail). */
export interface AuditEntry {
  /** Milliseconds since the epoch. */
  time: number
  op:
    | 'acquire'
    | 'release'
    | 'lease-expired'
    | 'compromised'
    | 'stale-lock-removed'
    | 'recovered'
    | 'backup-failed'
    | 'external-change'
    | 'merged'
    | 'conflict'
    | 'conflict-resolved'
    /** macOS: the file system refused F_FULLFSYNC; durable writes get a plain fsync (once per document). */
    | 'weak-flush'
  file: string
  /** Set for lock operations; absent for document events. */
  strategy?: 'os' | 'lockfile'
  /** acquire: `granted`, `timeout`, `aborted`, `closed`, `error`; release: its reason. */
  outcome: string
  exclusive?: boolean
  fencingToken?: number
  waitedMs?: number
  heldMs?: number
  detail?: string
  /** Entries lost before this one because the writer fell behind. */
  droppedBefore?: number
}

/** Per-call options of `acquireLock` and `withLock`. */
export interface AcquireOptions {
  /** `true` (default): exclusive (writers). `false`: shared (readers). */
  exclusive?: boolean
  /** Overrides the manager's `timeoutMs` for this call. */
  timeoutMs?: number
  /** Overrides the manager's `retries` for this call. */
  retries?: number
  /** Cancels the wait: the promise rejects with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignal
}

/** A held lock. Release it with `release()` or `await using`. */
export declare class Lock {
  private constructor()
  /** Canonical path of the locked data file. */
  readonly filePath: string
  readonly exclusive: boolean
  readonly strategy: 'os' | 'lockfile'
  /** Why that strategy: set by the option, a local disk, a network share, or OS locks refused. */
  readonly strategyReason: string
  /** Grows with every acquisition of this file, across processes. */
  readonly fencingToken: number
  /** Aborts when the lock is lost while held (`ECOMPROMISED` lease expiry, `ECLOSED`). */
  readonly signal: AbortSignal
  /** True once the lock is no longer held. */
  readonly released: boolean
  /** Releases the lock. Idempotent. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>
}

/** An error of this package: always has a stable `code`. */
export declare class FileLockError extends Error {
  readonly code: FileLockErrorCode
  readonly filePath?: string
  /** `ELOCKTIMEOUT`: total time waited, in ms. */
  readonly waitedMs?: number
  /** `ELOCKTIMEOUT`: attempts made. */
  readonly attempts?: number
  /** `ELOCKTIMEOUT`: the holder, when known. */
  readonly holder?: HolderInfo
  /** A document write that failed on disk: true when its value was kept as unsaved edits, to be saved again. */
  readonly kept?: boolean
  /** `ELOCKTIMEOUT`: the share's file system (`nfs`, `smb`, `sshfs`…) when the file is on a network drive. */
  readonly network?: string
}

export interface WaitingEvent {
  filePath: string
  exclusive: boolean
  /** 1-based attempt number. */
  attempt: number
  attempts: number
  /** Time since the request started, in ms. */
  elapsedMs: number
  holder?: HolderInfo
  /** The share's file system (`nfs`, `smb`, `sshfs`…) when the file is on a network drive. */
  network?: string
  /** A sentence for a UI: "waiting for another process on this machine since … to release roles.json";
   * on a network drive it starts "roles.json is on a network drive (nfs); ". */
  message: string
}

export interface AcquiredEvent {
  filePath: string
  exclusive: boolean
  fencingToken: number
  strategy: 'os' | 'lockfile'
}

export interface ReleasedEvent {
  filePath: string
  exclusive: boolean
  fencingToken?: number
  /** `'released'`, `'lease-expired'`, `'garbage-collected'`, `'manager-closed'` or `'compromised'`. */
  reason: 'released' | 'lease-expired' | 'garbage-collected' | 'manager-closed' | 'compromised'
  heldMs?: number
  lockId?: number
  message?: string
}

export interface TimeoutEvent {
  filePath: string
  waitedMs: number
  attempts: number
  holder: HolderInfo | null
  /** The share's file system when the file is on a network drive. */
  network?: string
  message: string
}

export interface LeaseExpiredEvent {
  filePath: string
  exclusive: boolean
  lockId: number
  fencingToken: number
  heldMs: number
  reason: 'lease-expired'
  message: string
}

/** The lock file was deleted or replaced while the lock was held: the lock is lost. */
export interface CompromisedEvent {
  filePath: string
  exclusive: boolean
  lockId: number
  fencingToken: number
  heldMs: number
  reason: 'compromised'
  message: string
}

/** A lock file whose owner is provably gone was removed on the way to the lock. */
export interface StaleLockRemovedEvent {
  filePath: string
  /** Why it was stale: "its process has exited", "… has not refreshed it for 30000 ms", … */
  reason: string
  message: string
}

export interface FileLockManagerEvents {
  waiting: [WaitingEvent]
  acquired: [AcquiredEvent]
  released: [ReleasedEvent]
  timeout: [TimeoutEvent]
  'lease-expired': [LeaseExpiredEvent]
  compromised: [CompromisedEvent]
  'stale-lock-removed': [StaleLockRemovedEvent]
  /** Any open document's external changes, merges and conflicts. */
  'external-change': [DocumentExternalChangeEvent<any>]
  merged: [DocumentMergedEvent<any>]
  conflict: [DocumentConflictEvent<any>]
  /** Errors with no other listener (a watcher's read failure, a document's watch that could not be set up). */
  error: [FileLockError]
}

type EventName = keyof FileLockManagerEvents

export declare class FileLockManager extends EventEmitter {
  constructor(options?: FileLockManagerOptions)
  /** The options in force, defaults filled in. */
  readonly options: Required<Omit<FileLockManagerOptions, 'auditLog' | 'logger'>> & Pick<FileLockManagerOptions, 'auditLog' | 'logger'>
  readonly closed: boolean
  /** How many locks this manager holds right now. */
  readonly heldCount: number

  /**
   * Acquires the lock on `filePath` (the lock is taken on the sidecar `.<name>.lock`).
   * Rejects with `ELOCKTIMEOUT`, `ABORT_ERR`, `EDEADLOCK` (inside `withLock` of the same file),
   * `ECLOSED`, `EINVAL` or an errno code.
   */
  acquireLock(filePath: string, options?: AcquireOptions): Promise<Lock>
  /**
   * Runs `fn` while holding the lock and releases it however `fn` ends. Rejects with
   * `ECOMPROMISED` when the lock was lost (lease expired) while `fn` ran.
   */
  withLock<T>(filePath: string, fn: (lock: Lock) => T | Promise<T>, options?: AcquireOptions): Promise<T>
  /** Who holds the lock on `filePath`, as seen from outside; `null` when it is free. */
  inspect(filePath: string): Promise<HolderInfo | null>
  /**
   * Opens `filePath` as a JSON document shared safely with other processes. A missing file is
   * created from `defaultValue` (else `ENOENT`); one that does not parse rejects with `ECORRUPT`.
   */
  openDocument<T extends object = any>(filePath: string, options?: OpenDocumentOptions<T>): Promise<JsonDocument<T>>
  /**
   * Calls `listener` with each settled change of `filePath` (its directory is watched and
   * events filtered by name; every watch of the process shares one OS watcher). Throws `EINVAL` for a
   * directory, `ENOENT` when the directory is missing, `EWATCHLIMIT` when an OS limit on watches is
   * reached (the message names it and how to raise it).
   */
  watch(filePath: string, listener: (change: FileChange) => void, options?: WatchOptions): Watcher
  /** Releases every lock, stops watchers, fails waiters with `ECLOSED` and removes unused lock files. */
  close(): Promise<void>

  on<E extends EventName>(event: E, listener: (...args: FileLockManagerEvents[E]) => void): this
  once<E extends EventName>(event: E, listener: (...args: FileLockManagerEvents[E]) => void): this
  off<E extends EventName>(event: E, listener: (...args: FileLockManagerEvents[E]) => void): this
}

/** The defaults of `FileLockManagerOptions`. */
export declare const DEFAULTS: Readonly<Required<Omit<FileLockManagerOptions, 'auditLog' | 'logger'>>>
