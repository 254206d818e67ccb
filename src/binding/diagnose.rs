//! Diagnostics at the edge, for the `file-lock-manager` CLI: plain functions
//! over `lock::diagnose` (no lock state, no manager).
//!
//! Invariants: every path error becomes a coded error (`ENOENT`, `EINVAL`,
//! `ELOCKFOREIGN`…) like the rest of the binding: thrown by the synchronous
//! functions, carried as `failure` by the asynchronous ones (which run off the
//! JS thread: `breakStaleLock` may watch a lock file for the whole stale time).

use std::path::Path;
use std::time::Duration;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use super::coded::{off_thread, to_napi_error, Coded, OffThread};
use super::convert::{duration_from_ms, failure, path_string, HolderInfo, LockFailure};
use file_lock_core::diagnose::{self, BreakOutcome, DoctorReport, LockStatus, OsLockProbe, Rules};
use file_lock_core::fs_kind::{self, FsKind};
use file_lock_core::lock::LockError;
use file_lock_core::process::Whereabouts;

/// The rules a diagnosis applies (the package's defaults: `DEFAULTS`).
#[napi(object)]
pub struct DiagnoseOptions {
    /// `staleMs`: another host's lock file unchanged this long (by our clock) is stale.
    pub stale_ms: f64,
    /// `networkTimeoutFactor`: on a network share `staleMs` is stretched by it.
    pub network_timeout_factor: f64,
    /// Describe holders with their pid.
    pub expose_pids: Option<bool>,
    /// `breakStaleLock`: watch a lock file only time can judge for the stale time.
    pub wait: Option<bool>,
}

/// The file system a path is on.
#[napi(object)]
pub struct FileSystemInfo {
    /// A network share (NFS, SMB, sshfs…), as detected for locks.
    pub network: bool,
    /// `local`, or the share's name (`nfs`, `smb`, `sshfs`…).
    pub name: String,
    /// The file system's own type name when it can be told (`ext4`, `tmpfs`…).
    pub fs_type: Option<String>,
}

/// What `strategy: 'auto'`'s probe of OS locks found in a directory.
#[napi(object)]
pub struct OsLockSupport {
    pub supported: bool,
    /// False when support could not be told (then it counts as supported).
    pub tested: bool,
    /// The errno when refused (`ENOLCK`, `EOPNOTSUPP`…).
    pub code: Option<String>,
    pub reason: String,
}

/// The record in a lock file or sidecar (its token is never exposed).
#[napi(object)]
pub struct LockRecordInfo {
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub strategy: String,
    pub hostname: String,
    /// Only with `exposePids`.
    pub pid: Option<u32>,
    /// Written on this machine: same host name, boot and PID namespace (a
    /// holder in a container or sandbox here, or on another machine of the
    /// same name, is not).
    pub same_host: bool,
    pub exclusive: bool,
    /// When it was taken, in ms since the epoch (by the holder's clock).
    pub acquired_at: f64,
    /// Lock-file strategy: the last heartbeat, in ms since the epoch (by the holder's clock).
    pub heartbeat: Option<f64>,
    pub fencing_token: i64,
}

/// The lock of one file as seen from outside.
#[napi(object)]
pub struct LockFileStatus {
    /// Canonical path of the data file.
    pub file_path: String,
    /// Its sidecar / lock file (`.<name>.lock`).
    pub lock_path: String,
    pub lock_file_exists: bool,
    pub lock_file_size: Option<u32>,
    /// The protocol the lock file's record shows: `os` (an OS lock on the
    /// sidecar) or `lockfile` (the file's existence); absent when it cannot be told.
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub strategy: Option<String>,
    /// How `strategy` was told.
    pub strategy_evidence: String,
    #[napi(ts_type = "'free' | 'shared' | 'exclusive' | 'unsupported' | 'not-probed' | 'error'")]
    pub os_lock: String,
    pub os_lock_detail: Option<String>,
    /// Someone holds the lock, or a lock file claims it (a stale one included).
    pub locked: bool,
    /// Who, as `inspect()` describes holders (pid only with `exposePids`).
    pub holder: Option<HolderInfo>,
    pub record: Option<LockRecordInfo>,
    /// Absent when the question does not apply (no lock file, an OS-lock sidecar).
    pub stale: Option<bool>,
    /// Why it is stale, or why not.
    pub stale_reason: String,
    /// Only watching it stay unchanged for `staleAfterMs` can prove it stale.
    pub stale_by_time: bool,
    /// `staleMs` as applied to this file (stretched on a network share).
    pub stale_after_ms: f64,
    pub file_system: FileSystemInfo,
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub auto_strategy: String,
    pub auto_strategy_reason: String,
    /// One sentence for a terminal.
    pub summary: String,
}

