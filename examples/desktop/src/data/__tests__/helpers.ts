// Test helpers of the desktop example: temp folders, the example compiled for
// child processes (TypeScript's transpileModule: plain JS, same code), child
// "app instances" driven over IPC (fixtures/roles-child.mjs), and a log of
// notices that tests wait on without timing assumptions.
import { fork, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import type { RolesNotice } from '../RolesRepository.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const SRC = path.resolve(HERE, '../..')
// The package itself: the repository root (its package.json names it and maps its exports).
const PACKAGE_ROOT = path.resolve(SRC, '../../..')
const CHILD = path.join(HERE, 'fixtures/roles-child.mjs')

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A fresh temp folder (canonical path). */
export function tempDir(prefix = 'desktop-example-'): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
}

/** What `promise` rejects with (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

/** The example compiled for other instances (set before a file's tests), and the current test's folder and its roles.json: live bindings set by `useExample`. */
export let built: string
export let dir: string
export let file: string

/**
 * Per test file: the example compiled once, for the instances in child
 * processes. Per test: a fresh folder whose roles.json holds `contents`;
 * afterwards `closeOwn` closes what the test opened here, then every other
 * instance is stopped and the folder is removed.
 */
export function useExample(contents: string, closeOwn: () => Promise<void>): void {
  beforeAll(() => {
    built = compileExample()
  })
  afterAll(() => removeDir(built))
  beforeEach(() => {
    dir = tempDir()
    file = path.join(dir, 'roles.json')
    fs.writeFileSync(file, contents)
  })
  afterEach(async () => {
    await closeOwn()
    await stopAllInstances()
    removeDir(dir)
  })
}

export function readJson<T = unknown>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}

/**
 * The example's src/ (tests left out) transpiled to ES modules in a temp folder,
 * with `file-lock-manager` linked as an app would have it installed. Returns the folder.
 */
export function compileExample(): string {
  const out = tempDir('desktop-example-build-')
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) return entry.name === '__tests__' ? [] : walk(full)
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : []
    })
  for (const file of walk(SRC)) {
    const { outputText } = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    })
    const target = path.join(out, path.relative(SRC, file)).replace(/\.ts$/, '.js')
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, outputText)
  }
  fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "module" }\n')
  fs.mkdirSync(path.join(out, 'node_modules'))
  fs.symlinkSync(PACKAGE_ROOT, path.join(out, 'node_modules/file-lock-manager'), 'junction')
  return out
}

/** Notices as they arrive; `next` takes the first unconsumed one matching, waiting for it if needed. */
export class NoticeLog {
  readonly all: RolesNotice[] = []
  #unconsumed: RolesNotice[] = []
  #waiters: { match: (n: RolesNotice) => boolean; resolve: (n: RolesNotice) => void }[] = []

  push = (notice: RolesNotice): void => {
    this.all.push(notice)
    const waiter = this.#waiters.find((w) => w.match(notice))
    if (waiter) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
      waiter.resolve(notice)
    } else {
      this.#unconsumed.push(notice)
    }
  }

  next<K extends RolesNotice['type']>(type: K, filter: (n: Extract<RolesNotice, { type: K }>) => boolean = () => true, timeoutMs = 20000): Promise<Extract<RolesNotice, { type: K }>> {
    const match = (n: RolesNotice): boolean => n.type === type && filter(n as Extract<RolesNotice, { type: K }>)
    const found = this.#unconsumed.find(match)
    if (found) {
      this.#unconsumed.splice(this.#unconsumed.indexOf(found), 1)
      return Promise.resolve(found as Extract<RolesNotice, { type: K }>)
    }
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: resolve as (n: RolesNotice) => void }
      this.#waiters.push(waiter)
      setTimeout(() => {
        if (!this.#waiters.includes(waiter)) return
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(new Error(`no '${type}' notice within ${timeoutMs} ms; seen: ${this.all.map((n) => n.type).join(', ') || 'none'}`))
      }, timeoutMs)
    })
  }
}

type Reply = { type: 'reply'; seq: number; ok: true; value: unknown } | { type: 'reply'; seq: number; ok: false; code: string | null; message: string }
type ChildMessage = Reply | { type: 'notice'; notice: RolesNotice } | { type: 'ready' }

const started = new Set<AppInstance>()

/** Another app instance: a Node process running the compiled example (fixtures/roles-child.mjs). */
export class AppInstance {
  readonly proc: ChildProcess
  readonly notices = new NoticeLog()
  stderr = ''
  #seq = 0
  #pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void; cmd: string }>()
  #exited: Promise<void>

  private constructor(built: string) {
    this.proc = fork(CHILD, [built], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d))
    this.#exited = new Promise((resolve) => this.proc.on('exit', () => resolve()))
    // Sending to a process that just died fails with EPIPE: the command's promise rejects (below).
    this.proc.on('error', (error) => (this.stderr += `\n${error.message}`))
    this.proc.on('exit', (code, signal) => {
      for (const [, p] of this.#pending) p.reject(new Error(`child exited (${code ?? signal}) during '${p.cmd}'; stderr: ${this.stderr}`))
      this.#pending.clear()
    })
    this.proc.on('message', (message: ChildMessage) => {
      if (message.type === 'notice') this.notices.push(message.notice)
      if (message.type !== 'reply') return
      const pending = this.#pending.get(message.seq)
      this.#pending.delete(message.seq)
      if (message.ok) pending?.resolve(message.value)
      else pending?.reject(Object.assign(new Error(`child '${pending.cmd}': ${message.message}`), { code: message.code }))
    })
    started.add(this)
  }

  static async start(built: string): Promise<AppInstance> {
    const instance = new AppInstance(built)
    await new Promise<void>((resolve, reject) => {
      instance.proc.once('message', () => resolve())
      instance.proc.once('exit', () => reject(new Error(`child did not start: ${instance.stderr}`)))
    })
    return instance
  }

  /** Runs a command in the child; rejects with the child's error (and its `code`). */
  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const seq = ++this.#seq
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject, cmd })
      this.proc.send({ seq, cmd, ...args }, (error) => {
        if (error === null || !this.#pending.has(seq)) return
        this.#pending.delete(seq)
        reject(error)
      })
    })
  }

  /** Kills the process (no release, no exit hooks: like a crash) and waits for it to be gone. */
  async crash(): Promise<void> {
    this.proc.kill('SIGKILL')
    await this.stop()
  }

  async stop(): Promise<void> {
    started.delete(this)
    if (this.proc.exitCode === null && this.proc.signalCode === null && !this.proc.killed) {
      await this.call('close').catch(() => {})
      this.proc.kill('SIGKILL')
    }
    await this.#exited
  }
}

/** Stops every instance a test left running. */
export async function stopAllInstances(): Promise<void> {
  await Promise.all([...started].map((instance) => instance.stop()))
}
