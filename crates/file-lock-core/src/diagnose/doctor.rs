//! `doctor`: whether locks and atomic saves work in a directory (writable,
//! O_EXCL create, OS locks, network detection, rename, fsync).
//!
//! Invariant: its probe files have unique names and are all removed, whatever
//! failed; probes abandoned by a killed doctor are removed after an hour.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::document::atomic_write::{self, Durability};
use crate::fs_kind::{self, FsKind};
use crate::lock::lockfile::{self};
use crate::lock::os_lock::{self, Support};
use crate::lock::strategy::auto_strategy;
use crate::lock::{Mode, Strategy};
use crate::process::{self};

/// The result of one doctor check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    /// Works, with a consequence worth knowing (a network share, no OS locks).
    Warn,
    Fail,
    /// Not run (a check it depends on failed).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    /// How long the checked operation took (fsyncs, the replace).
    pub elapsed: Option<Duration>,
}

/// What the OS-lock probe of `auto` found in a directory.
#[derive(Debug, Clone)]
pub struct OsLockProbe {
    pub supported: bool,
    /// False when support could not be told (then it counts as supported).
    pub tested: bool,
    /// The errno when refused.
    pub code: Option<String>,
    pub reason: String,
}

/// `auto`'s probe of OS lock support in `dir` (a shared lock on the directory).
pub fn probe_os_locks(dir: &Path) -> OsLockProbe {
    match os_lock::probe(dir) {
        Support::Works => OsLockProbe {
            supported: true,
            tested: true,
            code: None,
            reason: format!("{} works on this directory", os_lock_name()),
        },
        Support::Refused(e) => OsLockProbe {
            supported: false,
            tested: true,
            code: Some(errno_text(&e)),
            reason: format!("the file system refused {}: {e}", os_lock_name()),
        },
        Support::Untested(why) => OsLockProbe {
            supported: true,
            tested: false,
            code: None,
            reason: format!("{why}; counted as supported (the lock itself is tried)"),
        },
    }
}

#[derive(Debug, Clone)]
pub struct DoctorReport {
    pub dir: PathBuf,
    pub file_system: FsKind,
    pub fs_type: Option<String>,
    pub os_locks: OsLockProbe,
    /// What `strategy: 'auto'` picks here, and why.
    pub verdict: (Strategy, String),
    pub checks: Vec<Check>,
    /// What to do about what was found, when anything.
    pub advice: Vec<String>,
}

impl DoctorReport {
    /// No check failed.
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }
}

