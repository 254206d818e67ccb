//! file-lock-manager: the Node binding of `file-lock-core`.
//!
//! Invariant: this crate is the only place with `#[napi]`; it converts
//! options, errors and events at the edge and keeps no lock state of its own.
//! The engine (locks, watcher, documents' file side, merge, diagnostics) is
//! `crates/file-lock-core`, which knows nothing of JavaScript.

mod binding;

// JSON merges build and drop many small values: mimalloc makes the merge and
// diff of a 1.1 MB document ~1.5x faster than glibc's malloc (bench/allocator.mjs).
// Set here, not in the core: a library crate must leave that choice to its user.
// Not on Apple targets (Cargo.toml says why).
#[cfg(not(any(target_vendor = "apple", feature = "system-allocator")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
