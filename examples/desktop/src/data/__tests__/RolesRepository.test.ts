// RolesRepository through the built native package: CRUD on disk, and two app
// instances in two real processes (the child runs the same repository code,
// compiled) editing different roles, the same role, deleting vs editing, and a
// lock held by the other instance (lock-timeout → retry / cancel).
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { RolesRepository, type Role, type RolesFile, type RolesRepositoryOptions } from '../RolesRepository.js'
import { keepTheirDeletions } from '../locking/ConflictResolver.js'
import { FileLockManager, errorCode, type FileLockManagerConfig } from '../locking/FileLockManager.js'
import { AppInstance, NoticeLog, built, dir, file, readJson, rejection, useExample } from './helpers.js'

const SEED: Role[] = [
  { id: 'admin', name: 'Admin', permissions: ['*'] },
  { id: 'editor', name: 'Editor', permissions: ['read', 'write'] },
  { id: 'viewer', name: 'Viewer', permissions: ['read'] },
]

let manager: FileLockManager | null = null
let repo: RolesRepository | null = null
let notices: NoticeLog

useExample(`${JSON.stringify({ roles: SEED }, null, 2)}\n`, async () => {
  await repo?.close().catch(() => {})
  await manager?.close()
  manager = null
  repo = null
})

async function openHere(config: FileLockManagerConfig = {}, options: RolesRepositoryOptions = {}): Promise<RolesRepository> {
  manager = new FileLockManager(config)
  repo = await RolesRepository.open(manager, file, options)
  notices = new NoticeLog()
  repo.onNotice(notices.push)
  return repo
}

async function otherInstance(managerOptions: Record<string, unknown> = {}): Promise<AppInstance> {
  const instance = await AppInstance.start(built)
  await instance.call('open', { file, manager: managerOptions })
  return instance
}

const onDisk = (): Role[] => readJson<RolesFile>(file).roles
const roleOnDisk = (id: string): Role | undefined => onDisk().find((r) => r.id === id)

describe('RolesRepository in one process', () => {
  it('creates a missing roles.json as { roles: [] } and changes it durably', async () => {
    fs.rmSync(file)
    const roles = await openHere()
    expect(readJson(file)).toEqual({ roles: [] })

    const added = await roles.add({ id: 'admin', name: 'Admin', permissions: ['*'] })
    expect(added).toEqual({ id: 'admin', name: 'Admin', permissions: ['*'] })
    expect(onDisk()).toEqual([added])

    await roles.add({ id: 'viewer', name: 'Viewer', permissions: ['read'], description: 'read only' })
    expect(await roles.update('viewer', { permissions: ['read', 'export'] })).toMatchObject({ id: 'viewer', permissions: ['read', 'export'], description: 'read only' })
    expect(roleOnDisk('viewer')?.permissions).toEqual(['read', 'export'])
    expect((await roles.get('viewer'))?.name).toBe('Viewer')

    await roles.remove('admin')
    expect(onDisk().map((r) => r.id)).toEqual(['viewer'])
    expect((await roles.list()).map((r) => r.id)).toEqual(['viewer'])
  })

  it('rejects duplicates, unknown ids and malformed roles with coded errors, leaving the file as it was', async () => {
    const roles = await openHere()
    const before = fs.readFileSync(file, 'utf8')
    expect(errorCode(await rejection(roles.add({ id: 'admin', name: 'Another admin', permissions: [] })))).toBe('EROLE_EXISTS')
    expect(errorCode(await rejection(roles.update('ghost', { name: 'x' })))).toBe('EROLE_NOT_FOUND')
    expect(errorCode(await rejection(roles.remove('ghost')))).toBe('EROLE_NOT_FOUND')
    expect(errorCode(await rejection(roles.add({ id: '', name: 'x', permissions: [] })))).toBe('EROLE_INVALID')
    expect(errorCode(await rejection(roles.add({ id: 'x', name: 'x', permissions: 'all' } as unknown as Role)))).toBe('EROLE_INVALID')
    expect(errorCode(await rejection(roles.update('admin', { permissions: [1] } as unknown as Role)))).toBe('EROLE_INVALID')
    expect(fs.readFileSync(file, 'utf8')).toBe(before)
  })

  it('writes calls made together in one go, in call order', async () => {
    const roles = await openHere()
    const ids = Array.from({ length: 10 }, (_, i) => `role-${i}`)
    await Promise.all([...ids.map((id) => roles.add({ id, name: id, permissions: [] })), roles.update('role-3', { name: 'third' })])
    expect(onDisk().map((r) => r.id)).toEqual([...SEED.map((r) => r.id), ...ids])
    expect(roleOnDisk('role-3')?.name).toBe('third')
  })

  it('keeps a draft unsaved until saveDraft, and discardDraft drops it', async () => {
    const roles = await openHere()
    roles.editDraft((list) => {
      list.find((r) => r.id === 'viewer')!.name = 'Reader'
    })
    expect(roles.hasDraft).toBe(true)
    expect(roles.snapshot().find((r) => r.id === 'viewer')?.name).toBe('Reader')
    expect(roleOnDisk('viewer')?.name).toBe('Viewer')
    await roles.saveDraft()
    expect(roles.hasDraft).toBe(false)
    expect(roleOnDisk('viewer')?.name).toBe('Reader')

    roles.editDraft((list) => list.filter((r) => r.id !== 'admin'))
    expect(roles.discardDraft().map((r) => r.id)).toEqual(['admin', 'editor', 'viewer'])
    expect(roles.hasDraft).toBe(false)
  })
})

