//! OS locks: flock (Unix) / LockFileEx (Windows) on the persistent sidecar,
//! with a holder record written in it by each holder.
//!
//! Invariants:
//! - A hold counts only on the sidecar the path still names, checked after
//!   the OS lock was taken (rule A of `interplay.rs`); a handle found on an
//!   unlinked file is dropped and the path opened again.
//! - The record is read before ours is written: a lock-file record there means
//!   another process locks this file with lock files, and we follow that
//!   protocol from then on (rule R) instead of writing over it.
//! - The sidecar is removed only while we hold its OS lock and it is still the
//!   file at the path (rule U), and the lock is dropped after the unlink.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Attempt, CrossProcessLock, HeldLock, Place, Wait, Won, VERIFY_EVERY};
use crate::lock::error::LockError;
use crate::lock::holder_record::{self, Holder, HolderRecord, NextRecord, Strategy};
use crate::lock::interplay::{self, Step};
use crate::lock::os_lock;
use crate::lock::sidecar::Sidecar;
use crate::lock::Mode;

/// How often a freshly locked sidecar may turn out to be unlinked before we give up.
const MAX_RELINK_ATTEMPTS: usize = 16;

pub struct OsLock {
    place: Arc<Place>,
    /// The handle for non-blocking attempts, kept open between acquisitions.
    cached: Mutex<Option<Arc<Sidecar>>>,
}

impl OsLock {
    pub fn new(place: Place) -> OsLock {
        OsLock {
            place: Arc::new(place),
            cached: Mutex::new(None),
        }
    }

    fn path(&self) -> &Path {
        &self.place.sidecar_path
    }

    fn cached(&self) -> Result<Arc<Sidecar>, LockError> {
        let mut cached = self.cached.lock();
        if let Some(sidecar) = &*cached {
            return Ok(Arc::clone(sidecar));
        }
        let sidecar = Arc::new(
            Sidecar::open_noting_creation(self.path())
                .map_err(|e| LockError::io(self.path(), "open", e))?,
        );
        *cached = Some(Arc::clone(&sidecar));
        Ok(sidecar)
    }

    fn forget_cached(&self, sidecar: &Arc<Sidecar>) {
        let mut cached = self.cached.lock();
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, sidecar)) {
            *cached = None;
        }
    }

    /// After the OS lock on `sidecar` was taken: rules A and R. `Ok(None)`: it
    /// was unlinked meanwhile (the lock is dropped; start over).
    fn claim(&self, sidecar: &Arc<Sidecar>, mode: Mode) -> Result<Option<Attempt>, LockError> {
        let unlock_on_error = |e: io::Error, op| {
            let _ = os_lock::unlock(sidecar.file());
            LockError::io(self.path(), op, e)
        };
        let linked = sidecar
            .still_linked(self.path())
            .map_err(|e| unlock_on_error(e, "stat"))?;
        if !linked {
            let _ = os_lock::unlock(sidecar.file());
            self.forget_cached(sidecar);
            return Ok(None);
        }
        interplay::step(Step::LockedSidecar);
        let next =
            holder_record::next_record(sidecar.file()).map_err(|e| unlock_on_error(e, "read"))?;
        if next.previous_strategy == Some(Strategy::Lockfile) {
            interplay::step(Step::SwitchingToLockFile);
            let _ = os_lock::unlock(sidecar.file());
            self.forget_cached(sidecar);
            return Ok(Some(Attempt::UseLockFile));
        }
        Ok(Some(Attempt::Held(Box::new(HeldSidecar {
            place: Arc::clone(&self.place),
            sidecar: Arc::clone(sidecar),
            mode,
            next,
            published: false,
        }))))
    }

    /// This file system has no OS locks. The empty sidecar we created would pass
    /// for a lock file whose holder has not written its record yet: we would
    /// wait `staleMs` for ourselves. Nobody else can have a claim on it.
    fn drop_useless_sidecar(&self, sidecar: &Sidecar) {
        let empty = sidecar.file().metadata().is_ok_and(|m| m.len() == 0);
        if sidecar.created() && empty && matches!(sidecar.still_linked(self.path()), Ok(true)) {
            let _ = std::fs::remove_file(self.path());
        }
        *self.cached.lock() = None;
    }
}

impl CrossProcessLock for OsLock {
    fn strategy(&self) -> Strategy {
        Strategy::Os
    }

    fn file_mode(&self, wanted: Mode) -> Mode {
        wanted
    }

    fn attempt(&self, mode: Mode, won: Option<Won>) -> Result<Attempt, LockError> {
        if let Some(Won(sidecar)) = won {
            return Ok(self.claim(&sidecar, mode)?.unwrap_or(Attempt::Busy));
        }
        for _ in 0..MAX_RELINK_ATTEMPTS {
            let sidecar = self.cached()?;
            match os_lock::try_lock(sidecar.file(), mode) {
                Ok(true) => {}
                Ok(false) => return Ok(Attempt::Busy),
                Err(e) if os_lock::means_unsupported(&e) => {
                    self.drop_useless_sidecar(&sidecar);
                    return Ok(Attempt::UseLockFile);
                }
                Err(e) => return Err(LockError::io(self.path(), "lock", e)),
            }
            if let Some(attempt) = self.claim(&sidecar, mode)? {
                return Ok(attempt);
            }
        }
        Err(LockError::io(
            self.path(),
            "lock",
            io::Error::other("the lock file keeps being deleted while locking"),
        ))
    }

    fn start_waiting(&self, mode: Mode) -> Box<dyn Wait> {
        Box::new(OsWait {
            place: Arc::clone(&self.place),
            mode,
        })
    }

    fn verify_every(&self) -> Duration {
        VERIFY_EVERY
    }

    fn recorded_holder(&self, expose_pids: bool) -> Option<Holder> {
        let sidecar = self.cached.lock().clone()?;
        let (record, _) = holder_record::read_record(sidecar.file()).ok()?;
        let record: Option<HolderRecord> = record;
        let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
        Some(Holder::from_record(record.as_ref(), mode, expose_pids))
    }

    fn close(&self) {
        if let Some(sidecar) = self.cached.lock().take() {
            // Keeps the file while anyone holds it; a waiter of ours that gets it
            // after close removes it then.
            sidecar.remove_if_unused(self.path());
        }
    }
}

/// A waiter blocked in the kernel on a handle of its own.
struct OsWait {
    place: Arc<Place>,
    mode: Mode,
}

impl Wait for OsWait {
    fn until_worth_trying(&mut self) -> io::Result<Option<Won>> {
        let sidecar = Sidecar::open(&self.place.sidecar_path)?;
        os_lock::lock_blocking(sidecar.file(), self.mode)?;
        Ok(Some(Won(Arc::new(sidecar))))
    }
}

/// The OS lock held on the sidecar the path names.
struct HeldSidecar {
    place: Arc<Place>,
    sidecar: Arc<Sidecar>,
    mode: Mode,
    next: NextRecord,
    published: bool,
}

impl HeldLock for HeldSidecar {
    fn fencing_token(&self) -> u64 {
        self.next.fencing_token
    }

    /// A failed write leaves the previous record; the fencing token stays
    /// monotonic through its time floor.
    fn publish(&mut self) -> io::Result<()> {
        if self.published {
            return Ok(());
        }
        self.published = true;
        holder_record::write_record(self.sidecar.file(), self.mode, self.next)
    }

    fn still_held(&self) -> bool {
        self.sidecar
            .still_linked(&self.place.sidecar_path)
            .unwrap_or(true)
    }

    fn release(self: Box<Self>) {
        let _ = os_lock::unlock(self.sidecar.file());
    }
}
