//! A lock file looked at from outside, without changing anything: what it
//! holds, whether its OS lock is taken, whether it is stale, and why it is
//! held. `status` and `break_lock` both read a lock through this.
//!
//! Invariant: looking changes nothing (no sidecar is created; an OS lock is
//! probed only on a non-empty file, through the handle its content was read
//! from).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::fs_kind::{self, FsKind};
use crate::lock::lockfile::{self, Snapshot, StaleWatch, Verdict, EMPTY_GRACE};
use crate::lock::os_lock;
use crate::lock::strategy::{auto_strategy, stale_after_on};
use crate::lock::{now_ms, resolve_target, sidecar_path, HolderRecord, Mode, Strategy};
use crate::process::{self, Whereabouts};

/// The OS lock on the lock file, as probed without waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsLockState {
    Free,
    Shared,
    Exclusive,
    /// The file system refused OS locks (the errno).
    Unsupported(String),
    /// Not probed (why).
    NotProbed(String),
    /// The probe failed otherwise.
    Failed(String),
}

impl OsLockState {
    pub fn as_str(&self) -> &'static str {
        match self {
            OsLockState::Free => "free",
            OsLockState::Shared => "shared",
            OsLockState::Exclusive => "exclusive",
            OsLockState::Unsupported(_) => "unsupported",
            OsLockState::NotProbed(_) => "not-probed",
            OsLockState::Failed(_) => "error",
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            OsLockState::Unsupported(why)
            | OsLockState::NotProbed(why)
            | OsLockState::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// The mode someone holds the OS lock in, when held.
    pub fn held(&self) -> Option<Mode> {
        match self {
            OsLockState::Shared => Some(Mode::Shared),
            OsLockState::Exclusive => Some(Mode::Exclusive),
            _ => None,
        }
    }
}

/// Whether the lock file is stale, by the library's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Not a question here (no lock file, or an OS-lock sidecar), and why.
    NotApplicable(String),
    /// Not provably gone, and why. `by_time`: only watching it stay unchanged
    /// for the stale time can prove it gone (another host, an unreadable file).
    Held { why: String, by_time: bool },
    /// Provably gone, and why: the next lock request removes it.
    Stale(String),
}

impl Staleness {
    pub fn stale(&self) -> Option<bool> {
        match self {
            Staleness::NotApplicable(_) => None,
            Staleness::Held { .. } => Some(false),
            Staleness::Stale(_) => Some(true),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Staleness::NotApplicable(why) | Staleness::Held { why, .. } | Staleness::Stale(why) => {
                why
            }
        }
    }

    /// Watching the file unchanged for the stale time could prove it stale.
    pub fn by_time(&self) -> bool {
        matches!(self, Staleness::Held { by_time: true, .. })
    }
}

/// One look at the lock file.
pub(super) struct Observation {
    pub(super) snapshot: Snapshot,
    pub(super) record: Option<HolderRecord>,
    pub(super) os_lock: OsLockState,
}

/// Reads the lock file and probes its OS lock through the same handle.
pub(super) fn observe(lock_path: &Path) -> Result<Option<Observation>, LockError> {
    // Opened for writing like the library's own handles (an exclusive lock on
    // some shares needs it); read-only where writing is refused.
    let opened = match lockfile::observe_open(lock_path, true) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) && e.get_ref().is_none() =>
        {
            lockfile::observe_open(lock_path, false)
        }
        other => other,
    }
    .map_err(|e| LockError::io(lock_path, "read", e))?;
    let Some((snapshot, file)) = opened else {
        return Ok(None);
    };
    let os_lock = if snapshot.is_empty() {
        OsLockState::NotProbed(
            "the file is empty: a lock-file creator may be about to lock it".into(),
        )
    } else {
        probe_os_lock(&file)
    };
    Ok(Some(Observation {
        record: snapshot.record(),
        snapshot,
        os_lock,
    }))
}

/// Who holds the OS lock on `file`, taking it for an instant when free.
pub(super) fn probe_os_lock(file: &File) -> OsLockState {
    let failed = |e: io::Error| {
        if os_lock::means_unsupported(&e) {
            OsLockState::Unsupported(errno_text(&e))
        } else {
            OsLockState::Failed(e.to_string())
        }
    };
    match os_lock::try_lock(file, Mode::Exclusive) {
        Ok(true) => {
            let _ = os_lock::unlock(file);
            OsLockState::Free
        }
        Ok(false) => match os_lock::try_lock(file, Mode::Shared) {
            Ok(true) => {
                let _ = os_lock::unlock(file);
                OsLockState::Shared
            }
            Ok(false) => OsLockState::Exclusive,
            Err(e) => failed(e),
        },
        Err(e) => failed(e),
    }
}

