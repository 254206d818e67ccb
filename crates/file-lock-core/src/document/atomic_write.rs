//! Replacing a file so that a crash at any moment leaves exactly the old or the
//! new version: write a unique temp file in the same directory, flush it to
//! disk, rename it over the target, flush the directory.
//!
//! Invariants:
//! - The target is only ever changed by one `rename`, which is atomic within a
//!   directory; a reader sees the whole old or the whole new content.
//! - Success is reported only once the rename happened (and, with
//!   `Durability::Fsync`, once file and directory are on disk: F_FULLFSYNC on
//!   macOS, or a plain fsync where the file system refuses it, which the
//!   write's `Flush` says); on any failure the temp file is removed and the
//!   target untouched.
//!   A caller's step between the rename and the directory fsync (a commit
//!   letting its lock go) runs only once the rename happened.
//! - Temp names carry our pid and where it means something (host name, boot,
//!   PID namespace: `ProcessIdentity::file_token`), so a temp file left by a
//!   crashed writer can be told from one being written (`remove_stale_temps`),
//!   and a live writer's temp file in another container or sandbox sharing
//!   the directory is never taken for a dead one's.
//! - Writes go where the data lives: a target that is a symbolic link (or a
//!   chain of them) is followed at each write, and the file at its end is
//!   replaced (in its own directory); the link stays a link.
//! - Only a regular file (or nothing) is ever replaced: a FIFO, a device, a
//!   folder or a socket at the target is refused and left as it is.
//! - Every name created fits `NAME_MAX` (`paths::fit`: a long name's temp
//!   files are built on its stem), and stale temp cleanup recognises both forms.

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::paths;
use crate::process::{self, Liveness};
use crate::watch::own_writes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Fsync,
    /// Atomic but not durable: a power loss may bring the old version back.
    None,
}

/// How a durable write's file reached the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flush {
    /// As the platform flushes best (`fsync`; `F_FULLFSYNC` on Apple), or not
    /// asked to (`Durability::None`).
    Full,
    /// Apple only: the file system refused `F_FULLFSYNC` (SMB, some FUSE
    /// shares), so a plain `fsync` was used, which leaves the data in the
    /// drive's cache: the reason, for the audit trail.
    PlainFsync(String),
}

/// `.roles.json.<pid>.<token>~<place>.tmp` beside `roles.json`; for a name
/// too long for that, `.<stem>.<pid>.<token>~<place>.tmp` (`paths::fit`).
fn temp_path(target: &Path) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy();
    let me = process::current();
    let tail = format!(".{}.{}.tmp", me.pid, me.file_token());
    Ok(target.with_file_name(paths::fit(".", OsStr::new(&*name), &tail)))
}

