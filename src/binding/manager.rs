//! `NativeLockManager`: the JS class over `lock::LockManager`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use parking_lot::Mutex;

use super::coded::{off_thread, to_napi_error, Coded, OffThread};
use super::convert::{
    duration_from_ms, failure, path_string, Completed, InspectOutcome, LockGrant, NativeLockEvent,
    NativeManagerOptions,
};
use file_lock_core::audit::{AuditEntry, AuditFile, AuditSink};
use file_lock_core::document::DocumentEvent;
use file_lock_core::lock::{
    AcquireRequest, EventSink, HeldLock, LockError, LockEvent, LockManager, ManagerOptions, Mode,
    ReleaseReason, Request,
};

/// Both callbacks are weak (unref'd): they never keep Node alive by themselves.
/// While requests wait, the JS side keeps the process alive.
type EventCallback = ThreadsafeFunction<NativeLockEvent, (), NativeLockEvent, Status, false, true>;
type CompletionCallback = ThreadsafeFunction<Completed, (), Completed, Status, false, true>;
/// Receives each audit entry as one JSON line.
type AuditCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

struct JsAuditLogger(AuditCallback);

impl AuditSink for JsAuditLogger {
    fn record(&self, entry: AuditEntry) {
        self.0.call(
            entry.to_json_line(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

/// Every entry to every sink (the file and the logger may both be set).
struct AuditSinks(Vec<Box<dyn AuditSink>>);

impl AuditSink for AuditSinks {
    fn record(&self, entry: AuditEntry) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.record(entry.clone());
            }
            last.record(entry);
        }
    }

    fn close(&self) {
        for sink in &self.0 {
            sink.close();
        }
    }
}

/// Rotated audit trails kept beside the current one.
const AUDIT_ROTATIONS: u32 = 3;
const AUDIT_DEFAULT_MAX_BYTES: f64 = 10.0 * 1024.0 * 1024.0;

struct JsEventSink {
    callback: EventCallback,
    wants_waiting: AtomicBool,
}

impl EventSink for JsEventSink {
    fn emit(&self, event: LockEvent) {
        self.callback
            .call(event.into(), ThreadsafeFunctionCallMode::NonBlocking);
    }

