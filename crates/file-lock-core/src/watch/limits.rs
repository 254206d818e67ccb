//! Why a watch could not be set up, in words that name the real limit.
//!
//! Invariant: an OS limit on watchers is never reported as a plain errno
//! (inotify says `EMFILE` "Too many open files" when it means its per-user
//! instance limit, and `ENOSPC` "No space left on device" for its per-user
//! watch limit): it becomes a `WatchError::Limit` whose text names the limit,
//! its current value and how to raise it. Whatever else fails stays the
//! `io::Error` it is.

use std::fmt;
use std::io;
use std::path::Path;

/// The stable code of `WatchError::Limit` (see README, Error codes).
pub const LIMIT_CODE: &str = "EWATCHLIMIT";

/// A watch that could not be set up.
#[derive(Debug)]
pub enum WatchError {
    /// An OS limit on file watching is reached: the text names it and how to
    /// raise it.
    Limit(String),
    /// Anything else (the directory is missing, not readable…).
    Io(io::Error),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Limit(text) => f.write_str(text),
            WatchError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WatchError {}

impl From<io::Error> for WatchError {
    fn from(e: io::Error) -> Self {
        WatchError::Io(e)
    }
}

/// Creating the process's OS watcher failed.
pub fn from_create(error: notify::Error) -> WatchError {
    match error.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::Limit(instances_text()),
        notify::ErrorKind::Io(e) if is_instance_limit(&e) => WatchError::Limit(instances_text()),
        notify::ErrorKind::Io(e) => WatchError::Io(e),
        _ => WatchError::Io(io::Error::other(error.to_string())),
    }
}

/// Adding `dir` to the OS watcher failed; `watched` directories are watched already.
pub fn from_add(error: notify::Error, dir: &Path, watched: usize) -> WatchError {
    match error.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::Limit(watches_text(watched)),
        notify::ErrorKind::Io(e) if e.raw_os_error() == Some(ENOSPC) => {
            WatchError::Limit(watches_text(watched))
        }
        notify::ErrorKind::Io(e) => WatchError::Io(e),
        notify::ErrorKind::PathNotFound => WatchError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", dir.display()),
        )),
        _ => WatchError::Io(io::Error::other(error.to_string())),
    }
}

#[cfg(unix)]
const ENOSPC: i32 = libc::ENOSPC;
#[cfg(not(unix))]
const ENOSPC: i32 = -1;

/// `EMFILE` from `inotify_init1` is the per-user instance limit unless this
/// process is out of file descriptors (then it is what it says).
fn is_instance_limit(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.raw_os_error() == Some(libc::EMFILE) && !out_of_descriptors()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

/// Whether this process uses (nearly) all the descriptors `ulimit -n` allows.
#[cfg(target_os = "linux")]
fn out_of_descriptors() -> bool {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let Some(current) = limit.current else {
        return false; // unlimited
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    open + 2 >= current
}

/// One of the limits in /proc/sys (this user namespace's value when the
/// kernel has per-namespace ones, which is the one that applies).
#[cfg(target_os = "linux")]
fn sysctl(per_namespace: &str, global: &str) -> String {
    [per_namespace, global]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map_or_else(|| "?".into(), |v| v.trim().to_string())
}

#[cfg(target_os = "linux")]
fn instances_text() -> String {
    let value = sysctl(
        "/proc/sys/user/max_inotify_instances",
        "/proc/sys/fs/inotify/max_user_instances",
    );
    format!(
        "the per-user limit of inotify instances is reached (fs.inotify.max_user_instances = {value}): \
         other programs of this user hold them all (this process needs one, shared by all its watches); \
         raise it with `sudo sysctl fs.inotify.max_user_instances=1024` (and a line in /etc/sysctl.d/ to keep it)"
    )
}

#[cfg(target_os = "linux")]
fn watches_text(watched: usize) -> String {
    let value = sysctl(
        "/proc/sys/user/max_inotify_watches",
        "/proc/sys/fs/inotify/max_user_watches",
    );
    format!(
        "the per-user limit of inotify watches is reached (fs.inotify.max_user_watches = {value}; \
         this process watches {watched} folder(s), one watch each, the rest belong to other programs of this user); \
         raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (and a line in /etc/sysctl.d/ to keep it)"
    )
}

#[cfg(not(target_os = "linux"))]
fn instances_text() -> String {
    "the operating system's limit on file watchers is reached".into()
}

#[cfg(not(target_os = "linux"))]
fn watches_text(watched: usize) -> String {
    format!(
        "the operating system's limit on watched folders is reached (this process watches {watched})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_named_with_the_sysctl_that_raises_them() {
        let add = from_add(
            notify::Error::new(notify::ErrorKind::MaxFilesWatch),
            Path::new("/x"),
            3,
        );
        let WatchError::Limit(text) = add else {
            panic!("not a limit: {add:?}")
        };
        #[cfg(target_os = "linux")]
        assert!(
            text.contains("max_user_watches") && text.contains("sysctl"),
            "{text}"
        );
        assert!(text.contains('3'), "{text}");
        #[cfg(target_os = "linux")]
        {
            let create = from_create(notify::Error::io(io::Error::from_raw_os_error(
                libc::EMFILE,
            )));
            let WatchError::Limit(text) = create else {
                panic!("not a limit: {create:?}")
            };
            assert!(
                text.contains("max_user_instances") && text.contains("sysctl"),
                "{text}"
            );
        }
        let other = from_add(
            notify::Error::io(io::Error::from(io::ErrorKind::PermissionDenied)),
            Path::new("/x"),
            0,
        );
        assert!(matches!(other, WatchError::Io(e) if e.kind() == io::ErrorKind::PermissionDenied));
    }
}
