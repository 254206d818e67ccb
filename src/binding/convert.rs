//! Rust ↔ JS shapes: options in, grants, holders, failures and events out.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{JsValuesTupleIntoVec, ToNapiValue};
use napi::{sys, Status};
use napi_derive::napi;

use file_lock_core::lock::{
    HeldLock, Holder, LockError, LockEvent, ManagerOptions, Mode, Strategy, StrategyChoice,
};

/// Options of `new FileLockManager(options)`, after the JS wrapper validated
/// them and filled in defaults.
#[napi(object)]
pub struct NativeManagerOptions {
    /// How long one acquisition attempt waits, in ms (`Infinity`: no limit).
    pub timeout_ms: f64,
    /// Attempts per acquisition (at least 1).
    pub retries: u32,
    /// Longest a lock may be held, in ms (`Infinity`: no lease).
    pub lease_ms: f64,
    /// Describe holders with their pid.
    pub expose_pids: bool,
    /// Path of the JSON-lines audit trail.
    pub audit_log: Option<String>,
    /// Size at which the audit trail is rotated, in bytes.
    pub audit_log_max_bytes: Option<f64>,
    /// On a network share each attempt waits this many times longer.
    pub network_timeout_factor: f64,
    /// Checked here too: anything else fails the conversion (`InvalidArg`).
    pub strategy: StrategyOption,
    /// Lock-file strategy: when an unrefreshed lock of another host is stale, in ms.
    pub stale_ms: f64,
}

/// The `strategy` option as it crosses the edge: a string enum, checked on
/// both sides (options.js names the choices, napi refuses any other string).
#[napi(string_enum = "lowercase")]
#[derive(Clone, Copy)]
pub enum StrategyOption {
    /// OS locks where they are reliable, lock files on network shares.
    Auto,
    Os,
    Lockfile,
}

impl From<StrategyOption> for StrategyChoice {
    fn from(option: StrategyOption) -> Self {
        match option {
            StrategyOption::Auto => StrategyChoice::Auto,
            StrategyOption::Os => StrategyChoice::Os,
            StrategyOption::Lockfile => StrategyChoice::Lockfile,
        }
    }
}

/// A lock that was granted.
#[napi(object)]
pub struct LockGrant {
    pub id: i64,
    /// Canonical path of the locked data file.
    pub file_path: String,
    pub exclusive: bool,
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub strategy: String,
    /// Why that strategy: configured, local disk, network share, or OS locks refused.
    pub strategy_reason: String,
    /// Grows with every acquisition of this file, across processes.
    pub fencing_token: i64,
    /// Still held when the grant reached JS (judged there, on the JS thread):
    /// a short lease can run out, or `close()` let go, before it arrives.
    pub held: bool,
}

/// Who holds a lock, as far as can be told from outside.
#[napi(object)]
pub struct HolderInfo {
    pub exclusive: bool,
    #[napi(ts_type = "'os' | 'lockfile'")]
    pub strategy: String,
    /// The holder is this very process (another caller of the app).
    pub same_process: bool,
    /// The holder runs on this machine.
    pub same_host: bool,
    /// Only with the `exposePids` option.
    pub pid: Option<u32>,
    pub hostname: Option<String>,
    /// When the holder took the lock, in ms since the epoch.
    pub acquired_at: Option<f64>,
    pub fencing_token: Option<i64>,
    /// A sentence for a UI, e.g. "another process on this machine since 12:01:02 (UTC)".
    pub description: String,
}

/// Why an acquisition (or inspection) did not succeed.
#[napi(object)]
pub struct LockFailure {
    pub code: String,
    pub message: String,
    pub file_path: String,
    pub waited_ms: Option<f64>,
    pub attempts: Option<u32>,
    pub holder: Option<HolderInfo>,
    /// The share's file system when the file is on a network drive.
    pub network: Option<String>,
}

/// How a waiting acquisition ended, on its way to JS. A grant carries its
/// held lock: what JS is told of it, including whether it is still held, is
/// read when it is converted, on the JS thread (a grant lost after that is
/// told to its Lock by an event, which cannot overtake the JS turn adopting it).
pub enum Completed {
    Granted {
        request_id: u32,
        held: Arc<HeldLock>,
    },
    Failed {
        request_id: u32,
        failure: Box<LockFailure>,
    },
}

