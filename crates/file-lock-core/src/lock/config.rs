//! The lock engine's configuration in one place: the manager's options, the
//! `strategy` option, and how a network share stretches time limits.
//!
//! Invariant: one formula stretches every time limit on a network share (the
//! attempt timeout and `staleMs` alike): `factor` (at least 1) times longer,
//! an unrepresentable result meaning no limit.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditSink;
use crate::fs_kind::FsKind;

#[derive(Clone)]
pub struct ManagerOptions {
    /// How long one attempt waits; `None` waits until granted or cancelled.
    pub timeout: Option<Duration>,
    /// How many attempts (at least one), with jittered exponential backoff between them.
    pub retries: u32,
    /// Longest a lock may be held; `None`: no lease.
    pub lease: Option<Duration>,
    /// Whether holders are described with their pid.
    pub expose_pids: bool,
    /// Where every acquisition, release, timeout and lease expiry is recorded.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// On a network share each attempt waits this many times longer (≥ 1).
    pub network_timeout_factor: f64,
    /// How files are locked across processes.
    pub strategy: StrategyChoice,
    /// Lock-file strategy: a lock file not refreshed for this long (by our clock)
    /// is stale when its owner's liveness cannot be checked (another host).
    pub stale_after: Duration,
}

/// The `strategy` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyChoice {
    /// OS locks where they are reliable, lock files on network shares (`strategy::auto_strategy`).
    Auto,
    Os,
    Lockfile,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            timeout: Some(Duration::from_secs(5)),
            retries: 3,
            lease: Some(Duration::from_secs(30)),
            expose_pids: false,
            audit: None,
            network_timeout_factor: 3.0,
            strategy: StrategyChoice::Auto,
            stale_after: Duration::from_secs(30),
        }
    }
}

/// A time limit as applied on `file_system`: `factor` times longer on a
/// network share, where every round trip (and a holder's heartbeat) is slower.
/// `None` is no limit, and so is a result too long to represent.
pub fn network_stretch(
    file_system: &FsKind,
    limit: Option<Duration>,
    factor: f64,
) -> Option<Duration> {
    match limit {
        Some(t) if file_system.is_network() => {
            Duration::try_from_secs_f64(t.as_secs_f64() * factor.max(1.0)).ok()
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
