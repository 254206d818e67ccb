'use strict'
// A document's backups folder, beside the file its data lives in.
//
// Invariant: a version is never lost to a write of ours. The version found at
// open is kept as a good backup, a file that does not parse is copied aside
// before it is reported (ECORRUPT), the file is copied before a conflict's
// resolution changes it; the newest `backups` copies of each kind are kept,
// so bad copies never push out good ones.

const fsp = require('node:fs/promises')
const path = require('node:path')
// The addon's module object, looked up at each write (tests inject failures there).
const addon = require('../../native.js')
const { fromNative } = require('../errors.js')
const { parseJson } = require('../json-values.js')
const { utf8, exists, readRegular, fitName } = require('./files.js')

class Backups {
  #doc

  constructor(doc) {
    this.#doc = doc
  }

  // Beside the file the data lives in (through links: where they lead, as the
  // lock and the temp files), named to fit NAME_MAX as native code expects it.
  get #dir() {
    let file = this.#doc.filePath
    try {
      file = this.#doc.native.resolvePath(file)
    } catch {
      // A closed manager or a vanished folder: beside the path as given.
    }
    return path.join(path.dirname(file), fitName('.', path.basename(file), '.backups'))
  }

  /** Copies `text` (a string or bytes) into the folder as `<time>.<kind>`; returns its path. */
  async save(text, kind) {
    const { options } = this.#doc
    const dir = this.#dir
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    let backupPath = path.join(dir, `${stamp}.${kind}`)
    for (let n = 1; await exists(backupPath); n++) backupPath = path.join(dir, `${stamp}-${n}.${kind}`)
    // A string is written as UTF-8 by replaceFile itself.
    await addon.replaceFile(backupPath, text, options.durability !== 'none').catch((error) => {
      throw fromNative(error, { filePath: backupPath })
    })
    const same = (await fsp.readdir(dir)).filter((name) => name.endsWith(`.${kind}`)).sort()
    for (const name of same.slice(0, Math.max(0, same.length - options.backups))) {
      await fsp.rm(path.join(dir, name), { force: true })
    }
    return backupPath
  }

  // Keeps the version found at open as a good backup (unless the newest one is
  // the same bytes): what `recoverFromBackup` restores if the file is later damaged.
  // Best effort: a full disk or a read-only folder must not stop the open.
  async snapshot(text) {
    try {
      const newest = (await this.#ofKind('json'))[0]
      if (newest !== undefined) {
        // Read safely and only as far as it could be the same bytes; compared
        // as text (no second copy of a big document's bytes made here).
        const size = Buffer.byteLength(text)
        const found = (await readRegular(newest, size).catch(() => null))?.bytes
        let same = false
        try {
          same = found?.length === size && utf8.decode(found) === text
        } catch {
          // Not UTF-8: not the same.
        }
        if (same) return
      }
      await this.save(text, 'json')
    } catch (error) {
      this.#doc.audit('backup-failed', 'other', `could not keep a backup of ${this.#doc.filePath}: ${error.message}`)
    }
  }

  // Backups of one kind, newest first.
  // Only regular files: anything else found there is never read (it could block).
  async #ofKind(kind) {
    const dir = this.#dir
    const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])
    const names = entries.filter((entry) => entry.isFile() && entry.name.endsWith(`.${kind}`)).map((entry) => entry.name)
    return names.sort().reverse().map((name) => path.join(dir, name))
  }

  // The file is unreadable (its bytes already copied aside): put back the newest
  // good backup, or fail with ECORRUPT saying that none was usable.
  async recover(corrupt) {
    const { disk } = this.#doc
    for (const candidate of await this.#ofKind('json')) {
      const text = await fsp.readFile(candidate, 'utf8').catch(() => null)
      let value
      try {
        value = parseJson(text)
      } catch {
        continue
      }
      if (value === null || typeof value !== 'object') continue
      disk.numbers.read(text, value) // the backup's inexact numbers keep their text
      await disk.write(value, { overwrite: true })
      this.#doc.recovery = { backupPath: candidate, corruptPath: corrupt.backupPath }
      this.#doc.audit('recovered', 'applied', `restored ${candidate}; the unreadable bytes are in ${corrupt.backupPath}`)
      return
    }
    corrupt.message += '; no good backup to recover from'
    throw corrupt
  }
}

module.exports = { Backups }