/// What `breakStaleLock` did.
#[napi(object)]
pub struct BreakResult {
    pub broken: bool,
    #[napi(ts_type = "'broken' | 'refused' | 'nothing'")]
    pub outcome: String,
    /// Why it was stale, why it was refused, or why there was nothing to do.
    pub reason: String,
    /// Refused, but watching longer (`wait`) could prove it stale.
    pub stale_by_time: bool,
    /// How long the lock file was watched.
    pub waited_ms: f64,
    /// The lock as found before anything was done.
    pub before: LockFileStatus,
}

#[napi(object)]
pub struct BreakLockOutcome {
    pub result: Option<BreakResult>,
    pub failure: Option<LockFailure>,
}

#[napi(object)]
pub struct DoctorCheck {
    pub id: String,
    pub title: String,
    #[napi(ts_type = "'ok' | 'warn' | 'fail' | 'skip'")]
    pub status: String,
    pub detail: String,
    pub ms: Option<f64>,
}

/// Whether locks and atomic saves work in a directory.
#[napi(object)]
pub struct DoctorResult {
    pub directory: String,
    pub file_system: FileSystemInfo,
    pub os_locks: OsLockSupport,
    /// What `strategy: 'auto'` picks here.
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub verdict: String,
    pub verdict_reason: String,
    /// No check failed.
    pub healthy: bool,
    pub checks: Vec<DoctorCheck>,
    pub advice: Vec<String>,
}

#[napi(object)]
pub struct DoctorOutcome {
    pub result: Option<DoctorResult>,
    pub failure: Option<LockFailure>,
}

fn rules(options: &DiagnoseOptions) -> napi::Result<Rules, String> {
    let stale_after = duration_from_ms(options.stale_ms)
        .map_err(|e| Coded::invalid(format!("staleMs: {}", e.reason)))?
        .unwrap_or(Duration::MAX);
    let factor = options.network_timeout_factor;
    if !(1.0..=100.0).contains(&factor) {
        return Err(Coded::invalid(format!(
            "networkTimeoutFactor must be a number from 1 to 100, got {factor}"
        ))
        .into());
    }
    Ok(Rules {
        stale_after,
        network_factor: factor,
        expose_pids: options.expose_pids.unwrap_or(false),
    })
}

fn file_system(kind: &FsKind, fs_type: Option<String>) -> FileSystemInfo {
    FileSystemInfo {
        network: kind.is_network(),
        name: kind.name().to_string(),
        fs_type,
    }
}

fn os_lock_support(probe: OsLockProbe) -> OsLockSupport {
    OsLockSupport {
        supported: probe.supported,
        tested: probe.tested,
        code: probe.code,
        reason: probe.reason,
    }
}

fn ms(d: Duration) -> f64 {
    if d == Duration::MAX {
        f64::INFINITY
    } else {
        d.as_secs_f64() * 1000.0
    }
}

