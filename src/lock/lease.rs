//! Lease expiry: a lock held longer than its lease is released by this timer
//! thread, so a stuck or blocked JS event loop cannot keep a file locked.
//!
//! Invariants: one thread per process, started on first use; each held lock
//! with a lease has exactly one entry, removed on release (so the map only
//! holds live leases); the thread sleeps until the earliest deadline and is
//! woken only when a new lease would expire before it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::manager::HeldLock;

type LeaseKey = (Instant, u64);

pub struct LeaseTimer {
    leases: Mutex<BTreeMap<LeaseKey, Weak<HeldLock>>>,
    wake: Condvar,
}

static TIMER: OnceLock<Arc<LeaseTimer>> = OnceLock::new();

/// The process-wide lease timer.
pub fn timer() -> &'static Arc<LeaseTimer> {
    TIMER.get_or_init(|| {
        let timer = Arc::new(LeaseTimer {
            leases: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&timer);
        std::thread::Builder::new()
            .name("file-lock-lease".into())
            .stack_size(128 * 1024)
            .spawn(move || worker.run())
            .expect("cannot start the lease timer thread");
        timer
    })
}

impl LeaseTimer {
    pub fn schedule(&self, deadline: Instant, lock_id: u64, lock: Weak<HeldLock>) {
        let mut leases = self.leases.lock();
        let earlier_than_all = leases
            .keys()
            .next()
            .is_none_or(|first| (deadline, lock_id) < *first);
        leases.insert((deadline, lock_id), lock);
        if earlier_than_all {
            self.wake.notify_one();
        }
    }

    pub fn cancel(&self, deadline: Instant, lock_id: u64) {
        self.leases.lock().remove(&(deadline, lock_id));
    }

    fn run(&self) {
        let mut leases = self.leases.lock();
        loop {
            let Some((&key, _)) = leases.iter().next() else {
                self.wake.wait(&mut leases);
                continue;
            };
            if key.0 > Instant::now() {
                self.wake.wait_until(&mut leases, key.0);
                continue;
            }
            let expired = leases.remove(&key);
            // Release outside the map's mutex: release() cancels the lease, which locks it.
            drop(leases);
            if let Some(lock) = expired.and_then(|weak| weak.upgrade()) {
                lock.expire();
            }
            leases = self.leases.lock();
        }
    }
}
