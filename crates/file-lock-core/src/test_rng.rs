//! Deterministic pseudo-random numbers for the random-document tests
//! (xorshift64: the same sequence every run, so a failure reproduces).

/// A generator of numbers below `n`, from `seed` (not zero).
pub(crate) fn below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}
