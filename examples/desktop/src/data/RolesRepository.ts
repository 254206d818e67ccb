// RolesRepository: the app's roles, kept in roles.json (`{ roles: Role[] }`) and
// shared safely by every window (one repository in the main process) and every
// app instance (each its own process). Built on the package's JsonDocument:
// each change is a durable read-modify-write under the file's lock; drafts are
// local edits saved by a three-way merge with whatever changed on disk.
// What happens meanwhile reaches the UI as plain, IPC-safe notices (onNotice):
// reloaded, merged, conflict (→ resolveConflict), lock-timeout (→ retrySave /
// cancelSave), lock-cleared, conflict-resolved, error.
// Existence checks are made first against the roles as this window shows them
// (draft included), then again under the lock against the file.
import type {
  DocumentConflictEvent,
  DocumentExternalChangeEvent,
  DocumentLockTimeoutEvent,
  DocumentMergedEvent,
  FileLockError,
  JsonChange,
  JsonDocument,
  MergeConflict,
} from 'file-lock-manager'
import { decide, describeConflict, type ConflictChoice, type ConflictDescription, type ConflictPolicy, type SegmentLabeler } from './locking/ConflictResolver.js'
import { errorCode, type FileLockManager } from './locking/FileLockManager.js'

export interface Role {
  id: string
  name: string
  permissions: string[]
  description?: string
}

export interface RolesFile {
  roles: Role[]
}

export type RolePatch = Partial<Omit<Role, 'id'>>

export type RolesErrorCode = 'EROLE_EXISTS' | 'EROLE_NOT_FOUND' | 'EROLE_INVALID' | 'ENOTICE_STALE'

export class RolesError extends Error {
  override readonly name = 'RolesError'
  constructor(readonly code: RolesErrorCode, message: string) {
    super(message)
  }
}

interface NoticeBase {
  /** Identifies the notice; the same id for updates of one situation (a lock wait). */
  id: string
  message: string
}

/** What the UI is told. Plain data: safe to send to renderers over IPC. */
export type RolesNotice =
  | (NoticeBase & { type: 'reloaded'; changes: JsonChange[] })
  | (NoticeBase & { type: 'merged'; fromMine: JsonChange[]; fromTheirs: JsonChange[] })
  | (NoticeBase & {
      type: 'conflict'
      conflicts: MergeConflict[]
      description: ConflictDescription
      /** Both versions, for a "review" view. */
      mine: Role[]
      theirs: Role[]
      /** Set when the repository's conflict policy settled it without asking. */
      decidedBy?: ConflictChoice
    })
  | (NoticeBase & { type: 'conflict-resolved'; choice: ConflictChoice | 'value' | 'discarded' })
  | (NoticeBase & { type: 'lock-timeout'; holder: string | null; waitedMs: number; pending: number; retryInMs: number; attempts: number })
  | (NoticeBase & { type: 'lock-cleared'; outcome: 'saved' | 'cancelled' })
  | (NoticeBase & { type: 'error'; code: string | null })

export interface RolesRepositoryOptions {
  /** Decide conflicts without asking ('mine', 'theirs', 'merged', or a function such as keepTheirDeletions). Default 'ask'. */
  conflictPolicy?: ConflictPolicy
  /** Per-attempt lock timeout of writes (default: the manager's). */
  timeoutMs?: number
  /** Save drafts by themselves this long after the last edit (default: only saveDraft()/close()). */
  saveDelayMs?: number
  durability?: 'fsync' | 'none'
}

const rolesOf = (value: RolesFile | null | undefined): Role[] => (Array.isArray(value?.roles) ? value.roles : [])

