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
const addon = require('../../native.js')
const { FileLockError, fromNative } = require('../errors.js')

// ignoreBOM keeps a byte order mark in the text, so the text is the file's
// exact bytes (backups stay byte-exact); parseJson skips it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// A FileLockError whose details are kept as given (a null `backupPath` says no copy was made).
function coded(code, message, details) {
  return Object.assign(new FileLockError(code, message), details)
}

async function exists(filePath) {
  return fsp.access(filePath).then(() => true, () => false)
}

// 256 MiB: far above any settings or roles file, and half of V8's longest
// string (~512 MiB), so a file within it can always be decoded and re-written.
const MAX_BYTES_DEFAULT = 256 * 1024 * 1024

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
// `maxBytes`, and their version (a token for commitDocument); null when it
// does not exist. `local`: the file is on a local disk (its lock is an OS
// lock; a network share's is a lock file), where a file of at most 64 KiB is
// read on this thread (native readSmallDocument: ~10 µs, a quarter of a trip
// to the thread pool and back); anything else in one trip off it (native
// readDocument), so a share's latency never stalls this thread. Either way:
// stat, open with O_NONBLOCK, fstat, read, hash. `held`: the version token
// held, when the file need not be read if that stat says it may still be
// that version (HELD then, nothing opened).
/** What readRegular gives when the file may still be the version held (not read). */
const HELD = Symbol('held')

async function readRegular(filePath, maxBytes, local = false, held = null) {
  const since = held ?? undefined
  let found
  try {
    found = (local ? addon.readSmallDocument(filePath, maxBytes, since) : null) ?? (await addon.readDocument(filePath, maxBytes, since))
  } catch (error) {
    throw fromNative(error, { filePath })
  }
  if (found.kind === 'held') return HELD
  if (found.kind === 'missing') return null
  if (found.kind === 'notAFile') throw notAFile(filePath, found.what)
  if (found.kind === 'tooBig') throw tooBig(filePath, found.size ?? null, maxBytes)
  return { bytes: found.bytes, version: found.version }
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

module.exports = { utf8, coded, exists, MAX_BYTES_DEFAULT, kindOf, notAFile, tooBig, readRegular, HELD, fitName }
