// Bad input: every case fails fast with the documented error type and code.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Child, dir, file, FileLockError, FileLockManager, FIXTURES, rejectionOf, thrown, useScratchDir } from './helpers.mjs'

const manager = useScratchDir({ contents: '{}' })

describe('FileLockManager options', () => {
  it('fills in the documented defaults', () => {
    expect(manager().options).toEqual({ timeoutMs: 5000, retries: 3, leaseMs: 30000, staleMs: 30000, strategy: 'auto', exposePids: false, networkTimeoutFactor: 3, auditLogMaxBytes: 10 * 1024 * 1024 })
    expect(manager({ strategy: 'os', timeoutMs: Infinity, retries: 1, exposePids: true }).options).toMatchObject({ strategy: 'os', timeoutMs: Infinity, retries: 1, exposePids: true })
  })

  it.each([
    ['options null', null],
    ['options a string', 'fast'],
    ['timeoutMs a string', { timeoutMs: '100' }],
    ['retries a string', { retries: '3' }],
    ['leaseMs a string', { leaseMs: '1000' }],
    ['staleMs a string', { staleMs: '1000' }],
    ['exposePids a string', { exposePids: 'yes' }],
  ])('throws TypeError ERR_INVALID_ARG_TYPE for %s', (_, options) => {
    const error = thrown(() => new FileLockManager(options))
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe('ERR_INVALID_ARG_TYPE')
  })

  it.each([
    ['timeoutMs NaN', { timeoutMs: NaN }],
    ['timeoutMs negative', { timeoutMs: -1 }],
    ['leaseMs negative', { leaseMs: -5 }],
    ['retries 0', { retries: 0 }],
    ['retries fractional', { retries: 1.5 }],
    ['retries above 1000', { retries: 1001 }],
    ['an unknown strategy', { strategy: 'mutex' }],
  ])('throws RangeError ERR_OUT_OF_RANGE for %s', (_, options) => {
    const error = thrown(() => new FileLockManager(options))
    expect(error).toBeInstanceOf(RangeError)
    expect(error.code).toBe('ERR_OUT_OF_RANGE')
  })

  it("accepts strategy 'lockfile'", () => {
    expect(manager({ strategy: 'lockfile' }).options.strategy).toBe('lockfile')
  })

  it('rejects bad audit options with TypeError/RangeError, and an unwritable trail with its errno code', () => {
    for (const [options, type, code] of [
      [{ auditLog: '' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
      [{ auditLog: 42 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
      [{ auditLogMaxBytes: 10 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ logger: 'console' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
      [{ networkTimeoutFactor: '3' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
      [{ networkTimeoutFactor: 0.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ networkTimeoutFactor: Infinity }, RangeError, 'ERR_OUT_OF_RANGE'],
    ]) {
      const error = thrown(() => new FileLockManager(options))
      expect(error).toBeInstanceOf(type)
      expect(error.code).toBe(code)
    }
    const error = thrown(() => new FileLockManager({ auditLog: path.join(dir, 'missing-dir', 'audit.jsonl') }))
    expect(error).toBeInstanceOf(FileLockError)
    expect(error.code).toBe('ENOENT')
  })
})

describe('acquireLock / withLock / inspect arguments', () => {
  it('an empty path rejects with EINVAL', async () => {
    const m = manager()
    for (const call of [() => m.acquireLock(''), () => m.withLock('', async () => 1), () => m.inspect('')]) {
      const error = await rejectionOf(call(), 3000)
      expect(error).toBeInstanceOf(FileLockError)
      expect(error.code).toBe('EINVAL')
    }
  })

  it('a directory rejects with EINVAL and leaves no sidecar', async () => {
    const m = manager()
    const error = await rejectionOf(m.acquireLock(dir), 3000)
    expect(error).toBeInstanceOf(FileLockError)
    expect(error.code).toBe('EINVAL')
    expect((await rejectionOf(m.inspect(dir), 3000)).code).toBe('EINVAL')
    expect(fs.readdirSync(path.dirname(dir)).includes(`.${path.basename(dir)}.lock`)).toBe(false)
  })

  it('a path whose parent directory does not exist rejects with ENOENT', async () => {
    const m = manager()
    const error = await rejectionOf(m.acquireLock(path.join(dir, 'missing', 'roles.json')), 3000)
    expect(error).toBeInstanceOf(FileLockError)
    expect(error.code).toBe('ENOENT')
    expect(fs.existsSync(path.join(dir, 'missing'))).toBe(false)
  })

  it('a path with a NUL character rejects with EINVAL', async () => {
    const error = await rejectionOf(manager().acquireLock(`${file}\0x`), 3000)
    expect(error.code).toBe('EINVAL')
  })

  it.each([
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['a Buffer', Buffer.from('/tmp/x')],
  ])('a path that is %s rejects with TypeError ERR_INVALID_ARG_TYPE', async (_, value) => {
    const m = manager()
    for (const call of [() => m.acquireLock(value), () => m.withLock(value, async () => 1), () => m.inspect(value)]) {
      const error = await rejectionOf(call(), 3000)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('ERR_INVALID_ARG_TYPE')
    }
  })

  it.each([
    ['timeoutMs NaN', { timeoutMs: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['timeoutMs negative', { timeoutMs: -100 }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['timeoutMs a string', { timeoutMs: '100' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['retries 0', { retries: 0 }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['retries -1', { retries: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['retries NaN', { retries: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['exclusive a string', { exclusive: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['signal not an AbortSignal', { signal: {} }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['options null', null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['options a number', 5, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ])('acquire options with %s reject with the right error', async (_, options, Type, code) => {
    const m = manager()
    for (const call of [() => m.acquireLock(file, options), () => m.withLock(file, async () => 1, options)]) {
      const error = await rejectionOf(call(), 3000)
      expect(error).toBeInstanceOf(Type)
      expect(error.code).toBe(code)
    }
    expect(m.heldCount).toBe(0)
    expect(await m.inspect(file)).toBeNull()
  })

  it('withLock with a fn that is not a function rejects with TypeError and takes no lock', async () => {
    const m = manager()
    for (const fn of [undefined, null, 'fn', {}]) {
      const error = await rejectionOf(m.withLock(file, fn), 3000)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('ERR_INVALID_ARG_TYPE')
    }
    expect(m.heldCount).toBe(0)
    expect(fs.existsSync(path.join(dir, '.roles.json.lock'))).toBe(false)
  })

  it('bad input rejects even while the file is contended (no wait for the lock first)', async () => {
    const m = manager()
    const lock = await m.acquireLock(file)
    const started = Date.now()
    const error = await rejectionOf(m.acquireLock(file, { timeoutMs: 10000, retries: 0 }), 3000)
    expect(error.code).toBe('ERR_OUT_OF_RANGE')
    expect(Date.now() - started).toBeLessThan(2000)
    await lock.release()
  })
})

describe('very large but valid millisecond values', () => {
  // The wrapper accepts any non-negative number (Infinity included), so a finite
  // huge value must either work like "no limit" or be refused with a RangeError;
  // it must never take the whole process down. Each case runs in a child, where
  // a crash is observable instead of killing the test runner.
  async function runScenario(scenario, ms) {
    const child = new Child(path.join(FIXTURES, 'huge-ms.mjs'), [scenario, String(ms), file])
    const exit = await child.exited
    const outcome = child.messages.find((m) => m.type === 'outcome')
    const panic = child.stderr.split('\n').filter((line) => /panicked|cannot convert|overflow/.test(line)).join(' | ')
    return { exit, result: outcome?.result, panic }
  }

  it.each([
    ['manager timeoutMs: 1e12', 'manager-timeout', 1e12],
    ['manager leaseMs: 1e12', 'manager-lease', 1e12],
    ['acquireLock timeoutMs: 1e12 on a contended file', 'request-timeout', 1e12],
  ])('control: %s works', async (_, scenario, ms) => {
    expect(await runScenario(scenario, ms)).toEqual({ exit: { code: 0, signal: null }, result: 'ok', panic: '' })
  })

  it.each([
    ['manager timeoutMs: Number.MAX_VALUE', 'manager-timeout', Number.MAX_VALUE],
    ['manager leaseMs: Number.MAX_VALUE', 'manager-lease', Number.MAX_VALUE],
    ['manager leaseMs: 1e22', 'manager-lease', 1e22],
    ['acquireLock timeoutMs: Number.MAX_VALUE on a contended file', 'request-timeout', Number.MAX_VALUE],
  ])('%s does not crash the process', async (_, scenario, ms) => {
    expect(await runScenario(scenario, ms)).toEqual({
      exit: { code: 0, signal: null },
      result: expect.stringMatching(/^(ok|RangeError)$/),
      panic: '',
    })
  })
})
