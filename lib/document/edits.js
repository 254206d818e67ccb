'use strict'
// Unsaved local edits, kept as (base, mine), and the conflicts they meet.
//
// Invariants:
// - Whenever the file is seen to change (watch event, read, or the re-read
//   before a write) the edits are rebased by a three-way merge onto the new
//   version, off the JS thread; edits made during a merge are merged again.
// - A conflict is never resolved silently: an event with resolve(), or the
//   `onConflict` policy; the file is backed up and both versions kept until
//   it is resolved.
// - A write that failed on disk (full, read-only) is kept as edits marked
//   `kept`, saved again with backoff until the fault clears; it yields to any
//   newer change it clashes with.

const fsp = require('node:fs/promises')
const { FileLockError } = require('../errors.js')
const { ExactNumbers, putBigIntsBack } = require('../exact-numbers.js')
const { breathe, markClean, mergeTextOf, deepFreeze, documentValue, deepEqual } = require('../json-values.js')
const { Retry } = require('../retry.js')
const { coded } = require('./files.js')
const { applyUpdate } = require('./update-fn.js')
const { outOfRange } = require('../args.js')
const { RETRY_FIRST_MS } = require('./write-queue.js')

const CONFLICT_CHOICES = ['mine', 'theirs', 'merged']
// A write failing on disk this way may succeed later (space freed, remounted
// read-write, permission fixed): what it carried is kept as unsaved edits.
const KEEPABLE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EBUSY', 'EAGAIN', 'ENOLCK'])
const SAVE_RETRY_MAX_MS = 30000

let merge = null
function mergeModule() {
  merge ??= require('../merge.js')
  return merge
}

class UnsavedEdits {
  #doc
  current = null // unsaved local edits: { base, mine, kept? }
  conflict = null // the unresolved conflict: { id, base, mine, theirs, merged, conflicts, preserved }
  #conflictSeq = 0
  // Saves a kept failed write again; pending retries do not keep Node alive:
  // close() saves what is left (or reports it).
  #saveRetry = new Retry({ firstMs: RETRY_FIRST_MS, maxMs: SAVE_RETRY_MAX_MS, unref: true })

  constructor(doc) {
    this.#doc = doc
  }

  // The three-way merge of document values, off the JS thread; `merged` frozen.
  // BigInts (only unsaved edits can hold them: what is read gives numbers) go
  // through it as their digits and come back where the merge kept them.
  async merge(base, mine, theirs, favor) {
    const big = this.#doc.disk.big
    const arrayKey = this.#doc.options.arrayKey
    const sides = [await mergeTextOf(base, 'base', big), await mergeTextOf(mine, 'mine', big), await mergeTextOf(theirs, 'theirs', big)]
    // The merged value shares with theirs (frozen) what the merge kept of it.
    const result = await mergeModule().mergeTexts(...sides.map((side) => side.text), { arrayKey, favor, breathe: big ? breathe : undefined, theirsValue: theirs })
    const withBigInts = sides.some((side) => side.bigints !== null)
    for (const [i, value] of [base, mine].entries()) {
      if (sides[i].bigints !== null) putBigIntsBack(result.merged, value, sides[i].bigints, arrayKey)
    }
    deepFreeze(result.merged)
    // A value holding BigInts is not what JSON.parse gives: not clean.
    if (!withBigInts) markClean(result.merged)
    return result
  }

