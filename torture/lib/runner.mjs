// Runs ONE scenario module in its own process (and process group, made by
// run.mjs), so that a scenario that hangs, blocks its event loop or leaks
// children can be killed as a whole without taking the harness down.
// argv: scenario module path, JSON { quick, tmp, deadline }.
// Protocol to run.mjs (IPC): {type:'partial', figures} any number of times,
// then {type:'result', result}; it then waits to be killed (the parent kills
// the whole group, which sweeps any child the scenario left behind).
import { pathToFileURL } from 'node:url'
import { killAllChildren } from './harness.mjs'

const [file, json] = process.argv.slice(2)
const { quick, tmp, deadline } = JSON.parse(json)
const send = (message) => new Promise((resolve) => process.send(message, () => resolve()))

// The harness went away (Ctrl-C, crash): take our children with us.
process.on('disconnect', () => {
  killAllChildren().finally(() => process.exit(1))
})

let lastPartial = []
const context = {
  quick,
  tmp,
  /** Wall-clock ms (Date.now()) by which the scenario must be done, or it is killed. */
  deadline,
  log: (...parts) => process.stdout.write(`${parts.join(' ')}\n`),
  /** Figures reached so far: shown if the scenario is then killed for running over time. */
  partial: (figures) => {
    lastPartial = figures
    process.send({ type: 'partial', figures })
  },
}

let result
try {
  const scenario = (await import(pathToFileURL(file).href)).default
  result = await scenario.run(context)
  if (!result || (!Array.isArray(result.figures) && !result.skipped)) throw new Error('run() returned neither figures nor skipped')
} catch (error) {
  result = {
    figures: [...lastPartial, { label: 'ran to completion', value: `threw: ${error?.code ?? ''} ${error?.message ?? error}`.trim(), target: 'no error', ok: false }],
    error: String(error?.stack ?? error),
  }
}
await killAllChildren()
await send({ type: 'result', result })
setInterval(() => {}, 1 << 30) // wait for the parent to kill the group
