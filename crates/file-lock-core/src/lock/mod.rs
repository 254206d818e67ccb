//! The lock engine: a fair in-process queue per file in front of an OS lock on
//! a stable sidecar file, with leases, fencing tokens and events.

mod config;
mod dir_watch;
mod error;
mod events;
pub(crate) mod holder_record;
pub mod interplay;
pub mod lockfile;
mod manager;
pub(crate) mod os_lock;
mod path_lock;
mod queue;
pub(crate) mod sidecar;
pub mod strategy;
mod timer;
mod waiter_pool;

pub use config::{network_stretch, ManagerOptions, StrategyChoice};
pub use error::LockError;
pub use events::{EventSink, LockEvent, ReleaseReason};
pub(crate) use holder_record::HolderRecord;
pub use holder_record::{now_ms, Holder, Strategy};
pub(crate) use manager::resolve_target;
pub use manager::{AcquireRequest, Completion, HeldLock, LockManager, Request, Waiting};
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
