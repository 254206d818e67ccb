// Time for tests, torture scenarios and benches: nothing a test waits for may
// hang until the runner's own timeout, so every wait here ends with a message
// that names what did not happen.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Monotonic milliseconds (CLOCK_MONOTONIC: comparable across processes on one Linux machine). */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

/** Settles `promise`, or rejects after `ms` (code EHANG) naming `what` did not settle. */
export function within(promise, ms, what = 'operation') {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not settle within ${ms} ms`), { code: 'EHANG' })), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}