/// Bit flags of a grant passed to `onComplete` (`exclusive`, still `held`,
/// strategy `lockfile`).
pub const GRANT_EXCLUSIVE: u32 = 1;
pub const GRANT_HELD: u32 = 2;
pub const GRANT_LOCK_FILE: u32 = 4;

/// Handed to `onComplete` as arguments, not as an object: `(requestId, id,
/// fencingToken, flags, filePath, strategyReason)` for a grant, `(requestId,
/// failure)` otherwise. Building an object of named properties through
/// N-API cost ~20 µs on a thread that just woke; these values ~3 µs, and
/// JS makes its object literal itself (lib/manager.js `onNativeCompletion`).
impl JsValuesTupleIntoVec for Completed {
    fn into_vec(self, env: sys::napi_env) -> napi::Result<Vec<sys::napi_value>> {
        // SAFETY: called by napi-rs on the JS thread with its live `env`.
        unsafe {
            let (request_id, held) = match self {
                Completed::Granted { request_id, held } => (request_id, held),
                Completed::Failed {
                    request_id,
                    failure,
                } => {
                    return Ok(vec![
                        u32::to_napi_value(env, request_id)?,
                        LockFailure::to_napi_value(env, *failure)?,
                    ])
                }
            };
            let mut flags = 0;
            if held.mode.is_exclusive() {
                flags |= GRANT_EXCLUSIVE;
            }
            if !held.is_released() {
                flags |= GRANT_HELD;
            }
            if held.strategy() == Strategy::Lockfile.as_str() {
                flags |= GRANT_LOCK_FILE;
            }
            Ok(vec![
                u32::to_napi_value(env, request_id)?,
                i64::to_napi_value(env, held.id as i64)?,
                i64::to_napi_value(env, held.fencing_token as i64)?,
                u32::to_napi_value(env, flags)?,
                String::to_napi_value(env, path_string(held.path()))?,
                String::to_napi_value(env, held.strategy_reason())?,
            ])
        }
    }
}

/// The result of `inspect`: a holder, nothing (free), or a failure.
#[napi(object)]
pub struct InspectOutcome {
    pub holder: Option<HolderInfo>,
    pub failure: Option<LockFailure>,
}

/// An event raised on a Rust thread (a contended wait, a lease expiry, a
/// garbage-collected lock), delivered to the JS thread without keeping it alive.
#[napi(object)]
pub struct NativeLockEvent {
    #[napi(
        ts_type = "'waiting' | 'lease-expired' | 'compromised' | 'released' | 'stale-lock-removed'"
    )]
    pub event: String,
    pub file_path: String,
    pub exclusive: bool,
    pub attempt: Option<u32>,
    pub attempts: Option<u32>,
    pub elapsed_ms: Option<f64>,
    pub holder: Option<HolderInfo>,
    pub lock_id: Option<i64>,
    pub fencing_token: Option<i64>,
    pub held_ms: Option<f64>,
    pub reason: Option<String>,
    /// The share's file system when the file is on a network drive (`nfs`, `smb`, `sshfs`…).
    pub network: Option<String>,
    pub message: String,
}

pub fn duration_from_ms(ms: f64) -> napi::Result<Option<Duration>> {
    if ms.is_nan() || ms < 0.0 {
        return Err(napi::Error::new(
            Status::InvalidArg,
            format!("expected a non-negative number of milliseconds, got {ms}"),
        ));
    }
    // Beyond what a Duration holds (~5e11 years) is the same as no limit.
    Ok(Duration::try_from_secs_f64(ms / 1000.0).ok())
}

impl TryFrom<&NativeManagerOptions> for ManagerOptions {
    type Error = napi::Error;

    fn try_from(o: &NativeManagerOptions) -> napi::Result<Self> {
        Ok(ManagerOptions {
            timeout: duration_from_ms(o.timeout_ms)?,
            retries: o.retries.max(1),
            lease: duration_from_ms(o.lease_ms)?,
            expose_pids: o.expose_pids,
            audit: None,
            network_timeout_factor: o.network_timeout_factor,
            strategy: o.strategy.into(),
            stale_after: duration_from_ms(o.stale_ms)?.unwrap_or(Duration::MAX),
        })
    }
}

