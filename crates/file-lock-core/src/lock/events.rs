//! What the lock engine tells the outside world, and the sink it tells it to.
//!
//! Invariant: events are reported, never thrown; a sink must not block (the
//! binding queues them to the JS thread and they never keep Node alive).

use std::path::PathBuf;
use std::time::Duration;

use super::holder_record::Holder;
use super::Mode;

/// Why a held lock stopped being held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `release()` by its holder.
    Explicit,
    /// Held longer than the lease: released by the manager's timer.
    LeaseExpired,
    /// The handle was garbage-collected without being released.
    Dropped,
    /// `close()` of the manager.
    ManagerClosed,
    /// The lock file was deleted or replaced while held: the lock no longer excludes anyone.
    Compromised,
}

impl ReleaseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::Explicit => "released",
            ReleaseReason::LeaseExpired => "lease-expired",
            ReleaseReason::Dropped => "garbage-collected",
            ReleaseReason::ManagerClosed => "manager-closed",
            ReleaseReason::Compromised => "compromised",
        }
    }
}

#[derive(Debug, Clone)]
pub enum LockEvent {
    /// A request could not be granted at once and is waiting (once per attempt).
    Waiting {
        path: PathBuf,
        mode: Mode,
        attempt: u32,
        attempts: u32,
        elapsed: Duration,
        holder: Option<Holder>,
        /// The share's file system when the file is on a network drive.
        network: Option<String>,
    },
    /// A lock was released by the engine rather than by its holder
    /// (lease expiry, garbage collection, lock file deleted or replaced).
    Released {
        path: PathBuf,
        lock_id: u64,
        mode: Mode,
        fencing_token: u64,
        held_for: Duration,
        reason: ReleaseReason,
    },
    /// A lock file whose owner is provably gone was removed on the way to the lock.
    StaleLockRemoved { path: PathBuf, reason: String },
}

pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: LockEvent);

    /// Whether anyone listens to `Waiting` (building one reads the holder record).
    fn wants_waiting(&self) -> bool {
        true
    }
}

/// A sink that drops every event.
impl EventSink for () {
    fn emit(&self, _event: LockEvent) {}
}
