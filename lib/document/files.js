'use strict'
// A document's file on disk, read safely, and the names made beside it.
//
// Invariant: a read never blocks and never outgrows memory. A FIFO (which
// would block a read until a writer comes), a device (/dev/zero never ends),
// a folder or a socket is refused with ENOTFILE before a byte is read, a FIFO
// is never opened without O_NONBLOCK, and more than `maxBytes` is refused with
// ETOOBIG after reading at most maxBytes + 1 bytes. Refused files are left as
// they are. Names made beside the file fit the file system's limit exactly as
// the native side builds them (both sides must find the same folder).

const fsp = require('node:fs/promises')
const { FileLockError } = require('../errors.js')

// ignoreBOM keeps a byte order mark in the text, so the text is the file's
// exact bytes (backups stay byte-exact); parseJson skips it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// A FileLockError whose details are kept as given (a null `backupPath` says no copy was made).
function coded(code, message, details) {
  return Object.assign(new FileLockError(code, message), details)
}

// A file changed twice within the file system's timestamp granularity can keep
// its size and mtime (git's "racily clean" problem): a stat is only trusted as
// a cache key once the file's last change is older than this.
const SETTLED_NS = 100_000_000n

// inode, size, mtime and ctime of the file; null when missing or too recent to trust.
async function statKey(filePath) {
  try {
    const s = await fsp.stat(filePath, { bigint: true })
    const newest = s.mtimeNs > s.ctimeNs ? s.mtimeNs : s.ctimeNs
    if (BigInt(Date.now()) * 1_000_000n - newest < SETTLED_NS) return null
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch {
    return null
  }
}

async function exists(filePath) {
  return fsp.access(filePath).then(() => true, () => false)
}

// 256 MiB: far above any settings or roles file, and half of V8's longest
// string (~512 MiB), so a file within it can always be decoded and re-written.
const MAX_BYTES_DEFAULT = 256 * 1024 * 1024
const OPEN_FOR_READING = fsp.constants.O_RDONLY | (fsp.constants.O_NONBLOCK ?? 0) | (fsp.constants.O_NOCTTY ?? 0)

function kindOf(stat) {
  if (stat.isDirectory()) return 'a folder'
  if (stat.isFIFO()) return 'a FIFO (named pipe)'
  if (stat.isCharacterDevice()) return 'a character device'
  if (stat.isBlockDevice()) return 'a block device'
  if (stat.isSocket()) return 'a socket'
  return 'not a regular file'
}

function notAFile(filePath, kind, linkedTo = filePath) {
  const what = kind === 'not a regular file' ? kind : `${kind}, not a regular file`
  const shown = linkedTo === filePath ? filePath : `${filePath} (a link to ${linkedTo})`
  return coded('ENOTFILE', `${shown} is ${what}: a document can only be a regular file; it was not read and is left as it is`, { filePath, kind })
}

function tooBig(filePath, size, maxBytes) {
  const howBig = size === null ? `more than ${maxBytes} bytes` : `${size} bytes`
  return coded('ETOOBIG', `${filePath} is ${howBig}, above the document's maxBytes (${maxBytes}); it was not read and is left as it is (raise maxBytes to open it)`, { filePath, maxBytes, ...(size === null ? {} : { size }) })
}

// The bytes of the regular file at `filePath` (through links), at most
// `maxBytes`; null when it does not exist.
async function readRegular(filePath, maxBytes) {
  // A stat first: a FIFO or a device is refused without being opened at all.
  const seen = await fsp.stat(filePath).catch((error) => (error.code === 'ENOENT' ? null : Promise.reject(error)))
  if (seen === null) return null
  if (!seen.isFile()) throw notAFile(filePath, kindOf(seen))
  if (seen.size > maxBytes) throw tooBig(filePath, seen.size, maxBytes)
  let handle
  try {
    handle = await fsp.open(filePath, OPEN_FOR_READING)
  } catch (error) {
    if (error.code === 'ENOENT') return null
    // Replaced since the stat: a socket cannot be opened (ENXIO), a folder on Windows (EISDIR).
    if (error.code === 'ENXIO') throw notAFile(filePath, 'a socket')
    if (error.code === 'EISDIR') throw notAFile(filePath, 'a folder')
    throw error
  }
  try {
    // What was opened is what counts (the name may have been replaced since the stat).
    const stat = await handle.stat()
    if (!stat.isFile()) throw notAFile(filePath, kindOf(stat))
    if (stat.size > maxBytes) throw tooBig(filePath, stat.size, maxBytes)
    // The size may change while we read, or be wrong (0 in /proc): never more than maxBytes + 1.
    const limit = maxBytes + 1
    let buffer = Buffer.allocUnsafe(Math.min(limit, stat.size + 1))
    let length = 0
    for (;;) {
      if (length === buffer.length) {
        if (length >= limit) break
        const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(length * 2, 64 * 1024)))
        buffer.copy(grown, 0, 0, length)
        buffer = grown
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > maxBytes) throw tooBig(filePath, null, maxBytes)
    return buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
}

// Names made beside the file (the backups folder; native code makes the
// sidecar and temp files) fit the file system's limit on a name: 255 bytes
// (255 UTF-16 units on Windows). One that would not is built on a stem, the
// name's first 96 and a hash of all of it, exactly as native `paths::fit`
// does (both sides must find the same folder).
const NAME_MAX = 255
const STEM_KEEP = 96
const nameUnits = process.platform === 'win32' ? (text) => text.length : (text) => Buffer.byteLength(text)

function fitName(lead, name, tail) {
  if (nameUnits(lead) + nameUnits(name) + nameUnits(tail) <= NAME_MAX) return lead + name + tail
  let kept = ''
  let used = 0
  for (const char of name) {
    used += nameUnits(char)
    if (used > STEM_KEEP) break
    kept += char
  }
  return `${lead}${kept}~${fnv1a64(name)}${tail}`
}

// FNV-1a, 64 bits, of the UTF-8 bytes, as 16 hex digits (the same in Rust).
function fnv1a64(text) {
  let hash = 0xcbf29ce484222325n
  for (const byte of Buffer.from(text)) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return hash.toString(16).padStart(16, '0')
}

module.exports = { utf8, coded, statKey, exists, MAX_BYTES_DEFAULT, kindOf, notAFile, tooBig, readRegular, fitName }
