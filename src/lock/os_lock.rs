//! The OS lock on an open sidecar handle, through fs4: `flock` on Unix (owned by
//! the open file description, so it is never dropped by an unrelated `close`, as
//! classic `fcntl` locks are) and `LockFileEx` on Windows.
//!
//! Invariant: `try_lock` never blocks; only `lock_blocking` waits, and it is
//! called from a dedicated waiter thread, never from JS or libuv's pool.

use std::fs::File;
use std::io;

use fs4::{FileExt, TryLockError};

use super::Mode;

/// Takes the lock if it is free right now: `Ok(true)` held, `Ok(false)` contended.
pub fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
    let result = match mode {
        Mode::Exclusive => FileExt::try_lock(file),
        Mode::Shared => FileExt::try_lock_shared(file),
    };
    match result {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Waits until the lock is held. Interrupted calls are retried.
pub fn lock_blocking(file: &File, mode: Mode) -> io::Result<()> {
    loop {
        let result = match mode {
            Mode::Exclusive => FileExt::lock(file),
            Mode::Shared => FileExt::lock_shared(file),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn unlock(file: &File) -> io::Result<()> {
    FileExt::unlock(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_overlaps_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let a = File::create(&path).unwrap();
        let b = File::options().write(true).open(&path).unwrap();
        assert!(try_lock(&a, Mode::Shared).unwrap());
        assert!(try_lock(&b, Mode::Shared).unwrap());
        unlock(&b).unwrap();
        assert!(!try_lock(&b, Mode::Exclusive).unwrap());
        unlock(&a).unwrap();
        assert!(try_lock(&b, Mode::Exclusive).unwrap());
        assert!(!try_lock(&a, Mode::Shared).unwrap());
        unlock(&b).unwrap();
    }
}
