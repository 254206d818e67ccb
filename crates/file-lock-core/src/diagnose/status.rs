//! `status`: how the lock of one file looks from outside, in one value and
//! one sentence for a terminal.
//!
//! Invariant: no rules of its own (the holder view is `Holder::from_record`,
//! pids only when `exposePids`); nothing is changed.

use std::path::PathBuf;
use std::time::Duration;

use super::observe::*;
use super::*;
use crate::fs_kind::FsKind;
use crate::lock::lockfile::StaleWatch;
use crate::lock::{Holder, HolderRecord, Strategy};

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

pub(super) fn status_of(
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
