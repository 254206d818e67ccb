//! The Node binding: the only module with `#[napi]`. It converts options,
//! errors and events at the edge and keeps no lock state of its own.
//!
//! Every failure reaches JS one way: an `Error` whose `code` is the engine's
//! stable code (`coded`). An acquisition's failure is resolved as data
//! (`LockFailure`, handed to `onComplete`: the same code and message plus
//! `waitedMs`, `attempts`, `holder`) because the waiter it settles lives in JS.

mod chunks;
mod coded;
mod convert;
mod diagnose;
mod document;
mod json_merge;
mod manager;
mod numbers;
// Registered with Node by napi outside `cfg(test)`: unused in `cargo test`.
#[cfg_attr(test, allow(dead_code))]
mod watch;
