// A file replaced the atomic way (temp file, then rename over it) as another
// program does it — an editor, a sync tool — for the tests that play one.
//
// Invariant: on Windows the rename is retried on EPERM/EACCES/EBUSY for up to
// 2 s, as a Windows program saving a file must: Node's rename (libuv's
// MoveFileExW) cannot replace a file that anyone has open at that instant — our
// watch reading it after the previous change, a document reading it, an
// indexer — unless the rename has POSIX semantics, which Wine (where
// `npm run test:windows` runs these tests) lacks. Elsewhere: one rename, and
// its error is the test's.
import fs from 'node:fs'

const RETRIED = new Set(['EPERM', 'EACCES', 'EBUSY'])
const pause = new Int32Array(new SharedArrayBuffer(4))

export function renameOver(from, to) {
  const deadline = Date.now() + 2000
  for (;;) {
    try {
      fs.renameSync(from, to)
      return
    } catch (error) {
      if (process.platform !== 'win32' || !RETRIED.has(error.code) || Date.now() > deadline) throw error
      Atomics.wait(pause, 0, 0, 5) // a synchronous 5 ms pause: callers replace synchronously
    }
  }
}

/** Writes `text` to a temp file beside `file` (named `temp`) and renames it over `file`. */
export function replaceFile(file, text, temp = `${file}.tmp`) {
  fs.writeFileSync(temp, text)
  renameOver(temp, file)
}