impl From<LockStatus> for LockFileStatus {
    fn from(s: LockStatus) -> Self {
        let expose = s.expose_pids;
        let record = s.record.as_ref().map(|r| LockRecordInfo {
            strategy: r.strategy.as_str().into(),
            hostname: r.hostname.clone(),
            pid: expose.then_some(r.pid),
            // Its pid means something here: same host name, boot and PID namespace.
            same_host: matches!(
                r.whereabouts(),
                Whereabouts::ThisProcess | Whereabouts::ThisMachine(_)
            ),
            exclusive: r.mode.is_exclusive(),
            acquired_at: r.acquired_at as f64,
            heartbeat: r.heartbeat.map(|h| h as f64),
            fencing_token: r.fencing_token as i64,
        });
        LockFileStatus {
            file_path: path_string(&s.target),
            lock_path: path_string(&s.lock_path),
            lock_file_exists: s.lock_file_len.is_some(),
            lock_file_size: s.lock_file_len.map(|n| n as u32),
            strategy: s.strategy.map(|st| st.as_str().into()),
            strategy_evidence: s.strategy_evidence,
            os_lock: s.os_lock.as_str().into(),
            os_lock_detail: s.os_lock.detail().map(Into::into),
            locked: s.locked,
            holder: s.holder.map(Into::into),
            record,
            stale: s.staleness.stale(),
            stale_reason: s.staleness.reason().into(),
            stale_by_time: s.staleness.by_time(),
            stale_after_ms: ms(s.stale_after),
            file_system: file_system(&s.file_system, s.fs_type),
            auto_strategy: s.auto_strategy.0.as_str().into(),
            auto_strategy_reason: s.auto_strategy.1,
            summary: s.summary,
        }
    }
}

impl From<DoctorReport> for DoctorResult {
    fn from(r: DoctorReport) -> Self {
        DoctorResult {
            healthy: r.healthy(),
            directory: path_string(&r.dir),
            file_system: file_system(&r.file_system, r.fs_type),
            os_locks: os_lock_support(r.os_locks),
            verdict: r.verdict.0.as_str().into(),
            verdict_reason: r.verdict.1,
            checks: r
                .checks
                .into_iter()
                .map(|c| DoctorCheck {
                    id: c.id.into(),
                    title: c.title.into(),
                    status: c.status.as_str().into(),
                    detail: c.detail,
                    ms: c.elapsed.map(ms),
                })
                .collect(),
            advice: r.advice,
        }
    }
}

fn existing_dir(dir: &str) -> napi::Result<&Path, String> {
    let path = Path::new(dir);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(to_napi_error(LockError::InvalidPath {
            path: path.into(),
            reason: "not a directory".into(),
        })),
        Err(e) => Err(to_napi_error(LockError::io(path, "stat", e))),
    }
}

/// The file system `dir` is on, as the lock detects it (network share or local disk).
#[napi]
pub fn fs_kind_of(dir: String) -> napi::Result<FileSystemInfo, String> {
    let path = existing_dir(&dir)?;
    Ok(file_system(
        &fs_kind::detect(path),
        fs_kind::type_name(path),
    ))
}

/// Whether OS locks work in `dir`, by the probe `strategy: 'auto'` uses.
#[napi]
pub fn probe_os_locks(dir: String) -> napi::Result<OsLockSupport, String> {
    let path = existing_dir(&dir)?;
    Ok(os_lock_support(diagnose::probe_os_locks(path)))
}

/// The lock of the data file `path` as seen from outside: holder, strategy in
/// use, OS lock, staleness by the library's rules. Creates nothing.
#[napi]
pub fn lock_file_status(
    path: String,
    options: DiagnoseOptions,
) -> napi::Result<LockFileStatus, String> {
    let rules = rules(&options)?;
    diagnose::status(&path, &rules)
        .map(Into::into)
        .map_err(to_napi_error)
}

/// `breakStaleLock`'s work, on a blocking thread.
fn break_outcome(path: &str, rules: &Rules, wait: bool) -> BreakLockOutcome {
    match diagnose::break_stale_lock(path, rules, wait) {
        Ok(report) => {
            let (outcome, reason, by_time) = match report.outcome {
                BreakOutcome::Broken(why) => ("broken", why, false),
                BreakOutcome::Refused { why, by_time } => ("refused", why, by_time),
                BreakOutcome::Nothing(why) => ("nothing", why, false),
            };
            BreakLockOutcome {
                result: Some(BreakResult {
                    broken: outcome == "broken",
                    outcome: outcome.into(),
                    reason,
                    stale_by_time: by_time,
                    waited_ms: ms(report.waited),
                    before: report.before.into(),
                }),
                failure: None,
            }
        }
        Err(e) => BreakLockOutcome {
            result: None,
            failure: Some(failure(e, path)),
        },
    }
}

