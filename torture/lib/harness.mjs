// Helpers shared by the torture scenarios (they run inside a scenario runner
// process, see runner.mjs): child processes over IPC that are always killed at
// the end (the test kit's, testkit/, as scenarios use them), timing statistics,
// and figures that each carry their target.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child as KitChild } from '../../testkit/process.mjs'
import { nowMs } from '../../testkit/time.mjs'

export { PACKAGE, ROOT, kitChild, lockFilesUnder, listRecursive, sidecarOf, tempFilesUnder } from '../../testkit/paths.mjs'
export { killAllChildren, liveChildCount } from '../../testkit/process.mjs'
export { stats } from '../../testkit/stats.mjs'
export { nowMs, sleep, within } from '../../testkit/time.mjs'

export const TORTURE = fileURLToPath(new URL('../', import.meta.url))
export const CHILDREN = path.join(TORTURE, 'children')

export const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1))
export const randomBetween = (min, max) => min + Math.random() * (max - min)

// ---------------------------------------------------------------- children

/**
 * The kit's child process (testkit/process.mjs) as the scenarios want it: a
 * bare script name is one of torture/children/, `kill()` is a SIGKILL (a
 * scenario's children are never asked nicely), and only the last 8 KiB of
 * output is kept (a storm starts thousands). Every child is killed by
 * `killAllChildren()` (the runner calls it at the end of each scenario;
 * run.mjs also kills the runner's whole process group).
 */
export class Child extends KitChild {
  constructor(script, args = [], options = {}) {
    const file = path.isAbsolute(script) ? script : path.join(CHILDREN, script)
    super(file, args, { outputLimit: 8192, killSignal: 'SIGKILL', ...options })
    this.spawnedAt = nowMs()
  }
}

// ---------------------------------------------------------------- numbers

/** A number for the table: 3 significant digits below 100, integers above. */
export function fmt(value) {
  if (typeof value !== 'number') return String(value)
  if (!Number.isFinite(value)) return String(value)
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  const abs = Math.abs(value)
  if (abs >= 100) return Math.round(value).toLocaleString('en-US')
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

// ---------------------------------------------------------------- figures

const OPS = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '=': (a, b) => a === b,
  '>=': (a, b) => a >= b,
  '>': (a, b) => a > b,
}
const OP_TEXT = { '<': '<', '<=': '≤', '=': '=', '>=': '≥', '>': '>' }

/**
 * A figure with a target: `check('overlaps', 0, '=', 0)`,
 * `check('average wait', 3.1, '<', 50, 'ms')`. A value that is not a finite
 * number (NaN: nothing measured) misses its target.
 */
export function check(label, value, op, bound, unit = '', extra = {}) {
  const ok = typeof value === 'number' && !Number.isNaN(value) && OPS[op](value, bound)
  return { label, value, unit, target: `${OP_TEXT[op]} ${fmt(bound)}${unit ? ` ${unit}` : ''}`, ok, ...extra }
}

/** A figure that must lie in [low, high]. */
export function between(label, value, low, high, unit = '', extra = {}) {
  const ok = typeof value === 'number' && value >= low && value <= high
  return { label, value, unit, target: `${fmt(low)} … ${fmt(high)}${unit ? ` ${unit}` : ''}`, ok, ...extra }
}

/** A pass/fail figure (value: what was seen). */
export function verdict(label, ok, value = ok ? 'pass' : 'FAIL', target = 'pass', extra = {}) {
  return { label, value, unit: '', target, ok: Boolean(ok), ...extra }
}

/** An informational figure (no target). */
export function info(label, value, unit = '', extra = {}) {
  return { label, value, unit, ok: true, ...extra }
}
