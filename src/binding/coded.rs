//! The one way a native failure reaches JS: an `Error` whose `code` is the
//! engine's stable code (`ELOCKTIMEOUT`, `EIO`, `EINVAL`, …) and whose message
//! is the engine's sentence.
//!
//! Invariants:
//! - Synchronous calls throw `napi::Error<String>` (the status string becomes
//!   `error.code`); promises reject with the same kind of error, built on the
//!   JS thread (`spawn_coded`), because napi's futures only reject with a
//!   `Status` code.
//! - No JS module parses a message for a code: what JS reads is `error.code`.

use std::future::Future;

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, JsError};

use file_lock_core::lock::LockError;

/// A failure on its way to JS: the engine's code and its sentence.
#[derive(Debug)]
pub struct Coded {
    pub code: String,
    pub message: String,
}

impl Coded {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Coded {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `EINVAL`: the caller passed something the engine refuses.
    pub fn invalid(message: impl Into<String>) -> Self {
        Coded::new("EINVAL", message)
    }

    /// `EINTERNAL`: a worker thread failed (a panic or a shut-down runtime).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Coded::new("EINTERNAL", error.to_string())
    }
}

impl From<LockError> for Coded {
    fn from(e: LockError) -> Self {
        Coded::new(e.code(), e.to_string())
    }
}

impl From<Coded> for napi::Error<String> {
    fn from(c: Coded) -> Self {
        napi::Error::new(c.code, c.message)
    }
}

/// A coded JS error for the synchronous calls (`error.code` is the lock code).
pub fn to_napi_error(e: LockError) -> napi::Error<String> {
    Coded::from(e).into()
}

/// A promise that resolves with `fut`'s value or rejects with its coded error.
pub fn spawn_coded<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, T>, String>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Coded>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, outcome| {
        outcome.map_err(|c| {
            let error = JsError::from(napi::Error::<String>::from(c)).into_unknown(*env);
            napi::Error::from(error)
        })
    })
    .map_err(|e| Coded::internal(e.reason).into())
}

/// `work` on the blocking pool, as a promise (see `spawn_coded`).
pub fn off_thread<'env, T>(
    env: &'env Env,
    work: impl FnOnce() -> Result<T, Coded> + Send + 'static,
) -> napi::Result<PromiseRaw<'env, T>, String>
where
    T: ToNapiValue + Send + 'static,
{
    spawn_coded(env, async move {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(Coded::internal)?
    })
}
