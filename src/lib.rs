//! file-lock-manager: cross-process file locks for Node and Electron.
//!
//! The crate is a plain-Rust core that knows nothing of JavaScript — `lock` (the
//! engine and its strategies), `process` (holder identity), `audit`, `fs_kind`,
//! `paths`, `watch` (the process's one watcher), `document` (atomic replace,
//! number texts, text pieces), `conflict` (three-way merge and diff) — plus one
//! `binding` module that is the only place with `#[napi]`: it converts options,
//! errors and events at the edge.

pub mod audit;
mod binding;
pub mod conflict;
pub mod document;
pub mod fs_kind;
pub mod lock;
pub mod paths;
pub mod process;
#[cfg(test)]
mod test_rng;
pub mod watch;

// JSON merges build and drop many small values; mimalloc makes that several
// times cheaper than the system allocator (the napi-rs projects' usual choice).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
