//! The engine's timers: lease expiry, attempt timeouts and backoff pauses, on
//! one thread per process, so a stuck or blocked JS event loop can neither
//! keep a file locked past its lease nor stop a wait from timing out.
//!
//! Invariants:
//! - Each callback runs at most once, on the timer thread, outside the mutex.
//! - Cancelling never wakes the thread: a cancelled entry is removed, except the
//!   first one (the deadline the thread sleeps until), which stays as an empty
//!   tombstone until then. So the hot path (acquire, release) costs a map insert
//!   and remove, and the map holds the live timers plus at most one tombstone.
//! - The thread is woken only when a new deadline comes before every other one.
//!
//! (A tokio timer was measured first: aborting one wakes a runtime worker, which
//! on a 2-core machine delayed every cross-process handoff by tens of µs.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

type Callback = Box<dyn FnOnce() + Send>;

/// Identifies a scheduled callback, for `cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey(Instant, u64);

struct Timers {
    entries: Mutex<BTreeMap<TimerKey, Option<Callback>>>,
    wake: Condvar,
    next_id: AtomicU64,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        std::thread::Builder::new()
            .name("file-lock-timer".into())
            .stack_size(256 * 1024)
            .spawn(run)
            .expect("cannot start the file-lock timer thread");
        Timers {
            entries: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
            next_id: AtomicU64::new(0),
        }
    })
}

/// Runs `callback` on the timer thread at `deadline` unless cancelled first.
pub fn schedule(deadline: Instant, callback: impl FnOnce() + Send + 'static) -> TimerKey {
    let t = timers();
    let key = TimerKey(deadline, t.next_id.fetch_add(1, Ordering::Relaxed));
    let mut entries = t.entries.lock();
    let first = entries.keys().next().is_none_or(|head| key < *head);
    entries.insert(key, Some(Box::new(callback)));
    if first {
        t.wake.notify_one();
    }
    key
}

/// Cancels a callback that has not run yet; a no-op afterwards.
pub fn cancel(key: TimerKey) {
    let mut entries = timers().entries.lock();
    if entries.keys().next() == Some(&key) {
        if let Some(slot) = entries.get_mut(&key) {
            *slot = None;
        }
    } else {
        entries.remove(&key);
    }
}

fn run() {
    let t = timers();
    let mut entries = t.entries.lock();
    loop {
        let Some(&key) = entries.keys().next() else {
            t.wake.wait(&mut entries);
            continue;
        };
        if key.0 > Instant::now() {
            t.wake.wait_until(&mut entries, key.0);
            continue;
        }
        let callback = entries.remove(&key).flatten();
        if let Some(callback) = callback {
            drop(entries);
            // A panicking callback must not take every timeout and lease with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
            entries = t.entries.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn callbacks_run_in_deadline_order_and_cancelled_ones_never_run() {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let at = |ms| now + Duration::from_millis(ms);
        let send = |tag: &'static str| {
            let tx = tx.clone();
            move || tx.send(tag).unwrap()
        };
        schedule(at(60), send("late"));
        let head = schedule(at(20), send("cancelled head"));
        let middle = schedule(at(40), send("cancelled middle"));
        schedule(at(30), send("early"));
        cancel(head);
        cancel(middle);
        let got: Vec<_> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, ["early", "late"]);
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    }

    #[test]
    fn an_earlier_deadline_wakes_the_sleeping_thread() {
        let (tx, rx) = mpsc::channel();
        let far = schedule(Instant::now() + Duration::from_secs(3600), || {});
        let started = Instant::now();
        schedule(Instant::now() + Duration::from_millis(10), move || {
            tx.send(()).unwrap()
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        cancel(far);
    }
}
