// Fails when the napi-generated loader or types differ from the committed ones:
// `npm install` / `npm run build` regenerates them from the Rust code, so a
// difference means a Rust change was committed without its generated types.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const generated = ['native.d.ts', 'native.js']
if (!existsSync(new URL('../.git', import.meta.url))) {
  console.log('check-generated: not a git checkout, skipped')
  process.exit(0)
}
try {
  execFileSync('git', ['diff', '--exit-code', '--', ...generated], { stdio: 'inherit' })
  console.log(`check-generated: ${generated.join(', ')} match the Rust code`)
} catch {
  console.error('check-generated: the generated files above differ from the committed ones; run `npm run build` and commit them')
  process.exit(1)
}
