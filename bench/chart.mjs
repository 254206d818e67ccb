// Hand-written SVG bar chart: one panel per metric, log-scale y axis (the
// libraries differ by up to three orders of magnitude), a bar per library with
// its value printed above it, and an optional thin whisker for a tail percentile.

const COLORS = {
  ours: '#d9480f',
  'ours-lockfile': '#f08c00',
  'fsnative-wait': '#1c7ed6',
  'fsnative-try': '#74c0fc',
  'proper-lockfile': '#868e96',
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a'
  if (v >= 100000) return `${(v / 1000).toFixed(0)}k`
  if (v >= 10000) return `${(v / 1000).toFixed(1)}k`
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

/**
 * panels: [{ title, unit, better: 'lower'|'higher', bars: [{ lib, label, value, whisker?, whiskerLabel? }] }]
 */
export function renderChart({ title, subtitle, panels, footer }) {
  const panelW = 330
  const panelH = 330
  const gap = 56
  const left = 60
  const top = 86
  const width = left + panels.length * panelW + (panels.length - 1) * gap + 20
  const height = top + panelH + 120
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`)
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`)
  out.push(`<text x="${width / 2}" y="26" font-size="18" font-weight="bold" text-anchor="middle">${esc(title)}</text>`)
  if (subtitle) out.push(`<text x="${width / 2}" y="46" font-size="12" fill="#495057" text-anchor="middle">${esc(subtitle)}</text>`)

  panels.forEach((panel, p) => {
    const x0 = left + p * (panelW + gap)
    const plotTop = top + 20
    const plotH = panelH - 40
    const bars = panel.bars.filter((b) => Number.isFinite(b.value) && b.value > 0)
    const all = bars.flatMap((b) => [b.value, ...(Number.isFinite(b.whisker) ? [b.whisker] : [])])
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all, 1e12) / 1.5))) // keep the shortest bar visible
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 1e-12) * 1.6)))
    const y = (v) => plotTop + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH

    out.push(`<text x="${x0 + panelW / 2}" y="${top - 12}" font-size="14" font-weight="bold" text-anchor="middle">${esc(panel.title)}</text>`)
    out.push(`<text x="${x0 + panelW / 2}" y="${top + 4}" font-size="11" fill="#495057" text-anchor="middle">${esc(`${panel.unit}, log scale, ${panel.better} is better`)}</text>`)
    // grid and axis labels at every power of ten
    for (let v = lo; v <= hi * 1.0001; v *= 10) {
      const gy = y(v).toFixed(1)
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${gy}" y2="${gy}" stroke="#dee2e6" stroke-width="1"/>`)
      out.push(`<text x="${x0 - 6}" y="${Number(gy) + 4}" font-size="10" fill="#495057" text-anchor="end">${esc(fmt(v))}</text>`)
    }
    out.push(`<line x1="${x0}" x2="${x0}" y1="${plotTop}" y2="${plotTop + plotH}" stroke="#495057"/>`)
    out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${plotTop + plotH}" y2="${plotTop + plotH}" stroke="#495057"/>`)

    const n = panel.bars.length
    const slot = panelW / n
    const bw = Math.min(52, slot * 0.62)
    panel.bars.forEach((b, i) => {
      const cx = x0 + slot * (i + 0.5)
      const base = plotTop + plotH
      if (Number.isFinite(b.value) && b.value > 0) {
        const by = y(b.value)
        out.push(`<rect x="${(cx - bw / 2).toFixed(1)}" y="${by.toFixed(1)}" width="${bw.toFixed(1)}" height="${(base - by).toFixed(1)}" fill="${COLORS[b.lib] ?? '#495057'}"><title>${esc(`${b.label}: ${fmt(b.value)} ${panel.unit}`)}</title></rect>`)
        let labelY = by - 5
        if (Number.isFinite(b.whisker) && b.whisker > 0) {
          const wy = y(b.whisker)
          out.push(`<line x1="${cx}" x2="${cx}" y1="${by.toFixed(1)}" y2="${wy.toFixed(1)}" stroke="#212529" stroke-width="1.2"/>`)
          out.push(`<line x1="${cx - 7}" x2="${cx + 7}" y1="${wy.toFixed(1)}" y2="${wy.toFixed(1)}" stroke="#212529" stroke-width="1.2"/>`)
          out.push(`<text x="${cx + 9}" y="${(wy + 3).toFixed(1)}" font-size="9" fill="#495057">${esc(b.whiskerLabel ?? '')} ${esc(fmt(b.whisker))}</text>`)
          labelY = Math.min(labelY, wy - 5)
        }
        out.push(`<text x="${cx}" y="${labelY.toFixed(1)}" font-size="11" font-weight="bold" text-anchor="middle">${esc(fmt(b.value))}</text>`)
      } else {
        out.push(`<text x="${cx}" y="${base - 8}" font-size="11" fill="#c92a2a" text-anchor="middle">n/a</text>`)
      }
      out.push(`<text x="${cx}" y="${base + 16}" font-size="10.5" text-anchor="middle">${esc(b.short)}</text>`)
    })
  })

  // legend
  const libs = panels[0]?.bars ?? []
  const perRow = 2
  libs.forEach((b, i) => {
    const lx = left + (i % perRow) * ((width - left) / perRow)
    const ly = top + panelH + 40 + Math.floor(i / perRow) * 18
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[b.lib] ?? '#495057'}"/>`)
    out.push(`<text x="${lx + 17}" y="${ly}" font-size="10.5">${esc(b.label)}</text>`)
  })
  if (footer) out.push(`<text x="${width / 2}" y="${height - 18}" font-size="10.5" fill="#495057" text-anchor="middle">${esc(footer)}</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
