//! Diagnostics behind the `file-lock-manager` CLI: how the lock of one file
//! looks from outside (`status`), removing a lock file only when it is
//! provably stale (`break_stale_lock`), and whether locks work in a directory
//! (`doctor`).
//!
//! Invariants:
//! - No rules of its own: staleness is `lockfile::StaleWatch`, breaking is
//!   `lockfile::break_stale` (its O_EXCL guard and re-check), the strategy
//!   verdict is `strategy::auto_strategy`, `staleMs` on a share is
//!   `strategy::stale_after_on`, the holder view is `Holder::from_record`
//!   (pids only when asked). A diagnosis may be stricter than the library (a
//!   lock file whose OS lock is held is never broken), never looser.
//! - Looking changes nothing: no sidecar is created, and an OS lock is probed
//!   only on a non-empty file, through the handle its content was read from (a
//!   lock-file creator takes its OS lock before it writes, so a probe can never
//!   make it believe an OS-lock user got there first).
//! - Doctor's probe files have unique names and are all removed, whatever failed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::LockError;
use super::lockfile::{self, Snapshot, StaleWatch, Verdict, EMPTY_GRACE};
use super::manager::resolve_target;
use super::metadata::{now_ms, Holder, HolderRecord, Strategy};
use super::os_lock::{self, Support};
use super::sidecar::sidecar_path;
use super::strategy::{auto_strategy, stale_after_on};
use super::Mode;
use crate::document::atomic_write::{self, Durability};
use crate::fs_kind::{self, FsKind};
use crate::process::{self, Whereabouts};

/// The library's rules that a diagnosis needs (the JS defaults are passed in).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `staleMs`, before stretching on a network share.
    pub stale_after: Duration,
    /// `networkTimeoutFactor`.
    pub network_factor: f64,
    /// `exposePids`: holders are described with their pid.
    pub expose_pids: bool,
}

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

/// The lock of one file as seen from outside.
#[derive(Debug, Clone)]
pub struct LockStatus {
    /// Canonical path of the data file.
    pub target: PathBuf,
    /// Its sidecar / lock file.
    pub lock_path: PathBuf,
    pub file_system: FsKind,
    pub fs_type: Option<String>,
    /// What `strategy: 'auto'` picks for this file, and why.
    pub auto_strategy: (Strategy, String),
    /// `staleMs` as applied here (stretched on a network share).
    pub stale_after: Duration,
    /// Size of the lock file; `None` when there is none.
    pub lock_file_len: Option<usize>,
    /// The protocol the lock file's record shows; `None` when it cannot be told.
    pub strategy: Option<Strategy>,
    /// How `strategy` was told.
    pub strategy_evidence: String,
    pub os_lock: OsLockState,
    /// Someone holds the lock, or a lock file claims it (a stale one included).
    pub locked: bool,
    pub holder: Option<Holder>,
    pub record: Option<HolderRecord>,
    pub staleness: Staleness,
    /// One sentence for a terminal.
    pub summary: String,
    /// Pids may be shown (`exposePids`).
    pub expose_pids: bool,
}

/// One look at the lock file.
struct Observation {
    snapshot: Snapshot,
    record: Option<HolderRecord>,
    os_lock: OsLockState,
}

