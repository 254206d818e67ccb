// `node scripts/pack-test.mjs`: the package installs and works like any other.
//
// Packs the root package and this machine's platform package (npm/<abi> plus the
// built .node) with `npm pack`, checks what the tarballs hold, installs both into
// a fresh project in the temp directory (outside the repo: nothing can resolve
// into the source tree) and there:
//   1. require('file-lock-manager')            — lock, document, mergeJson (CommonJS)
//   2. import { … } from 'file-lock-manager'   — every export is a named ESM export
//   3. tsc --strict against the installed types — node16 (.mts and .cts), bundler, node10
//   and each "bin" command runs (`--version`).
// Exits 1 with the reason on the first problem. Needs the built addon
// (`npm run build`); reads the npm cache only (`--offline`), never the registry.
import { execFile as execFileCb } from 'node:child_process'
import { builtinModules } from 'node:module'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFile = promisify(execFileCb)
const children = new AbortController() // kills the child processes still running when a check fails
const repo = realpathSync(fileURLToPath(new URL('..', import.meta.url)))
const startedAt = performance.now()
const isWindows = process.platform === 'win32'

class Problem extends Error {}
const problem = (message) => {
  throw new Problem(message)
}
const ms = (since) => `${Math.round(performance.now() - since)} ms`
async function step(title, fn) {
  const t = performance.now()
  const note = await fn()
  console.log(`✓ ${title} (${ms(t)})${note ? `\n${indent(note)}` : ''}`)
}
const indent = (text) =>
  String(text)
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n')

// Children see no npm lifecycle variables (`npm test` sets dozens, some of which
// npm would obey), no NODE_PATH / NODE_OPTIONS, no napi override of the binary.
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^npm_/i.test(key) && !['NODE_PATH', 'NODE_OPTIONS', 'NAPI_RS_NATIVE_LIBRARY_PATH', 'NAPI_RS_FORCE_WASI', 'INIT_CWD'].includes(key),
  ),
)
childEnv.npm_config_update_notifier = 'false'
childEnv.npm_config_fund = 'false'
childEnv.npm_config_audit = 'false'

async function run(command, args, cwd, what) {
  try {
    const { stdout } = await execFile(command, args, {
      cwd,
      env: childEnv,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      shell: isWindows && (command === 'npm' || command.endsWith('.cmd')),
      timeout: 120_000,
      signal: children.signal,
    })
    return stdout
  } catch (error) {
    const output = `${error.stdout ?? ''}\n${error.stderr ?? ''}`.trim()
    problem(`${what} failed: ${command} ${args.join(' ')} (in ${cwd})\n${output || error.message}`)
  }
}
const npm = (args, cwd, what) => run('npm', args, cwd, what)
const node = (args, cwd, what) => run(process.execPath, args, cwd, what)

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))

// napi target triple → the platform package suffix (`platformArchABI`).
function platformArchAbi(triple) {
  const archs = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64', s390x: 's390x', powerpc64le: 'ppc64' }
  const [cpu, ...rest] = triple.split('-')
  const arch = archs[cpu] ?? cpu
  const sys = rest.join('-')
  if (sys.includes('apple-darwin')) return { abi: `darwin-${arch}`, os: 'darwin', cpu: arch }
  if (sys.includes('windows')) return { abi: `win32-${arch}-${sys.split('-').pop()}`, os: 'win32', cpu: arch }
  const libc = sys.split('-').pop()
  const os = rest.find((part) => ['linux', 'freebsd', 'android'].includes(part)) ?? rest[1]
  return { abi: libc === os ? `${os}-${arch}` : `${os}-${arch}-${libc}`, os, cpu: arch, libc: libc.startsWith('musl') ? 'musl' : libc.startsWith('gnu') ? 'glibc' : undefined }
}

