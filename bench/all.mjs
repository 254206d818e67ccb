#!/usr/bin/env node
// `npm run bench [-- --quick]`: the lock benchmark (bench/run.mjs), the watch
// and merge benchmark (bench/watch.mjs), the document against its floor (bench/document.mjs),
// then the big-document stalls (bench/big-document.mjs), each in its own process with the same
// arguments; stops at the first one that fails, like `run.mjs && watch.mjs`; then, after a full
// run, the goals in one table (bench/goals.mjs).

import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)

for (const script of ['run.mjs', 'watch.mjs', 'document.mjs', 'big-document.mjs']) {
  const { status, signal } = spawnSync(process.execPath, [path.join(here, script), ...args], { stdio: 'inherit' })
  if (status !== 0) {
    console.error(`bench/${script} ${signal ? `was killed by ${signal}` : `exited with code ${status}`}`)
    process.exit(status || 1)
  }
}

// A full run wrote every result: the goals, one table (a quick run writes none).
if (!args.includes('--quick')) {
  const { status } = spawnSync(process.execPath, [path.join(here, 'goals.mjs')], { stdio: 'inherit' })
  process.exit(status ?? 1)
}
