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

/// Errors that mean "this file system has no OS locks" (cargo's flock.rs misses ENOLCK).
pub fn means_unsupported(error: &io::Error) -> bool {
    #[cfg(unix)]
    if let Some(raw) = error.raw_os_error() {
        return [libc::ENOTSUP, libc::EOPNOTSUPP, libc::ENOSYS, libc::ENOLCK].contains(&raw);
    }
    #[cfg(windows)]
    if error.raw_os_error() == Some(1) {
        return true; // ERROR_INVALID_FUNCTION
    }
    error.kind() == io::ErrorKind::Unsupported
}

/// Windows: another process's handle of the file is in the way (a sharing
/// violation, os error 32, or a locked byte range, 33); never on Unix.
pub fn means_in_use(error: &io::Error) -> bool {
    cfg!(windows) && matches!(error.raw_os_error(), Some(32 | 33))
}

/// What probing a directory for OS locks found.
#[derive(Debug)]
// Windows cannot lock a directory handle: only its probe's `Untested` is made there.
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Support {
    /// A shared lock on the directory handle was taken (or was contended).
    Works,
    /// The file system refused: ENOTSUP, EOPNOTSUPP, ENOSYS or ENOLCK.
    Refused(io::Error),
    /// Could not be told (Windows, no access to the directory, another error):
    /// counted as supported, so the OS lock is tried and its errors still count.
    Untested(String),
}

/// Whether OS locks work in `dir`, probed on the directory itself so that no
/// sidecar is created where it would be useless. Unknown (Windows, no access): yes.
pub fn supported_in(dir: &std::path::Path) -> bool {
    !matches!(probe(dir), Support::Refused(_))
}

/// The probe behind `supported_in`, with what it found (for diagnostics).
pub fn probe(dir: &std::path::Path) -> Support {
    #[cfg(unix)]
    return match File::open(dir) {
        Ok(handle) => match try_lock(&handle, Mode::Shared) {
            Ok(locked) => {
                if locked {
                    let _ = unlock(&handle);
                }
                Support::Works
            }
            Err(e) if means_unsupported(&e) => Support::Refused(e),
            Err(e) => Support::Untested(format!("locking the directory failed: {e}")),
        },
        Err(e) => Support::Untested(format!("the directory could not be opened: {e}")),
    };
    #[cfg(not(unix))]
    {
        let _ = dir;
        Support::Untested("directories cannot be locked on this platform".into())
    }
}

/// Fault injection for tests (`FILE_LOCK_MANAGER_FAULT_FLOCK=ENOLCK`, or
/// `EOPNOTSUPP`): every lock attempt fails with that error, as on a file system
/// without locks. Read once; unset in production.
fn injected_fault() -> Option<io::Error> {
    static FAULT: std::sync::OnceLock<Option<i32>> = std::sync::OnceLock::new();
    let errno = *FAULT.get_or_init(|| {
        #[cfg(unix)]
        {
            match std::env::var("FILE_LOCK_MANAGER_FAULT_FLOCK")
                .ok()?
                .as_str()
            {
                "ENOLCK" => Some(libc::ENOLCK),
                "EOPNOTSUPP" => Some(libc::EOPNOTSUPP),
                "ENOSYS" => Some(libc::ENOSYS),
                _ => None,
            }
        }
        #[cfg(not(unix))]
        None
    });
    errno.map(io::Error::from_raw_os_error)
}

/// Takes the lock if it is free right now: `Ok(true)` held, `Ok(false)` contended.
pub fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
    if let Some(fault) = injected_fault() {
        return Err(fault);
    }
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
        let (_dir, path) = crate::test_support::scratch("l");
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