function hostAbi() {
  const { platform, arch } = process
  if (platform === 'darwin') return `darwin-${arch}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform === 'linux') {
    const musl = !process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
  }
  return `${platform}-${arch}`
}

// Relative requires / imports a packed file makes (static scan, comments included:
// a stale mention costs a false alarm at worst, never a missed file).
function relativeSpecifiers(text, declarationFile) {
  const found = new Set()
  const patterns = declarationFile
    ? [/\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\bimport\s+['"]([^'"]+)['"]/g, /\/\/\/\s*<reference\s+path=['"]([^'"]+)['"]/g]
    : [/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.add(match[1])
  return [...found]
}

async function main() {
  const pkg = readJson(join(repo, 'package.json'))
  const binaryName = pkg.napi?.binaryName ?? pkg.name
  const targets = (pkg.napi?.targets ?? []).map(platformArchAbi)
  const abi = hostAbi()
  const platformName = `${pkg.name}-${abi}`
  const binaryFile = `${binaryName}.${abi}.node`
  const packs = join(tmpRoot, 'tarballs')
  mkdirSync(packs)
  let rootFiles, rootTarball, platformTarball

  await step('package.json and the platform packages in npm/ agree', async () => {
    if (!pkg.main || !existsSync(join(repo, pkg.main))) problem(`"main" (${pkg.main}) does not exist`)
    const types = pkg.types ?? pkg.typings
    if (!types || !existsSync(join(repo, types))) problem(`"types" (${types}) does not exist`)
    if (!Array.isArray(pkg.files)) problem('package.json has no "files" list: npm would pack the whole repo (target/, src/, tests…)')
    if (targets.length === 0) problem('package.json has no napi.targets')
    if (!targets.some((t) => t.abi === abi)) problem(`this machine (${abi}) is not one of napi.targets: ${targets.map((t) => t.abi).join(', ')}`)
    const notes = []
    for (const target of targets) {
      const dir = join(repo, 'npm', target.abi)
      const file = join(dir, 'package.json')
      if (!existsSync(file)) problem(`npm/${target.abi}/package.json is missing (napi.targets lists ${target.abi}; \`napi create-npm-dirs\` makes it)`)
      const sub = readJson(file)
      const expectedBinary = `${binaryName}.${target.abi}.node`
      const wrong = []
      if (sub.name !== `${pkg.name}-${target.abi}`) wrong.push(`name is ${sub.name}, expected ${pkg.name}-${target.abi}`)
      if (sub.version !== pkg.version) wrong.push(`version is ${sub.version}, the root package's is ${pkg.version}`)
      if (sub.main !== expectedBinary) wrong.push(`main is ${sub.main}, expected ${expectedBinary}`)
      if (!sub.files?.includes(expectedBinary)) wrong.push(`files does not list ${expectedBinary}`)
      if (JSON.stringify(sub.os) !== JSON.stringify([target.os])) wrong.push(`os is ${JSON.stringify(sub.os)}, expected ["${target.os}"]`)
      if (JSON.stringify(sub.cpu) !== JSON.stringify([target.cpu])) wrong.push(`cpu is ${JSON.stringify(sub.cpu)}, expected ["${target.cpu}"]`)
      if (target.libc && JSON.stringify(sub.libc) !== JSON.stringify([target.libc])) wrong.push(`libc is ${JSON.stringify(sub.libc)}, expected ["${target.libc}"]`)
      if (wrong.length) problem(`npm/${target.abi}/package.json: ${wrong.join('; ')}`)
    }
    // The root package finds its binary through optionalDependencies on the
    // platform packages. napi-rs writes them into package.json at publish time
    // (`napi prepublish`), so the committed package.json may leave them out
    // (listing unpublished packages would break `npm ci`) — but then publishing
    // must run `napi prepublish`, or the published package has no binary.
    const expectedOptional = Object.fromEntries(targets.map((t) => [`${pkg.name}-${t.abi}`, pkg.version]))
    if (pkg.optionalDependencies) {
      for (const [name, version] of Object.entries(expectedOptional)) {
        if (pkg.optionalDependencies[name] !== version) problem(`optionalDependencies["${name}"] is ${pkg.optionalDependencies[name]}, expected ${version}`)
      }
      notes.push('optionalDependencies list every platform package at this version')
    } else {
      const publishScripts = ['prepublishOnly', 'prepublish', 'prepack'].map((name) => pkg.scripts?.[name] ?? '').join(' ')
      if (!/napi\s+(pre-?publish)/.test(publishScripts)) {
        // Not fatal to the checks below (they simulate the publish step): reported at the end.
        deferred.push(
          'package.json has no optionalDependencies on the platform packages and no "prepublishOnly" running `napi prepublish`:\n' +
            '  `npm publish` would ship a root package that installs no binary (require fails with "Cannot find native binding").\n' +
            '  Fix: "scripts": { "prepublishOnly": "napi prepublish -t npm --no-gh-release" } (publishes npm/* and adds the\n' +
            '  optionalDependencies at publish time; listing them in the committed package.json instead would break `npm ci`\n' +
            '  until the platform packages exist on the registry).',
        )
      }
      notes.push(
        publishScripts.trim()
          ? `no optionalDependencies committed; "${publishScripts.trim()}" adds them at publish time — simulated below`
          : 'PROBLEM: nothing adds the optionalDependencies at publish time (reported at the end) — simulated below',
      )
    }
    notes.push(`${targets.length} platform packages: ${targets.map((t) => t.abi).join(', ')}`)
    return notes.join('\n')
  })

  await step('npm pack: root package', async () => {
    // --ignore-scripts: `prepare` would rebuild the addon.
    const out = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packs], repo, 'npm pack of the root package')
    const [info] = JSON.parse(out.slice(out.indexOf('[')))
    rootTarball = join(packs, info.filename)
    rootFiles = info.files.map((f) => f.path).sort()
    const has = new Set(rootFiles)
    const missing = []
    const need = new Map() // file → why
    need.set('package.json', 'the manifest')
    need.set(posix.normalize(pkg.main), '"main"')
    need.set(posix.normalize(pkg.types ?? pkg.typings), '"types"')
    // Every path "bin" and "exports" name (once someone adds them).
    const bins = typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {})
    for (const [name, file] of Object.entries(bins)) need.set(posix.normalize(file), `"bin" ${name}`)
    const exportTargets = (value, where) => {
      if (typeof value === 'string') {
        if (!value.includes('*')) need.set(posix.normalize(value), `"exports" ${where}`)
      } else if (value && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) exportTargets(inner, `${where} ${key}`.trim())
      }
    }
    exportTargets(pkg.exports, '')
    // Every file a packed .js requires, and every file a packed .d.ts imports, transitively.
    const queue = rootFiles.filter((f) => f.endsWith('.js') || f.endsWith('.cjs') || f.endsWith('.mjs') || f.endsWith('.d.ts'))
    const bare = new Set()
    for (const file of queue) {
      const declaration = file.endsWith('.d.ts')
      for (const spec of relativeSpecifiers(readFileSync(join(repo, file), 'utf8'), declaration)) {
        if (!spec.startsWith('.')) {
          bare.add(spec)
          continue
        }
        // napi's loader (native.js) first tries build artifacts beside itself (a .node, a
        // WASI .wasi.cjs); they are optional, the platform packages hold the binaries.
        if (/\.(node|wasm|wasi\.cjs|wasi-browser\.js)$/.test(spec)) continue
        const base = posix.normalize(posix.join(posix.dirname(file), spec))
        const candidates = declaration
          ? [base.replace(/\.(c|m)?js$/, '.d.ts'), `${base}.d.ts`, `${base}/index.d.ts`, base]
          : [base, `${base}.js`, `${base}.json`, `${base}/index.js`]
        const hit = candidates.find((c) => has.has(c))
        if (hit) {
          if (!need.has(hit)) need.set(hit, `${declaration ? 'imported' : 'required'} by ${file}`)
        } else missing.push(`${base} (${declaration ? 'imported' : 'required'} by ${file})`)
      }
    }
    for (const [file, why] of need) if (!has.has(file)) missing.push(`${file} (${why})`)
    if (missing.length) problem(`the root tarball lacks files the package needs — add them to "files":\n  ${missing.join('\n  ')}`)
    // Bare specifiers must be Node built-ins, our own platform packages, or dependencies.
    const deps = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
    const builtins = new Set(builtinModules)
    const unknown = [...bare].filter((spec) => {
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
      return !spec.startsWith('node:') && !builtins.has(name) && !name.startsWith(`${pkg.name}-`) && !deps.has(name)
    })
    if (unknown.length) problem(`packed files require packages that are not dependencies: ${unknown.join(', ')}`)
    const binaries = rootFiles.filter((f) => f.endsWith('.node'))
    if (binaries.length) problem(`the root tarball holds native binaries (${binaries.join(', ')}): they belong in the platform packages`)
    if (!rootFiles.some((f) => /^readme/i.test(f))) problem('the root tarball has no README')
    const size = (info.unpackedSize / 1024).toFixed(1)
    const license = rootFiles.some((f) => /^(licen[cs]e|copying)/i.test(f)) ? '' : `\nnote: no LICENSE file in the tarball (package.json says "${pkg.license}")`
    return `${info.filename}: ${rootFiles.length} files, ${size} KiB unpacked\n${rootFiles.map((f) => `  ${f}`).join('\n')}\nevery file required or imported from the packed .js/.d.ts is in it; bare imports: ${[...bare].filter((s) => !s.startsWith(`${pkg.name}-`)).sort().join(', ')} and the platform packages (${pkg.name}-*)${license}`
  })

  await step(`npm pack: platform package ${platformName}`, async () => {
    const built = join(repo, binaryFile)
    if (!existsSync(built)) problem(`${binaryFile} is not built: run \`npm run build\` first`)
    const dir = join(tmpRoot, 'platform')
    mkdirSync(dir)
    for (const file of readdirSync(join(repo, 'npm', abi))) copyFileSync(join(repo, 'npm', abi, file), join(dir, file))
    copyFileSync(built, join(dir, binaryFile))
    const out = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packs], dir, 'npm pack of the platform package')
    const [info] = JSON.parse(out.slice(out.indexOf('[')))
    platformTarball = join(packs, info.filename)
    const files = info.files.map((f) => f.path).sort()
    if (!files.includes(binaryFile)) problem(`the platform tarball lacks ${binaryFile}: ${files.join(', ')}`)
    if (!files.includes('package.json')) problem('the platform tarball has no package.json')
    const newestSource = newestMtime(join(repo, 'src'))
    const stale = newestSource > statSync(built).mtimeMs ? `\nnote: ${binaryFile} is older than src/ — run \`npm run build\` to test the current Rust code` : ''
    return `${info.filename}: ${files.join(', ')} (${(info.size / 1024 / 1024).toFixed(2)} MiB)${stale}`
  })

  if (!pkg.optionalDependencies) {
    await step('root tarball as `napi prepublish` publishes it (optionalDependencies added)', async () => {
      const dir = join(tmpRoot, 'root-published')
      mkdirSync(dir)
      await run('tar', ['-xzf', rootTarball, '-C', dir], tmpRoot, 'unpacking the root tarball')
      const manifestPath = join(dir, 'package', 'package.json')
      const manifest = readJson(manifestPath)
      manifest.optionalDependencies = Object.fromEntries(targets.map((t) => [`${pkg.name}-${t.abi}`, pkg.version]))
      writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)
      rmSync(rootTarball)
      await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packs], join(dir, 'package'), 'npm pack of the publish-ready root package')
      return Object.entries(manifest.optionalDependencies)
        .map(([name, version]) => `${name}@${version}`)
        .join(', ')
    })
  }

  const project = join(tmpRoot, 'consumer')
  await step('npm install of both tarballs into a fresh project outside the repo', async () => {
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'pack-test-consumer', version: '1.0.0', private: true, license: 'MIT' }, null, 2)}\n`)
    // Nothing above the project may hold a node_modules the package could resolve from.
    for (let dir = dirname(project); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'node_modules'))) problem(`${join(dir, 'node_modules')} exists above the test project: resolution could climb into it`)
      if (dir === repo) problem('the test project is inside the repo')
      if (dirname(dir) === dir) break
    }
    // The other platforms' optional packages are not on the registry (or not in
    // the cache): npm must skip them, as it skips optional packages that fail.
    const args = ['install', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error', rootTarball, platformTarball]
    let mode = '--offline'
    try {
      await npm([...args, '--offline'], project, 'npm install --offline')
    } catch (error) {
      if (!(error instanceof Problem)) throw error
      mode = '--prefer-offline (--offline failed: something was not in the npm cache)'
      await npm([...args, '--prefer-offline'], project, 'npm install')
    }
    const lock = readJson(join(project, 'package-lock.json'))
    const installed = lock.packages['node_modules/file-lock-manager']
    if (!installed) problem('npm install did not install file-lock-manager')
    const declared = Object.keys(installed.optionalDependencies ?? {})
    if (!declared.includes(platformName)) problem(`the installed package does not declare ${platformName} as an optional dependency`)
    if (!existsSync(join(project, 'node_modules', platformName, binaryFile))) problem(`node_modules/${platformName}/${binaryFile} was not installed`)
    const names = readdirSync(join(project, 'node_modules')).filter((n) => !n.startsWith('.'))
    return `installed with ${mode}: node_modules/{${names.join(', ')}}; the other platforms' optional packages were skipped`
  })

  writeFileSync(join(project, 'smoke.cjs'), CJS_SMOKE)
  writeFileSync(join(project, 'smoke.mjs'), ESM_SMOKE)
  writeFileSync(join(project, 'usage.ts'), TS_USAGE)
  writeFileSync(join(project, 'usage.mts'), TS_USAGE)
  writeFileSync(join(project, 'usage.cts'), TS_USAGE)
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!existsSync(tsc)) problem('the repo has no TypeScript (node_modules/typescript): run `npm install`')
  const typeRoot = join(repo, 'node_modules', '@types')
  if (!existsSync(join(typeRoot, 'node'))) problem('the repo has no @types/node: run `npm install`')
  const configs = {
    'node16 (.mts: ESM, .cts: CommonJS)': { module: 'node16', moduleResolution: 'node16', files: ['usage.mts', 'usage.cts'] },
    'bundler (ESM)': { module: 'esnext', moduleResolution: 'bundler', files: ['usage.ts'] },
    'node10 (CommonJS)': { module: 'commonjs', moduleResolution: 'node10', files: ['usage.ts'] },
  }
  const tscRuns = Object.entries(configs).map(async ([title, { files, ...options }], i) => {
    const config = join(project, `tsconfig.${i}.json`)
    const compilerOptions = { strict: true, noEmit: true, target: 'ES2022', skipLibCheck: false, typeRoots: [typeRoot], types: ['node'], ...options }
    writeFileSync(config, JSON.stringify({ compilerOptions, files }, null, 2))
    const t = performance.now()
    await node([tsc, '-p', config], project, `tsc --strict with moduleResolution ${title}`)
    return `${title}: ok (${ms(t)})`
  })
  tscRuns.forEach((p) => p.catch(() => {})) // awaited below, after the runtime checks

  await step("CommonJS: require('file-lock-manager') — lock, document, mergeJson", async () => {
    const out = await node(['smoke.cjs'], project, 'the CommonJS smoke test')
    return out
  })
  await step("ESM: import { FileLockManager, … } from 'file-lock-manager' — every export is a named export", async () => {
    const out = await node(['smoke.mjs'], project, 'the ESM smoke test')
    return out
  })
  const bins = Object.keys(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {}))
  if (bins.length > 0) {
    await step(`bin: ${bins.map((name) => `node_modules/.bin/${name} --version`).join(', ')}`, async () => {
      const lines = []
      for (const name of bins) {
        const shim = join(project, 'node_modules', '.bin', isWindows ? `${name}.cmd` : name)
        if (!existsSync(shim)) problem(`npm did not link the "${name}" command (node_modules/.bin/${name})`)
        const out = (await run(shim, ['--version'], project, `the installed "${name}" command`)).trim()
        if (out !== pkg.version) problem(`\`${name} --version\` printed ${JSON.stringify(out)}, expected ${pkg.version}`)
        lines.push(`${name} --version: ${out}`)
      }
      return lines.join('\n')
    })
  }
  await step('TypeScript: tsc --strict --noEmit against the installed types', async () => (await Promise.all(tscRuns)).join('\n'))
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

