// A document's atomic write while another process is reading the file: the
// reader gets the version it opened, whole, and the write still lands. On Unix
// the rename replaces the name while the reader keeps the old inode; on Windows
// a replace cannot happen while the file is open without POSIX rename semantics
// (Wine, FAT, Windows before 10), so the write waits for the reader by retrying
// the rename (atomic_write.rs: about 2.5 s in all) — `npm run test:windows`
// runs this under Wine, where that retry is what makes it pass.
import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { file, runSnippet, useScratchDir, waitUntil } from './helpers.mjs'

const manager = useScratchDir()
const PAD = 'x'.repeat(256 * 1024) // big enough that a torn read would show

describe('a reader holding the file open', () => {
  it('reads the version it opened whole, and a write made meanwhile lands', async () => {
    fs.writeFileSync(file, JSON.stringify({ v: 0, pad: PAD }))
    const doc = await manager().openDocument(file)
    const reader = runSnippet(
      file,
      `const fs = require('node:fs')
      const fd = fs.openSync(file, 'r')
      console.log('open')
      await new Promise((resolve) => setTimeout(resolve, 400))
      const text = fs.readFileSync(fd, 'utf8')
      fs.closeSync(fd)
      const value = JSON.parse(text)
      console.log('read', value.v, text.length)`,
    )
    await waitUntil(() => reader.output().includes('open'), 10000, 'the reader to open the file')
    const started = Date.now()
    await doc.set({ v: 1, pad: PAD })
    const waited = Date.now() - started
    const { code, out } = await reader.exited
    expect(code, out).toBe(0)
    const length = JSON.stringify({ v: 0, pad: PAD }).length
    expect(out).toContain(`read 0 ${length}`) // the old version, whole
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).v).toBe(1)
    console.log(`[document-readers] the write resolved after ${waited} ms with a reader holding the file open`)
    await doc.close()
  })
})
