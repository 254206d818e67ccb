// Compiled by `npm test` (tsc --noEmit --strict): the public types must accept
// real usage and reject misuse. Not executed.
import { FileLockManager, FileLockError, diffJson, mergeJson, type HolderInfo, type Lock } from '../../index'

async function usage(): Promise<number> {
  const manager = new FileLockManager({ timeoutMs: 5000, retries: 3, leaseMs: 30_000, strategy: 'auto' })
  manager.on('waiting', (e) => console.log(e.message, e.attempt, e.holder?.description))
  manager.once('timeout', (e) => console.log(e.waitedMs, e.attempts))
  manager.on('lease-expired', (e) => console.log(e.heldMs, e.fencingToken))
  manager.on('released', (e) => console.log(e.reason))

  const controller = new AbortController()
  const lock: Lock = await manager.acquireLock('/data/roles.json', { exclusive: false, signal: controller.signal })
  const token: number = lock.fencingToken
  lock.signal.addEventListener('abort', () => {})
  await lock.release()

  const count = await manager.withLock('/data/roles.json', async (held) => held.fencingToken + 1, { timeoutMs: 100 })
  const holder: HolderInfo | null = await manager.inspect('/data/roles.json')
  if (holder !== null) console.log(holder.sameProcess, holder.description, holder.pid)

  try {
    await manager.acquireLock('/data/roles.json', { retries: 1 })
  } catch (error) {
    if (error instanceof FileLockError && error.code === 'ELOCKTIMEOUT') console.log(error.waitedMs, error.holder)
  }

  // @ts-expect-error unknown event names are rejected
  manager.on('no-such-event', () => {})
  // @ts-expect-error exclusive is a boolean
  await manager.acquireLock('/data/roles.json', { exclusive: 'yes' })
  // @ts-expect-error unknown strategy
  new FileLockManager({ strategy: 'mutex' })

  await manager.close()
  return token + count
}

void usage

async function documentUsage(): Promise<number> {
  const manager = new FileLockManager()
  const doc = await manager.openDocument<{ counter: number }>('/data/roles.json', { defaultValue: { counter: 0 } })
  doc.on('lock-timeout', (e) => e.retry())
  const next = await doc.update((v) => ({ counter: v.counter + 1 }))
  // @ts-expect-error the value's shape is checked
  await doc.set({ count: 1 })
  return next.counter + doc.get().counter
}

void documentUsage

// Documents, watching and merging.
interface Roles {
  roles: { id: string; name: string }[]
}

async function documents(manager: FileLockManager): Promise<void> {
  const doc = await manager.openDocument<Roles>('/data/roles.json', { defaultValue: { roles: [] }, arrayKey: 'id', onConflict: 'ask', saveDelayMs: 500 })
  doc.edit((value) => {
    value.roles.push({ id: 'a', name: 'Admin' })
  })
  const saved: Roles = await doc.save()
  doc.on('external-change', (e) => console.log(e.changes.map((c) => `${c.kind} ${c.path}`), e.newValue?.roles.length))
  doc.on('merged', (e) => console.log(e.fromMine.length, e.fromTheirs.length, e.merged.roles))
  doc.on('conflict', async (e) => {
    console.log(e.conflicts.map((c) => `${c.kind} at ${c.path}`))
    const kept: Roles = await e.resolve('mine')
    await e.resolve({ roles: [] })
    console.log(kept)
  })
  if (doc.hasUnsavedChanges) doc.discard()
  console.log(saved, doc.readOnly?.code, doc.conflict?.conflicts.length)
  // @ts-expect-error onConflict takes a known policy
  await manager.openDocument('/data/roles.json', { onConflict: 'sometimes' })

  const watcher = manager.watch('/data/roles.json', (change) => console.log(change.kind, change.external), { debounceMs: 20 })
  console.log(watcher.mode, watcher.network)
  await watcher.close()
  // @ts-expect-error kinds are a closed set
  manager.watch('/data/roles.json', (change) => change.kind === 'renamed')

  const { merged, conflicts } = mergeJson<Roles>({ roles: [] }, { roles: [{ id: 'a', name: 'A' }] }, { roles: [] }, { arrayKey: 'id', favor: 'mine' })
  console.log(merged.roles, conflicts, diffJson({}, { a: 1 }))
  manager.on('conflict', (e) => console.log(e.filePath))
}