// ---------------------------------------------------------------------------
// The consumer project's files.

const CJS_SMOKE = String.raw`'use strict'
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const here = fs.realpathSync(__dirname)
const entry = require.resolve('file-lock-manager')
assert.ok(entry.startsWith(path.join(here, 'node_modules') + path.sep), 'file-lock-manager resolved outside the project: ' + entry)
const api = require('file-lock-manager')
const { FileLockManager, FileLockError, JsonDocument, Lock, mergeJson, diffJson, DEFAULTS } = api

// The exports map: the entry and package.json, nothing else (the generated
// loader would skip every argument check; internals are not an API).
assert.equal(require('file-lock-manager/package.json').name, 'file-lock-manager')
for (const internal of ['file-lock-manager/native.js', 'file-lock-manager/lib/manager.js', 'file-lock-manager/lib/document.js', 'file-lock-manager/lib/json-values.js', 'file-lock-manager/lib', 'file-lock-manager/index.js']) {
  assert.throws(() => require(internal), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }, internal + ' should not be importable')
}

// Everything loaded comes from this project, the binary from the platform package.
const loaded = Object.keys(require.cache)
const foreign = loaded.filter((file) => !file.startsWith(here + path.sep))
assert.deepEqual(foreign, [], 'modules loaded from outside the project')
const binary = loaded.find((file) => file.endsWith('.node'))
assert.ok(binary, 'no native binary in require.cache')
assert.match(path.relative(here, binary), /^node_modules[\\/]file-lock-manager-[^\\/]+[\\/]file-lock-manager\.[^\\/]+\.node$/)

async function main() {
  const dir = fs.mkdtempSync(path.join(here, 'data-'))
  const file = path.join(dir, 'roles.json')
  const manager = new FileLockManager({ timeoutMs: 2000 })
  const events = []
  manager.on('acquired', () => events.push('acquired'))
  manager.on('released', (e) => events.push('released:' + e.reason))

  const lock = await manager.acquireLock(file)
  assert.ok(lock instanceof Lock)
  assert.equal(typeof lock.fencingToken, 'number')
  assert.equal(lock.exclusive, true)
  // A second manager is another holder: it cannot have the lock while it is held.
  const other = new FileLockManager({ timeoutMs: 0, retries: 1 })
  await assert.rejects(other.acquireLock(file), (error) => error instanceof FileLockError && error.code === 'ELOCKTIMEOUT')
  await lock.release()
  assert.equal(lock.released, true)
  const token = await other.withLock(file, (held) => held.fencingToken)
  assert.ok(token > lock.fencingToken, 'fencing tokens grow')
  await other.close()

  const doc = await manager.openDocument(file, { defaultValue: { roles: [] } })
  assert.ok(doc instanceof JsonDocument)
  await doc.update((value) => {
    value.roles.push({ id: 'admin', name: 'Admin' })
  })
  doc.edit((value) => {
    value.roles[0].name = 'Administrator'
  })
  await doc.save()
  await doc.close()
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { roles: [{ id: 'admin', name: 'Administrator' }] })

  const base = { roles: [{ id: 'admin', name: 'Admin' }] }
  const mine = { roles: [{ id: 'admin', name: 'Administrator' }] }
  const theirs = { roles: [{ id: 'admin', name: 'Admin' }, { id: 'viewer', name: 'Viewer' }] }
  const result = mergeJson(base, mine, theirs)
  assert.equal(result.clean, true)
  assert.deepEqual(result.merged, { roles: [{ id: 'admin', name: 'Administrator' }, { id: 'viewer', name: 'Viewer' }] })
  assert.deepEqual(diffJson(base, mine).map((c) => c.path), ['$.roles[id="admin"].name'])

  await manager.close()
  fs.rmSync(dir, { recursive: true, force: true })
  // The lock above, then the document's writes (each under the lock), all released.
  assert.deepEqual(events.slice(0, 2), ['acquired', 'released:released'])
  assert.equal(events.filter((e) => e === 'acquired').length, events.filter((e) => e === 'released:released').length)
  console.log('exports: ' + Object.keys(api).join(', '))
  console.log('binary: ' + path.relative(here, binary))
  console.log('lock: acquired, contended (ELOCKTIMEOUT from a second manager), released; fencing tokens ' + lock.fencingToken + ' < ' + token)
  console.log('document: openDocument, update, edit + save, close: roles.json holds the expected value')
  console.log('mergeJson: ' + JSON.stringify(result.merged) + '; DEFAULTS.timeoutMs = ' + DEFAULTS.timeoutMs)
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
`

