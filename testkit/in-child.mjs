// For the child scripts (testkit/children, __test__/fixtures, torture/children,
// bench workers): a child never outlives its parent, never dies silently, and
// says only what it has handed to the OS — a parent that kills it mid-run knows
// exactly which reports can have been lost.

/** process.send as a promise: resolves once `message` is handed to the OS, rejects if it could not be. */
export function send(message) {
  return new Promise((resolve, reject) => process.send(message, (error) => (error ? reject(error) : resolve())))
}

/** The parent went away (its IPC channel closed): nobody is left to report to, so stop. */
export function exitWithParent() {
  process.on('disconnect', () => process.exit(0))
}

/**
 * An uncaught error or unhandled rejection is reported as {type:'error',
 * message, code, stack} before the child exits with 1 (at most 1 s later even
 * if the report cannot be sent): the parent's waits fail with the reason
 * instead of a bare exit code.
 */
export function reportCrashes() {
  const fail = (error) => {
    const message = { type: 'error', message: String(error?.message ?? error), code: error?.code, stack: error?.stack }
    try {
      process.send(message, () => process.exit(1))
    } catch {
      process.exit(1)
    }
    setTimeout(() => process.exit(1), 1000).unref()
  }
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)
  return fail
}
