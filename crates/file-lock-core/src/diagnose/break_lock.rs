//! `break_stale_lock`: removing a lock file only when it is provably stale.
//!
//! Invariant: breaking is `lockfile::break_stale` (its O_EXCL guard and
//! re-check); a lock file whose OS lock is held is never broken; with `wait`,
//! a lock only time can judge is watched for the stale time, never longer.

use std::path::Path;
use std::time::{Duration, Instant};

use super::observe::*;
use super::status::status_of;
use super::*;
use crate::lock::lockfile::{self, StaleWatch, EMPTY_GRACE};
use crate::lock::Strategy;

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
