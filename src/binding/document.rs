//! The document store's file side for JS (`lib/document/`): atomic replace
//! and stale temp cleanup, as free functions. They need no lock manager: the
//! caller holds the lock; this only touches the file.
//!
//! Invariants:
//! - A replace happens off the JS thread and rejects with the engine's code
//!   (`coded`); a big text crosses as a string, never as a JS Buffer (a 50 MB
//!   Buffer's external memory made V8 collect garbage on the JS thread).
//! - Cleanup removes only temp files whose writer is provably gone
//!   (`document::atomic_write::remove_stale_temps`).

use std::path::Path;

use napi::bindgen_prelude::{Buffer, Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use file_lock_core::document::atomic_write::{self, Durability};
use file_lock_core::lock::LockError;

use super::coded::off_thread;

/// Replaces `path` with `data` atomically (unique temp file, rename), durably
/// when `durable` (fsync of file and directory), off the JS thread. Rejects
/// with an `Error` whose `code` is the errno code. `data` may be a string
/// (written as UTF-8).
// (Called from JS only: unused in `cargo test`.)
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<void>")]
pub fn replace_file<'env>(
    env: &'env Env,
    path: String,
    data: Either<Buffer, String>,
    durable: bool,
) -> napi::Result<PromiseRaw<'env, ()>, String> {
    let bytes: Vec<u8> = match data {
        Either::A(buffer) => buffer.to_vec(),
        Either::B(text) => text.into_bytes(),
    };
    let durability = if durable {
        Durability::Fsync
    } else {
        Durability::None
    };
    off_thread(env, move || {
        atomic_write::replace(Path::new(&path), &bytes, durability)
            .map_err(|e| LockError::io(&path, "write", e).into())
    })
}

/// Removes temp files of `path` left by writers that died; resolves with how many.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<number>")]
pub fn remove_stale_temps<'env>(
    env: &'env Env,
    path: String,
) -> napi::Result<PromiseRaw<'env, u32>, String> {
    off_thread(env, move || {
        // A directory we cannot list just has nothing we may clean.
        Ok(atomic_write::remove_stale_temps(Path::new(&path)).unwrap_or(0) as u32)
    })
}
