// Result files: arrays of numbers on one line (rounded to `decimals`),
// everything else indented, so raw samples stay readable in a diff.
export function toJson(value, decimals, indent = '') {
  const scale = 10 ** decimals
  if (typeof value === 'bigint') return JSON.stringify(String(value))
  if (Array.isArray(value) && value.every((v) => typeof v === 'number' || v === null)) {
    return `[${value.map((v) => (v === null ? 'null' : JSON.stringify(Math.round(v * scale) / scale))).join(',')}]`
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const inner = indent + '  '
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    if (entries.length === 0) return '{}'
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${toJson(v, decimals, inner)}`).join(',\n')}\n${indent}}`
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    const inner = indent + '  '
    return `[\n${value.map((v) => inner + toJson(v, decimals, inner)).join(',\n')}\n${indent}]`
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return 'null'
  return JSON.stringify(value ?? null)
}