    fn wants_waiting(&self) -> bool {
        self.wants_waiting.load(Ordering::Relaxed)
    }
}

fn grant(held: &HeldLock) -> LockGrant {
    LockGrant {
        id: held.id as i64,
        file_path: path_string(held.path()),
        exclusive: held.mode.is_exclusive(),
        strategy: held.strategy().into(),
        strategy_reason: held.strategy_reason(),
        fencing_token: held.fencing_token as i64,
        held: !held.is_released(),
    }
}

/// The native lock manager. Use `FileLockManager` from the package instead:
/// it adds validation, AbortSignal, events, `withLock` and `Symbol.asyncDispose`.
#[napi]
pub struct NativeLockManager {
    core: LockManager,
    events: Arc<JsEventSink>,
    completions: Arc<CompletionCallback>,
    waiting: Arc<Mutex<HashMap<u32, Arc<Request>>>>,
}

#[napi]
impl NativeLockManager {
    #[napi(
        constructor,
        ts_args_type = "options: NativeManagerOptions, onEvent: (event: NativeLockEvent) => void, onComplete: (requestId: number, idOrFailure: number | LockFailure | undefined, fencingToken?: number, flags?: number, filePath?: string, strategyReason?: string) => void, onAudit?: (jsonLine: string) => void"
    )]
    pub fn new(
        options: NativeManagerOptions,
        on_event: EventCallback,
        on_complete: CompletionCallback,
        on_audit: Option<AuditCallback>,
    ) -> napi::Result<Self, String> {
        let mut core_options = ManagerOptions::try_from(&options)
            .map_err(|e| napi::Error::new("EINVAL".to_string(), e.reason.clone()))?;
        let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
        if let Some(path) = &options.audit_log {
            let max_bytes = options
                .audit_log_max_bytes
                .unwrap_or(AUDIT_DEFAULT_MAX_BYTES);
            let trail = AuditFile::open(path.into(), max_bytes as u64, AUDIT_ROTATIONS)
                .map_err(|e| to_napi_error(LockError::io(path, "open the audit log", e)))?;
            sinks.push(Box::new(trail));
        }
        if let Some(logger) = on_audit {
            sinks.push(Box::new(JsAuditLogger(logger)));
        }
        if !sinks.is_empty() {
            core_options.audit = Some(Arc::new(AuditSinks(sinks)));
        }
        let events = Arc::new(JsEventSink {
            callback: on_event,
            wants_waiting: AtomicBool::new(false),
        });
        Ok(NativeLockManager {
            core: LockManager::new(core_options, events.clone()),
            events,
            completions: Arc::new(on_complete),
            waiting: Arc::default(),
        })
    }

    /// The engine, for a native call of another binding that ends a lock of
    /// this manager itself (`commitDocument` lets its lock go after the rename).
    pub(crate) fn core(&self) -> &LockManager {
        &self.core
    }

    /// Whether `waiting` events are wanted (building one reads the holder record).
    #[napi]
    pub fn set_waiting_interest(&self, wanted: bool) {
        self.events.wants_waiting.store(wanted, Ordering::Relaxed);
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

    /// Starts waiting for the lock. The outcome arrives through `onComplete`
    /// with this `requestId`, delivered from the thread that decided it (for a
    /// handoff from another process: the thread the kernel woke). Throws only
    /// for a path that cannot be locked.
    #[napi]
    pub fn acquire(
        &self,
        path: String,
        exclusive: bool,
        timeout_ms: f64,
        retries: u32,
        request_id: u32,
    ) -> napi::Result<(), String> {
        let request = AcquireRequest {
            mode: Mode::from_exclusive(exclusive),
            timeout: duration_from_ms(timeout_ms)
                .map_err(|e| napi::Error::new("EINVAL".to_string(), e.reason.clone()))?,
            retries,
        };
        let completions = Arc::clone(&self.completions);
        let waiting = Arc::clone(&self.waiting);
        let failure_path = path.clone();
        let done = Box::new(move |result: Result<Arc<HeldLock>, _>| {
            waiting.lock().remove(&request_id);
            let undo = result.as_ref().ok().map(Arc::clone);
            let completed = match result {
                Ok(held) => Completed::Granted { request_id, held },
                Err(e) => Completed::Failed {
                    request_id,
                    failure: Box::new(failure(e, &failure_path)),
                },
            };
            if completions.call(completed, ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
                // JS is gone (worker or env teardown): nobody will ever release it.
                if let Some(held) = undo {
                    held.release_later();
                }
            }
        });
        let request = self
            .core
            .acquire_then(&path, request, done)
            .map_err(to_napi_error)?;
        self.waiting.lock().insert(request_id, Arc::clone(&request));
        // It may have ended before it was registered (granted or failed at once).
        if request.is_finished() {
            self.waiting.lock().remove(&request_id);
        }
        Ok(())
    }

    /// Whether the lock is still held: a grant that reached JS late (after a
    /// lease expiry or `close()`) may already be gone.
    #[napi]
    pub fn is_held(&self, lock_id: i64) -> bool {
        self.core.is_held(lock_id as u64)
    }

    /// Aborts a waiting `acquire`. Unknown or finished ids are ignored.
    #[napi]
    pub fn cancel(&self, request_id: u32) {
        let request = self.waiting.lock().remove(&request_id);
        if let Some(request) = request {
            request.cancel();
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

    /// Forgets what this spelling of a path was resolved to (it became a link).
    #[napi]
    pub fn forget_spelling(&self, path: String) {
        self.core.forget_spelling(&path);
    }

    /// Who holds the lock on `path`, as seen from outside (`holder` unset when free).
    #[napi(ts_return_type = "Promise<InspectOutcome>")]
    pub fn inspect(&self, path: String) -> AsyncTask<OffThread<InspectOutcome>> {
        let core = self.core.clone();
        off_thread(move || {
            Ok(match core.inspect(&path) {
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

    /// Writes a document event (`recovered`, `external-change`, `merged`,
    /// `conflict`, `conflict-resolved`) to the audit trail / logger.
    #[napi]
    pub fn record_document_event(
        &self,
        op: String,
        path: String,
        outcome: String,
        detail: Option<String>,
    ) -> napi::Result<(), String> {
        let op = DocumentEvent::from_name(&op)
            .ok_or_else(|| Coded::invalid(format!("unknown document event {op}")))?;
        // Outcomes come from a fixed vocabulary (the entry's field is static).
        let outcome = match outcome.as_str() {
            "applied" => "applied",
            "reloaded" => "reloaded",
            "pending" => "pending",
            "mine" => "mine",
            "theirs" => "theirs",
            "merged" => "merged",
            "value" => "value",
            "plain-fsync" => "plain-fsync",
            _ => "other",
        };
        self.core
            .record_audit(op.name(), std::path::Path::new(&path), outcome, detail);
        Ok(())
    }

    /// Releases every lock, fails every waiter with `ECLOSED` and removes
    /// unused lock files. Returns how many locks were released.
    #[napi]
    pub fn close(&self) -> u32 {
        let released = self.core.close() as u32;
        // Requests between attempts are not in any queue: end them too.
        let waiting: Vec<_> = self.waiting.lock().drain().map(|(_, r)| r).collect();
        for request in waiting {
            request.close();
        }
        released
    }

    /// How many locks this manager holds.
    #[napi(getter)]
    pub fn held_count(&self) -> u32 {
        self.core.held_count() as u32
    }
}

/// A manager garbage-collected (or torn down with its worker) without `close()`
/// still lets go of everything it holds and fails its waiters.
impl Drop for NativeLockManager {
    fn drop(&mut self) {
        self.close();
    }
}
