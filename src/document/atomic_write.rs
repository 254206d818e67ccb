//! Replacing a file so that a crash at any moment leaves exactly the old or the
//! new version: write a unique temp file in the same directory, flush it to
//! disk, rename it over the target, flush the directory.
//!
//! Invariants:
//! - The target is only ever changed by one `rename`, which is atomic within a
//!   directory; a reader sees the whole old or the whole new content.
//! - Success is reported only once the rename happened (and, with
//!   `Durability::Fsync`, once file and directory are on disk: F_FULLFSYNC on
//!   macOS); on any failure the temp file is removed and the target untouched.
//! - Temp names carry our pid and where it means something (host name, boot,
//!   PID namespace: `ProcessIdentity::file_token`), so a temp file left by a
//!   crashed writer can be told from one being written (`remove_stale_temps`),
//!   and a live writer's temp file in another container or sandbox sharing
//!   the directory is never taken for a dead one's.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{self, Liveness};
use crate::watch::own_writes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it.
    Fsync,
    /// Atomic but not durable: a power loss may bring the old version back.
    None,
}

/// `.roles.json.<pid>.<token>~<place>.tmp` beside `roles.json`.
fn temp_path(target: &Path) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy();
    let me = process::current();
    Ok(target.with_file_name(format!(".{name}.{}.{}.tmp", me.pid, me.file_token())))
}

/// Atomically replaces `target` with `bytes` (creating it if missing).
pub fn replace(target: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let temp = temp_path(target)?;
    let result = write_then_rename(target, &temp, bytes, durability);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(
    target: &Path,
    temp: &Path,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<()> {
    refuse_read_only(target)?;
    let mut file = create_temp(temp, target)?;
    file.write_all(bytes)?;
    if durability == Durability::Fsync {
        full_sync(&file)?;
    }
    drop(file);
    // Known as ours before anyone can see it, so watchers never call it external.
    if let Ok(watched) = crate::watch::watched_path(target) {
        own_writes::record(&watched, own_writes::content_hash(bytes));
    }
    rename_with_retries(temp, target)?;
    if durability == Durability::Fsync {
        sync_directory(target.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// A rename would replace a read-only file as easily as any other: honour the
/// file's own permission instead (EACCES, as an in-place write would get).
fn refuse_read_only(target: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c_path) = std::ffi::CString::new(target.as_os_str().as_bytes()) else {
            return Ok(());
        };
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } != 0 {
            let error = io::Error::last_os_error();
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

fn create_temp(temp: &Path, target: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // Keep the target's permissions; a new file gets the usual 0644 (less umask).
        let mode = std::fs::metadata(target).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = target;
    options.open(temp)
}

/// fsync; on macOS F_FULLFSYNC, since its fsync does not reach the platter.
pub(crate) fn full_sync(file: &File) -> io::Result<()> {
    #[cfg(target_os = "macos")]
    {
        use std::os::unix::io::AsRawFd;
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_FULLFSYNC) } == 0 {
            return Ok(());
        }
    }
    file.sync_all()
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

/// Removes temp files of `target` left by writers that have died (on this
/// host, boot and PID namespace: their pid is gone; elsewhere: a day old,
/// see `remove_dead_temps`), beside it and in its backups folder
/// (`.<name>.backups/`, whose backups are written the same way). Returns how
/// many were removed.
pub fn remove_stale_temps(target: &Path) -> io::Result<usize> {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(".{name}.");
    let mut removed = remove_dead_temps(dir, |file_name| file_name.starts_with(&prefix))?;
    let backups = dir.join(format!(".{name}.backups"));
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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn replaces_creates_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roles.json");
        replace(&target, b"[1]", Durability::Fsync).unwrap();
        replace(&target, b"[1,2]", Durability::None).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"[1,2]");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["roles.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_targets_permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roles.json");
        std::fs::write(&target, "{}").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace(&target, b"{\"a\":1}", Durability::None).unwrap();
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_failed_write_leaves_the_old_version_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roles.json");
        std::fs::write(&target, "old").unwrap();
        // Renaming onto a directory fails after the temp file was written.
        let blocked = dir.path().join("sub");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), "").unwrap();
        assert!(replace(&blocked, b"new", Durability::Fsync).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        let temps = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(temps, 0);
    }

    #[test]
    fn readers_never_see_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = Arc::new(dir.path().join("roles.json"));
        let big = |n: u8| vec![b'a' + n % 26; 256 * 1024];
        replace(&target, &big(0), Durability::None).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (target, done) = (Arc::clone(&target), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    let bytes = std::fs::read(&*target).unwrap();
                    assert_eq!(bytes.len(), 256 * 1024, "a torn or empty file was seen");
                    assert!(
                        bytes.iter().all(|b| *b == bytes[0]),
                        "a mix of two versions was seen"
                    );
                    reads += 1;
                }
                reads
            })
        };
        for n in 1..60 {
            replace(&target, &big(n), Durability::None).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
    }

    #[cfg(unix)]
    #[test]
    fn temp_files_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roles.json");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".roles.json.{dead}.x-1.tmp"));
        let live = dir
            .path()
            .join(format!(".roles.json.{}.x-2.tmp", std::process::id()));
        let unrelated = dir.path().join(".other.json.1.x.tmp");
        for path in [&stale, &live, &unrelated] {
            std::fs::write(path, "partial").unwrap();
        }
        assert_eq!(remove_stale_temps(&target).unwrap(), 1);
        assert!(!stale.exists() && live.exists() && unrelated.exists());
    }

    #[cfg(unix)]
    #[test]
    fn temp_files_of_another_host_boot_or_pid_namespace_are_not_judged_by_their_pid() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roles.json");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // Named the way `replace` names them: with our place.
        let ours_dead = dir.path().join(format!(
            ".roles.json.{dead}.{}.tmp",
            process::current().file_token()
        ));
        let ours_live = temp_path(&target).unwrap();
        // A writer elsewhere (another PID namespace here, say) whose pid is dead here.
        let foreign = dir
            .path()
            .join(format!(".roles.json.{dead}.x-1~000000000000.tmp"));
        let foreign_ancient = dir
            .path()
            .join(format!(".roles.json.{dead}.x-2~000000000000.tmp"));
        for path in [&ours_dead, &ours_live, &foreign, &foreign_ancient] {
            std::fs::write(path, "partial").unwrap();
        }
        File::options()
            .write(true)
            .open(&foreign_ancient)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(25 * 3600))
            .unwrap();
        assert_eq!(remove_stale_temps(&target).unwrap(), 2);
        assert!(!ours_dead.exists() && !foreign_ancient.exists());
        assert!(ours_live.exists(), "our own temp file is being written");
        assert!(foreign.exists(), "a pid of elsewhere proves nothing here");
    }
}
