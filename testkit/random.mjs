// Deterministic pseudo-random numbers: generated documents must be the same on
// every run, so that figures from two runs (or two machines) compare.

/** A linear congruential generator seeded with `seed`: () => a number in [0, 1). */
export function lcg(seed) {
  let s = seed >>> 0
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
}
