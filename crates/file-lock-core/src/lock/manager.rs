//! `LockManager`: the per-process registry of files being locked, the acquire
//! loop (attempts, backoff, timeouts, cancellation), held locks and leases.
//!
//! Invariants:
//! - One `PathLock` per canonical path per manager, so every caller in the
//!   process that names the same file (even by another spelling) meets in the
//!   same fair queue.
//! - Every granted hold is a `HeldLock` released exactly once, by whichever
//!   comes first: its holder, the lease timer, garbage collection or `close()`.
//! - A waiting request is state, not a blocked thread or task: the queue, the
//!   timer thread and `cancel` drive it, and the grant is handed over on the
//!   thread that produced it (for a cross-process handoff, the OS waiter thread
//!   the kernel just woke). Completions may run under the file's queue mutex:
//!   they must not call back into it (`HeldLock::release_later`).
//! - Idle files are forgotten once many are known, so a long-lived manager over
//!   many files keeps neither handles nor memory for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::config::{network_stretch, ManagerOptions, StrategyChoice};
use super::error::LockError;
use super::events::{EventSink, LockEvent, ReleaseReason};
use super::holder_record::{self, Holder, Strategy};
use super::os_lock;
use super::path_lock::{Enqueued, Grant, GrantResult, PathLock, StaleRemoved, Waiter};
use super::sidecar::{sidecar_path, Sidecar};
use super::timer::{self, TimerKey};
use super::Mode;
use crate::audit::AuditEntry;

/// Longest backoff between attempts, whatever the timeout.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct AcquireRequest {
    pub mode: Mode,
    pub timeout: Option<Duration>,
    pub retries: u32,
}

/// Called once with the outcome of a waiting acquisition, on whichever thread
/// decided it (the OS waiter, the timer, the releasing or cancelling caller),
/// possibly under the file's queue mutex: it must not lock or release that file
/// directly (use `HeldLock::release_later`).
pub type Completion = Box<dyn FnOnce(Result<Arc<HeldLock>, LockError>) + Send>;

/// A waiting acquisition: attempts, timeouts and backoff, driven by events
/// (grant, timer, cancel) rather than by a task that sits and waits.
///
/// Invariant: `done` is taken exactly once. The queue decides races: a waiter
/// is either answered by the queue or taken out by `PathLock::cancel`, never
/// both, and this struct's mutex is never held while calling into the queue.
pub struct Request {
    manager: LockManager,
    path_lock: Arc<PathLock>,
    request: AcquireRequest,
    attempts: u32,
    started: Instant,
    state: Mutex<RequestState>,
}

struct RequestState {
    attempt: u32,
    ticket: Option<u64>,
    timer: Option<TimerKey>,
    aborted: bool,
    done: Option<Completion>,
}

/// The queue's handle on a `Request`.
struct RequestWaiter(Arc<Request>);

impl Waiter for RequestWaiter {
    fn answer(self: Box<Self>, result: GrantResult) -> bool {
        let request = self.0;
        let mut st = request.state.lock();
        if st.done.is_none() {
            return false;
        }
        st.ticket = None;
        let outcome = result.map(|grant| {
            request.manager.hold(
                Arc::clone(&request.path_lock),
                grant,
                request.started.elapsed(),
            )
        });
        request.finish(st, outcome);
        true
    }
}

impl Request {
    /// Cancels the wait (AbortSignal): it ends with `ABORT_ERR` unless it already ended.
    pub fn cancel(self: &Arc<Self>) {
        self.end_early(|| self.aborted_error());
    }

    /// Ends the wait with `ECLOSED` (the manager is closing) unless it already ended.
    pub fn close(self: &Arc<Self>) {
        self.end_early(|| LockError::Closed);
    }

    /// Whether the outcome was delivered.
    pub fn is_finished(&self) -> bool {
        self.state.lock().done.is_none()
    }

