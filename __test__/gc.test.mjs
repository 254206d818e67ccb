// A Lock dropped without release() is released when it is garbage-collected.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, FIXTURES, useScratchDir } from './helpers.mjs'

useScratchDir()

describe('garbage collection of an unreleased Lock', () => {
  it.each([
    ['taken at once', 'at-once'],
    ['granted after a wait (through the native completion)', 'waited'],
  ])("releases the lock, emits 'released' with reason 'garbage-collected' and a FILE_LOCK_DROPPED warning: %s", async (_, mode) => {
    const file = path.join(dir, 'roles.json')
    fs.writeFileSync(file, '{}')
    const child = new Child(path.join(FIXTURES, 'gc-drop.mjs'), [file, mode], { execArgv: ['--expose-gc'] })
    const result = await child.waitFor('result', { timeoutMs: 20000 })
    expect((await child.exited).code).toBe(0)

    // Held before the collection: a second acquisition in the same manager timed out.
    expect(result.heldBefore).toBe(1)
    expect(result.busyBefore).toBe('ELOCKTIMEOUT')
    // Free after it, for the same manager, without waiting.
    expect(result.after).toBe('acquired')
    expect(result.heldAfter).toBe(0)
    const collected = result.released.filter((e) => e.reason === 'garbage-collected')
    expect(collected).toHaveLength(1)
    expect(collected[0]).toMatchObject({ filePath: file, fencingToken: result.fencingToken })
    expect(result.warnings.map((w) => w.code)).toContain('FILE_LOCK_DROPPED')
    expect(result.warnings.find((w) => w.code === 'FILE_LOCK_DROPPED').message).toContain('roles.json')
  })
})
