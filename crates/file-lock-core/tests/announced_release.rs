//! Announced releases (`ManagerOptions::releases_watched`): a waiter whose
//! caller watches the sidecar is retried on the timer thread and by `nudge`
//! instead of blocking a thread at once. Two managers in one process stand for
//! two processes. What must hold: an announced release is seen by inotify and
//! taken by the nudge on the nudging thread; a release nobody announces or
//! nudges is still found (retries, then a waiter thread); exclusion holds
//! whoever takes the lock, nudges or not.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::inotify;

use file_lock_core::lock::{
    sidecar_path, AcquireRequest, EventSink, HeldLock, LockError, LockEvent, LockManager,
    ManagerOptions, Mode, ReleaseReason, Request,
};

struct Ignore;

impl EventSink for Ignore {
    fn emit(&self, _: LockEvent) {}
}

fn manager(releases_watched: bool) -> LockManager {
    let options = ManagerOptions {
        releases_watched,
        ..ManagerOptions::default()
    };
    LockManager::new(options, Arc::new(Ignore))
}

fn scratch() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.json").to_string_lossy().into_owned();
    (dir, path)
}

fn exclusive(timeout_ms: u64) -> AcquireRequest {
    AcquireRequest {
        mode: Mode::Exclusive,
        timeout: Some(Duration::from_millis(timeout_ms)),
        retries: 1,
    }
}

type Outcome = (Result<Arc<HeldLock>, LockError>, thread::ThreadId, Instant);

/// A waiting exclusive request whose outcome (with the thread and instant it
/// was decided on) arrives on the returned channel.
fn wait(m: &LockManager, path: &str, timeout_ms: u64) -> (Arc<Request>, mpsc::Receiver<Outcome>) {
    let (tx, rx) = mpsc::channel();
    let done = Box::new(move |result| {
        let _ = tx.send((result, thread::current().id(), Instant::now()));
    });
    let request = m.acquire_then(path, exclusive(timeout_ms), done).unwrap();
    (request, rx)
}

fn held(outcome: Outcome) -> (Arc<HeldLock>, thread::ThreadId, Instant) {
    let (result, thread, at) = outcome;
    (result.expect("granted"), thread, at)
}

#[test]
fn an_announced_release_is_seen_by_inotify_and_taken_by_the_nudge_on_its_thread() {
    let (_dir, path) = scratch();
    let (a, b) = (manager(false), manager(true));
    let sidecar = sidecar_path(std::path::Path::new(&path));
    let mut taken_by_nudge = 0;
    for _ in 0..20 {
        let holder = a.try_acquire(&path, Mode::Exclusive).unwrap().unwrap();
        let (request, outcome) = wait(&b, &path, 5000);
        assert_eq!(request.release_announced_at(), Some(sidecar.as_path()));
        let inotify = inotify::init(inotify::CreateFlags::NONBLOCK).unwrap();
        inotify::add_watch(&inotify, &sidecar, inotify::WatchFlags::ATTRIB).unwrap();
        thread::sleep(Duration::from_millis(2)); // b retries on the timer thread by now
        assert!(
            outcome.try_recv().is_err(),
            "b must wait while a holds the lock"
        );

        holder.release(ReleaseReason::Explicit);
        let mut buffer = [std::mem::MaybeUninit::uninit(); 256];
        let mut reader = inotify::Reader::new(&inotify, &mut buffer);
        let event = reader
            .next()
            .expect("the release was announced (IN_ATTRIB)");
        assert!(event.events().contains(inotify::ReadFlags::ATTRIB));

        // The nudge takes the lock here and now, unless a scheduled retry
        // came first (the retries are milliseconds apart: rarely).
        let nudged = request.nudge();
        let (got, decided_on, _) = held(outcome.recv_timeout(Duration::from_secs(5)).unwrap());
        if nudged && decided_on == thread::current().id() {
            taken_by_nudge += 1;
        }
        assert!(got.fencing_token > holder.fencing_token);
        assert!(a.try_acquire(&path, Mode::Exclusive).unwrap().is_none());
        got.release(ReleaseReason::Explicit);
    }
    assert!(
        taken_by_nudge >= 15,
        "only {taken_by_nudge} of 20 handoffs taken by the nudge"
    );
}

