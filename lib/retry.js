'use strict'
// Retry: the one backoff of this package's JS (the lock's own attempts and
// backoff are the native engine's). A document waits with it for the lock
// (lock-timeout), before giving up at close(), before saving a write kept
// after a disk failure, and before looking again at a file it could not read.
//
// Invariant: at most one try of a kind is pending at any time (a second
// later() while one waits is a no-op); the delay starts at `firstMs`, doubles
// with each try up to `maxMs`, and starts over after reset(); after
// `attempts` failures tryAgain() says stop.

class Retry {
  #firstMs
  #maxMs
  #attempts
  #unref
  #delay
  #failures = 0
  #timer = null

  /**
   * `maxMs` defaults to `firstMs` (a fixed delay); `unref`: a pending try does
   * not keep Node alive (what it retries is saved or reported at close()).
   */
  constructor({ firstMs = 0, maxMs = firstMs, attempts = Infinity, unref = false } = {}) {
    this.#firstMs = firstMs
    this.#maxMs = maxMs
    this.#attempts = attempts
    this.#unref = unref
    this.#delay = firstMs
  }

  /** Whether a try is waiting for its delay. */
  get pending() {
    return this.#timer !== null
  }

  /** Counts a failure: true while the attempts allow another one. */
  tryAgain() {
    return ++this.#failures < this.#attempts
  }

  /** Runs `fn` after the next delay; returns that delay, or null when a try already waits. */
  later(fn) {
    if (this.#timer !== null) return null
    const delay = this.#delay
    this.#delay = Math.min(Math.max(delay * 2, this.#firstMs), this.#maxMs)
    this.#timer = setTimeout(() => {
      this.#timer = null
      fn()
    }, delay)
    if (this.#unref) this.#timer.unref?.()
    return delay
  }

  /** Drops the waiting try; true when there was one. */
  cancel() {
    if (this.#timer === null) return false
    clearTimeout(this.#timer)
    this.#timer = null
    return true
  }

  /** After a success: the next delay is the first again, and the failures are forgotten. */
  reset() {
    this.#delay = this.#firstMs
    this.#failures = 0
  }
}

module.exports = { Retry }
