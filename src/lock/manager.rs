//! `LockManager`: the per-process registry of files being locked, the acquire
//! loop (attempts, backoff, timeouts, cancellation), held locks and leases.
//!
//! Invariants:
//! - One `PathLock` per canonical path per manager, so every caller in the
//!   process that names the same file (even by another spelling) meets in the
//!   same fair queue.
//! - Every granted hold is a `HeldLock` released exactly once, by whichever
//!   comes first: its holder, the lease timer, garbage collection or `close()`.
//! - Waiting is an async wait on a grant (tokio); no thread blocks on behalf of
//!   a request except the per-file OS waiter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::error::LockError;
use super::events::{EventSink, LockEvent, ReleaseReason};
use super::lease;
use super::metadata::{self, Holder};
use super::os_lock;
use super::path_lock::{Enqueued, Grant, PathLock};
use super::sidecar::{sidecar_path, Sidecar};
use super::Mode;

/// Longest backoff between attempts, whatever the timeout.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// How long one attempt waits; `None` waits until granted or cancelled.
    pub timeout: Option<Duration>,
    /// How many attempts (at least one), with jittered exponential backoff between them.
    pub retries: u32,
    /// Longest a lock may be held; `None`: no lease.
    pub lease: Option<Duration>,
    /// Whether holders are described with their pid.
    pub expose_pids: bool,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            timeout: Some(Duration::from_secs(5)),
            retries: 3,
            lease: Some(Duration::from_secs(30)),
            expose_pids: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AcquireRequest {
    pub mode: Mode,
    pub timeout: Option<Duration>,
    pub retries: u32,
}

