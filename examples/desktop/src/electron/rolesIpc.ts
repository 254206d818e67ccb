// rolesIpc: the roles API of the main process, offered to renderers over IPC.
// Renderers `invoke('roles:<name>', …)` and get `{ ok: true, value }` or
// `{ ok: false, code, message }` (Electron keeps only the message of a thrown
// error, so codes travel in the answer); notices are pushed on 'roles:notice'.
// Takes ipcMain and the windows as parameters, so it is testable without Electron.
import type { Role, RolePatch, RolesNotice, RolesRepository } from '../data/RolesRepository.js'
import type { ConflictChoice } from '../data/locking/ConflictResolver.js'
import { errorCode } from '../data/locking/FileLockManager.js'

export const NOTICE_CHANNEL = 'roles:notice'

export type IpcResult<T> = { ok: true; value: T } | { ok: false; code: string | null; message: string }

/** What of Electron's ipcMain this needs. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: unknown, ...args: any[]) => unknown): void
  removeHandler(channel: string): void
}

/** What of a window's webContents this needs. */
export interface WebContentsLike {
  send(channel: string, ...args: unknown[]): void
  isDestroyed(): boolean
}

/** Registers the handlers and forwards notices to `windows()`; returns a function undoing both. */
export function registerRolesIpc(ipcMain: IpcMainLike, repo: RolesRepository, windows: () => WebContentsLike[]): () => void {
  const handlers: Record<string, (...args: any[]) => unknown> = {
    list: () => repo.list(),
    get: (id: string) => repo.get(id),
    add: (role: Role) => repo.add(role),
    update: (id: string, patch: RolePatch) => repo.update(id, patch),
    remove: (id: string) => repo.remove(id),
    // A draft crosses IPC as the whole edited list (functions cannot).
    'set-draft': (roles: Role[]) => repo.editDraft(() => roles),
    'save-draft': () => repo.saveDraft(),
    'discard-draft': () => repo.discardDraft(),
    'pending-notices': () => repo.pendingNotices(),
    'resolve-conflict': (id: string, choice: ConflictChoice | Role[]) => repo.resolveConflict(id, choice),
    'retry-save': (id: string) => repo.retrySave(id),
    'cancel-save': (id: string) => repo.cancelSave(id),
  }
  for (const [name, handler] of Object.entries(handlers)) {
    ipcMain.handle(`roles:${name}`, async (_event, ...args): Promise<IpcResult<unknown>> => {
      try {
        return { ok: true, value: await handler(...args) }
      } catch (error) {
        return { ok: false, code: errorCode(error) ?? null, message: error instanceof Error ? error.message : String(error) }
      }
    })
  }
  const stopNotices = repo.onNotice((notice: RolesNotice) => {
    for (const target of windows()) if (!target.isDestroyed()) target.send(NOTICE_CHANNEL, notice)
  })
  return () => {
    stopNotices()
    for (const name of Object.keys(handlers)) ipcMain.removeHandler(`roles:${name}`)
  }
}
