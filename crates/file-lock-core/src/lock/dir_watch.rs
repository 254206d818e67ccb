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
    use std::os::fd::OwnedFd;
    use std::path::{Path, PathBuf};
    use std::sync::{LazyLock, OnceLock};
    use std::time::Duration;

    use parking_lot::Mutex;
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

    /// The process's inotify instance for waiters: made at the first wait,
    /// kept for the process's life (so a waiter may borrow it for good).
    static INOTIFY: OnceLock<OwnedFd> = OnceLock::new();

    /// The instance, made now if it was not yet (tried again at the next wait
    /// when the kernel refuses one: instances may be freed meanwhile).
    fn instance() -> Option<&'static OwnedFd> {
        if let Some(fd) = INOTIFY.get() {
            return Some(fd);
        }
        let made = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).ok()?;
        let _ = INOTIFY.set(made); // a racing thread's instance wins; ours closes
        INOTIFY.get()
    }

    /// Directory → (watch descriptor, waiters in it).
    static DIRS: LazyLock<Mutex<HashMap<PathBuf, (i32, usize)>>> = LazyLock::new(Mutex::default);

    /// A waiter counted in its directory's watch; uncounted when dropped.
    pub struct Registered {
        fd: &'static OwnedFd,
        dir: PathBuf,
    }

    pub fn register(dir: &Path) -> Option<Registered> {
        let fd = instance()?;
        let mut dirs = DIRS.lock();
        // Added again for each waiter: the same directory gives the same
        // descriptor, one made again at that path a new one (the old is gone).
        let watch =
            inotify::add_watch(fd, dir, WatchFlags::DELETE | WatchFlags::MOVED_FROM).ok()?;
        let entry = dirs.entry(dir.to_path_buf()).or_insert((watch, 0));
        entry.0 = watch;
        entry.1 += 1;
        Some(Registered {
            fd,
            dir: dir.to_path_buf(),
        })
    }

    impl Registered {
        pub fn wait(&self, pause: Duration) {
            let mut fds = [PollFd::new(self.fd, PollFlags::IN)];
            let timeout = Timespec::try_from(pause.max(Duration::from_millis(1))).ok();
            if poll(&mut fds, timeout.as_ref()).is_ok_and(|ready| ready > 0) {
                // Drain the events: we only needed the wake-up (other waiters
                // polling it woke too; one that starts polling after the drain
                // waits its pause out).
                let mut buffer = [0u8; 4096];
                while rustix::io::read(self.fd, &mut buffer).is_ok_and(|n| n > 0) {}
            }
        }
    }

    impl Drop for Registered {
        fn drop(&mut self) {
            let mut dirs = DIRS.lock();
            let Some(entry) = dirs.get_mut(&self.dir) else {
                return;
            };
            entry.1 -= 1;
            if entry.1 == 0 {
                let watch = entry.0;
                dirs.remove(&self.dir);
                let _ = inotify::remove_watch(self.fd, watch);
            }
        }
    }

    /// Directories watched now (for tests).
    #[cfg(test)]
    pub fn watched() -> usize {
        DIRS.lock().len()
    }
}

#[cfg(test)]
#[path = "dir_watch_tests.rs"]
mod tests;
