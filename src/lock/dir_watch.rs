//! Wake-ups for lock-file waiters. On Linux an inotify watch on the lock file's
//! directory ends a poll pause the moment a file there is deleted or renamed
//! away (a release), so a handoff takes microseconds instead of a poll
//! interval. Elsewhere, and for changes made by other machines on a share
//! (which raise no events), the pause simply runs out.
//!
//! Invariant: a watch never makes a waiter miss a release: it can only end a
//! pause early; any failure to watch falls back to the plain pause.

use std::path::Path;
use std::time::Duration;

pub struct DirWatch {
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
}

impl DirWatch {
    #[cfg(target_os = "linux")]
    pub fn new(dir: &Path) -> DirWatch {
        use std::ffi::CString;
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let fd = (|| {
            let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if raw < 0 {
                return None;
            }
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
            let mask = libc::IN_DELETE | libc::IN_MOVED_FROM;
            let watch = unsafe { libc::inotify_add_watch(raw, path.as_ptr(), mask) };
            (watch >= 0).then_some(fd)
        })();
        DirWatch { fd }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_dir: &Path) -> DirWatch {
        DirWatch {}
    }

    /// Sleeps for `pause`, or less when something in the directory was removed.
    #[cfg(target_os = "linux")]
    pub fn wait(&self, pause: Duration) {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.fd else {
            return std::thread::sleep(pause);
        };
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = pause.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        if unsafe { libc::poll(&mut poll, 1, timeout) } > 0 {
            // Drain the events: we only needed the wake-up.
            let mut buffer = [0u8; 4096];
            while unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) }
                > 0
            {}
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wait(&self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_removal_ends_the_pause_early_and_nothing_else_is_needed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x");
        std::fs::write(&file, "").unwrap();
        let watch = DirWatch::new(dir.path());
        let remover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_file(file).unwrap();
        });
        let started = Instant::now();
        watch.wait(Duration::from_secs(5));
        remover.join().unwrap();
        if cfg!(target_os = "linux") {
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "woken by the removal"
            );
        }
        let started = Instant::now();
        watch.wait(Duration::from_millis(30));
        assert!(
            started.elapsed() >= Duration::from_millis(25),
            "a quiet directory waits the pause out"
        );
    }
}
