// kill-storm writer: opens the document and increments {counter} forever,
// until it is SIGKILLed. Reports its phase ('booted', 'opening', 'ready') and
// each acknowledged update ({type:'ack', counter}); the next update starts
// only once that message is handed to the OS (process.send's callback), so a
// kill can lose at most one durable-but-unreported increment.
// argv: dataFile
import { createRequire } from 'node:module'

const send = (message) => new Promise((resolve) => process.send(message, () => resolve()))
process.on('disconnect', () => process.exit(0))
await send({ type: 'booted' })

const { FileLockManager } = createRequire(import.meta.url)('../../index.js')
const [dataFile] = process.argv.slice(2)
const manager = new FileLockManager()
await send({ type: 'opening' })
const doc = await manager.openDocument(dataFile)
await send({ type: 'ready' })
try {
  for (;;) {
    const value = await doc.update((v) => {
      v.counter++
    })
    await send({ type: 'ack', counter: value.counter })
  }
} catch (error) {
  await send({ type: 'failed', code: error.code, message: error.message })
  process.exit(1)
}