    fn end_early(self: &Arc<Self>, error: impl Fn() -> LockError) {
        let ticket = {
            let mut st = self.state.lock();
            if st.done.is_none() {
                return;
            }
            st.aborted = true;
            st.ticket.take()
        };
        match ticket {
            // Still queued: end it only if we took it out before it was granted.
            Some(ticket) => {
                if self.path_lock.cancel(ticket) {
                    self.finish(self.state.lock(), Err(error()));
                }
            }
            // Between attempts (or not queued yet: start_attempt sees `aborted`).
            None => self.finish(self.state.lock(), Err(error())),
        }
    }

    fn aborted_error(&self) -> LockError {
        LockError::Aborted {
            path: self.path_lock.target.clone(),
        }
    }

    fn start_attempt(self: &Arc<Self>) {
        let attempt = {
            let st = self.state.lock();
            if st.done.is_none() {
                return;
            }
            if st.aborted {
                return self.finish(st, Err(self.aborted_error()));
            }
            if self.manager.is_closed() {
                return self.finish(st, Err(LockError::Closed));
            }
            st.attempt
        };
        let sink = &self.manager.inner.sink;
        let waiter = Box::new(RequestWaiter(Arc::clone(self)));
        let enqueued = self
            .path_lock
            .enqueue(self.request.mode, waiter, sink.wants_waiting());
        let (ticket, holder) = match enqueued {
            Err(e) => return self.finish(self.state.lock(), Err(e)),
            Ok(Enqueued::Granted(grant)) => {
                let held =
                    self.manager
                        .hold(Arc::clone(&self.path_lock), grant, self.started.elapsed());
                return self.finish(self.state.lock(), Ok(held));
            }
            Ok(Enqueued::Waiting { ticket, holder }) => (ticket, holder),
        };
        let mut st = self.state.lock();
        if st.done.is_none() {
            // Answered meanwhile: nothing to time. (An abort that raced us left
            // the ticket to us: make sure we are not left in the queue.)
            drop(st);
            self.path_lock.cancel(ticket);
            return;
        }
        if st.aborted {
            drop(st);
            if self.path_lock.cancel(ticket) {
                self.finish(self.state.lock(), Err(self.aborted_error()));
            }
            return;
        }
        st.ticket = Some(ticket);
        if let Some(timeout) = self.request.timeout {
            let me = Arc::clone(self);
            // A timeout too far away to represent is no timeout.
            st.timer = Instant::now()
                .checked_add(timeout)
                .map(|deadline| timer::schedule(deadline, move || me.attempt_timed_out()));
        }
        drop(st);
        if sink.wants_waiting() {
            sink.emit(LockEvent::Waiting {
                path: self.path_lock.target.clone(),
                mode: self.request.mode,
                attempt,
                attempts: self.attempts,
                elapsed: self.started.elapsed(),
                holder,
                network: self.path_lock.network(),
            });
        }
    }

    fn attempt_timed_out(self: &Arc<Self>) {
        let Some(ticket) = self.state.lock().ticket.take() else {
            return;
        };
        if !self.path_lock.cancel(ticket) {
            return; // granted in the same instant: the grant stands
        }
        let holder = self.path_lock.current_holder();
        let mut st = self.state.lock();
        st.timer = None;
        if st.done.is_none() {
            return;
        }
        if st.aborted {
            return self.finish(st, Err(self.aborted_error()));
        }
        if st.attempt >= self.attempts {
            let error = LockError::Timeout {
                path: self.path_lock.target.clone(),
                waited: self.started.elapsed(),
                attempts: self.attempts,
                holder: holder.map(Box::new),
                network: self.path_lock.network(),
            };
            return self.finish(st, Err(error));
        }
        let pause = backoff(st.attempt, self.request.timeout);
        st.attempt += 1;
        let me = Arc::clone(self);
        st.timer = Some(timer::schedule(Instant::now() + pause, move || {
            me.start_attempt()
        }));
    }