/// Checks that locks and atomic saves work in `dir`: writable, O_EXCL create,
/// OS locks, network detection, rename, fsync; its probe files are removed.
pub fn doctor(dir: &Path) -> Result<DoctorReport, LockError> {
    let meta = std::fs::metadata(dir).map_err(|e| LockError::io(dir, "stat", e))?;
    if !meta.is_dir() {
        return Err(LockError::InvalidPath {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let dir = crate::paths::canonical(dir).map_err(|e| LockError::io(dir, "resolve", e))?;
    let file_system = fs_kind::detect(&dir);
    let probe = Probe::new(&dir);
    let mut checks = Vec::new();

    let writable = probe.writable();
    let can_write = writable.status == CheckStatus::Ok;
    checks.push(writable);
    let skipped = |id, title| Check {
        id,
        title,
        status: CheckStatus::Skip,
        detail: "needs a writable directory".into(),
        elapsed: None,
    };
    let os_locks = probe_os_locks(&dir);
    if can_write {
        checks.push(probe.exclusive_create());
        checks.push(probe.os_locks(&os_locks));
    } else {
        checks.push(skipped("exclusive-create", EXCLUSIVE_CREATE));
        checks.push(Check {
            detail: os_locks.reason.clone(),
            status: if os_locks.supported {
                CheckStatus::Ok
            } else {
                CheckStatus::Warn
            },
            ..skipped("os-locks", OS_LOCKS)
        });
    }
    checks.push(network_check(&file_system, fs_kind::type_name(&dir)));
    if can_write {
        checks.push(probe.atomic_replace());
        checks.push(probe.fsync_file());
        checks.push(probe.fsync_directory());
    } else {
        checks.push(skipped("rename", RENAME));
        checks.push(skipped("fsync-file", FSYNC_FILE));
        checks.push(skipped("fsync-dir", FSYNC_DIR));
    }
    checks.push(probe.clean_up());

    let verdict = auto_strategy(&dir, &file_system);
    let mut advice = Vec::new();
    let os_failed = checks
        .iter()
        .any(|c| c.id == "os-locks" && c.status == CheckStatus::Fail);
    if verdict.0 == Strategy::Os && os_failed {
        advice.push(
            "auto picks OS locks here, but they did not exclude a second handle: set strategy 'lockfile' for files in this directory".into(),
        );
    }
    if file_system.is_network() {
        advice.push(format!(
            "every machine sharing files here must use strategy 'lockfile': auto does on machines that see this directory as a network drive ({}), a machine that has it on a local disk must set it explicitly",
            file_system.name()
        ));
    }
    Ok(DoctorReport {
        fs_type: fs_kind::type_name(&dir),
        dir,
        file_system,
        os_locks,
        verdict,
        checks,
        advice,
    })
}

const WRITABLE: &str = "directory is writable";
const EXCLUSIVE_CREATE: &str = "exclusive create (O_EXCL) for lock files";
const OS_LOCKS: &str = if cfg!(windows) {
    "OS locks (LockFileEx)"
} else {
    "OS locks (flock)"
};
const NETWORK: &str = "local disk or network share";
const RENAME: &str = "atomic replace (temp file + rename)";
const FSYNC_FILE: &str = "fsync of a file";
const FSYNC_DIR: &str = "fsync of the directory";
const CLEANUP: &str = "probe files removed";

/// A slow fsync is worth a warning: every durable document save waits for it.
const SLOW_FSYNC: Duration = Duration::from_millis(500);

fn network_check(file_system: &FsKind, fs_type: Option<String>) -> Check {
    let kind = fs_type.map(|t| format!(" ({t})")).unwrap_or_default();
    let (status, detail) = match file_system {
        FsKind::Local => (CheckStatus::Ok, format!("a local file system{kind}")),
        FsKind::Network(name) => (
            CheckStatus::Warn,
            format!(
                "a network share ({name}){kind}: OS locks are unreliable there, so auto uses the lock file, and waits and stale times are stretched by networkTimeoutFactor"
            ),
        ),
    };
    Check {
        id: "network",
        title: NETWORK,
        status,
        detail,
        elapsed: None,
    }
}

/// The probe files of one doctor run: `.flm-doctor.<pid>.<token>~<place>.*`
/// (`ProcessIdentity::file_token`: the place says where the pid means something).
struct Probe {
    dir: PathBuf,
    prefix: String,
}

impl Probe {
    fn new(dir: &Path) -> Probe {
        let me = process::current();
        Probe {
            dir: dir.to_path_buf(),
            prefix: format!(".flm-doctor.{}.{}", me.pid, me.file_token()),
        }
    }

    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.prefix))
    }

    fn check(
        id: &'static str,
        title: &'static str,
        result: io::Result<(CheckStatus, String)>,
    ) -> Check {
        let (status, detail) = result.unwrap_or_else(|e| (CheckStatus::Fail, errno_detail(&e)));
        Check {
            id,
            title,
            status,
            detail,
            elapsed: None,
        }
    }

    fn writable(&self) -> Check {
        let result = (|| {
            let mut file = File::options()
                .write(true)
                .create_new(true)
                .open(self.path("probe"))?;
            file.write_all(&[b'x'; 4096])?;
            Ok((
                CheckStatus::Ok,
                "created and wrote a probe file".to_string(),
            ))
        })();
        Self::check("writable", WRITABLE, result)
    }

    /// The lock-file strategy's own create, token-checked removal included.
    fn exclusive_create(&self) -> Check {
        let path = self.path("lock");
        let result = (|| {
            let Some(claim) = lockfile::try_create(&path, Mode::Exclusive)?.claim() else {
                return Ok((
                    CheckStatus::Fail,
                    "the first exclusive create of a fresh name found a file there".to_string(),
                ));
            };
            let second = lockfile::try_create(&path, Mode::Exclusive).map(lockfile::Created::claim);
            let readable = lockfile::observe(&path)?
                .and_then(|s| s.record())
                .is_some_and(|r| r.token == claim.token);
            let removed = lockfile::remove_own(&path, &claim)?;
            Ok(match second {
                Ok(Some(_)) => (
                    CheckStatus::Fail,
                    "a second exclusive create of the same name succeeded: O_EXCL is not honoured, lock files cannot exclude"
                        .to_string(),
                ),
                Err(e) => (
                    CheckStatus::Fail,
                    format!("a second create failed with {} instead of EEXIST", errno_text(&e)),
                ),
                Ok(None) if !readable => (
                    CheckStatus::Fail,
                    "the lock file's record did not read back whole".to_string(),
                ),
                Ok(None) if !removed => (
                    CheckStatus::Fail,
                    "the lock file could not be removed by its holder".to_string(),
                ),
                Ok(None) => (
                    CheckStatus::Ok,
                    format!(
                        "created {}, a second create was refused (EEXIST), the record read back whole, removed by its token",
                        if cfg!(windows) { "with CREATE_NEW" } else { "with O_CREAT|O_EXCL|O_NOFOLLOW" }
                    ),
                ),
            })
        })();
        let _ = std::fs::remove_file(&path);
        Self::check("exclusive-create", EXCLUSIVE_CREATE, result)
    }

    /// `auto`'s probe, then two handles on one file: the second must be excluded.
    fn os_locks(&self, support: &OsLockProbe) -> Check {
        let title = OS_LOCKS;
        if !support.supported {
            return Check {
                id: "os-locks",
                title,
                status: CheckStatus::Warn,
                detail: format!("{}: auto uses the lock file here", support.reason),
                elapsed: None,
            };
        }
        let path = self.path("probe");
        let result = (|| {
            let open = || File::options().read(true).write(true).open(&path);
            let (a, b) = (open()?, open()?);
            let unsupported = |e: io::Error| -> io::Result<(CheckStatus, String)> {
                if os_lock::means_unsupported(&e) {
                    Ok((
                        CheckStatus::Warn,
                        format!(
                            "the file system refused {} on a file ({}): OS-lock users fall back to the lock file here",
                            os_lock_name(),
                            errno_text(&e)
                        ),
                    ))
                } else {
                    Err(e)
                }
            };
            match os_lock::try_lock(&a, Mode::Exclusive) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok((
                        CheckStatus::Fail,
                        "a fresh probe file was reported locked by someone else".into(),
                    ))
                }
                Err(e) => return unsupported(e),
            }
            let excluded = !os_lock::try_lock(&b, Mode::Exclusive)?;
            let readers_excluded = !os_lock::try_lock(&b, Mode::Shared)?;
            os_lock::unlock(&a)?;
            let handed_on = os_lock::try_lock(&b, Mode::Exclusive)?;
            let _ = os_lock::unlock(&b);
            Ok(if !(excluded && readers_excluded) {
                (
                    CheckStatus::Fail,
                    format!(
                        "{} did not exclude a second handle while held: OS locks are not enforced here",
                        os_lock_name()
                    ),
                )
            } else if !handed_on {
                (
                    CheckStatus::Fail,
                    "a released OS lock could not be taken by another handle".into(),
                )
            } else {
                let probe = if support.tested {
                    "auto's probe of the directory succeeded"
                } else {
                    "auto's probe could not tell"
                };
                (
                    CheckStatus::Ok,
                    format!(
                        "{probe}; on a file, a second handle is excluded while {} is held and gets it once released",
                        os_lock_name()
                    ),
                )
            })
        })();
        Self::check("os-locks", title, result)
    }

    /// The document writer's own replace: temp file, rename over, read back.
    fn atomic_replace(&self) -> Check {
        let path = self.path("data");
        let started = Instant::now();
        let result = (|| {
            std::fs::write(&path, b"{\"version\":1}\n")?;
            let before = identity(&path)?;
            let new: Vec<u8> =
                format!("{{\"version\":2,\"padding\":\"{}\"}}\n", "x".repeat(8192)).into_bytes();
            atomic_write::replace(&path, &new, Durability::None)?;
            let mut back = Vec::new();
            File::open(&path)?.read_to_end(&mut back)?;
            let replaced = identity(&path)? != before || cfg!(not(unix));
            let temp_prefix = format!(".{}.data.", self.prefix);
            let temps_left = leftovers(&self.dir, &temp_prefix)?;
            Ok(if back != new {
                (
                    CheckStatus::Fail,
                    "the replaced file did not read back intact".to_string(),
                )
            } else if !replaced {
                (
                    CheckStatus::Fail,
                    "the file was changed in place, not replaced by rename".to_string(),
                )
            } else if temps_left > 0 {
                (
                    CheckStatus::Fail,
                    format!("{temps_left} temp file(s) left after the rename"),
                )
            } else {
                (
                    CheckStatus::Ok,
                    "a temp file renamed over the file replaced it (new inode); read back intact; no temp file left".to_string(),
                )
            })
        })();
        let _ = std::fs::remove_file(&path);
        Check {
            elapsed: Some(started.elapsed()),
            ..Self::check("rename", RENAME, result)
        }
    }

    fn fsync_file(&self) -> Check {
        let mut elapsed = None;
        let result = (|| {
            let mut file = File::options().write(true).open(self.path("probe"))?;
            file.write_all(&[b'y'; 64 * 1024])?;
            let started = Instant::now();
            let flush = atomic_write::full_sync(&file)?;
            let took = started.elapsed();
            elapsed = Some(took);
            Ok(match flush {
                atomic_write::Flush::Full => timed("64 KiB written and flushed", took),
                // Saves still work, but a power loss may lose what the drive cached.
                atomic_write::Flush::PlainFsync(why) => (CheckStatus::Warn, why),
            })
        })();
        Check {
            elapsed,
            ..Self::check("fsync-file", FSYNC_FILE, result)
        }
    }

    fn fsync_directory(&self) -> Check {
        if cfg!(windows) {
            return Check {
                id: "fsync-dir",
                title: FSYNC_DIR,
                status: CheckStatus::Skip,
                detail: "not needed on Windows: NTFS journals renames".into(),
                elapsed: None,
            };
        }
        let started = Instant::now();
        let result = atomic_write::sync_directory(&self.dir)
            .map(|()| timed("the directory entry flushed", started.elapsed()));
        Check {
            elapsed: Some(started.elapsed()),
            ..Self::check("fsync-dir", FSYNC_DIR, result)
        }
    }

    /// Removes this run's probe files, and those of an earlier run that was
    /// killed (its pid is gone and its files are over a minute old: a doctor
    /// of another host sharing the directory is done with them by then).
    fn clean_up(&self) -> Check {
        let result = (|| {
            let (mut removed, mut abandoned) = (0, 0);
            for entry in std::fs::read_dir(&self.dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&self.prefix) {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                } else if is_abandoned_probe(&name, &entry.path())
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    abandoned += 1;
                }
            }
            let left = leftovers(&self.dir, &self.prefix)?;
            let earlier = if abandoned > 0 {
                format!(" (and {abandoned} left by an interrupted earlier run)")
            } else {
                String::new()
            };
            Ok(if left == 0 {
                (
                    CheckStatus::Ok,
                    format!("{removed} probe file(s) removed{earlier}, none left"),
                )
            } else {
                (
                    CheckStatus::Fail,
                    format!("{left} probe file(s) could not be removed"),
                )
            })
        })();
        Self::check("cleanup", CLEANUP, result)
    }
}

