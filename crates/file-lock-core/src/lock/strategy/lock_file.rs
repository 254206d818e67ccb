//! Lock files: the lock is the existence of `.name.lock`, created O_EXCL,
//! refreshed by a heartbeat while held, judged stale only when provably
//! abandoned, and broken by one breaker at a time (`lockfile.rs` has the
//! primitives). Where OS locks work, a lock-file holder also holds the file's
//! OS lock, so OS-lock users and lock-file users exclude each other
//! (`interplay.rs`).
//!
//! Invariant: a hold is handed out only for a file we created or took over
//! ourselves and that the path still named when we took its OS lock; it is
//! released by moving our own file away (never someone else's).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Attempt, CrossProcessLock, HeldLock, Place, Wait, Won, VERIFY_EVERY};
use crate::lock::dir_watch::DirWatch;
use crate::lock::error::LockError;
use crate::lock::holder_record::{Holder, Strategy};
use crate::lock::lockfile::{self, Claim, Created, Existing, StaleWatch};
use crate::lock::Mode;

/// How often one attempt may find the file gone or changed before it reports busy.
const MAX_ATTEMPTS: usize = 16;

pub struct LockFile {
    place: Arc<Place>,
    /// How long the current holder's file has looked unchanged.
    stale_watch: Mutex<StaleWatch>,
}

impl LockFile {
    pub fn new(place: Place) -> LockFile {
        LockFile {
            place: Arc::new(place),
            stale_watch: Mutex::new(StaleWatch::default()),
        }
    }

    fn held(&self, claim: Claim) -> Attempt {
        *self.stale_watch.lock() = StaleWatch::default();
        Attempt::Held(Box::new(HeldFile {
            place: Arc::clone(&self.place),
            claim,
        }))
    }
}

impl CrossProcessLock for LockFile {
    fn strategy(&self) -> Strategy {
        Strategy::Lockfile
    }

    fn file_mode(&self, _wanted: Mode) -> Mode {
        Mode::Exclusive
    }

    fn attempt(&self, mode: Mode, _won: Option<Won>) -> Result<Attempt, LockError> {
        let path = &self.place.sidecar_path;
        let io = |op| move |e| LockError::io(path, op, e);
        for _ in 0..MAX_ATTEMPTS {
            match lockfile::try_create(path, mode).map_err(io("create"))? {
                Created::Held(claim) => return Ok(self.held(claim)),
                Created::Lost => return Ok(Attempt::Busy),
                Created::Exists => {}
            }
            let mut watch = self.stale_watch.lock();
            match lockfile::claim_existing(path, mode, &mut watch, self.place.stale_after)
                .map_err(io("lock"))?
            {
                Existing::Taken(claim) => {
                    drop(watch);
                    return Ok(self.held(claim));
                }
                Existing::Busy => return Ok(Attempt::Busy),
                Existing::Broken(why) => {
                    if let Some(report) = &self.place.on_stale_removed {
                        report(&self.place.target, &why);
                    }
                }
                Existing::Again => {}
            }
        }
        Ok(Attempt::Busy)
    }

    fn start_waiting(&self, _mode: Mode) -> Box<dyn Wait> {
        let stale_after = self.place.stale_after;
        Box::new(LockFileWait {
            pause: Duration::from_millis(2),
            longest: (stale_after / 20).clamp(Duration::from_millis(5), Duration::from_millis(50)),
            watch: DirWatch::new(
                self.place
                    .sidecar_path
                    .parent()
                    .unwrap_or(&self.place.sidecar_path),
            ),
        })
    }

    /// Heartbeats: several per stale period, so one late beat is no loss.
    fn verify_every(&self) -> Duration {
        VERIFY_EVERY.min(self.place.stale_after / 4)
    }

    fn recorded_holder(&self, expose_pids: bool) -> Option<Holder> {
        let record = lockfile::observe(&self.place.sidecar_path).ok()??.record();
        let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
        Some(Holder::from_record(record.as_ref(), mode, expose_pids))
    }

    fn close(&self) {}
}

/// Polls with growing pauses (2 ms up to `stale_after / 20`, at most 50 ms),
/// each ended early by a removal in the directory where that can be watched
/// (a release, usually).
struct LockFileWait {
    pause: Duration,
    longest: Duration,
    watch: DirWatch,
}

impl Wait for LockFileWait {
    fn until_worth_trying(&mut self) -> io::Result<Option<Won>> {
        self.watch.wait(self.pause);
        self.pause = (self.pause * 2).min(self.longest);
        Ok(None)
    }
}

/// Our lock file, held.
struct HeldFile {
    place: Arc<Place>,
    claim: Claim,
}

impl HeldLock for HeldFile {
    fn fencing_token(&self) -> u64 {
        self.claim.fencing_token
    }

    /// Refreshing the heartbeat is also the proof the file is still ours.
    fn still_held(&self) -> bool {
        lockfile::heartbeat(&self.place.sidecar_path, &self.claim).unwrap_or(true)
    }

    fn release(self: Box<Self>) {
        let _ = lockfile::remove_own(&self.place.sidecar_path, &self.claim);
    }
}