    fn finish(
        &self,
        mut st: parking_lot::MutexGuard<'_, RequestState>,
        outcome: Result<Arc<HeldLock>, LockError>,
    ) {
        let Some(done) = st.done.take() else {
            // Already ended (e.g. cancelled): hand back a grant nobody will use.
            if let Ok(held) = outcome {
                drop(st);
                held.release(ReleaseReason::Explicit);
            }
            return;
        };
        if let Some(key) = st.timer.take() {
            timer::cancel(key);
        }
        st.ticket = None;
        drop(st);
        if let Err(error) = &outcome {
            self.manager.inner.audit(|| AuditEntry {
                outcome: match error {
                    LockError::Timeout { .. } => "timeout",
                    LockError::Aborted { .. } => "aborted",
                    LockError::Closed => "closed",
                    _ => "error",
                },
                exclusive: Some(self.request.mode.is_exclusive()),
                waited_ms: Some(ms(self.started.elapsed())),
                detail: Some(error.to_string()),
                ..AuditEntry::new("acquire", &self.path_lock.target)
            });
        }
        done(outcome);
    }
}

/// A waiting acquisition as a future (see `LockManager::acquire_waiting`).
pub struct Waiting {
    pub request: Arc<Request>,
    outcome: tokio::sync::oneshot::Receiver<Result<Arc<HeldLock>, LockError>>,
}

impl Waiting {
    pub async fn outcome(self) -> Result<Arc<HeldLock>, LockError> {
        self.outcome.await.unwrap_or(Err(LockError::Closed))
    }
}

/// A granted lock. Dropping it does not release it: call `release`.
pub struct HeldLock {
    pub id: u64,
    pub mode: Mode,
    pub fencing_token: u64,
    pub acquired_at: Instant,
    path: Arc<PathLock>,
    /// When the lease runs out, if there is one.
    lease_deadline: Option<Instant>,
    /// The next check of this lock (lease expiry, or the sidecar still standing).
    watch: Mutex<Option<TimerKey>>,
    released: AtomicBool,
    manager: Weak<Inner>,
}

impl HeldLock {
    pub fn path(&self) -> &Path {
        &self.path.target
    }

    /// Why this file is locked with that strategy.
    pub fn strategy_reason(&self) -> String {
        self.path.strategy_reason()
    }

    /// `os` or `lockfile`: how this lock is held across processes.
    pub fn strategy(&self) -> &'static str {
        self.path.strategy().as_str()
    }

    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Releases the lock; `false` when it was already released.
    pub fn release(&self, reason: ReleaseReason) -> bool {
        if self.released.swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(key) = self.watch.lock().take() {
            timer::cancel(key);
        }
        // Tell the holder it lost the lock before anyone else can have it.
        if let Some(manager) = self.manager.upgrade() {
            manager.held.lock().remove(&self.id);
            manager.audit(|| AuditEntry {
                outcome: reason.as_str(),
                exclusive: Some(self.mode.is_exclusive()),
                fencing_token: Some(self.fencing_token),
                held_ms: Some(ms(self.acquired_at.elapsed())),
                ..AuditEntry::new(
                    match reason {
                        ReleaseReason::LeaseExpired => "lease-expired",
                        ReleaseReason::Compromised => "compromised",
                        _ => "release",
                    },
                    &self.path.target,
                )
            });
            if matches!(
                reason,
                ReleaseReason::LeaseExpired | ReleaseReason::Dropped | ReleaseReason::Compromised
            ) {
                manager.sink.emit(LockEvent::Released {
                    path: self.path.target.clone(),
                    lock_id: self.id,
                    mode: self.mode,
                    fencing_token: self.fencing_token,
                    held_for: self.acquired_at.elapsed(),
                    reason,
                });
            }
        }
        self.path.release(self.mode);
        true
    }

    /// Releases from the timer thread: for code that may run under the file's
    /// queue mutex (a completion), where releasing directly would re-enter it.
    pub fn release_later(self: Arc<Self>) {
        timer::schedule(Instant::now(), move || {
            self.release(ReleaseReason::Explicit);
        });
    }

    /// Arms the next check: at the lease deadline, or sooner to verify the lock still stands.
    fn schedule_watch(self: &Arc<Self>) {
        let every = self.path.verify_every();
        let next_check = Instant::now().checked_add(every);
        let at = match (self.lease_deadline, next_check) {
            (Some(lease), Some(check)) => lease.min(check),
            (lease, check) => match lease.or(check) {
                Some(at) => at,
                None => return,
            },
        };
        let weak = Arc::downgrade(self);
        let key = timer::schedule(at, move || {
            if let Some(held) = weak.upgrade() {
                held.watch();
            }
        });
        *self.watch.lock() = Some(key);
    }

    /// Timer thread: expire the lease, or notice the lock file was deleted or
    /// replaced under us (someone else can then lock the new one), or look again later.
    fn watch(self: Arc<Self>) {
        if self.is_released() {
            return;
        }
        if self
            .lease_deadline
            .is_some_and(|deadline| deadline <= Instant::now())
        {
            self.release(ReleaseReason::LeaseExpired);
        } else if !self.path.still_stands() {
            self.release(ReleaseReason::Compromised);
        } else {
            self.schedule_watch();
        }
    }
}

