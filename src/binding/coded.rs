//! The one way a native failure reaches JS: an `Error` whose `code` is the
//! engine's stable code (`ELOCKTIMEOUT`, `EIO`, `EINVAL`, …) and whose message
//! is the engine's sentence.
//!
//! Invariants:
//! - Synchronous calls throw `napi::Error<String>` (the status string becomes
//!   `error.code`); promises (`off_thread`) reject with the same kind of
//!   error, built on the JS thread, because napi's tasks only reject with a
//!   `Status` code.
//! - No JS module parses a message for a code: what JS reads is `error.code`.

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::Task;
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

/// `work` on libuv's thread pool, as a promise that resolves with its value
/// or rejects with its coded error: every native call that leaves the JS
/// thread goes this way. One hop there and one back (the napi async work),
/// where a tokio blocking task took three (JS → blocking thread → runtime
/// worker → JS): ~70 µs less per call on this machine.
pub fn off_thread<T>(
    work: impl FnOnce() -> Result<T, Coded> + Send + 'static,
) -> AsyncTask<OffThread<T>>
where
    T: ToNapiValue + TypeName + Send + 'static,
{
    AsyncTask::new(OffThread {
        work: Some(Box::new(work)),
    })
}

/// The napi task behind `off_thread`.
pub struct OffThread<T> {
    work: Option<Box<dyn FnOnce() -> Result<T, Coded> + Send>>,
}

impl<T> Task for OffThread<T>
where
    T: ToNapiValue + TypeName + Send + 'static,
{
    type Output = Result<T, Coded>;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take().expect("a task is computed once");
        Ok(work())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<T> {
        output.map_err(|c| rejection(&env, c))
    }
}

/// The coded error as a JS value a promise can reject with.
fn rejection(env: &Env, c: Coded) -> napi::Error {
    napi::Error::from(JsError::from(napi::Error::<String>::from(c)).into_unknown(*env))
}