/// `diagnoseDirectory`'s work, on a blocking thread.
fn doctor_outcome(dir: &str) -> DoctorOutcome {
    match diagnose::doctor(Path::new(dir)) {
        Ok(report) => DoctorOutcome {
            result: Some(report.into()),
            failure: None,
        },
        Err(e) => DoctorOutcome {
            result: None,
            failure: Some(failure(e, dir)),
        },
    }
}

/// Removes the lock file of `path` only when it is provably stale (the
/// library's judgement and guarded break); resolves with what was done.
/// With `wait`, a lock file only time can judge is watched for the stale time.
// Registered with Node by napi outside `cfg(test)`; its body is `break_outcome`.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<BreakLockOutcome>")]
pub fn break_stale_lock(
    path: String,
    options: DiagnoseOptions,
) -> napi::Result<AsyncTask<OffThread<BreakLockOutcome>>, String> {
    let rules = rules(&options)?;
    let wait = options.wait.unwrap_or(false);
    Ok(off_thread(move || Ok(break_outcome(&path, &rules, wait))))
}

/// Checks that locks and atomic saves work in `dir` (writable, O_EXCL create,
/// OS locks, network detection, rename, fsync), removing its probe files.
// Registered with Node by napi outside `cfg(test)`; its body is `doctor_outcome`.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<DoctorOutcome>")]
pub fn diagnose_directory(
    dir: String,
) -> napi::Result<AsyncTask<OffThread<DoctorOutcome>>, String> {
    Ok(off_thread(move || Ok(doctor_outcome(&dir))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T>(result: napi::Result<T, String>) -> napi::Error<String> {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn options() -> DiagnoseOptions {
        DiagnoseOptions {
            stale_ms: 30_000.0,
            network_timeout_factor: 3.0,
            expose_pids: None,
            wait: None,
        }
    }

    #[test]
    fn directories_are_described_and_bad_ones_get_codes() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().to_string_lossy().into_owned();
        let kind = fs_kind_of(here.clone()).unwrap();
        assert!(!kind.network);
        assert_eq!(kind.name, "local");
        assert!(probe_os_locks(here.clone()).unwrap().supported);
        let missing = dir.path().join("nope").to_string_lossy().into_owned();
        assert_eq!(error_of(fs_kind_of(missing.clone())).status, "ENOENT");
        assert_eq!(error_of(probe_os_locks(missing)).status, "ENOENT");
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let error = error_of(fs_kind_of(file.to_string_lossy().into_owned()));
        assert_eq!(error.status, "EINVAL");
    }

    #[test]
    fn status_break_and_doctor_convert_at_the_edge() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roles.json").to_string_lossy().into_owned();
        let status = lock_file_status(file.clone(), options()).unwrap();
        assert!(!status.locked && !status.lock_file_exists);
        assert_eq!(status.stale, None);
        assert_eq!(status.auto_strategy, "os");
        assert_eq!(status.stale_after_ms, 30_000.0);
        let bad = DiagnoseOptions {
            stale_ms: -1.0,
            ..options()
        };
        assert_eq!(
            error_of(lock_file_status(file.clone(), bad)).status,
            "EINVAL"
        );
        let dir_as_file = dir.path().to_string_lossy().into_owned();
        let error = error_of(lock_file_status(dir_as_file.clone(), options()));
        assert_eq!(error.status, "EINVAL");

        let outcome = break_outcome(&file, &rules(&options()).unwrap(), false);
        let result = outcome.result.unwrap();
        assert_eq!(result.outcome, "nothing");
        assert!(!result.broken);
        let failed = break_outcome(&dir_as_file, &rules(&options()).unwrap(), false);
        assert_eq!(failed.failure.unwrap().code, "EINVAL");

        let report = doctor_outcome(&dir_as_file).result.unwrap();
        assert!(
            report.healthy,
            "{:?}",
            report.checks.iter().map(|c| &c.detail).collect::<Vec<_>>()
        );
        assert_eq!(report.verdict, "os");
        assert!(report.checks.iter().all(|c| c.status == "ok"));
        assert_eq!(doctor_outcome(&file).failure.unwrap().code, "ENOENT");
    }
}