struct Inner {
    options: ManagerOptions,
    sink: Arc<dyn EventSink>,
    paths: Mutex<PathRegistry>,
    held: Mutex<HashMap<u64, Arc<HeldLock>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

impl Inner {
    /// A stale lock file was removed (by us, on our way to the lock): tell and log it.
    fn stale_lock_removed(&self, path: &Path, reason: &str) {
        self.sink.emit(LockEvent::StaleLockRemoved {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        });
        self.audit(|| AuditEntry {
            strategy: "lockfile",
            outcome: "removed",
            detail: Some(reason.to_string()),
            ..AuditEntry::new("stale-lock-removed", path)
        });
    }

    /// Records an audit entry, built only when someone audits.
    fn audit(&self, entry: impl FnOnce() -> AuditEntry) {
        if let Some(audit) = &self.options.audit {
            audit.record(entry());
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct PathRegistry {
    /// Absolute paths as callers spelled them: skips resolution on the hot path.
    by_spelling: HashMap<String, Arc<PathLock>>,
    by_canonical: HashMap<PathBuf, Arc<PathLock>>,
}

/// How many files a manager remembers before it forgets the idle ones.
const FORGET_IDLE_BEYOND: usize = 128;

impl PathRegistry {
    /// Drops the files nobody holds or waits for (and their cached sidecar handles).
    fn forget_idle(&mut self) {
        self.by_canonical
            .retain(|_, path_lock| !path_lock.forget_if_idle());
        self.by_spelling
            .retain(|_, path_lock| !path_lock.is_forgotten());
    }
}

#[derive(Clone)]
pub struct LockManager {
    inner: Arc<Inner>,
}

impl LockManager {
    pub fn new(options: ManagerOptions, sink: Arc<dyn EventSink>) -> Self {
        LockManager {
            inner: Arc::new(Inner {
                options,
                sink,
                paths: Mutex::default(),
                held: Mutex::default(),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
            }),
        }
    }

    pub fn options(&self) -> &ManagerOptions {
        &self.inner.options
    }

    /// The canonical path under which `path` is locked.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, LockError> {
        // Fresh, not from the registry: links are followed as they are now.
        resolve_target(path)
    }

    /// Forgets what `path` (this spelling) was resolved to, so the next
    /// request resolves it again: a file that has become a symbolic link
    /// since is then locked where the link leads.
    pub fn forget_spelling(&self, path: &str) {
        self.inner.paths.lock().by_spelling.remove(path);
    }

    /// Takes the lock if that needs no waiting. Never blocks.
    pub fn try_acquire(&self, path: &str, mode: Mode) -> Result<Option<Arc<HeldLock>>, LockError> {
        let path_lock = self.path_lock(path)?;
        Ok(path_lock
            .try_acquire(mode)?
            .map(|grant| self.hold(path_lock, grant, Duration::ZERO)))
    }

    /// Waits for the lock without blocking anyone: up to `retries` attempts of
    /// `timeout` each, with jittered exponential backoff between them. `done` is
    /// called once with the outcome; the returned `Request` can cancel the wait.
    pub fn acquire_then(
        &self,
        path: &str,
        request: AcquireRequest,
        done: Completion,
    ) -> Result<Arc<Request>, LockError> {
        let path_lock = self.path_lock(path)?;
        let request = AcquireRequest {
            timeout: network_stretch(
                &path_lock.file_system,
                request.timeout,
                self.inner.options.network_timeout_factor,
            ),
            ..request
        };
        let pending = Arc::new(Request {
            manager: self.clone(),
            path_lock,
            request,
            attempts: request.retries.max(1),
            started: Instant::now(),
            state: Mutex::new(RequestState {
                attempt: 1,
                ticket: None,
                timer: None,
                aborted: false,
                done: Some(done),
            }),
        });
        pending.start_attempt();
        Ok(pending)
    }

    /// `acquire_then` as a future. Dropping the future does not cancel the wait.
    pub async fn acquire(
        &self,
        path: &str,
        request: AcquireRequest,
    ) -> Result<Arc<HeldLock>, LockError> {
        self.acquire_waiting(path, request)?.outcome().await
    }

    /// `acquire_then` with the `Request` (to cancel) and the outcome as a future.
    pub fn acquire_waiting(
        &self,
        path: &str,
        request: AcquireRequest,
    ) -> Result<Waiting, LockError> {
        let (tx, outcome) = tokio::sync::oneshot::channel();
        let request = self.acquire_then(
            path,
            request,
            Box::new(move |result| {
                if let Err(Ok(held)) = tx.send(result) {
                    held.release_later();
                }
            }),
        )?;
        Ok(Waiting { request, outcome })
    }

    /// Records an entry of another layer (a document's recovery, external
    /// change, merge, conflict: `crate::document::DocumentEvent`) in the same
    /// audit trail as the lock operations. The engine knows only its name.
    pub fn record_audit(
        &self,
        op: &'static str,
        path: &Path,
        outcome: &'static str,
        detail: Option<String>,
    ) {
        self.inner.audit(|| AuditEntry {
            strategy: "",
            outcome,
            detail,
            ..AuditEntry::new(op, path)
        });
    }

    /// Whether the lock with this id is still held.
    pub fn is_held(&self, lock_id: u64) -> bool {
        self.inner.held.lock().contains_key(&lock_id)
    }

    /// Releases a held lock by id; `false` when it is not held (anymore).
    pub fn release(&self, lock_id: u64, reason: ReleaseReason) -> bool {
        let held = self.inner.held.lock().get(&lock_id).cloned();
        held.is_some_and(|h| h.release(reason))
    }

    /// Who holds the lock on `path`, as seen from outside (a probe of the OS
    /// lock, then the holder record); `None` when it is free.
    pub fn inspect(&self, path: &str) -> Result<Option<Holder>, LockError> {
        let target = resolve_target(path)?;
        let sidecar_path = sidecar_path(&target);
        if self.inner.options.strategy == StrategyChoice::Lockfile {
            // The lock is the file: there when held (stale ones included).
            let snapshot = super::lockfile::observe(&sidecar_path)
                .map_err(|e| LockError::io(&sidecar_path, "read", e))?;
            return Ok(snapshot.map(|snapshot| {
                let record = snapshot.record();
                let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
                Holder::from_record(record.as_ref(), mode, self.inner.options.expose_pids)
            }));
        }
        let sidecar = match Sidecar::open_existing(&sidecar_path) {
            Ok(sidecar) => sidecar,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LockError::io(sidecar_path, "open", e)),
        };
        // A lock-file holder (the `auto` strategy falls back to lock files on
        // shares and where OS locks are refused) holds the file, not its OS lock:
        // its record says so. Dead holders' lock files count as held, as above.
        let lock_file_holder = || {
            holder_record::read_record(sidecar.file())
                .ok()
                .and_then(|r| r.0)
                .filter(|record| record.strategy == Strategy::Lockfile)
                .map(|record| {
                    Holder::from_record(Some(&record), record.mode, self.inner.options.expose_pids)
                })
        };
        let probe = |mode| os_lock::try_lock(sidecar.file(), mode);
        let free = match probe(Mode::Exclusive) {
            Ok(free) => free,
            Err(e) if os_lock::means_unsupported(&e) => return Ok(lock_file_holder()),
            Err(e) => return Err(LockError::io(&sidecar_path, "lock", e)),
        };
        let probe = |mode| probe(mode).map_err(|e| LockError::io(&sidecar_path, "lock", e));
        let mode = if free {
            let _ = os_lock::unlock(sidecar.file());
            return Ok(lock_file_holder());
        } else if probe(Mode::Shared)? {
            let _ = os_lock::unlock(sidecar.file());
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let record = holder_record::read_record(sidecar.file())
            .ok()
            .and_then(|r| r.0);
        Ok(Some(Holder::from_record(
            record.as_ref(),
            mode,
            self.inner.options.expose_pids,
        )))
    }

    /// Releases every held lock, fails every waiter with `ECLOSED` and removes
    /// the sidecars nobody else uses. Returns how many locks were released.
    pub fn close(&self) -> usize {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return 0;
        }
        // Close the queues first, so releasing the holds below hands nothing on.
        let paths = std::mem::take(&mut *self.inner.paths.lock());
        for path_lock in paths.by_canonical.values() {
            path_lock.close();
        }
        let held: Vec<_> = self.inner.held.lock().drain().map(|(_, h)| h).collect();
        held.iter()
            .filter(|h| h.release(ReleaseReason::ManagerClosed))
            .count()
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    pub fn held_count(&self) -> usize {
        self.inner.held.lock().len()
    }

    fn hold(&self, path: Arc<PathLock>, grant: Grant, waited: Duration) -> Arc<HeldLock> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let acquired_at = Instant::now();
        let held = Arc::new(HeldLock {
            id,
            mode: grant.mode,
            fencing_token: grant.fencing_token,
            acquired_at,
            path,
            lease_deadline: self
                .inner
                .options
                .lease
                .and_then(|lease| acquired_at.checked_add(lease)),
            watch: Mutex::new(None),
            released: AtomicBool::new(false),
            manager: Arc::downgrade(&self.inner),
        });
        self.inner.held.lock().insert(id, Arc::clone(&held));
        self.inner.audit(|| AuditEntry {
            outcome: "granted",
            exclusive: Some(grant.mode.is_exclusive()),
            fencing_token: Some(grant.fencing_token),
            waited_ms: Some(ms(waited)),
            ..AuditEntry::new("acquire", &held.path.target)
        });
        held.schedule_watch();
        held
    }

    fn path_lock(&self, path: &str) -> Result<Arc<PathLock>, LockError> {
        if self.is_closed() {
            return Err(LockError::Closed);
        }
        // The spelling of a symbolic link is never remembered: a link is
        // followed at every acquisition (it can be pointed elsewhere at any
        // time, and the lock must be where the data lives). Other spellings
        // cost no syscall once known; a file that becomes a link later is
        // noticed where it is written (documents: `forget_spelling`).
        if let Some(found) = self.inner.paths.lock().by_spelling.get(path) {
            return Ok(Arc::clone(found));
        }
        let target = resolve_target(path)?;
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let remember = Path::new(path).is_absolute() && !is_link;
        let mut paths = self.inner.paths.lock();
        if paths.by_canonical.len() >= FORGET_IDLE_BEYOND
            && !paths.by_canonical.contains_key(&target)
        {
            paths.forget_idle();
        }
        let expose_pids = self.inner.options.expose_pids;
        let options = &self.inner.options;
        let manager = Arc::downgrade(&self.inner);
        let on_stale_removed: StaleRemoved = Arc::new(move |path: &Path, reason: &str| {
            if let Some(manager) = manager.upgrade() {
                manager.stale_lock_removed(path, reason);
            }
        });
        let path_lock = Arc::clone(paths.by_canonical.entry(target.clone()).or_insert_with(|| {
            Arc::new(PathLock::new(
                target,
                expose_pids,
                options.strategy,
                options.stale_after,
                options.network_timeout_factor,
                Some(on_stale_removed),
            ))
        }));
        if remember {
            paths
                .by_spelling
                .insert(path.to_owned(), Arc::clone(&path_lock));
        }
        Ok(path_lock)
    }
}

/// The canonical path of the file to lock: where its data lives. A symbolic
/// link (a chain of them, relative ones) is followed, also to a file that does
/// not exist yet, so a writer through the link and one through its target lock
/// the same sidecar, beside the target. The file itself need not exist, but
/// its directory must; a directory cannot be locked. Failures say what is
/// wrong with the path in words a user can act on (which folder is missing,
/// is a file, or may not be entered), with the errno's code.
pub(crate) fn resolve_target(raw: &str) -> Result<PathBuf, LockError> {
    let invalid = |reason: &str| LockError::InvalidPath {
        path: PathBuf::from(raw),
        reason: reason.into(),
    };
    if raw.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if raw.contains('\0') {
        return Err(invalid("the path contains a NUL character"));
    }
    let given = Path::new(raw);
    let path = crate::paths::follow_links(given).map_err(|e| unusable(given, given, e))?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Err(invalid("the path is a directory, not a file")),
        Ok(_) => std::fs::canonicalize(&path).map_err(|e| unusable(given, &path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = path
                .file_name()
                .ok_or_else(|| invalid("the path does not name a file"))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = std::fs::canonicalize(parent).map_err(|e| unusable(given, &path, e))?;
            Ok(parent.join(name))
        }
        Err(e) => Err(unusable(given, &path, e)),
    }
}

/// Why the file `path` (reached from `given`, through links when they differ)
/// cannot be used: for a missing folder, a file where a folder should be, or a
/// folder that may not be entered, a sentence naming that folder and what to
/// do, with the code of `error` (`ENOENT`, `ENOTDIR`, `EACCES`); anything else
/// as the OS said it.
fn unusable(given: &Path, path: &Path, error: std::io::Error) -> LockError {
    use std::io::ErrorKind;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let file = absolute(path);
    let folder = file
        .parent()
        .map_or_else(|| file.clone(), Path::to_path_buf);
    // From the root down to the file itself.
    let mut steps: Vec<&Path> = file.ancestors().collect();
    steps.reverse();
    let via = if given == path {
        String::new()
    } else {
        format!(" ({} is a link to {})", given.display(), file.display())
    };
    let (kind, text) = match error.kind() {
        ErrorKind::NotFound => {
            let first_missing = steps
                .iter()
                .find(|step| std::fs::symlink_metadata(step).is_err())
                .map_or_else(|| folder.clone(), |step| step.to_path_buf());
            let also = if first_missing == folder {
                String::new()
            } else {
                format!(", nor does {}", first_missing.display())
            };
            (
                ErrorKind::NotFound,
                format!(
                    "the folder {} does not exist{also}{via}; create it first, or correct the path",
                    folder.display()
                ),
            )
        }
        ErrorKind::NotADirectory => {
            let blocker = steps[..steps.len().saturating_sub(1)]
                .iter()
                .find(|step| std::fs::metadata(step).is_ok_and(|m| !m.is_dir()))
                .map_or_else(|| folder.clone(), |step| step.to_path_buf());
            (
                ErrorKind::NotADirectory,
                format!(
                    "{} is a file, not a folder, so it cannot hold {}{via}; correct the path",
                    blocker.display(),
                    file.file_name().unwrap_or_default().to_string_lossy()
                ),
            )
        }
        ErrorKind::PermissionDenied => {
            // The first step that cannot be looked at: its folder may not be entered.
            let closed = steps
                .iter()
                .find(|step| {
                    std::fs::metadata(step).is_err_and(|e| e.kind() == ErrorKind::PermissionDenied)
                })
                .and_then(|step| step.parent())
                .map_or_else(|| folder.clone(), Path::to_path_buf);
            (
                ErrorKind::PermissionDenied,
                format!(
                    "this user may not enter the folder {}{via}; give it access to that folder, or choose another location",
                    closed.display()
                ),
            )
        }
        _ => return LockError::io(given, "resolve", error),
    };
    LockError::io(given, "open", std::io::Error::new(kind, text))
}

/// `min(timeout, 100 ms) · 2^(attempt-1)`, scaled by a random factor in [0.5, 1.5).
fn backoff(attempt: u32, timeout: Option<Duration>) -> Duration {
    let base = timeout.map_or(MAX_BACKOFF, |t| t.min(MAX_BACKOFF));
    let mut random = [0u8; 2];
    let _ = getrandom::fill(&mut random);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(random)) / 65536.0;
    base.mul_f64(jitter * f64::from(1u32 << (attempt - 1).min(16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(path: &Path) -> Result<PathBuf, LockError> {
        resolve_target(&path.to_string_lossy())
    }

    #[cfg(unix)]
    #[test]
    fn links_are_locked_where_their_data_lives_also_before_it_exists() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("data")).unwrap();
        std::fs::write(root.join("data/roles.json"), "{}").unwrap();
        symlink("data/roles.json", root.join("relative.json")).unwrap();
        symlink(root.join("relative.json"), root.join("chain.json")).unwrap();
        symlink("data/later.json", root.join("dangling.json")).unwrap();
        let real = root.join("data/roles.json");
        assert_eq!(resolved(&root.join("relative.json")).unwrap(), real);
        assert_eq!(resolved(&root.join("chain.json")).unwrap(), real);
        assert_eq!(
            resolved(&root.join("dangling.json")).unwrap(),
            root.join("data/later.json")
        );
        symlink("nowhere/x.json", root.join("lost.json")).unwrap();
        let error = resolved(&root.join("lost.json")).unwrap_err();
        assert_eq!(error.code(), "ENOENT");
        assert!(error.to_string().contains(&format!(
            "the folder {} does not exist ({} is a link to {})",
            root.join("nowhere").display(),
            root.join("lost.json").display(),
            root.join("nowhere/x.json").display()
        )));
    }

    #[test]
    fn unusable_paths_are_explained_with_a_stable_code() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let missing = root.join("app").join("config").join("roles.json");
        let error = resolved(&missing).unwrap_err();
        assert_eq!(error.code(), "ENOENT");
        assert_eq!(
            error.to_string(),
            format!(
                "open failed for {}: the folder {} does not exist, nor does {}; create it first, or correct the path",
                missing.display(),
                root.join("app/config").display(),
                root.join("app").display()
            )
        );
        let file = root.join("notes.txt");
        std::fs::write(&file, "").unwrap();
        let error = resolved(&file.join("roles.json")).unwrap_err();
        assert_eq!(error.code(), "ENOTDIR");
        assert!(error.to_string().contains(&format!(
            "{} is a file, not a folder, so it cannot hold roles.json; correct the path",
            file.display()
        )));
        let error = resolved(&file.join("deeper").join("roles.json")).unwrap_err();
        assert_eq!(error.code(), "ENOTDIR");
        assert!(error
            .to_string()
            .contains(&format!("{} is a file", file.display())));
    }
}
