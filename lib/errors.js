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

// The engine's codes: what the native side sets as `error.code` (napi's own
// failures carry codes like `GenericFailure`, which are not ours).
const ENGINE_CODE = /^E[A-Z0-9]+$/

/**
 * A FileLockError from an error the native side threw or rejected with: its
 * `code` is the engine's stable code (the one channel; no message is parsed).
 * Anything else (not from the engine) is returned as it is.
 */
function fromNative(error, details) {
  if (typeof error?.code !== 'string' || !ENGINE_CODE.test(error.code)) return error
  return new FileLockError(error.code, error.message, details)
}

module.exports = { FileLockError, fromNative, ENGINE_CODE }
