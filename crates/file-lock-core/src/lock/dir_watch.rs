//! Wake-ups for lock-file waiters. On Linux an inotify watch on the lock file's
//! directory ends a poll pause the moment a file there is deleted or renamed
//! away (a release), so a handoff takes microseconds instead of a poll
//! interval. Elsewhere, and for changes made by other machines on a share
//! (which raise no events), the pause simply runs out.
//!
//! Invariants:
//! - A watch never makes a waiter miss a release: it can only end a pause
//!   early; any failure to watch falls back to the plain pause.
//! - One inotify instance serves every waiter of the process (inotify's
//!   `max_user_instances`, 128 per user, is shared with every other program of
//!   the user): each directory is watched once while waiters wait in it
//!   (counted), and unwatched when the last one is done. Every waiter polls
//!   the one descriptor, so a removal anywhere wakes all of them: an early
//!   try, never a missed one.

use std::path::Path;
use std::time::Duration;

pub struct DirWatch {
    #[cfg(target_os = "linux")]
    registered: Option<shared::Registered>,
}

impl DirWatch {
    #[cfg(target_os = "linux")]
    pub fn new(dir: &Path) -> DirWatch {
        DirWatch {
            registered: shared::register(dir),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_dir: &Path) -> DirWatch {
        DirWatch {}
    }

    /// Sleeps for `pause`, or less when something in a watched directory was removed.
    #[cfg(target_os = "linux")]
    pub fn wait(&self, pause: Duration) {
        match &self.registered {
            Some(registered) => registered.wait(pause),
            None => std::thread::sleep(pause),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wait(&self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

#[cfg(target_os = "linux")]
mod shared {
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::LazyLock;
    use std::time::Duration;

    use parking_lot::Mutex;

    /// The process's inotify instance for waiters (made at the first wait,
    /// kept for the process's life) and the directories it watches.
    #[derive(Default)]
    struct Shared {
        fd: Option<OwnedFd>,
        /// Directory → (watch descriptor, waiters in it).
        dirs: HashMap<PathBuf, (i32, usize)>,
    }

    static SHARED: LazyLock<Mutex<Shared>> = LazyLock::new(Mutex::default);

    /// A waiter counted in its directory's watch; uncounted when dropped.
    pub struct Registered {
        fd: RawFd,
        dir: PathBuf,
    }

    pub fn register(dir: &Path) -> Option<Registered> {
        let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut shared = SHARED.lock();
        if shared.fd.is_none() {
            let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if raw < 0 {
                return None;
            }
            shared.fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
        }
        let fd = shared.fd.as_ref()?.as_raw_fd();
        // Added again for each waiter: the same directory gives the same
        // descriptor, one made again at that path a new one (the old is gone).
        let mask = libc::IN_DELETE | libc::IN_MOVED_FROM;
        let watch = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) };
        if watch < 0 {
            return None;
        }
        let entry = shared.dirs.entry(dir.to_path_buf()).or_insert((watch, 0));
        entry.0 = watch;
        entry.1 += 1;
        Some(Registered {
            fd,
            dir: dir.to_path_buf(),
        })
    }

    impl Registered {
        pub fn wait(&self, pause: Duration) {
            let mut poll = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let timeout = pause.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            if unsafe { libc::poll(&mut poll, 1, timeout) } > 0 {
                // Drain the events: we only needed the wake-up (other waiters
                // polling it woke too; one that starts polling after the drain
                // waits its pause out).
                let mut buffer = [0u8; 4096];
                while unsafe { libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) } > 0 {
                }
            }
        }
    }

    impl Drop for Registered {
        fn drop(&mut self) {
            let mut shared = SHARED.lock();
            let Some(entry) = shared.dirs.get_mut(&self.dir) else {
                return;
            };
            entry.1 -= 1;
            if entry.1 == 0 {
                let watch = entry.0;
                shared.dirs.remove(&self.dir);
                unsafe { libc::inotify_rm_watch(self.fd, watch) };
            }
        }
    }

    /// Directories watched now (for tests).
    #[cfg(test)]
    pub fn watched() -> usize {
        SHARED.lock().dirs.len()
    }
}

#[cfg(test)]
#[path = "dir_watch_tests.rs"]
mod tests;
