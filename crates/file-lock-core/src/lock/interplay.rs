//! Where the two mechanisms meet: OS-lock users (`strategy/os.rs`) and
//! lock-file users (`strategy/lock_file.rs`, `lockfile.rs`) on the same
//! `.name.lock`, as happens when `auto` picks differently on two machines, or
//! on a host and a container sharing a folder.
//!
//! The protocol's invariant — never two holders — rests on three rules, kept
//! by every step of both mechanisms wherever OS locks work:
//! - **A (acquire)**: an acquisition, whatever the strategy, counts only once
//!   its OS lock is held on a handle AND the lock path still names that
//!   handle's file, checked after the lock was taken (`names`). A file removed
//!   or replaced before that check is not held by anyone who checks this way.
//! - **U (unlink)**: a name at the lock path is removed or replaced only by a
//!   process that holds the OS lock of the file it names *exclusively*,
//!   verified under that lock (a release, an idle sidecar's cleanup, an empty
//!   sidecar dropped by a waiter nobody needs any more, a stale file's break);
//!   the OS lock is dropped after the name is gone. So the file a holder
//!   verified stays at the path until it lets go itself. (Windows: a
//!   lock-file holder whose file an OS-lock user keeps open cannot move it
//!   away; it releases in place, turning its record into an idle OS-lock
//!   record under its exclusive OS lock, which rule R then reads as idle.)
//! - **R (record)**: holding the OS lock of the named file, a process reads the
//!   record to learn who else may hold it without OS locks: an OS-lock record
//!   means idle (its writer held the OS lock while it held the file); a
//!   lock-file record means a lock-file holder, who is waited for unless it is
//!   provably gone, and then broken under the OS lock (rule U).
//!
//! Where OS locks are refused, the file's existence is the lock (O_EXCL create,
//! heartbeats, staleness by our own clock, one breaker at a time): see
//! `lockfile.rs`. `tests/protocol_model/` explores every interleaving of
//! these steps with crashes; `interplay_tests.rs` replays the dangerous ones
//! on real files by pausing a participant at each `Step`.

use std::fs::File;
use std::io;
use std::path::Path;

/// Points of the interplay where a test may pause a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A lock-file user created the lock file and has not locked it yet.
    CreatedLockFile,
    /// A lock-file user judged an existing file (idle sidecar or stale) and has
    /// not taken its OS lock yet.
    JudgedExisting,
    /// A lock-file user holds an existing file's OS lock, before checking it is
    /// still the file at the path.
    LockedExisting,
    /// A lock-file holder releasing: it checked the file is its own and has not
    /// moved it away yet.
    ReleasingLockFile,
    /// An OS-lock user holds the sidecar's OS lock on the file at the path and
    /// has not written its record yet.
    LockedSidecar,
    /// An OS-lock user found a lock-file record and is about to switch.
    SwitchingToLockFile,
}

/// Whether `path` names the file `file` is open on (one `stat`, one `fstat`).
#[cfg(unix)]
pub fn names(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata()?;
    names_inode(path, (ours.dev(), ours.ino()))
}

/// Whether `path` names the file `(dev, ino)` (one `stat`).
#[cfg(unix)]
pub fn names_inode(path: &Path, inode: (u64, u64)) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok((named.dev(), named.ino()) == inode),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `path` names the file `file` is open on: the same volume and file
/// index. (Lock-file handles share delete access, so a lock file can be
/// removed or renamed while open, as on Unix.)
#[cfg(windows)]
pub fn names(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_DELETE,
        FILE_SHARE_READ, FILE_SHARE_WRITE,
    };
    let named = std::fs::OpenOptions::new()
        .access_mode(0)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path);
    match named {
        Ok(named) => Ok(file_identity(&named)? == file_identity(file)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Volume serial number and file index of an open file.
#[cfg(windows)]
fn file_identity(file: &File) -> io::Result<(u32, u32, u32)> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION,
    };
    // SAFETY: a zeroed BY_HANDLE_FILE_INFORMATION is a valid out-parameter, and
    // the handle is open for the duration of the call.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((
        info.dwVolumeSerialNumber,
        info.nFileIndexHigh,
        info.nFileIndexLow,
    ))
}

/// Lets a test pause this thread at `step` (a no-op outside tests).
#[inline(always)]
pub fn step(step: Step) {
    #[cfg(test)]
    pause::at(step);
    #[cfg(not(test))]
    let _ = step;
}

/// Test-only pauses, per thread: a participant thread installs a hook that
/// runs when it reaches a step (it usually waits there for a signal).
#[cfg(test)]
pub mod pause {
    use super::Step;
    use std::cell::RefCell;

    type Hook = Box<dyn FnMut(Step)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Runs `hook` at every step this thread reaches, until it ends.
    pub fn install(hook: impl FnMut(Step) + 'static) {
        HOOK.with(|cell| *cell.borrow_mut() = Some(Box::new(hook)));
    }

    pub(super) fn at(step: Step) {
        HOOK.with(|cell| {
            if let Some(hook) = cell.borrow_mut().as_mut() {
                hook(step);
            }
        });
    }
}

#[cfg(test)]
#[path = "interplay_tests.rs"]
mod tests;
