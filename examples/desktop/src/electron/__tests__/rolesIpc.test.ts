// The Electron wiring without Electron: a fake ipcMain and windows, a real
// repository on a temp file. Answers carry error codes; notices reach live windows.
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { NoticeLog, removeDir, tempDir } from '../../data/__tests__/helpers.js'
import { RolesRepository, type RolesNotice } from '../../data/RolesRepository.js'
import { FileLockManager } from '../../data/locking/FileLockManager.js'
import { NOTICE_CHANNEL, registerRolesIpc, type IpcMainLike, type IpcResult, type WebContentsLike } from '../rolesIpc.js'

let dir: string
let manager: FileLockManager
let repo: RolesRepository

beforeEach(async () => {
  dir = tempDir()
  manager = new FileLockManager()
  repo = await RolesRepository.open(manager, path.join(dir, 'roles.json'))
})
afterEach(async () => {
  await repo.close()
  await manager.close()
  removeDir(dir)
})

class FakeIpcMain implements IpcMainLike {
  handlers = new Map<string, (event: unknown, ...args: any[]) => unknown>()
  handle(channel: string, listener: (event: unknown, ...args: any[]) => unknown): void {
    this.handlers.set(channel, listener)
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel)
  }
  invoke(channel: string, ...args: unknown[]): Promise<IpcResult<any>> {
    return Promise.resolve(this.handlers.get(channel)!({ sender: null }, ...args)) as Promise<IpcResult<any>>
  }
}

class FakeWindow implements WebContentsLike {
  received = new NoticeLog()
  constructor(public destroyed = false) {}
  send(channel: string, notice: unknown): void {
    if (this.destroyed) throw new Error('sent to a destroyed window')
    if (channel === NOTICE_CHANNEL) this.received.push(notice as RolesNotice)
  }
  isDestroyed(): boolean {
    return this.destroyed
  }
}

it('answers invokes with { ok, value } or { ok: false, code }, pushes notices to live windows, and unregisters', async () => {
  const ipc = new FakeIpcMain()
  const live = new FakeWindow()
  const closed = new FakeWindow(true)
  const dispose = registerRolesIpc(ipc, repo, () => [live, closed])

  expect(await ipc.invoke('roles:add', { id: 'admin', name: 'Admin', permissions: ['*'] })).toEqual({ ok: true, value: { id: 'admin', name: 'Admin', permissions: ['*'] } })
  expect(await ipc.invoke('roles:add', { id: 'admin', name: 'Again', permissions: [] })).toMatchObject({ ok: false, code: 'EROLE_EXISTS' })
  expect(await ipc.invoke('roles:list')).toEqual({ ok: true, value: [{ id: 'admin', name: 'Admin', permissions: ['*'] }] })
  expect(await ipc.invoke('roles:retry-save', 'lock-99')).toEqual({ ok: true, value: false })

  // A text editor rewrites the file: every live window hears about it.
  fs.writeFileSync(path.join(dir, 'roles.json'), JSON.stringify({ roles: [{ id: 'admin', name: 'Root', permissions: ['*'] }] }))
  const notice = await live.received.next('reloaded')
  expect(notice.changes).toEqual([{ path: '$.roles[id="admin"].name', kind: 'changed', before: 'Admin', after: 'Root' }])

  dispose()
  expect(ipc.handlers.size).toBe(0)
})
