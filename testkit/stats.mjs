// Figures from samples, computed one way for every bench and torture table
// (nearest-rank percentiles, no interpolation), so that two tables that name
// the same figure mean the same thing.

/** The nearest-rank `p`th percentile of ascending `sorted`; NaN for no samples. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]
}

/** The numbers of `values`, ascending (numerically, as doubles). */
export const sortNum = (values) => Float64Array.from(values).sort()

/** `arr` rotated left by `k`: each round of a bench starts with another library, so bursts of noise spread over all. */
export function rotate(arr, k) {
  const s = k % arr.length
  return [...arr.slice(s), ...arr.slice(0, s)]
}

/** n, mean, min, p50, p90, p99, max of a list of numbers (NaN where there are none). */
export function stats(values) {
  const sorted = sortNum(values)
  const n = sorted.length
  return {
    n,
    mean: n === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / n,
    min: n === 0 ? NaN : sorted[0],
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: n === 0 ? NaN : sorted[n - 1],
  }
}
