//! The seam between a file's in-process queue (`path_lock.rs`) and the lock
//! other processes see: one trait, one implementation per mechanism —
//! `os.rs` (flock / LockFileEx on the sidecar, with a holder record) and
//! `lock_file.rs` (the O_EXCL lock file, heartbeats, stale judgement, guarded
//! break) — and the rules where both meet on one file in `../interplay.rs`.
//!
//! Invariants:
//! - The mechanism of a file is chosen in one place (`choose`), and changes
//!   only one way: from OS locks to the lock file, when the file system refuses
//!   OS locks or another process is seen locking the file with a lock file
//!   (`Attempt::UseLockFile`).
//! - A `HeldLock` exists only while the lock is held across processes; it is
//!   verified, refreshed and released through itself, so the queue never needs
//!   to know which mechanism holds it.

pub mod lock_file;
pub mod os;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::config::{network_stretch, StrategyChoice};
use super::error::LockError;
use super::holder_record::{Holder, Strategy};
use super::os_lock;
use super::sidecar::Sidecar;
use super::Mode;
use crate::fs_kind::FsKind;

/// How often a held lock is verified to still stand (and, for lock files, refreshed).
pub const VERIFY_EVERY: Duration = Duration::from_secs(1);

/// Whether `outcome` failed on another process's handle of the file (Windows).
pub fn is_sharing_violation<T>(outcome: &Result<T, LockError>) -> bool {
    matches!(outcome, Err(LockError::Io { source, .. }) if os_lock::means_in_use(source))
}

/// How long a waiter pauses after a sharing violation before it tries again:
/// the kernel cannot wake it when the other handle closes.
pub const SHARED_PAUSE: Duration = Duration::from_millis(5);

/// The lock across processes on one file, by one mechanism.
pub trait CrossProcessLock: Send + Sync {
    fn strategy(&self) -> Strategy;

    /// The mode taken at the file level for an in-process request of `wanted`
    /// (lock files are exclusive; readers of one process still share it).
    fn file_mode(&self, wanted: Mode) -> Mode;

    /// Takes the lock if it is free now; never blocks. `won` is an OS lock a
    /// waiter thread obtained on a handle of its own, to be claimed here.
    ///
    /// A Windows sharing violation (os error 32, or 33 for a byte range) is
    /// `Busy`: an OS-lock user keeps its sidecar open without
    /// `FILE_SHARE_DELETE`, and a lock-file user opens the same file with
    /// delete access to move it away, so each can meet the other's handle —
    /// the other is using the file, and the request waits (as a lock-file user
    /// waits on Unix for an OS-lock sidecar of a live process) instead of
    /// failing. Safe: `Busy` only ever makes a request wait.
    fn try_acquire(&self, mode: Mode, won: Option<Won>) -> Result<Attempt, LockError> {
        let attempt = self.attempt(mode, won);
        if is_sharing_violation(&attempt) {
            return Ok(Attempt::Busy);
        }
        attempt
    }

    /// The mechanism's own `try_acquire`, sharing violations and all.
    fn attempt(&self, mode: Mode, won: Option<Won>) -> Result<Attempt, LockError>;

    /// Starts a wait for `mode`, run on a waiter thread without the file's mutex.
    fn start_waiting(&self, mode: Mode) -> Box<dyn Wait>;

    /// How often a held lock is verified (`HeldLock::still_held`).
    fn verify_every(&self) -> Duration;

    /// Who holds the file, as its record says (nobody in this process holds it).
    fn recorded_holder(&self, expose_pids: bool) -> Option<Holder>;

    /// Lets go of what is kept between acquisitions; removes the sidecar when
    /// nobody else uses it.
    fn close(&self);
}

/// A wait for the lock, on a waiter thread.
pub trait Wait: Send {
    /// Blocks until trying again is worthwhile: the OS lock was obtained on a
    /// handle of the waiter's own (`Some`), or a pause ended (`None`).
    fn until_worth_trying(&mut self) -> io::Result<Option<Won>>;
}

/// The lock as held across processes.
pub trait HeldLock: Send {
    fn fencing_token(&self) -> u64;