const ESM_SMOKE = String.raw`import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import fs from 'node:fs'
import path from 'node:path'
import defaultExport, * as namespace from 'file-lock-manager'
import { FileLockManager, FileLockError, JsonDocument, Lock, Watcher, DEFAULTS, mergeJson, diffJson } from 'file-lock-manager'

const here = fs.realpathSync(path.dirname(fileURLToPath(import.meta.url)))
const resolved = fileURLToPath(import.meta.resolve('file-lock-manager'))
assert.ok(resolved.startsWith(path.join(here, 'node_modules') + path.sep), 'resolved outside the project: ' + resolved)

// Node finds the CommonJS exports statically (cjs-module-lexer): every one must be a named export.
const cjs = createRequire(import.meta.url)('file-lock-manager')
assert.equal(defaultExport, cjs, 'the default export is module.exports')
const missing = Object.keys(cjs).filter((name) => namespace[name] !== cjs[name])
assert.deepEqual(missing, [], 'exports that ESM cannot import by name (cjs-module-lexer did not detect them)')
for (const value of [FileLockManager, FileLockError, JsonDocument, Lock, Watcher, mergeJson, diffJson]) assert.equal(typeof value, 'function')
assert.equal(typeof DEFAULTS, 'object')

const dir = fs.mkdtempSync(path.join(here, 'data-'))
const file = path.join(dir, 'roles.json')
const manager = new FileLockManager()
const token = await manager.withLock(file, (lock) => {
  assert.ok(lock instanceof Lock)
  return lock.fencingToken
})
const doc = await manager.openDocument(file, { defaultValue: { roles: [] } })
await doc.update((value) => {
  value.roles.push({ id: 'viewer', name: 'Viewer' })
})
await doc.close()
await manager.close()
const { merged } = mergeJson({ a: 1 }, { a: 1, b: 2 }, { a: 3 })
assert.deepEqual(merged, { a: 3, b: 2 })
assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { roles: [{ id: 'viewer', name: 'Viewer' }] })
fs.rmSync(dir, { recursive: true, force: true })
console.log('named exports: ' + Object.keys(namespace).filter((n) => n !== 'default').join(', ') + ' (+ default)')
console.log('withLock (token ' + token + '), openDocument + update + close, mergeJson: ok')
`