  // What changed from `before` to `after` by JSON path; [] when it cannot be
  // told (the diff threw): a report, never a failure.
  async diff(before, after) {
    try {
      const big = this.#doc.disk.big
      const [from, to] = [await mergeTextOf(before, 'before', big), await mergeTextOf(after, 'after', big)]
      return await mergeModule().diffTexts(from.text, to.text, this.#doc.options.arrayKey, big ? breathe : undefined)
    } catch {
      return []
    }
  }

  // A merge of unsaved edits that threw (mergeJson refused a value, or failed
  // unexpectedly), as a coded error (the merge's code, else EINTERNAL). The
  // edits are kept, unsaved: save() tries again, discard() drops them.
  mergeFailure(error) {
    const code = typeof error?.code === 'string' ? error.code : 'EINTERNAL'
    return new FileLockError(code, `the unsaved edits of ${this.#doc.filePath} could not be merged with the file (${error?.message ?? String(error)}); they are kept, unsaved`, { filePath: this.#doc.filePath, cause: error })
  }

  /** edit(): `next` becomes the edits (on top of a kept failed write, it makes it the user's own). */
  edited(next) {
    this.current = { base: this.current?.base ?? this.#doc.disk.value, mine: next }
    this.#doc.disk.prepareSpare()
    if (this.conflict === null) return
    try {
      this.#reconsiderConflict()
    } catch (error) {
      // The conflict stays as it was; the edit is kept.
      this.#doc.emit('error', this.mergeFailure(error))
    }
  }

  /** discard(): drops the edits, a retry of a kept write, and an unresolved conflict. */
  discard() {
    this.#saveRetry.cancel()
    this.current = null
    if (this.conflict !== null) {
      this.#doc.audit('conflict-resolved', 'theirs', 'the unsaved edits were discarded')
      this.#removePreserved(this.conflict)
      this.conflict = null
    }
  }

  /** close(): no kept write is retried any more. */
  close() {
    this.#saveRetry.cancel()
  }

  // Unsaved edits meet a new version of the file: merge them onto it. The
  // merge runs off the JS thread; edits made meanwhile are merged again.
  async rebase(theirs) {
    const doc = this.#doc
    for (;;) {
      const edits = this.current
      // Saved, discarded, in conflict, or a newer version arrived (its own take rebases).
      if (edits === null || this.conflict !== null || doc.disk.value !== theirs) return
      const { base, mine, kept } = edits
      let result
      try {
        // A kept failed write is older than the change that just arrived: it yields.
        result = await this.merge(base, mine, theirs, kept ? 'theirs' : undefined)
      } catch (error) {
        // The new version is taken; the edits stay as they were (save() merges
        // them again, or rejects with this code).
        if (this.current === edits) doc.emit('error', this.mergeFailure(error))
        return
      }
      if (this.current !== edits) continue
      if (this.conflict !== null || doc.disk.value !== theirs) return
      if (result.conflicts.length > 0 && !kept) {
        this.#raiseConflict(base, mine, theirs, result)
        return
      }
      if (kept && deepEqual(result.merged, theirs)) {
        this.current = null
        return
      }
      this.current = { base: theirs, mine: result.merged, kept }
      doc.disk.prepareSpare()
      await this.#announceMerge(base, mine, theirs, result.merged)
      return
    }
  }

  // An 'edits' op of a write batch: the edits merged into `value` (the file as
  // it is now, plus the ops of this batch before this one).
  async mergeInto(value, op) {
    const doc = this.#doc
    if (this.conflict !== null) throw this.conflictError(this.conflict)
    const edits = this.current
    if (edits === null) return value // discarded meanwhile
    if (deepEqual(edits.base, value)) {
      op.savedEdits = edits
      return edits.mine
    }
    // A merge that throws rejects this save() with a coded error; the edits
    // are kept (op.savedEdits unset) and the rest of the batch is written.
    const merge = async (favor) => {
      try {
        return await this.merge(edits.base, edits.mine, value, favor)
      } catch (error) {
        op.savedEdits = undefined
        throw this.mergeFailure(error)
      }
    }
    const result = await merge(undefined)
    op.savedEdits = edits
    if (result.conflicts.length === 0) {
      await this.#announceMerge(edits.base, edits.mine, value, result.merged)
      return result.merged
    }
    const policy = doc.options.onConflict
    if (policy === 'ask') {
      op.savedEdits = undefined
      this.#raiseConflict(edits.base, edits.mine, value, result)
      throw this.conflictError(this.conflict)
    }
    // The policy decides, in this very write (the file is locked): keep the
    // file as it was and both versions first, as a prompted resolution would.
    const current = await doc.disk.readText()
    if (current !== null) await doc.backups.save(current, 'json')
    await this.#preserveBoth(edits.mine, value).catch(() => null)
    const resolved = policy === 'merged' ? result.merged : (await merge(policy)).merged
    doc.audit('conflict', 'pending', result.conflicts.map((c) => `${c.kind} at ${c.path}`).join('; '))
    doc.audit('conflict-resolved', policy, `by the onConflict policy: ${result.conflicts.map((c) => c.path).join(', ')}`)
    doc.emit('conflict', { filePath: doc.filePath, base: edits.base, mine: edits.mine, theirs: value, merged: result.merged, conflicts: result.conflicts, policy, resolve: () => Promise.resolve(resolved) })
    return resolved
  }

  async #announceMerge(base, mine, theirs, merged) {
    const [fromMine, fromTheirs] = await Promise.all([this.diff(base, mine), this.diff(base, theirs)])
    this.#doc.audit('merged', 'applied', `${fromMine.length} local change(s) merged with ${fromTheirs.length} from the file`)
    this.#doc.emit('merged', { filePath: this.#doc.filePath, base, mine, theirs, merged, fromMine, fromTheirs })
  }

  // After a write: edits it saved are done; edits still unsaved (made during the
  // write, or not part of it) are rebased onto what was written, quietly.
  async afterWrite(batch, written) {
    const saved = batch.find((op) => op.savedEdits !== undefined && !op.error)?.savedEdits
    for (;;) {
      const edits = this.current
      if (saved !== undefined && edits === saved) {
        this.current = null
        return
      }
      if (edits === null || this.conflict !== null || this.#doc.disk.value !== written || deepEqual(edits.base, written)) return
      const base = saved === undefined ? edits.base : saved.mine
      const kept = edits.kept === true
      const result = await this.merge(base, edits.mine, written, kept ? 'theirs' : undefined)
      if (this.current !== edits) continue // edited again during the merge
      if (this.conflict !== null || this.#doc.disk.value !== written) return
      if (kept || result.conflicts.length === 0) {
        this.current = deepEqual(result.merged, written) ? null : { base: written, mine: result.merged, kept }
        this.#doc.disk.prepareSpare()
      } else {
        this.#raiseConflict(base, edits.mine, written, result)
      }
      return
    }
  }

  // A write failed on disk (full, read-only, I/O error): its callers are told,
  // but what it carried stays in the document as unsaved edits (`error.kept`)
  // and is saved again with backoff until the fault clears (or discard()).
  keepFailedWrite(error, batch, attempted) {
    const doc = this.#doc
    if (!KEEPABLE.has(error.code) || doc.closed || this.conflict !== null || doc.readOnly !== null) return
    const carriedEdits = batch.some((op) => op.kind === 'edits')
    if (this.current !== null && !carriedEdits) return // their own edits; this write's value would hide them
    if (attempted === undefined) {
      // It failed before the batch was applied (taking the lock wrote to the
      // same failing disk): keep what the caller sees, the batch applied to it.
      try {
        attempted = this.current === null ? doc.disk.value : this.current.mine
        for (const op of batch) {
          if (op.kind === 'set') attempted = op.value
          else if (op.kind === 'update') attempted = applyUpdate(op.fn, attempted, false)
        }
      } catch {
        return
      }
    }
    // `kept`: these edits are a write that failed, not the user's own; a later
    // write that clashes with them wins (it is newer).
    this.current = { base: doc.disk.value, mine: deepFreeze(attempted), kept: true }
    error.kept = true
    this.#saveRetry.later(() => {
      if (doc.closed || this.current === null) return
      doc.save().then(
        () => this.#saveRetry.reset(),
        (failure) => {
          // A kept write scheduled the next try itself; a conflict has its own event.
          if (!failure.kept && failure.code !== 'ECONFLICT') doc.emit('error', failure)
        },
      )
    })
  }

  // As the document would write them (BigInts of unsaved edits as their digits).
  async #preserveBoth(mine, theirs) {
    const text = (value) => `${new ExactNumbers().stringify(value, this.#doc.options.arrayKey)}\n`
    const { backups } = this.#doc
    const [minePath, theirsPath] = await Promise.all([backups.save(text(mine), 'conflict-mine'), backups.save(text(theirs), 'conflict-theirs')])
    return { mine: minePath, theirs: theirsPath }
  }

  #raiseConflict(base, mine, theirs, result) {
    const doc = this.#doc
    if (this.conflict !== null) this.#removePreserved(this.conflict)
    const conflict = { id: ++this.#conflictSeq, base, mine, theirs, merged: result.merged, conflicts: result.conflicts }
    // Both versions are kept beside the backups until the conflict is resolved.
    conflict.preserved = this.#preserveBoth(mine, theirs).then(
      (files) => (conflict.files = files),
      (error) => doc.audit('backup-failed', 'other', `could not keep both versions of a conflict: ${error.message}`),
    )
    this.conflict = conflict
    doc.audit('conflict', 'pending', conflict.conflicts.map((c) => `${c.kind} at ${c.path}`).join('; '))
    const policy = doc.options.onConflict
    const payload = this.payload(conflict)
    if (policy !== 'ask') {
      payload.policy = policy
      doc.emit('conflict', payload)
      this.#resolve(conflict.id, policy).catch((error) => doc.emit('error', error))
    } else {
      doc.emit('conflict', payload)
    }
  }

  // The user edited again while a conflict waits: the conflict is about the
  // newest edits now (and may be gone, e.g. they undid the clashing change).
  #reconsiderConflict() {
    const conflict = this.conflict
    const mine = this.current.mine
    const result = mergeModule().mergeJson(conflict.base, mine, conflict.theirs, { arrayKey: this.#doc.options.arrayKey })
    if (result.conflicts.length > 0) {
      Object.assign(conflict, { mine, merged: result.merged, conflicts: result.conflicts })
      return
    }
    this.conflict = null
    this.#removePreserved(conflict)
    this.current = { base: conflict.theirs, mine: result.merged }
    this.#doc.audit('conflict-resolved', 'merged', 'a later edit removed the clash')
    this.#announceMerge(conflict.base, mine, conflict.theirs, result.merged)
  }

  /** The conflict as a 'conflict' event (and the `conflict` getter) gives it. */
  payload(conflict) {
    return {
      filePath: this.#doc.filePath,
      base: conflict.base,
      mine: conflict.mine,
      theirs: conflict.theirs,
      merged: conflict.merged,
      conflicts: conflict.conflicts,
      resolve: (choice) => this.#resolve(conflict.id, choice),
    }
  }

  conflictError(conflict) {
    const { filePath } = this.#doc
    return coded('ECONFLICT', `unsaved edits of ${filePath} conflict with the file at ${conflict.conflicts.map((c) => c.path).join(', ')}; resolve the conflict first`, {
      filePath,
      conflicts: conflict.conflicts,
    })
  }

  // 'mine' / 'theirs': that side wins every conflict, the clean part of the merge
  // is kept; 'merged': the merge as is (base values where they conflict); or a value.
  async #resolve(id, choice) {
    const doc = this.#doc
    const conflict = this.conflict
    if (conflict === null || conflict.id !== id) {
      throw coded('ECONFLICT', `this conflict of ${doc.filePath} is no longer current (resolved, discarded, or superseded by a newer one)`, { filePath: doc.filePath })
    }
    const custom = !CONFLICT_CHOICES.includes(choice)
    if (custom && (choice === null || typeof choice !== 'object')) {
      throw outOfRange('choice', "'mine', 'theirs', 'merged' or an object/array value", choice)
    }
    // A value of one's own is checked as set() checks one (ERR_INVALID_ARG_VALUE).
    let value = custom ? documentValue(choice, 'the chosen value') : choice
    if (!custom) {
      value = choice === 'merged' ? conflict.merged : (await this.merge(conflict.base, conflict.mine, conflict.theirs, choice)).merged
    }
    await conflict.preserved
    // The file as it is before the resolution changes it.
    const current = await doc.disk.readText()
    if (current !== null) await doc.backups.save(current, 'json')
    this.conflict = null
    this.current = null
    const written = await doc.queue.enqueue({ kind: 'set', value })
    this.#removePreserved(conflict)
    doc.audit('conflict-resolved', custom ? 'value' : choice, conflict.conflicts.map((c) => c.path).join(', '))
    return written
  }

  #removePreserved(conflict) {
    conflict.preserved.then(() => {
      for (const file of Object.values(conflict.files ?? {})) fsp.rm(file, { force: true }).catch(() => {})
    })
  }
}

module.exports = { UnsavedEdits }