/// What one observation means, judged with `watch` (kept across looks).
pub(super) struct Assessment {
    pub(super) strategy: Option<Strategy>,
    pub(super) evidence: String,
    pub(super) locked: bool,
    pub(super) mode: Mode,
    pub(super) staleness: Staleness,
}

pub(super) fn assess(
    obs: &Observation,
    watch: &mut StaleWatch,
    stale_after: Duration,
) -> Assessment {
    let record = obs.record.as_ref();
    let os_held = obs.os_lock.held();
    if let Some(r) = record.filter(|r| r.strategy == Strategy::Os) {
        return Assessment {
            strategy: Some(Strategy::Os),
            evidence: "the sidecar holds an OS-lock record: the lock is the OS lock on it".into(),
            locked: os_held.is_some(),
            mode: os_held.unwrap_or(r.mode),
            staleness: Staleness::NotApplicable(
                "an OS lock is never stale: the kernel releases it when its holder exits".into(),
            ),
        };
    }
    let (strategy, evidence) = match record {
        Some(_) => (
            Some(Strategy::Lockfile),
            "the lock file holds a lock-file record (pid, host, heartbeat): its existence is the lock"
                .to_string(),
        ),
        None if obs.snapshot.is_empty() => (
            None,
            "the file is empty: its creator is about to write its record, or left it".to_string(),
        ),
        None => (
            os_held.map(|_| Strategy::Os),
            "the file holds no readable record (half-written, or not ours)".to_string(),
        ),
    };
    let staleness = match watch.judge(&obs.snapshot, stale_after, Instant::now()) {
        Verdict::Stale(why) => Staleness::Stale(why),
        Verdict::Held => held_reason(record, &obs.snapshot, stale_after),
    };
    Assessment {
        strategy,
        evidence,
        locked: true,
        mode: record.map_or(os_held.unwrap_or(Mode::Exclusive), |r| r.mode),
        staleness,
    }
}

/// Why a lock file judged `Held` is not stale (the judgement itself is `StaleWatch`'s).
pub(super) fn held_reason(
    record: Option<&HolderRecord>,
    snapshot: &Snapshot,
    stale_after: Duration,
) -> Staleness {
    let me = process::current();
    match record {
        // Only where its pid means something here (same host, boot and PID namespace).
        Some(r)
            if matches!(
                r.whereabouts(),
                Whereabouts::ThisProcess | Whereabouts::ThisMachine(_)
            ) =>
        {
            Staleness::Held {
                why: "its process is alive on this host".into(),
                by_time: false,
            }
        }
        Some(r) => {
            let seen = r
                .heartbeat
                .map(|beat| {
                    format!(
                        "; its last heartbeat is {} old by that host's clock",
                        age_text(now_ms().saturating_sub(beat))
                    )
                })
                .unwrap_or_default();
            let place = if r.hostname == me.hostname {
                format!(
                    "in another PID namespace or boot of host name {} (a container or sandbox, or another machine of that name)",
                    r.hostname
                )
            } else {
                format!("on another host ({})", r.hostname)
            };
            Staleness::Held {
                why: format!(
                    "its holder runs {place}, whose process cannot be checked from here: it is stale only once it stays unchanged for {} ms while watched{seen}",
                    stale_after.as_millis()
                ),
                by_time: true,
            }
        }
        None => {
            let limit = if snapshot.is_empty() {
                stale_after.min(EMPTY_GRACE)
            } else {
                stale_after
            };
            Staleness::Held {
                why: format!(
                    "its record cannot be read: it is stale only once it stays unchanged for {} ms while watched",
                    limit.as_millis()
                ),
                by_time: true,
            }
        }
    }
}

pub(super) fn age_text(ms: u64) -> String {
    match ms {
        0..=1_999 => format!("{ms} ms"),
        2_000..=119_999 => format!("{} s", ms / 1000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// Where a status starts: the file's place and the rules applied there.
pub(super) struct Place {
    pub(super) target: PathBuf,
    pub(super) lock_path: PathBuf,
    pub(super) file_system: FsKind,
    pub(super) fs_type: Option<String>,
    pub(super) auto: (Strategy, String),
    pub(super) stale_after: Duration,
}

pub(super) fn place(raw: &str, rules: &Rules) -> Result<Place, LockError> {
    let target = resolve_target(raw)?;
    let dir = target.parent().unwrap_or(&target).to_path_buf();
    let file_system = fs_kind::detect(&dir);
    Ok(Place {
        lock_path: sidecar_path(&target),
        fs_type: fs_kind::type_name(&dir),
        auto: auto_strategy(&dir, &file_system),
        stale_after: stale_after_on(&file_system, rules.stale_after, rules.network_factor),
        file_system,
        target,
    })
}

pub(super) fn lock_name(target: &Path) -> String {
    target.file_name().map_or_else(
        || target.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