const TS_USAGE = `// Compiled, not run: a consumer's code against the installed package's types.
import { FileLockManager, FileLockError, mergeJson, diffJson, DEFAULTS } from 'file-lock-manager'
import type { Lock, JsonDocument, HolderInfo, DocumentConflictEvent, MergeResult, JsonChange, FileLockErrorCode } from 'file-lock-manager'

interface Role {
  id: string
  name: string
  permissions?: string[]
}
interface Roles {
  roles: Role[]
}

export async function useThePackage(file: string): Promise<number> {
  const manager = new FileLockManager({ timeoutMs: 2000, strategy: 'lockfile', leaseMs: Infinity })
  manager.on('waiting', (e) => console.log(e.message, e.attempt, e.holder?.description))
  manager.on('stale-lock-removed', (e) => console.log(e.reason))
  manager.on('conflict', (e) => console.log(e.conflicts.length))

  const lock: Lock = await manager.acquireLock(file, { exclusive: true, timeoutMs: 100, signal: AbortSignal.timeout(1000) })
  const token: number = lock.fencingToken
  const strategy: 'os' | 'lockfile' = lock.strategy
  await lock.release()
  const next: number = await manager.withLock(file, async (held) => held.fencingToken + 1)
  const holder: HolderInfo | null = await manager.inspect(file)
  console.log(strategy, holder?.description)

  const doc: JsonDocument<Roles> = await manager.openDocument<Roles>(file, { defaultValue: { roles: [] }, onConflict: 'mine' })
  const saved: Roles = await doc.update((value) => {
    value.roles.push({ id: 'admin', name: 'Admin' })
  })
  doc.edit((value) => {
    value.roles[0].name = 'Administrator'
  })
  doc.on('external-change', (e) => {
    const changes: JsonChange[] = e.changes
    const now: Roles | null = e.newValue
    console.log(changes.length, now?.roles.length)
  })
  doc.on('conflict', (e: DocumentConflictEvent<Roles>) => {
    if (!e.policy) void e.resolve('mine')
    console.log(e.conflicts.map((c) => c.path))
  })
  await doc.save()
  await doc.close()

  const result: MergeResult<Roles> = mergeJson<Roles>(saved, saved, saved, { arrayKey: 'id', favor: 'mine' })
  const changed: JsonChange[] = diffJson(saved, result.merged)

  try {
    await manager.acquireLock(file, { retries: 1 })
  } catch (error) {
    if (error instanceof FileLockError) {
      const code: FileLockErrorCode = error.code
      console.log(code, error.waitedMs)
    }
  }

  // The types are real, not any:
  // @ts-expect-error unknown strategy
  new FileLockManager({ strategy: 'mutex' })
  // @ts-expect-error unknown event
  manager.on('no-such-event', () => {})
  // @ts-expect-error the document's shape is checked
  await doc.set({ role: [] })

  await manager.close()
  return token + next + changed.length + result.conflicts.length + DEFAULTS.timeoutMs
}
`

// ---------------------------------------------------------------------------

const tmpRoot = realpathSync(mkdtempSync(join(realpathSync(tmpdir()), 'file-lock-manager-pack-test-')))
let failed = false
const deferred = [] // problems that do not stop the remaining checks
try {
  const inside = relative(repo, tmpRoot)
  if (!inside.startsWith('..') && !isAbsolute(inside)) {
    problem(`the temp directory ${tmpRoot} is inside the repo ${repo}: set TMPDIR to a directory outside it`)
  }
  await main()
  if (deferred.length) problem(deferred.join('\n\n'))
} catch (error) {
  failed = true
  if (error instanceof Problem) console.error(`\n✗ pack-test: ${error.message}`)
  else console.error('\n✗ pack-test crashed:', error)
} finally {
  children.abort()
  rmSync(tmpRoot, { recursive: true, force: true, maxRetries: 3 })
}
if (failed) process.exit(1)
console.log(`\npack-test: the package installs and works like any other (${ms(startedAt)})`)