/// Cancels a waiting `acquire` (the AbortSignal of the JS API).
#[derive(Clone, Default)]
pub struct CancelToken(Arc<(AtomicBool, Notify)>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.0 .1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// A granted lock. Dropping it does not release it: call `release`.
pub struct HeldLock {
    pub id: u64,
    pub mode: Mode,
    pub fencing_token: u64,
    pub acquired_at: Instant,
    path: Arc<PathLock>,
    lease_deadline: Option<Instant>,
    released: AtomicBool,
    manager: Weak<Inner>,
}

impl HeldLock {
    pub fn path(&self) -> &Path {
        &self.path.target
    }

    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Releases the lock; `false` when it was already released.
    pub fn release(&self, reason: ReleaseReason) -> bool {
        if self.released.swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(deadline) = self.lease_deadline {
            lease::timer().cancel(deadline, self.id);
        }
        // Tell the holder it lost the lock before anyone else can have it.
        if let Some(manager) = self.manager.upgrade() {
            manager.held.lock().remove(&self.id);
            if matches!(reason, ReleaseReason::LeaseExpired | ReleaseReason::Dropped) {
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

    pub(super) fn expire(&self) {
        self.release(ReleaseReason::LeaseExpired);
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

#[derive(Default)]
struct PathRegistry {
    /// Absolute paths as callers spelled them: skips resolution on the hot path.
    by_spelling: HashMap<String, Arc<PathLock>>,
    by_canonical: HashMap<PathBuf, Arc<PathLock>>,
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
        Ok(self.path_lock(path)?.target.clone())
    }

    /// Takes the lock if that needs no waiting. Never blocks.
    pub fn try_acquire(&self, path: &str, mode: Mode) -> Result<Option<Arc<HeldLock>>, LockError> {
        let path_lock = self.path_lock(path)?;
        Ok(path_lock
            .try_acquire(mode)?
            .map(|grant| self.hold(path_lock, grant)))
    }

    /// Waits for the lock: up to `retries` attempts of `timeout` each, with
    /// jittered exponential backoff between them, until granted, cancelled or closed.
    pub async fn acquire(
        &self,
        path: &str,
        request: AcquireRequest,
        cancel: &CancelToken,
    ) -> Result<Arc<HeldLock>, LockError> {
        let path_lock = self.path_lock(path)?;
        let started = Instant::now();
        let attempts = request.retries.max(1);
        for attempt in 1..=attempts {
            if self.is_closed() {
                return Err(LockError::Closed);
            }
            if cancel.is_cancelled() {
                return Err(LockError::Aborted {
                    path: path_lock.target.clone(),
                });
            }
            let (ticket, mut reply, holder) = match path_lock.enqueue(request.mode)? {
                Enqueued::Granted(grant) => return Ok(self.hold(path_lock, grant)),
                Enqueued::Waiting {
                    ticket,
                    reply,
                    holder,
                } => (ticket, reply, holder),
            };
            self.inner.sink.emit(LockEvent::Waiting {
                path: path_lock.target.clone(),
                mode: request.mode,
                attempt,
                attempts,
                elapsed: started.elapsed(),
                holder,
            });
            let aborted = tokio::select! {
                biased;
                answer = &mut reply => {
                    let grant = answer.unwrap_or(Err(LockError::Closed))?;
                    return Ok(self.hold(path_lock, grant));
                }
                _ = sleep_for(request.timeout) => false,
                _ = cancel.cancelled() => true,
            };
            if !path_lock.cancel(ticket) {
                // Answered in the same instant: take the answer, or hand it back when aborted.
                let grant = reply.await.unwrap_or(Err(LockError::Closed))?;
                let held = self.hold(Arc::clone(&path_lock), grant);
                if !aborted {
                    return Ok(held);
                }
                held.release(ReleaseReason::Explicit);
            }
            if aborted {
                return Err(LockError::Aborted {
                    path: path_lock.target.clone(),
                });
            }
            if attempt < attempts {
                tokio::select! {
                    _ = tokio::time::sleep(backoff(attempt, request.timeout)) => {}
                    _ = cancel.cancelled() => {}
                }
            }
        }
        Err(LockError::Timeout {
            path: path_lock.target.clone(),
            waited: started.elapsed(),
            attempts,
            holder: path_lock.current_holder().map(Box::new),
        })
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
        let sidecar = match Sidecar::open_existing(&sidecar_path) {
            Ok(sidecar) => sidecar,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LockError::io(sidecar_path, "open", e)),
        };
        let probe = |mode| {
            os_lock::try_lock(sidecar.file(), mode)
                .map_err(|e| LockError::io(&sidecar_path, "lock", e))
        };
        let mode = if probe(Mode::Exclusive)? {
            let _ = os_lock::unlock(sidecar.file());
            return Ok(None);
        } else if probe(Mode::Shared)? {
            let _ = os_lock::unlock(sidecar.file());
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let record = metadata::read_record(sidecar.file()).ok().and_then(|r| r.0);
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

    fn hold(&self, path: Arc<PathLock>, grant: Grant) -> Arc<HeldLock> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let acquired_at = Instant::now();
        let lease_deadline = self.inner.options.lease.map(|lease| acquired_at + lease);
        let held = Arc::new(HeldLock {
            id,
            mode: grant.mode,
            fencing_token: grant.fencing_token,
            acquired_at,
            path,
            lease_deadline,
            released: AtomicBool::new(false),
            manager: Arc::downgrade(&self.inner),
        });
        self.inner.held.lock().insert(id, Arc::clone(&held));
        if let Some(deadline) = lease_deadline {
            lease::timer().schedule(deadline, id, Arc::downgrade(&held));
        }
        held
    }

    fn path_lock(&self, path: &str) -> Result<Arc<PathLock>, LockError> {
        if self.is_closed() {
            return Err(LockError::Closed);
        }
        if let Some(found) = self.inner.paths.lock().by_spelling.get(path) {
            return Ok(Arc::clone(found));
        }
        let target = resolve_target(path)?;
        let mut paths = self.inner.paths.lock();
        let expose_pids = self.inner.options.expose_pids;
        let path_lock = Arc::clone(
            paths
                .by_canonical
                .entry(target.clone())
                .or_insert_with(|| Arc::new(PathLock::new(target, expose_pids))),
        );
        if Path::new(path).is_absolute() {
            paths
                .by_spelling
                .insert(path.to_owned(), Arc::clone(&path_lock));
        }
        Ok(path_lock)
    }
}

/// The canonical path of the file to lock. The file itself need not exist, but
/// its directory must; a directory cannot be locked.
fn resolve_target(raw: &str) -> Result<PathBuf, LockError> {
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
    let path = Path::new(raw);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(invalid("the path is a directory, not a file")),
        Ok(_) => std::fs::canonicalize(path).map_err(|e| LockError::io(path, "resolve", e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = path
                .file_name()
                .ok_or_else(|| invalid("the path does not name a file"))?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = std::fs::canonicalize(parent)
                .map_err(|e| LockError::io(parent, "resolve the parent directory of", e))?;
            Ok(parent.join(name))
        }
        Err(e) => Err(LockError::io(path, "stat", e)),
    }
}

async fn sleep_for(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

/// `min(timeout, 100 ms) · 2^(attempt-1)`, scaled by a random factor in [0.5, 1.5).
fn backoff(attempt: u32, timeout: Option<Duration>) -> Duration {
    let base = timeout.map_or(MAX_BACKOFF, |t| t.min(MAX_BACKOFF));
    let mut random = [0u8; 2];
    let _ = getrandom::fill(&mut random);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(random)) / 65536.0;
    base.mul_f64(jitter * f64::from(1u32 << (attempt - 1).min(16)))
}