    /// Writes the holder record when it was left for after the handover
    /// (a waiter hands the lock on first: each syscall on a cold CPU costs µs).
    fn publish(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the lock still stands (lock files: also refreshes the heartbeat).
    /// An error to check is not a loss: only a proven one is.
    fn still_held(&self) -> bool;

    fn release(self: Box<Self>);
}

/// What an attempt found.
pub enum Attempt {
    Held(Box<dyn HeldLock>),
    /// Someone else holds it (or is about to): wait.
    Busy,
    /// OS locks are refused here, or another process locks this file with a
    /// lock file: use the lock file from now on.
    UseLockFile,
}

/// An OS lock a waiter obtained on a sidecar handle of its own.
pub struct Won(pub(crate) Arc<Sidecar>);

impl Won {
    /// A waiter that won a lock nobody wants any more lets go. An empty sidecar
    /// (nobody's record is in it: the waiter's open may have created it) is
    /// removed first, under its OS lock held exclusively (rule U), so that
    /// lock-file users are not left judging an empty file by the clock.
    pub fn discard(self, path: &Path) {
        Arc::clone(&self.0).remove_if_unused_and_empty(path);
        let _ = os_lock::unlock(self.0.file());
    }

    /// After `close()`: the waiter that won removes the sidecar close could not.
    pub fn remove_if_unused(self, path: &Path) {
        let _ = os_lock::unlock(self.0.file());
        self.0.remove_if_unused(path);
    }
}

/// Called when a stale lock file was removed: (data file, why it was stale).
pub type StaleRemoved = Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// What a file is locked with, and why.
pub struct Choice {
    pub lock: Arc<dyn CrossProcessLock>,
    pub why: String,
}

/// Where a file's lock lives and the rules it is held by.
#[derive(Clone)]
pub struct Place {
    pub target: std::path::PathBuf,
    pub sidecar_path: std::path::PathBuf,
    /// `staleMs`, stretched on a network share.
    pub stale_after: Duration,
    pub on_stale_removed: Option<StaleRemoved>,
}

/// The one place the mechanism of a file is chosen.
pub fn choose(place: &Place, choice: StrategyChoice, file_system: &FsKind) -> Choice {
    let (strategy, why) = match choice {
        StrategyChoice::Os => (Strategy::Os, "chosen by the strategy option".to_string()),
        StrategyChoice::Lockfile => (
            Strategy::Lockfile,
            "chosen by the strategy option".to_string(),
        ),
        StrategyChoice::Auto => {
            auto_strategy(place.target.parent().unwrap_or(&place.target), file_system)
        }
    };
    Choice {
        lock: build(place, strategy),
        why,
    }
}

/// The mechanism `strategy` for `place` (`choose`'s, or the lock file an
/// OS-lock user switches to).
pub fn build(place: &Place, strategy: Strategy) -> Arc<dyn CrossProcessLock> {
    match strategy {
        Strategy::Os => Arc::new(os::OsLock::new(place.clone())),
        Strategy::Lockfile => Arc::new(lock_file::LockFile::new(place.clone())),
    }
}

/// What `strategy: 'auto'` picks for a file in `dir` (on `file_system`), and why.
pub fn auto_strategy(dir: &Path, file_system: &FsKind) -> (Strategy, String) {
    if file_system.is_network() {
        (
            Strategy::Lockfile,
            format!(
                "the file is on a network drive ({}), where OS locks are unreliable",
                file_system.name()
            ),
        )
    } else if !os_lock::supported_in(dir) {
        (
            Strategy::Lockfile,
            "the file system refused OS locks (ENOTSUP, EOPNOTSUPP, ENOSYS or ENOLCK)".to_string(),
        )
    } else {
        (Strategy::Os, "OS locks work on this local disk".to_string())
    }
}

/// `staleMs` as applied on `file_system` (`config::network_stretch`).
pub fn stale_after_on(
    file_system: &FsKind,
    stale_after: Duration,
    network_factor: f64,
) -> Duration {
    network_stretch(file_system, Some(stale_after), network_factor).unwrap_or(Duration::MAX)
}