/// A probe file of another run left here this long is abandoned whatever its
/// pid: no doctor run lasts an hour.
const ABANDONED_PROBE_AGE: Duration = Duration::from_secs(3600);

/// `.flm-doctor.<pid>.<token>[~<place>].<what>` of a run that is over.
///
/// Its pid is trusted only where it means something: a probe of our host
/// name, boot and PID namespace (its place is ours), or of a previous version
/// (no place: judged as before). Then it is abandoned once over a minute old
/// with its pid gone. A probe of another host, boot or PID namespace (a doctor
/// in a container or sandbox sharing the directory) is never removed because
/// its pid looks dead here, since that proves nothing: only once it is over
/// `ABANDONED_PROBE_AGE` old.
fn is_abandoned_probe(name: &str, path: &Path) -> bool {
    let Some(rest) = name.strip_prefix(".flm-doctor.") else {
        return false;
    };
    let mut fields = rest.split('.');
    let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let token = fields.next().unwrap_or("");
    let Some(age) = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
    else {
        return false;
    };
    if !process::file_pid_is_checkable(token) {
        return age > ABANDONED_PROBE_AGE;
    }
    age > Duration::from_secs(60)
        && pid != process::current().pid
        && process::liveness(pid, None) == process::Liveness::Dead
}

fn timed(what: &str, took: Duration) -> (CheckStatus, String) {
    let ms = took.as_secs_f64() * 1000.0;
    if took >= SLOW_FSYNC {
        (
            CheckStatus::Warn,
            format!("{what} in {ms:.1} ms: slow, every durable save waits this long"),
        )
    } else {
        (CheckStatus::Ok, format!("{what} in {ms:.1} ms"))
    }
}

fn leftovers(dir: &Path, prefix: &str) -> io::Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        if entry?.file_name().to_string_lossy().starts_with(prefix) {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(unix)]
fn identity(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> io::Result<u64> {
    Ok(std::fs::symlink_metadata(path)?.len())
}

fn os_lock_name() -> &'static str {
    if cfg!(windows) {
        "LockFileEx"
    } else {
        "flock"
    }
}
