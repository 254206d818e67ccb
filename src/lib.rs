//! file-lock-manager: the Node binding of `file-lock-core`.
//!
//! Invariant: this crate is the only place with `#[napi]`; it converts
//! options, errors and events at the edge and keeps no lock state of its own.
//! The engine (locks, watcher, documents' file side, merge, diagnostics) is
//! `crates/file-lock-core`, which knows nothing of JavaScript.

mod binding;

// JSON merges build and drop many small values; mimalloc makes that several
// times cheaper than the system allocator (the napi-rs projects' usual choice).
// Set here, not in the core: a library crate must leave that choice to its user.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