/// Reads the lock file and probes its OS lock through the same handle.
fn observe(lock_path: &Path) -> Result<Option<Observation>, LockError> {
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
fn probe_os_lock(file: &File) -> OsLockState {
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
struct Assessment {
    strategy: Option<Strategy>,
    evidence: String,
    locked: bool,
    mode: Mode,
    staleness: Staleness,
}

fn assess(obs: &Observation, watch: &mut StaleWatch, stale_after: Duration) -> Assessment {
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
fn held_reason(
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

fn age_text(ms: u64) -> String {
    match ms {
        0..=1_999 => format!("{ms} ms"),
        2_000..=119_999 => format!("{} s", ms / 1000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// Where a status starts: the file's place and the rules applied there.
struct Place {
    target: PathBuf,
    lock_path: PathBuf,
    file_system: FsKind,
    fs_type: Option<String>,
    auto: (Strategy, String),
    stale_after: Duration,
}

fn place(raw: &str, rules: &Rules) -> Result<Place, LockError> {
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

fn status_of(
    place: &Place,
    obs: Option<&Observation>,
    watch: &mut StaleWatch,
    rules: &Rules,
) -> LockStatus {
    let name = lock_name(&place.target);
    let base = LockStatus {
        target: place.target.clone(),
        lock_path: place.lock_path.clone(),
        file_system: place.file_system.clone(),
        fs_type: place.fs_type.clone(),
        auto_strategy: place.auto.clone(),
        stale_after: place.stale_after,
        lock_file_len: None,
        strategy: None,
        strategy_evidence: "there is no lock file".into(),
        os_lock: OsLockState::NotProbed("there is no lock file".into()),
        locked: false,
        holder: None,
        record: None,
        staleness: Staleness::NotApplicable("there is no lock file".into()),
        summary: format!("{name} is not locked (there is no lock file)"),
        expose_pids: rules.expose_pids,
    };
    let Some(obs) = obs else {
        return base;
    };
    let a = assess(obs, watch, place.stale_after);
    let holder = a
        .locked
        .then(|| Holder::from_record(obs.record.as_ref(), a.mode, rules.expose_pids));
    let summary = match (&a.staleness, &holder) {
        (Staleness::Stale(why), _) => format!(
            "{name} has a stale lock file ({why}): the next lock request removes it, and so does `break`"
        ),
        (_, Some(holder)) => {
            let how = match a.strategy {
                Some(Strategy::Lockfile) => " with a lock file",
                Some(Strategy::Os) => " with an OS lock",
                None => "",
            };
            let mode = if a.mode.is_exclusive() { "exclusively" } else { "shared" };
            format!("{name} is locked {mode}{how} by {}", holder.description)
        }
        (_, None) => format!("{name} is not locked (its sidecar is idle: nobody holds its OS lock)"),
    };
    LockStatus {
        lock_file_len: Some(obs.snapshot.len()),
        strategy: a.strategy,
        strategy_evidence: a.evidence,
        os_lock: obs.os_lock.clone(),
        locked: a.locked,
        holder,
        record: obs.record.clone(),
        staleness: a.staleness,
        summary,
        ..base
    }
}

fn lock_name(target: &Path) -> String {
    target.file_name().map_or_else(
        || target.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The lock of the data file `raw` as seen from outside, right now.
pub fn status(raw: &str, rules: &Rules) -> Result<LockStatus, LockError> {
    let place = place(raw, rules)?;
    let obs = observe(&place.lock_path)?;
    Ok(status_of(
        &place,
        obs.as_ref(),
        &mut StaleWatch::default(),
        rules,
    ))
}

/// What `break_stale_lock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakOutcome {
    /// The lock file was removed (why it was stale).
    Broken(String),
    /// Not removed (why). `by_time`: watching it longer could prove it stale.
    Refused { why: String, by_time: bool },
    /// Nothing to break (why): no lock file, or an idle OS-lock sidecar.
    Nothing(String),
}

#[derive(Debug, Clone)]
pub struct BreakReport {
    pub outcome: BreakOutcome,
    /// The lock as found before anything was done.
    pub before: LockStatus,
    /// How long the lock file was watched.
    pub waited: Duration,
}

/// Removes the lock file of `raw` only when it is provably stale, through the
/// library's guarded break. With `wait`, a lock file only time can judge
/// (another host's, an unreadable one) is watched for the stale time: it is
/// broken if it stayed byte-for-byte unchanged, refused as soon as it changes.
pub fn break_stale_lock(raw: &str, rules: &Rules, wait: bool) -> Result<BreakReport, LockError> {
    let place = place(raw, rules)?;
    let mut watch = StaleWatch::default();
    let first = observe(&place.lock_path)?;
    let before = status_of(&place, first.as_ref(), &mut watch, rules);
    let report = |outcome, waited| BreakReport {
        outcome,
        before: before.clone(),
        waited,
    };
    let Some(mut obs) = first else {
        return Ok(report(
            BreakOutcome::Nothing("there is no lock file".into()),
            Duration::ZERO,
        ));
    };
    if before.strategy == Some(Strategy::Os) && obs.record.is_some() {
        let outcome = match &before.holder {
            Some(holder) => BreakOutcome::Refused {
                why: format!(
                    "its OS lock is held by {}: an OS lock is never stale (the kernel releases it when its holder exits), so there is no lock file to break",
                    holder.description
                ),
                by_time: false,
            },
            None => BreakOutcome::Nothing(
                "it is an OS-lock sidecar that nobody holds: it blocks nobody (the lock is the OS lock on it, which the kernel releases)"
                    .into(),
            ),
        };
        return Ok(report(outcome, Duration::ZERO));
    }
    let started = Instant::now();
    let mut staleness = before.staleness.clone();
    loop {
        match staleness {
            Staleness::Stale(why) => {
                let outcome = guarded_break(&place.lock_path, &obs, why)?;
                return Ok(report(outcome, started.elapsed()));
            }
            Staleness::Held { why, by_time } if !(wait && by_time) => {
                return Ok(report(
                    BreakOutcome::Refused { why, by_time },
                    started.elapsed(),
                ));
            }
            Staleness::Held { .. } if place.stale_after == Duration::MAX => {
                let why =
                    "the stale time is infinite: only a lock file of this host can be proven stale"
                        .into();
                return Ok(report(
                    BreakOutcome::Refused {
                        why,
                        by_time: false,
                    },
                    started.elapsed(),
                ));
            }
            Staleness::Held { .. } | Staleness::NotApplicable(_) => {}
        }
        std::thread::sleep(poll_pause(&obs, place.stale_after));
        let Some(next) = observe(&place.lock_path)? else {
            let why = "it was released while watched".into();
            return Ok(report(BreakOutcome::Nothing(why), started.elapsed()));
        };
        if next.snapshot != obs.snapshot {
            let why = if obs.snapshot.is_empty() || obs.record.is_none() {
                "it changed while watched: its creator wrote to it, so it is in use"
            } else {
                "it changed while watched: its holder refreshed its heartbeat, so it is alive"
            };
            return Ok(report(
                BreakOutcome::Refused {
                    why: why.into(),
                    by_time: false,
                },
                started.elapsed(),
            ));
        }
        obs = next;
        staleness = assess(&obs, &mut watch, place.stale_after).staleness;
    }
}

/// Pauses between looks while watching: a twentieth of the time to judge.
fn poll_pause(obs: &Observation, stale_after: Duration) -> Duration {
    let limit = if obs.snapshot.is_empty() {
        stale_after.min(EMPTY_GRACE)
    } else {
        stale_after
    };
    (limit / 20).clamp(Duration::from_millis(20), Duration::from_millis(500))
}

/// Breaks a lock file judged stale (`why`), unless its OS lock is held:
/// then someone is at it right now (a holder whose pid we cannot see, or a
/// process probing it), and a diagnosis never overrules that.
fn guarded_break(
    lock_path: &Path,
    obs: &Observation,
    why: String,
) -> Result<BreakOutcome, LockError> {
    if obs.os_lock.held().is_some() {
        return Ok(BreakOutcome::Refused {
            why: format!(
                "it looks stale ({why}), but its OS lock is held right now: someone is using it (a holder whose process is not visible from here, or another process looking at it); not broken"
            ),
            by_time: false,
        });
    }
    let broken = lockfile::break_locked(lock_path, &obs.snapshot)
        .map_err(|e| LockError::io(lock_path, "remove a stale", e))?;
    Ok(match broken {
        lockfile::Broken::Yes => BreakOutcome::Broken(why),
        lockfile::Broken::Busy => BreakOutcome::Refused {
            why: format!("it looks stale ({why}), but its OS lock was taken just now: someone is using it; not broken"),
            by_time: false,
        },
        lockfile::Broken::Changed => BreakOutcome::Refused {
            why: "it changed while being broken (released, refreshed, or broken by another process at the same time); not broken, look at its status again".into(),
            by_time: false,
        },
    })
}

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
    let dir = std::fs::canonicalize(dir).map_err(|e| LockError::io(dir, "resolve", e))?;
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
            atomic_write::full_sync(&file)?;
            let took = started.elapsed();
            elapsed = Some(took);
            Ok(timed("64 KiB written and flushed", took))
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

/// `ENOLCK`, `EACCES`…: the code the rest of the package gives this error.
fn errno_text(e: &io::Error) -> String {
    let copy = match e.raw_os_error() {
        Some(raw) => io::Error::from_raw_os_error(raw),
        None => io::Error::from(e.kind()),
    };
    LockError::io("", "", copy).code().to_string()
}

fn errno_detail(e: &io::Error) -> String {
    format!("{}: {e}", errno_text(e))
}

#[cfg(test)]
#[path = "diagnose_tests.rs"]
mod tests;