pub fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<Holder> for HolderInfo {
    fn from(h: Holder) -> Self {
        HolderInfo {
            exclusive: h.mode.is_exclusive(),
            strategy: h.strategy.as_str().into(),
            same_process: h.same_process,
            same_host: h.same_host,
            pid: h.pid,
            hostname: h.hostname,
            acquired_at: h.acquired_at.map(|t| t as f64),
            fencing_token: h.fencing_token.map(|t| t as i64),
            description: h.description,
        }
    }
}

pub fn failure(e: LockError, file_path: &str) -> LockFailure {
    let code = e.code().to_string();
    let message = e.to_string();
    match e {
        LockError::Timeout {
            path,
            waited,
            attempts,
            holder,
            network,
        } => LockFailure {
            code,
            message,
            file_path: path_string(&path),
            waited_ms: Some(ms(waited)),
            attempts: Some(attempts),
            holder: holder.map(|h| (*h).into()),
            network,
        },
        _ => LockFailure {
            code,
            message,
            file_path: file_path.to_owned(),
            waited_ms: None,
            attempts: None,
            holder: None,
            network: None,
        },
    }
}

impl From<LockEvent> for NativeLockEvent {
    fn from(event: LockEvent) -> Self {
        match event {
            LockEvent::Waiting {
                path,
                mode,
                attempt,
                attempts,
                elapsed,
                holder,
                network,
            } => {
                let who = holder
                    .as_ref()
                    .map_or("another process".to_string(), |h| h.description.clone());
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let share = network
                    .as_ref()
                    .map(|share| format!("{name} is on a network drive ({share}); "))
                    .unwrap_or_default();
                NativeLockEvent {
                    event: "waiting".into(),
                    message: format!(
                        "{share}waiting for {who} to release {name} (attempt {attempt} of {attempts})"
                    ),
                    network,
                    file_path: path_string(&path),
                    exclusive: mode == Mode::Exclusive,
                    attempt: Some(attempt),
                    attempts: Some(attempts),
                    elapsed_ms: Some(ms(elapsed)),
                    holder: holder.map(Into::into),
                    lock_id: None,
                    fencing_token: None,
                    held_ms: None,
                    reason: None,
                }
            }
            LockEvent::Released {
                path,
                lock_id,
                mode,
                fencing_token,
                held_for,
                reason,
            } => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let (event, message) = match reason {
                    file_lock_core::lock::ReleaseReason::LeaseExpired => (
                        "lease-expired",
                        format!(
                            "the lock on {name} was held for {} ms, longer than its lease, and was released",
                            held_for.as_millis()
                        ),
                    ),
                    file_lock_core::lock::ReleaseReason::Compromised => (
                        "compromised",
                        format!(
                            "the lock file of {name} was deleted or replaced while the lock was held; the lock no longer protects {name}"
                        ),
                    ),
                    _ => (
                        "released",
                        format!("the lock on {name} was {}", reason.as_str()),
                    ),
                };
                NativeLockEvent {
                    event: event.into(),
                    message,
                    file_path: path_string(&path),
                    exclusive: mode == Mode::Exclusive,
                    attempt: None,
                    attempts: None,
                    elapsed_ms: None,
                    holder: None,
                    lock_id: Some(lock_id as i64),
                    fencing_token: Some(fencing_token as i64),
                    held_ms: Some(ms(held_for)),
                    reason: Some(reason.as_str().into()),
                    network: None,
                }
            }
            LockEvent::StaleLockRemoved { path, reason } => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                NativeLockEvent {
                    event: "stale-lock-removed".into(),
                    message: format!("removed a stale lock file of {name}: {reason}"),
                    file_path: path_string(&path),
                    exclusive: true,
                    attempt: None,
                    attempts: None,
                    elapsed_ms: None,
                    holder: None,
                    lock_id: None,
                    fencing_token: None,
                    held_ms: None,
                    reason: Some(reason),
                    network: None,
                }
            }
        }
    }
}
