'use strict'
// FileLockError: every error of this package with a stable `code`, shared by
// the manager (index.js), documents and watchers.

class FileLockError extends Error {
  constructor(code, message, details) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'FileLockError'
    this.code = code
    if (details) {
      for (const [key, value] of Object.entries(details)) {
        if (key !== 'cause' && value !== undefined && value !== null) this[key] = value
      }
    }
  }
}

/**
 * A FileLockError from a native "CODE: message" text (replaceFile rejections,
 * watch failures); null when the text carries no code.
 */
function fromNativeMessage(text, details) {
  const match = /^([A-Z][A-Z0-9_]+): /.exec(text ?? '')
  return match ? new FileLockError(match[1], text.slice(match[0].length), details) : null
}

module.exports = { FileLockError, fromNativeMessage }
