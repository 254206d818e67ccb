//! Diagnostics behind the `file-lock-manager` CLI: how the lock of one file
//! looks from outside (`status`), removing a lock file only when it is
//! provably stale (`break_stale_lock`), and whether locks work in a directory
//! (`doctor`).
//!
//! Invariants:
//! - No rules of its own: staleness is `lockfile::StaleWatch`, breaking is
//!   `lockfile::break_stale` (its O_EXCL guard and re-check), the strategy
//!   verdict is `strategy::auto_strategy`, `staleMs` on a share is
//!   `strategy::stale_after_on`, the holder view is `Holder::from_record`
//!   (pids only when asked). A diagnosis may be stricter than the library (a
//!   lock file whose OS lock is held is never broken), never looser.
//! - Looking changes nothing: no sidecar is created, and an OS lock is probed
//!   only on a non-empty file, through the handle its content was read from (a
//!   lock-file creator takes its OS lock before it writes, so a probe can never
//!   make it believe an OS-lock user got there first).
//! - Doctor's probe files have unique names and are all removed, whatever failed.
//!
//! One file per command (`status`, `break_lock`, `doctor`); `observe` is the
//! look at a lock file from outside that status and break share.

mod break_lock;
mod doctor;
mod observe;
mod status;

use std::io;
use std::time::Duration;

use crate::lock::LockError;

pub use break_lock::{break_stale_lock, BreakOutcome, BreakReport};
pub use doctor::{doctor, probe_os_locks, Check, CheckStatus, DoctorReport, OsLockProbe};
pub use observe::{OsLockState, Staleness};
pub use status::{status, LockStatus};

/// The library's rules that a diagnosis needs (the JS defaults are passed in).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `staleMs`, before stretching on a network share.
    pub stale_after: Duration,
    /// `networkTimeoutFactor`.
    pub network_factor: f64,
    /// `exposePids`: holders are described with their pid.
    pub expose_pids: bool,
}
/// `ENOLCK`, `EACCES`…: the code the rest of the package gives this error.
pub(crate) fn errno_text(e: &io::Error) -> String {
    let copy = match e.raw_os_error() {
        Some(raw) => io::Error::from_raw_os_error(raw),
        None => io::Error::from(e.kind()),
    };
    LockError::io("", "", copy).code().to_string()
}

pub(crate) fn errno_detail(e: &io::Error) -> String {
    format!("{}: {e}", errno_text(e))
}

#[cfg(test)]
mod tests;
