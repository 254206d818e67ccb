// kill-storm raw reader: reads the file outside the library (no lock) every
// `intervalMs` and parses it, as another program would. On {cmd:'stop'} it
// answers {type:'summary'}: reads, unreadable (failed read or parse, with
// samples), counter going backwards.
// argv: dataFile, intervalMs
import fs from 'node:fs'

const [dataFile, intervalText] = process.argv.slice(2)
const intervalMs = Number(intervalText)
const seen = { reads: 0, readErrors: 0, unparsable: 0, notCounter: 0, backwards: 0, last: -1, samples: [] }
let running = true

process.on('disconnect', () => process.exit(0))
process.on('message', (message) => {
  if (message?.cmd !== 'stop') return
  running = false
  process.send({ type: 'summary', ...seen }, () => process.exit(0))
})

function readOnce() {
  if (!running) return
  let text
  try {
    text = fs.readFileSync(dataFile, 'utf8')
  } catch (error) {
    seen.readErrors++
    if (seen.samples.length < 5) seen.samples.push(`read: ${error.code}`)
    return setTimeout(readOnce, intervalMs)
  }
  let value
  try {
    value = JSON.parse(text)
  } catch {
    seen.unparsable++
    if (seen.samples.length < 5) seen.samples.push(`parse (${text.length} bytes): ${JSON.stringify(text.slice(0, 60))}…${JSON.stringify(text.slice(-30))}`)
    return setTimeout(readOnce, intervalMs)
  }
  if (!Number.isInteger(value?.counter)) seen.notCounter++
  else if (value.counter < seen.last) seen.backwards++
  else seen.last = value.counter
  seen.reads++
  setTimeout(readOnce, intervalMs)
}

process.send({ type: 'ready' }, () => readOnce())