/// Atomically replaces the file at `path` with `bytes` (creating it if
/// missing). When `path` is a symbolic link, the file it leads to (now) is
/// replaced, in that file's directory, and the link is kept.
pub fn replace(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<Flush> {
    let replace = Replace::prepare(path)?;
    if let Some(found) = &replace.found {
        paths::refuse_special_seen(&replace.target, found)?;
    }
    let ((), flush) = replace.write(bytes, own_writes::content_hash(bytes), durability, |_| {
        Ok(())
    })?;
    Ok(flush)
}

/// A replace made ready, by as few syscalls as it can (one `lstat` when
/// `path` is no link): where it writes, what is there now, and the names
/// watchers know the file by. `version::commit` checks its version and its
/// lock against this before anything is written.
pub(crate) struct Replace {
    /// The file replaced: the path given with its links followed.
    pub(crate) target: PathBuf,
    /// What an `lstat` of `target` found (`None`: nothing there).
    pub(crate) found: Option<Metadata>,
    temp: PathBuf,
    /// The names watchers know the file by (canonical folder: `watch::watched_path`),
    /// computed once: `target`'s, and the path given when it is a link.
    canonical: Option<PathBuf>,
    link: Option<PathBuf>,
}

impl Replace {
    pub(crate) fn prepare(path: &Path) -> io::Result<Replace> {
        let (target, found) = paths::follow_links_seen(path)?;
        let temp = temp_path(&target)?;
        let canonical = crate::watch::watched_path(&target).ok();
        let link = if path == target {
            None
        } else {
            crate::watch::watched_path(path).ok()
        };
        Ok(Replace {
            target,
            found,
            temp,
            canonical,
            link,
        })
    }

    /// `target` as the lock manager names it (canonical folder; what
    /// `lock::manager::resolve_target` gives), and as own writes record it;
    /// `None` when its folder cannot be resolved (the write then fails).
    pub(crate) fn canonical_target(&self) -> Option<&Path> {
        self.canonical.as_deref()
    }

    /// Writes `bytes` (whose content hash is `hash`) to a temp file and renames
    /// it over `target`; `after_rename` runs right after the rename, before
    /// the directory fsync (a commit states its version and lets its lock go
    /// there), and what it returns is returned, with how the file was flushed.
    /// On failure the temp file is removed.
    pub(crate) fn write<T>(
        self,
        bytes: &[u8],
        hash: u64,
        durability: Durability,
        after_rename: impl FnOnce(&Path) -> io::Result<T>,
    ) -> io::Result<(T, Flush)> {
        let result = self.write_then_rename(bytes, hash, durability, after_rename);
        if result.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        result
    }

    fn write_then_rename<T>(
        &self,
        bytes: &[u8],
        hash: u64,
        durability: Durability,
        after_rename: impl FnOnce(&Path) -> io::Result<T>,
    ) -> io::Result<(T, Flush)> {
        let (target, temp) = (&self.target, &self.temp);
        if self.found.is_some() {
            refuse_read_only(target)?;
        }
        let mut file = create_temp(temp, self.found.as_ref())?;
        file.write_all(bytes)?;
        let mut flush = Flush::Full;
        if durability == Durability::Fsync {
            // fsync, not fdatasync: the file is new, its size and blocks are
            // metadata that must be on disk before the rename is.
            flush = full_sync(&file)?;
        }
        drop(file);
        // Known as ours before anyone can see it, so watchers never call it external:
        // under the spelling written to and, through a link, the file it leads to.
        for watched in [&self.link, &self.canonical].into_iter().flatten() {
            own_writes::record(watched, hash);
        }
        rename_with_retries(temp, target)?;
        let renamed = after_rename(target)?;
        if durability == Durability::Fsync {
            sync_directory(target.parent().unwrap_or(Path::new(".")))?;
        }
        Ok((renamed, flush))
    }
}

/// A rename would replace a read-only file as easily as any other: honour the
/// file's own permission instead (EACCES, as an in-place write would get).
fn refuse_read_only(target: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        if let Err(errno) = rustix::fs::access(target, rustix::fs::Access::WRITE_OK) {
            let error = io::Error::from(errno);
            if error.kind() != io::ErrorKind::NotFound {
                return Err(error);
            }
        }
    }
    #[cfg(windows)]
    {
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.permissions().readonly() {
                return Err(io::Error::from_raw_os_error(5)); // ERROR_ACCESS_DENIED
            }
        }
    }
    Ok(())
}

fn create_temp(temp: &Path, found: Option<&Metadata>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // Keep the target's permissions; a new file gets the usual 0644 (less umask).
        let mode = found.map_or(0o644, |m| m.permissions().mode() & 0o7777);
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = found;
    options.open(temp)
}

/// fsync; on Apple targets F_FULLFSYNC, since their fsync leaves the data in
/// the drive's cache. Where the file system refuses F_FULLFSYNC as unsupported
/// (SMB, some FUSE shares) a plain fsync is the best there is: the write goes
/// on, and says so (`Flush::PlainFsync`) instead of failing. (`sync_all` is no
/// fallback there: std makes it F_FULLFSYNC again on Apple targets.) Any other
/// failure fails the write: a second fsync after a failed one may report a
/// success for data already lost.
pub(crate) fn full_sync(file: &File) -> io::Result<Flush> {
    if let Some(refused) = injected_refusal() {
        return plain_fsync_instead(file, refused);
    }
    #[cfg(target_vendor = "apple")]
    {
        match rustix::fs::fcntl_fullfsync(file) {
            Ok(()) => Ok(Flush::Full),
            Err(errno) if means_unsupported(errno) => plain_fsync_instead(file, errno.into()),
            Err(errno) => Err(errno.into()),
        }
    }
    #[cfg(not(target_vendor = "apple"))]
    {
        file.sync_all()?;
        Ok(Flush::Full)
    }
}

#[cfg(target_vendor = "apple")]
fn means_unsupported(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [
        Errno::NOTSUP,
        Errno::OPNOTSUPP,
        Errno::NOTTY,
        Errno::INVAL,
        Errno::NOSYS,
    ]
    .contains(&errno)
}

