// A writer that is SIGKILLed at a random moment (the crash test of __test__,
// torture's kill-storm): increments {counter} forever. It reports its phase
// ('booted', 'opening', 'ready') and each acknowledged update ({type:'ack',
// counter}); the next update starts only once that message is handed to the
// OS, so a kill can lose at most one durable-but-unreported increment.
// argv: dataFile [manager options JSON] [openDocument options JSON]
import { createRequire } from 'node:module'
import { exitWithParent, send } from '../in-child.mjs'
import { PACKAGE } from '../paths.mjs'

exitWithParent()
await send({ type: 'booted' })

const { FileLockManager } = createRequire(import.meta.url)(PACKAGE)
const [dataFile, managerOptions = '{}', documentOptions = '{}'] = process.argv.slice(2)
const manager = new FileLockManager(JSON.parse(managerOptions))
await send({ type: 'opening' })
const doc = await manager.openDocument(dataFile, JSON.parse(documentOptions))
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