#[test]
fn a_release_nobody_nudges_is_found_by_the_retries() {
    let (_dir, path) = scratch();
    let (a, b) = (manager(false), manager(true));
    let holder = a.try_acquire(&path, Mode::Exclusive).unwrap().unwrap();
    let (_request, outcome) = wait(&b, &path, 5000);
    thread::sleep(Duration::from_millis(20));
    let released = Instant::now();
    holder.release(ReleaseReason::Explicit);
    let (got, _, at) = held(outcome.recv_timeout(Duration::from_secs(5)).unwrap());
    // The next retry is at most the longest pause of the retry window away.
    assert!(
        at.duration_since(released) < Duration::from_millis(100),
        "{:?}",
        at - released
    );
    got.release(ReleaseReason::Explicit);
}

#[test]
fn a_long_wait_ends_in_a_waiter_thread_woken_by_the_kernel() {
    let (_dir, path) = scratch();
    let (a, b) = (manager(false), manager(true));
    let holder = a.try_acquire(&path, Mode::Exclusive).unwrap().unwrap();
    let (_request, outcome) = wait(&b, &path, 5000);
    thread::sleep(Duration::from_millis(400)); // past the retries: a thread blocks in flock
    assert!(outcome.try_recv().is_err());
    let released = Instant::now();
    holder.release(ReleaseReason::Explicit);
    let (got, _, at) = held(outcome.recv_timeout(Duration::from_secs(5)).unwrap());
    assert!(
        at.duration_since(released) < Duration::from_millis(50),
        "{:?}",
        at - released
    );
    got.release(ReleaseReason::Explicit);
}

#[test]
fn closing_a_manager_ends_its_retries() {
    let (_dir, path) = scratch();
    let (a, b) = (manager(false), manager(true));
    let holder = a.try_acquire(&path, Mode::Exclusive).unwrap().unwrap();
    let (request, outcome) = wait(&b, &path, 5000);
    thread::sleep(Duration::from_millis(5));
    b.close();
    let (result, _, _) = outcome.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        matches!(result, Err(LockError::Closed)),
        "{:?}",
        result.err()
    );
    assert!(!request.nudge(), "nothing of a closed manager is retried");
    holder.release(ReleaseReason::Explicit);
    // b's wait ended as a waiter thread, which lets go of what it wins (and
    // removes the sidecar if nobody uses it): a can take the file again.
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.try_acquire(&path, Mode::Exclusive).unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the closed manager still holds the file"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// 4 managers × 4 threads × 50 turns, every request nudged at random moments
/// by a thread of its own: never two holders at once, no turn lost.
#[test]
fn nudged_waits_across_managers_never_overlap() {
    let (_dir, path) = scratch();
    let inside = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (requests_tx, requests_rx) = mpsc::channel::<Arc<Request>>();
    let stop = Arc::new(AtomicUsize::new(0));
    let nudger = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut live: Vec<Arc<Request>> = Vec::new();
            while stop.load(Ordering::SeqCst) == 0 {
                live.extend(requests_rx.try_iter());
                live.retain(|r| !r.is_finished());
                for request in &live {
                    request.nudge();
                }
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut workers = Vec::new();
    for m in 0..4 {
        let manager = manager(m % 2 == 0 || m == 3);
        for _ in 0..4 {
            let (manager, path, inside, total) =
                (manager.clone(), path.clone(), inside.clone(), total.clone());
            let requests = requests_tx.clone();
            workers.push(thread::spawn(move || {
                for _ in 0..50 {
                    let (request, outcome) = wait(&manager, &path, 20_000);
                    let _ = requests.send(request);
                    let (lock, _, _) = held(outcome.recv().unwrap());
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    lock.release(ReleaseReason::Explicit);
                }
            }));
        }
    }
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(1, Ordering::SeqCst);
    nudger.join().unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 800);
}