// `$.roles[id="admin"].name` → `Role "admin" › name`
const roleLabel: SegmentLabeler = (segment, parents) =>
  'id' in segment ? `Role "${segment.id}"` : parents.length === 0 && segment.key === 'roles' ? '' : segment.key

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function checkRole(role: Role): Role {
  const ok =
    typeof role?.id === 'string' &&
    role.id !== '' &&
    typeof role.name === 'string' &&
    Array.isArray(role.permissions) &&
    role.permissions.every((p) => typeof p === 'string') &&
    (role.description === undefined || typeof role.description === 'string')
  if (!ok) throw new RolesError('EROLE_INVALID', 'a role needs a non-empty string id, a string name and permissions as an array of strings')
  return JSON.parse(JSON.stringify(role)) as Role
}

function checkPatch(patch: RolePatch): RolePatch {
  const { id: _id, ...fields } = patch as RolePatch & { id?: unknown } // the id is not changed
  checkRole({ id: 'id', name: '', permissions: [], ...fields })
  return JSON.parse(JSON.stringify(fields)) as RolePatch
}

export class RolesRepository {
  readonly filePath: string
  readonly #doc: JsonDocument<RolesFile>
  readonly #policy: ConflictPolicy
  readonly #listeners = new Set<(notice: RolesNotice) => void>()
  #seq = 0
  #conflict: { id: string; event: DocumentConflictEvent<RolesFile>; notice: RolesNotice } | null = null
  #lockWait: { id: string; event: DocumentLockTimeoutEvent; notice: RolesNotice; attempts: number } | null = null

  /** Opens (creating `{ roles: [] }` when missing) the roles file through `manager`. */
  static async open(manager: FileLockManager, filePath: string, options: RolesRepositoryOptions = {}): Promise<RolesRepository> {
    const { conflictPolicy, ...documentOptions } = options
    const doc = await manager.openDocument<RolesFile>(filePath, { defaultValue: { roles: [] }, arrayKey: 'id', onConflict: 'ask', ...documentOptions })
    return new RolesRepository(doc, conflictPolicy ?? 'ask')
  }

  private constructor(doc: JsonDocument<RolesFile>, policy: ConflictPolicy) {
    this.#doc = doc
    this.filePath = doc.filePath
    this.#policy = policy
    doc.on('external-change', this.#onExternalChange)
    doc.on('merged', this.#onMerged)
    doc.on('conflict', this.#onConflict)
    doc.on('lock-timeout', this.#onLockTimeout)
    doc.on('saved', this.#onSaved)
    doc.on('error', this.#onError)
  }

  // ---- reading (values are frozen: change roles through the methods below) ----

  /** The roles, fresh from disk when the file changed (one stat when it did not); the draft included. */
  async list(): Promise<readonly Role[]> {
    try {
      return rolesOf(await this.#doc.read())
    } catch (error) {
      // Another process holds the lock for long: show what we know rather than nothing.
      if (errorCode(error) === 'ELOCKTIMEOUT') return this.snapshot()
      throw error
    }
  }

  async get(id: string): Promise<Role | undefined> {
    return (await this.list()).find((role) => role.id === id)
  }

  /** The roles as known now, without touching the disk. */
  snapshot(): readonly Role[] {
    return rolesOf(this.#doc.get())
  }

  // ---- durable changes: each resolves once written (fsync'd) under the lock ----

  /** Adds a role; `EROLE_EXISTS` if its id is taken (checked again under the lock). */
  async add(role: Role): Promise<Role> {
    const clean = checkRole(role)
    const taken = () => new RolesError('EROLE_EXISTS', `a role with id "${clean.id}" already exists`)
    if (this.snapshot().some((r) => r.id === clean.id)) throw taken()
    // The function must not throw: the document also runs it to preview get() while the write is queued.
    const written = await this.#doc.update((value) => {
      value.roles = rolesOf(value)
      if (!value.roles.some((r) => r.id === clean.id)) value.roles.push(clean)
    })
    const saved = rolesOf(written).find((r) => r.id === clean.id)
    if (saved === undefined || !sameJson(saved, clean)) throw taken() // another window added it meanwhile
    return saved
  }

  /** Changes a role's fields; `EROLE_NOT_FOUND` if it does not exist (or was deleted in another window meanwhile). */
  async update(id: string, patch: RolePatch): Promise<Role> {
    const fields = checkPatch(patch)
    if (!this.snapshot().some((r) => r.id === id)) throw this.#notFound(id)
    const written = await this.#doc.update((value) => {
      const role = rolesOf(value).find((r) => r.id === id)
      if (role) Object.assign(role, fields)
    })
    const saved = rolesOf(written).find((r) => r.id === id)
    if (saved === undefined) throw this.#notFound(id)
    return saved
  }

  /** Removes a role (already gone on disk counts as done); `EROLE_NOT_FOUND` if unknown here. */
  async remove(id: string): Promise<void> {
    if (!this.snapshot().some((r) => r.id === id)) throw this.#notFound(id)
    await this.#doc.update((value) => {
      value.roles = rolesOf(value).filter((r) => r.id !== id)
    })
  }

  // ---- drafts: unsaved local edits, merged with other windows' changes on save ----

  /** Changes the roles locally (unsaved): `fn` gets a copy to mutate, or returns the new list. */
  editDraft(fn: (roles: Role[]) => Role[] | void): readonly Role[] {
    const next = this.#doc.edit((value) => {
      value.roles = rolesOf(value)
      const out = fn(value.roles)
      if (out !== undefined) value.roles = out
    })
    this.#syncConflict() // a later edit may have removed the clash
    return rolesOf(next)
  }