fn plain_fsync_instead(file: &File, refused: io::Error) -> io::Result<Flush> {
    #[cfg(unix)]
    rustix::fs::fsync(file)?;
    #[cfg(not(unix))]
    file.sync_all()?;
    Ok(Flush::PlainFsync(format!(
        "F_FULLFSYNC was refused ({refused}): a plain fsync was used, which may leave the data in the drive's cache"
    )))
}

/// Fault injection for tests (`FILE_LOCK_MANAGER_FAULT_FULLFSYNC=ENOTSUP`): the
/// full flush is refused on every platform, as a macOS SMB share refuses
/// F_FULLFSYNC, so the fallback and its report run where tests run. Read
/// once; unset in production.
fn injected_refusal() -> Option<io::Error> {
    static FAULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let refused = *FAULT.get_or_init(|| {
        std::env::var("FILE_LOCK_MANAGER_FAULT_FULLFSYNC").is_ok_and(|v| v == "ENOTSUP")
    });
    refused.then(|| io::Error::new(io::ErrorKind::Unsupported, "injected: ENOTSUP"))
}

#[cfg(unix)]
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(()) // Windows has no directory handle to flush; MoveFileEx is journaled by NTFS.
}

/// On Windows an antivirus or indexer briefly holding the target makes rename
/// fail with a sharing error: retry for a bounded time (about 2.5 s in all).
fn rename_with_retries(temp: &Path, target: &Path) -> io::Result<()> {
    let mut pause = Duration::from_millis(10);
    let mut tries = 0;
    loop {
        match std::fs::rename(temp, target) {
            Ok(()) => return Ok(()),
            Err(e) if transient(&e) && tries < 8 => {
                tries += 1;
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

fn transient(error: &io::Error) -> bool {
    cfg!(windows)
        && matches!(
            error.raw_os_error(),
            Some(5 | 32 | 33) // ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION
        )
}

/// Removes temp files of `path` left by writers that have died (on this
/// host, boot and PID namespace: their pid is gone; elsewhere: a day old,
/// see `remove_dead_temps`), beside the file (through links: where they
/// lead) and in its backups folder (`.<name>.backups/`, whose backups are
/// written the same way). Returns how many were removed.
pub fn remove_stale_temps(path: &Path) -> io::Result<usize> {
    let target = paths::follow_links(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // `.<name>.<pid>.<token>.tmp`, or `.<stem>.<pid>.<token>.tmp` for a long name.
    let prefixes = [
        format!(".{name}."),
        format!(".{}.", paths::stem(OsStr::new(&name)).to_string_lossy()),
    ];
    let mut removed = remove_dead_temps(dir, |file_name| {
        prefixes.iter().any(|prefix| {
            file_name
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.matches('.').count() == 2)
        })
    })?;
    let backups = dir.join(paths::fit(".", OsStr::new(&name), ".backups"));
    if backups.is_dir() {
        removed += remove_dead_temps(&backups, |_| true)?;
    }
    Ok(removed)
}

/// A temp file of a writer whose pid cannot be checked here is abandoned once
/// this old (by its mtime): a writer renames its temp file a few seconds after
/// writing it, so one that is a day old has no live writer left.
const ABANDONED_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Removes `.<anything>.<pid>.<token>[~<place>].tmp` files of `dir` accepted by
/// `ours` whose writer is dead.
///
/// The danger is removing a live writer's temp file just before it renames it
/// into place (its save then fails). A pid is therefore trusted only where it
/// means something: when the name's place is ours (same host name, boot and
/// PID namespace), or when the name has no place (written by a previous
/// version: judged as before). A temp file of another place (a writer in a
/// container, a Flatpak or Snap sandbox, another machine sharing the
/// directory, or a previous boot) is never removed because its pid looks dead
/// here, where that proves nothing: only once it is `ABANDONED_TEMP_AGE` old.
fn remove_dead_temps(dir: &Path, ours: impl Fn(&str) -> bool) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with('.') || !ours(&file_name) {
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".tmp") else {
            continue;
        };
        // The pid is the second field from the end (tokens hold no dots).
        let mut fields = stem.rsplit('.');
        let token = fields.next().unwrap_or("");
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let abandoned = if process::file_pid_is_checkable(token) {
            process::liveness(pid, None) == Liveness::Dead
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_TEMP_AGE)
        };
        if abandoned && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[path = "atomic_write_tests.rs"]
mod tests;
