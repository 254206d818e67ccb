//! file-lock-core: the engine of file-lock-manager, in plain Rust that knows
//! nothing of JavaScript (the napi binding is the root crate).
//!
//! Invariant: no module here depends on napi or sets a global allocator, so
//! the engine is tested, cross-compiled and run without Node.
//!
//! - `lock`: the lock engine (queue, strategies, holder records, leases).
//! - `process`: who a holder is (pid, start time, host) and whether it lives.
//! - `fs_kind`: local disk or network share.
//! - `paths`: canonical file identity and the sidecar names beside a file.
//! - `watch`: the process's one file watcher.
//! - `document`: a JSON document's file side (atomic replace, number texts,
//!   text pieces, audit events).
//! - `json_merge`: three-way JSON merge and diff.
//! - `diagnose`: the CLI's status, break and doctor.
//! - `audit`: the JSON-lines audit trail.

pub mod audit;
pub mod diagnose;
pub mod document;
pub mod fs_kind;
pub mod json_merge;
pub mod lock;
pub mod paths;
pub mod process;
#[cfg(test)]
mod test_rng;
#[cfg(test)]
mod test_support;
pub mod watch;