describe('two app instances (real processes)', () => {
  it('edits of different roles at the same time both land', async () => {
    const here = await openHere()
    const other = await otherInstance()
    await Promise.all([here.update('admin', { name: 'Administrators' }), other.call('update', { id: 'editor', patch: { name: 'Editors' } })])
    expect(roleOnDisk('admin')?.name).toBe('Administrators')
    expect(roleOnDisk('editor')?.name).toBe('Editors')
  })

  it('a draft here and a saved change there merge; the other instance is told it reloaded', async () => {
    const here = await openHere()
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'admin')!.permissions.push('audit')
    })
    await other.call('update', { id: 'viewer', patch: { permissions: ['read', 'export'] } })

    await here.saveDraft() // merged with the change on disk, whether the watch saw it first or the save did
    const merged = await notices.next('merged')
    expect(merged.message).toBe("Your change and another window's were merged")
    expect(merged.fromTheirs.map((c) => c.path)).toContain('$.roles[id="viewer"].permissions')
    expect(roleOnDisk('admin')?.permissions).toEqual(['*', 'audit'])
    expect(roleOnDisk('viewer')?.permissions).toEqual(['read', 'export'])

    const reloaded = await other.notices.next('reloaded', (n) => n.changes.some((c) => c.path === '$.roles[id="admin"].permissions'))
    expect(reloaded.message).toBe('Roles changed in another window — reloaded')
    expect((await other.call<Role[]>('list')).find((r) => r.id === 'admin')?.permissions).toEqual(['*', 'audit'])
  })

  it('the same role changed in both: a conflict with both versions; "keep mine" wins on disk', async () => {
    const here = await openHere()
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'admin')!.name = 'Administrator'
    })
    await other.call('update', { id: 'admin', patch: { name: 'Admins' } })

    expect(errorCode(await rejection(here.saveDraft()))).toBe('ECONFLICT')
    const conflict = await notices.next('conflict')
    expect(conflict.message).toBe('Conflict: keep mine / take theirs / review')
    expect(conflict.conflicts).toEqual([{ path: '$.roles[id="admin"].name', kind: 'both-modified', base: 'Admin', mine: 'Administrator', theirs: 'Admins' }])
    expect(conflict.description.items[0]).toMatchObject({ label: 'Role "admin" › name', text: 'Role "admin" › name: you changed it to "Administrator", another window to "Admins"' })
    expect(conflict.mine.find((r) => r.id === 'admin')?.name).toBe('Administrator')
    expect(conflict.theirs.find((r) => r.id === 'admin')?.name).toBe('Admins')
    expect(roleOnDisk('admin')?.name).toBe('Admins') // nothing decided silently
    expect(here.pendingNotices().map((n) => n.id)).toEqual([conflict.id])
    // The notice can cross IPC as is.
    expect(structuredClone(conflict)).toEqual(conflict)

    const resolved = await here.resolveConflict(conflict.id, 'mine')
    expect(resolved.find((r) => r.id === 'admin')?.name).toBe('Administrator')
    expect(roleOnDisk('admin')?.name).toBe('Administrator')
    expect((await notices.next('conflict-resolved')).choice).toBe('mine')
    expect(here.hasDraft).toBe(false)
    // The version on disk before the resolution was backed up.
    const backups = fs.readdirSync(path.join(dir, '.roles.json.backups')).filter((n) => n.endsWith('.json'))
    expect(backups.some((n) => fs.readFileSync(path.join(dir, '.roles.json.backups', n), 'utf8').includes('"Admins"'))).toBe(true)
    // The other instance reloads our resolution.
    await other.notices.next('reloaded', (n) => n.changes.some((c) => c.path === '$.roles[id="admin"].name' && c.after === 'Administrator'))
    expect(errorCode(await rejection(here.resolveConflict(conflict.id, 'theirs')))).toBe('ENOTICE_STALE')
  })

  it('"take theirs": their value wins the clash, the rest of my draft still merges', async () => {
    const here = await openHere()
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'admin')!.name = 'Administrator'
      list.find((r) => r.id === 'viewer')!.permissions = ['read', 'print']
    })
    await other.call('update', { id: 'admin', patch: { name: 'Admins' } })
    await rejection(here.saveDraft())
    const conflict = await notices.next('conflict')
    expect(conflict.conflicts.map((c) => c.path)).toEqual(['$.roles[id="admin"].name'])

    await here.resolveConflict(conflict.id, 'theirs')
    expect(roleOnDisk('admin')?.name).toBe('Admins')
    expect(roleOnDisk('viewer')?.permissions).toEqual(['read', 'print'])
    expect(here.hasDraft).toBe(false)
  })

  it('undoing the clashing edit ends the conflict; the rest of the draft then saves', async () => {
    const here = await openHere()
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'admin')!.name = 'Administrator'
      list.find((r) => r.id === 'viewer')!.name = 'Readers'
    })
    await other.call('update', { id: 'admin', patch: { name: 'Admins' } })
    await rejection(here.saveDraft())
    const conflict = await notices.next('conflict')

    here.editDraft((list) => {
      list.find((r) => r.id === 'admin')!.name = 'Admin' // back to what it was
    })
    expect(await notices.next('conflict-resolved')).toMatchObject({ id: conflict.id, choice: 'merged' })
    expect(here.pendingNotices()).toEqual([])
    await here.saveDraft()
    expect(roleOnDisk('admin')?.name).toBe('Admins')
    expect(roleOnDisk('viewer')?.name).toBe('Readers')
  })

  it('a role deleted there while edited here is a delete-modify conflict; "keep mine" restores it edited', async () => {
    const here = await openHere()
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'editor')!.permissions.push('publish')
    })
    await other.call('remove', { id: 'editor' })
    expect(roleOnDisk('editor')).toBeUndefined()

    expect(errorCode(await rejection(here.saveDraft()))).toBe('ECONFLICT')
    const conflict = await notices.next('conflict')
    expect(conflict.conflicts).toHaveLength(1)
    expect(conflict.conflicts[0]).toMatchObject({ path: '$.roles[id="editor"]', kind: 'delete-modify', deletedBy: 'theirs' })
    expect(conflict.description.items[0]?.text).toBe('Role "editor": deleted in another window while you changed it')
    expect(conflict.theirs.map((r) => r.id)).toEqual(['admin', 'viewer'])

    await here.resolveConflict(conflict.id, 'mine')
    expect(roleOnDisk('editor')).toEqual({ id: 'editor', name: 'Editor', permissions: ['read', 'write', 'publish'] })
  })

  it('a conflict policy (keepTheirDeletions) settles a deletion there without asking', async () => {
    const here = await openHere({}, { conflictPolicy: keepTheirDeletions })
    const other = await otherInstance()
    here.editDraft((list) => {
      list.find((r) => r.id === 'editor')!.name = 'Writers'
      list.find((r) => r.id === 'viewer')!.name = 'Readers'
    })
    await other.call('remove', { id: 'editor' })
    await here.saveDraft().catch(() => {}) // ECONFLICT if the save met it first; the policy resolves it anyway
    const conflict = await notices.next('conflict')
    expect(conflict.decidedBy).toBe('theirs')
    await notices.next('conflict-resolved', (n) => n.id === conflict.id)
    expect(roleOnDisk('editor')).toBeUndefined()
    expect(roleOnDisk('viewer')?.name).toBe('Readers')
  })

  it('while another instance holds the lock: a lock-timeout notice, and retry lands the write once it is released', async () => {
    const here = await openHere({ timeoutMs: 300, retries: 1 })
    const other = await otherInstance()
    await other.call('hold', { file })

    const adding = here.add({ id: 'auditor', name: 'Auditor', permissions: ['read', 'audit'] })
    const waiting = await notices.next('lock-timeout')
    expect(waiting.message).toBe('Waiting for another window to finish saving…')
    expect(waiting.holder).toMatch(/^another process on this machine since /)
    expect(waiting.pending).toBe(1)
    expect(here.snapshot().some((r) => r.id === 'auditor')).toBe(true) // shown as pending
    expect(roleOnDisk('auditor')).toBeUndefined()
    expect(here.pendingNotices().map((n) => n.type)).toEqual(['lock-timeout'])

    await other.call('release')
    expect(here.retrySave(waiting.id)).toBe(true)
    expect(await adding).toEqual({ id: 'auditor', name: 'Auditor', permissions: ['read', 'audit'] })
    expect(roleOnDisk('auditor')?.name).toBe('Auditor')
    const cleared = await notices.next('lock-cleared')
    expect(cleared).toMatchObject({ id: waiting.id, outcome: 'saved' })
    expect(here.retrySave(waiting.id)).toBe(false)
  })

  it('cancel drops the waiting write: it rejects with ECANCELED and never reaches the file', async () => {
    const here = await openHere({ timeoutMs: 300, retries: 1 })
    const other = await otherInstance()
    await other.call('hold', { file })

    const adding = here.add({ id: 'temp', name: 'Temp', permissions: [] })
    const outcome = adding.then(
      () => 'saved',
      (error: unknown) => errorCode(error),
    )
    const waiting = await notices.next('lock-timeout')
    expect(here.cancelSave(waiting.id)).toBe(true)
    expect(await outcome).toBe('ECANCELED')
    expect(await notices.next('lock-cleared')).toMatchObject({ id: waiting.id, outcome: 'cancelled' })

    await other.call('release')
    await here.add({ id: 'kept', name: 'Kept', permissions: [] })
    expect(onDisk().map((r) => r.id)).toEqual(['admin', 'editor', 'viewer', 'kept'])
  })
})