  get hasDraft(): boolean {
    return this.#doc.hasUnsavedChanges
  }

  /** Saves the draft, merged with what changed on disk; `ECONFLICT` (draft kept, a 'conflict' notice) on a clash. */
  async saveDraft(): Promise<readonly Role[]> {
    return rolesOf(await this.#doc.save())
  }

  /** Drops the draft (and a conflict it had); the roles as on disk. */
  discardDraft(): readonly Role[] {
    const conflict = this.#conflict
    const value = this.#doc.discard()
    if (conflict !== null) {
      this.#conflict = null
      this.#notify({ type: 'conflict-resolved', id: conflict.id, message: 'Your changes were discarded', choice: 'discarded' })
    }
    return rolesOf(value)
  }

  // ---- answering notices ----

  onNotice(listener: (notice: RolesNotice) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Notices still waiting for an answer (for a window opened meanwhile). */
  pendingNotices(): RolesNotice[] {
    return [this.#conflict?.notice, this.#lockWait?.notice].filter((n): n is RolesNotice => n !== undefined)
  }

  /** Answers a 'conflict' notice: keep mine / take theirs / merged (base at the clashes) / a reviewed list. */
  async resolveConflict(noticeId: string, choice: ConflictChoice | Role[]): Promise<readonly Role[]> {
    const conflict = this.#conflict
    if (conflict === null || conflict.id !== noticeId) throw new RolesError('ENOTICE_STALE', `conflict ${noticeId} is no longer current`)
    const value = Array.isArray(choice) ? { ...conflict.event.merged, roles: choice.map(checkRole) } : choice
    this.#conflict = null
    let written: RolesFile
    try {
      written = await conflict.event.resolve(value)
    } catch (error) {
      if (this.#conflict === null && this.#doc.conflict !== null) this.#conflict = conflict // still waiting for an answer
      throw error
    }
    const how = Array.isArray(choice) ? 'value' : choice
    this.#notify({ type: 'conflict-resolved', id: noticeId, message: 'Conflict resolved', choice: how })
    return rolesOf(written)
  }

  /** Answers a 'lock-timeout' notice: try again now. False when that wait is over. */
  retrySave(noticeId: string): boolean {
    if (this.#lockWait?.id !== noticeId) return false
    this.#lockWait.event.retry()
    return true
  }

  /** Answers a 'lock-timeout' notice: give up the waiting writes (their promises reject with `ECANCELED`). */
  cancelSave(noticeId: string): boolean {
    const wait = this.#lockWait
    if (wait?.id !== noticeId) return false
    this.#lockWait = null
    wait.event.cancel()
    this.#notify({ type: 'lock-cleared', id: noticeId, message: 'Save cancelled', outcome: 'cancelled' })
    return true
  }

  /** Saves what is pending and closes the file (not the manager); `EUNSAVED` lists what could not be saved. */
  async close(): Promise<void> {
    try {
      await this.#doc.close()
    } finally {
      this.#doc.removeAllListeners()
      this.#listeners.clear()
    }
  }

  // ---- document events → notices ----

  #onExternalChange = (e: DocumentExternalChangeEvent<RolesFile>): void => {
    // Not reloaded: unsaved edits here; a 'merged' or 'conflict' follows.
    if (!e.reloaded || e.changes.length === 0) return
    this.#notify({ type: 'reloaded', id: this.#nextId('reloaded'), message: 'Roles changed in another window — reloaded', changes: e.changes })
  }

  #onMerged = (e: DocumentMergedEvent<RolesFile>): void => {
    this.#syncConflict()
    this.#notify({ type: 'merged', id: this.#nextId('merged'), message: "Your change and another window's were merged", fromMine: e.fromMine, fromTheirs: e.fromTheirs })
  }

  #onConflict = (e: DocumentConflictEvent<RolesFile>): void => {
    const description = describeConflict(e.conflicts, roleLabel)
    const choice = decide(this.#policy, description)
    const base = { id: this.#nextId('conflict'), conflicts: e.conflicts, description, mine: rolesOf(e.mine), theirs: rolesOf(e.theirs) }
    if (choice !== 'ask') {
      this.#notify({ type: 'conflict', ...base, message: `Conflict settled automatically (${choice})`, decidedBy: choice })
      e.resolve(choice).then(
        () => this.#notify({ type: 'conflict-resolved', id: base.id, message: 'Conflict resolved', choice }),
        (error: unknown) => this.#onError(error as FileLockError),
      )
      return
    }
    const notice: RolesNotice = { type: 'conflict', ...base, message: 'Conflict: keep mine / take theirs / review' }
    this.#conflict = { id: base.id, event: e, notice }
    this.#notify(notice)
  }

  #onLockTimeout = (e: DocumentLockTimeoutEvent): void => {
    // One notice id per wait: each new attempt updates the same toast.
    const id = this.#lockWait?.id ?? this.#nextId('lock')
    const attempts = (this.#lockWait?.attempts ?? 0) + 1
    const notice: RolesNotice = {
      type: 'lock-timeout',
      id,
      message: 'Waiting for another window to finish saving…',
      holder: e.holder?.description ?? null,
      waitedMs: e.waitedMs,
      pending: e.pending,
      retryInMs: e.retryInMs,
      attempts,
    }
    this.#lockWait = { id, event: e, notice, attempts }
    this.#notify(notice)
  }

  #onSaved = (): void => {
    const wait = this.#lockWait
    if (wait === null) return
    this.#lockWait = null
    this.#notify({ type: 'lock-cleared', id: wait.id, message: 'Saved', outcome: 'saved' })
  }

  #onError = (error: FileLockError): void => {
    this.#notify({ type: 'error', id: this.#nextId('error'), message: error.message, code: errorCode(error) ?? null })
  }

  // The document drops a conflict that a later edit undid: so does the UI.
  #syncConflict(): void {
    const conflict = this.#conflict
    if (conflict === null || this.#doc.conflict !== null) return
    this.#conflict = null
    this.#notify({ type: 'conflict-resolved', id: conflict.id, message: 'The conflict went away with your latest edit', choice: 'merged' })
  }

  #notFound(id: string): RolesError {
    return new RolesError('EROLE_NOT_FOUND', `no role with id "${id}"`)
  }

  #nextId(kind: string): string {
    return `${kind}-${++this.#seq}`
  }

  #notify(notice: RolesNotice): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(notice)
      } catch (error) {
        console.error('a RolesRepository notice listener threw', error)
      }
    }
  }
}
