//! `NativeLockManager`: the JS class over `lock::LockManager`.

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::PromiseRaw;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use parking_lot::Mutex;

use super::convert::{
    duration_from_ms, failure, path_string, to_napi_error, AcquireOutcome, InspectOutcome,
    LockGrant, NativeLockEvent, NativeManagerOptions,
};
use crate::lock::{
    AcquireRequest, CancelToken, EventSink, HeldLock, LockEvent, LockManager, Mode, ReleaseReason,
};

/// Unref'd (weak): pending events never keep Node alive.
type EventCallback = ThreadsafeFunction<NativeLockEvent, (), NativeLockEvent, Status, false, true>;

struct JsEventSink(EventCallback);

impl EventSink for JsEventSink {
    fn emit(&self, event: LockEvent) {
        self.0
            .call(event.into(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

fn grant(held: &HeldLock) -> LockGrant {
    LockGrant {
        id: held.id as i64,
        file_path: path_string(held.path()),
        exclusive: held.mode.is_exclusive(),
        strategy: "os".into(),
        fencing_token: held.fencing_token as i64,
    }
}

/// The native lock manager. Use `FileLockManager` from the package instead:
/// it adds validation, AbortSignal, events, `withLock` and `Symbol.asyncDispose`.
#[napi]
pub struct NativeLockManager {
    core: LockManager,
    waiting: Arc<Mutex<HashMap<u32, CancelToken>>>,
}

#[napi]
impl NativeLockManager {
    #[napi(
        constructor,
        ts_args_type = "options: NativeManagerOptions, onEvent: (event: NativeLockEvent) => void"
    )]
    pub fn new(options: NativeManagerOptions, on_event: EventCallback) -> napi::Result<Self> {
        Ok(NativeLockManager {
            core: LockManager::new(options.try_into()?, Arc::new(JsEventSink(on_event))),
            waiting: Arc::default(),
        })
    }

    /// Takes the lock when that needs no waiting; `null` when it is contended.
    #[napi]
    pub fn try_acquire(
        &self,
        path: String,
        exclusive: bool,
    ) -> napi::Result<Option<LockGrant>, String> {
        let held = self
            .core
            .try_acquire(&path, Mode::from_exclusive(exclusive))
            .map_err(to_napi_error)?;
        Ok(held.as_deref().map(grant))
    }

    /// Waits for the lock on a Rust task. Resolves with a grant or a failure;
    /// `cancel(requestId)` aborts the wait.
    #[napi(ts_return_type = "Promise<AcquireOutcome>")]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        path: String,
        exclusive: bool,
        timeout_ms: f64,
        retries: u32,
        request_id: u32,
    ) -> napi::Result<PromiseRaw<'env, AcquireOutcome>> {
        let request = AcquireRequest {
            mode: Mode::from_exclusive(exclusive),
            timeout: duration_from_ms(timeout_ms)?,
            retries,
        };
        let cancel = CancelToken::default();
        self.waiting.lock().insert(request_id, cancel.clone());
        let core = self.core.clone();
        let waiting = Arc::clone(&self.waiting);
        env.spawn_future(async move {
            let result = core.acquire(&path, request, &cancel).await;
            waiting.lock().remove(&request_id);
            Ok(match result {
                Ok(held) => AcquireOutcome {
                    grant: Some(grant(&held)),
                    failure: None,
                },
                Err(e) => AcquireOutcome {
                    grant: None,
                    failure: Some(failure(e, &path)),
                },
            })
        })
    }

    /// Aborts a waiting `acquire`. Unknown or finished ids are ignored.
    #[napi]
    pub fn cancel(&self, request_id: u32) {
        if let Some(token) = self.waiting.lock().remove(&request_id) {
            token.cancel();
        }
    }

    /// Releases a lock; `false` when it was already released.
    /// `reason`: `"garbage-collected"` for a lock its owner lost track of.
    #[napi]
    pub fn release(&self, lock_id: i64, reason: Option<String>) -> bool {
        let reason = match reason.as_deref() {
            Some("garbage-collected") => ReleaseReason::Dropped,
            _ => ReleaseReason::Explicit,
        };
        self.core.release(lock_id as u64, reason)
    }

    /// The canonical path under which `path` is locked.
    #[napi]
    pub fn resolve_path(&self, path: String) -> napi::Result<String, String> {
        self.core
            .resolve(&path)
            .map(|p| path_string(&p))
            .map_err(to_napi_error)
    }

    /// Who holds the lock on `path`, as seen from outside (`holder` unset when free).
    #[napi(ts_return_type = "Promise<InspectOutcome>")]
    pub fn inspect<'env>(
        &self,
        env: &'env Env,
        path: String,
    ) -> napi::Result<PromiseRaw<'env, InspectOutcome>> {
        let core = self.core.clone();
        env.spawn_future(async move {
            let probe_path = path.clone();
            let found = tokio::task::spawn_blocking(move || core.inspect(&probe_path))
                .await
                .map_err(|e| napi::Error::from_reason(e.to_string()))?;
            Ok(match found {
                Ok(holder) => InspectOutcome {
                    holder: holder.map(Into::into),
                    failure: None,
                },
                Err(e) => InspectOutcome {
                    holder: None,
                    failure: Some(failure(e, &path)),
                },
            })
        })
    }

    /// Releases every lock, fails every waiter with `ECLOSED` and removes
    /// unused lock files. Returns how many locks were released.
    #[napi]
    pub fn close(&self) -> u32 {
        let released = self.core.close() as u32;
        // Wakes waiters sleeping between attempts; they see the manager closed.
        for (_, token) in self.waiting.lock().drain() {
            token.cancel();
        }
        released
    }

    /// How many locks this manager holds.
    #[napi(getter)]
    pub fn held_count(&self) -> u32 {
        self.core.held_count() as u32
    }
}
