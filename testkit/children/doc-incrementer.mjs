// One of several processes incrementing one document at once (the document
// contention tests, torture's network drive): on any message, `count`
// JsonDocument.update increments of {counter}, then one report
// {type:'done', acknowledged, errors, values}. Every update is awaited, so
// `acknowledged` counts increments that must all be in the file, and
// `values` holds the counter each one resolved with (across all processes
// each value is seen once: no increment lost, none applied twice).
// argv: dataFile count [manager options JSON] [openDocument options JSON]
import { createRequire } from 'node:module'
import { exitWithParent } from '../in-child.mjs'
import { PACKAGE } from '../paths.mjs'

const { FileLockManager } = createRequire(import.meta.url)(PACKAGE)
const [dataFile, count, managerOptions = '{}', documentOptions = '{}'] = process.argv.slice(2)
const manager = new FileLockManager(JSON.parse(managerOptions))
const doc = await manager.openDocument(dataFile, JSON.parse(documentOptions))
exitWithParent()
process.send({ type: 'ready' })
process.once('message', async () => {
  const errors = []
  let acknowledged = 0
  const values = []
  for (let i = 0; i < Number(count); i++) {
    try {
      const written = await doc.update((value) => {
        value.counter++
      })
      values.push(written.counter)
      acknowledged++
    } catch (error) {
      errors.push(`${error.code}: ${error.message}`)
    }
  }
  await doc.close()
  await manager.close()
  process.send({ type: 'done', acknowledged, errors, values }, () => process.exit(0))
})
