//! The lock engine: a fair in-process queue per file in front of an OS lock on
//! a stable sidecar file, with leases, fencing tokens and events.

pub mod diagnose;
mod dir_watch;
mod error;
mod events;
pub mod interplay;
pub mod lockfile;
mod manager;
mod metadata;
mod os_lock;
mod path_lock;
mod queue;
mod sidecar;
pub mod strategy;
mod timer;
mod waiter_pool;

pub use error::LockError;
pub use events::{EventSink, LockEvent, ReleaseReason};
pub use manager::{
    AcquireRequest, Completion, HeldLock, LockManager, ManagerOptions, Request, StrategyChoice,
    Waiting,
};
pub use metadata::{now_ms, Holder, Strategy};
pub use sidecar::sidecar_path;

/// Whether a lock excludes everyone (writers) or only exclusive holders (readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Shared,
    Exclusive,
}

impl Mode {
    pub fn from_exclusive(exclusive: bool) -> Mode {
        if exclusive {
            Mode::Exclusive
        } else {
            Mode::Shared
        }
    }

    pub fn is_exclusive(self) -> bool {
        self == Mode::Exclusive
    }

    /// Whether holding `self` at the OS level is enough for an in-process request of `wanted`.
    pub fn covers(self, wanted: Mode) -> bool {
        self == Mode::Exclusive || wanted == Mode::Shared
    }
}
