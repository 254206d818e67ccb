// network-drive worker: opens the document (through its own mount) and makes
// `count` JsonDocument.update increments on command, then reports.
// argv: dataFile count
import { createRequire } from 'node:module'

const { FileLockManager } = createRequire(import.meta.url)('../../index.js')
const [file, count] = process.argv.slice(2)
const manager = new FileLockManager({ timeoutMs: 10000 })
const doc = await manager.openDocument(file, { watch: false })
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready' })
process.once('message', async () => {
  let acked = 0
  const errors = []
  for (let i = 0; i < Number(count); i++) {
    try {
      await doc.update((v) => {
        v.counter++
      })
      acked++
    } catch (error) {
      errors.push(`${error.code}: ${error.message}`)
    }
  }
  await doc.close()
  await manager.close()
  process.send({ type: 'done', acked, errors }, () => process.exit(0))
})
