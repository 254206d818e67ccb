//! The lock engine through its plain-Rust API: two managers in one process stand
//! for two processes (each has its own sidecar handle, so they meet at the OS
//! lock and exercise the blocking waiter thread).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use file_lock_core::lock::{
    sidecar_path, AcquireRequest, EventSink, HeldLock, LockError, LockEvent, LockManager,
    ManagerOptions, Mode, ReleaseReason,
};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Recorder(Mutex<Vec<LockEvent>>);

impl EventSink for Recorder {
    fn emit(&self, event: LockEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn count(&self, pred: impl Fn(&LockEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| pred(e)).count()
    }

    fn waits(&self) -> usize {
        self.count(|e| matches!(e, LockEvent::Waiting { .. }))
    }

    fn releases_for(&self, why: ReleaseReason) -> usize {
        self.count(|e| matches!(e, LockEvent::Released { reason, .. } if *reason == why))
    }
}

/// A manager and the events it raised.
type Recorded = (LockManager, Arc<Recorder>);

fn manager_with(options: ManagerOptions) -> Recorded {
    let recorder = Arc::new(Recorder::default());
    (LockManager::new(options, recorder.clone()), recorder)
}

fn manager() -> Recorded {
    manager_with(ManagerOptions::default())
}

fn request(mode: Mode, timeout_ms: u64, retries: u32) -> AcquireRequest {
    AcquireRequest {
        mode,
        timeout: Some(Duration::from_millis(timeout_ms)),
        retries,
    }
}

/// A fresh folder (keep it for the whole test) and the data file's path in it.
fn scratch() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.json").to_string_lossy().into_owned();
    (dir, path)
}

/// Two managers over one fresh data file: two processes, as far as the lock
/// can tell. Keep the folder for the whole test.
fn two_managers() -> (tempfile::TempDir, String, Recorded, Recorded) {
    let (dir, path) = scratch();
    (dir, path, manager(), manager())
}

/// The lock, taken at once: the test knows it is free.
fn take(m: &LockManager, path: &str, mode: Mode) -> Arc<HeldLock> {
    m.try_acquire(path, mode)
        .unwrap()
        .expect("the lock is free")
}

/// The lock, waited for exclusively (one attempt of `timeout_ms`): the test
/// knows it comes free in time.
async fn wait_for(m: &LockManager, path: &str, timeout_ms: u64) -> Arc<HeldLock> {
    m.acquire(path, request(Mode::Exclusive, timeout_ms, 1))
        .await
        .expect("the lock came free in time")
}

/// An exclusive wait (one attempt of `timeout_ms`) on a task of its own.
fn spawn_wait(
    m: &LockManager,
    path: &str,
    timeout_ms: u64,
) -> JoinHandle<Result<Arc<HeldLock>, LockError>> {
    let (m, path) = (m.clone(), path.to_owned());
    tokio::spawn(async move {
        m.acquire(&path, request(Mode::Exclusive, timeout_ms, 1))
            .await
    })
}

fn delete_sidecar(path: &str) {
    std::fs::remove_file(sidecar_path(std::path::Path::new(path))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_exclude_each_other_and_hand_over_on_release() {
    let (_dir, path, (a, _), (b, events)) = two_managers();
    let held = take(&a, &path, Mode::Exclusive);
    assert!(b.try_acquire(&path, Mode::Shared).unwrap().is_none());

    let waiter = spawn_wait(&b, &path, 5000);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "b must wait while a holds the lock");
    assert_eq!(events.waits(), 1);
    let released_at = Instant::now();
    assert!(held.release(ReleaseReason::Explicit));
    let got = waiter.await.unwrap().unwrap();
    assert!(released_at.elapsed() < Duration::from_secs(2));
    assert!(got.fencing_token > held.fencing_token);
    assert!(
        !held.release(ReleaseReason::Explicit),
        "release is idempotent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_holders_overlap_and_an_exclusive_waits_for_all() {
    let (_dir, path, (a, _), (b, _)) = two_managers();
    let (c, _) = manager();
    let r1 = take(&a, &path, Mode::Shared);
    let r2 = take(&b, &path, Mode::Shared);
    let writer = spawn_wait(&c, &path, 5000);
    tokio::time::sleep(Duration::from_millis(50)).await;
    r1.release(ReleaseReason::Explicit);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!writer.is_finished(), "one reader still holds the lock");
    r2.release(ReleaseReason::Explicit);
    let w = writer.await.unwrap().unwrap();
    assert_eq!(w.mode, Mode::Exclusive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_requests_are_served_in_arrival_order() {
    let (_dir, path) = scratch();
    let (m, _) = manager();
    let first = take(&m, &path, Mode::Exclusive);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (name, mode) in [
        ("w1", Mode::Exclusive),
        ("r1", Mode::Shared),
        ("w2", Mode::Exclusive),
        ("r2", Mode::Shared),
    ] {
        let (m, path, order) = (m.clone(), path.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let held = m.acquire(&path, request(mode, 5000, 1)).await.unwrap();
            order.lock().unwrap().push(name);
            tokio::time::sleep(Duration::from_millis(20)).await;
            held.release(ReleaseReason::Explicit);
        }));
        // Let each request reach the queue before the next one is made.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.release(ReleaseReason::Explicit);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["w1", "r1", "w2", "r2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_reports_attempts_waited_time_and_holder() {
    let (_dir, path, (a, _), (b, events)) = two_managers();
    let _held = take(&a, &path, Mode::Exclusive);
    let started = Instant::now();
    let error = b
        .acquire(&path, request(Mode::Exclusive, 100, 3))
        .await
        .err()
        .expect("must time out");
    match &error {
        LockError::Timeout {
            attempts,
            waited,
            holder,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert!(*waited >= Duration::from_millis(300));
            let holder = holder.as_ref().expect("the holder record is readable");
            assert!(holder.same_host);
            assert_eq!(holder.mode, Mode::Exclusive);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(error.code(), "ELOCKTIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(events.waits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_wait_leaves_no_hold_behind() {
    let (_dir, path, (a, _), (b, _)) = two_managers();
    let held = take(&a, &path, Mode::Exclusive);
    let waiting = b
        .acquire_waiting(&path, request(Mode::Exclusive, 10_000, 1))
        .unwrap();
    let pending = waiting.request.clone();
    let waiter = tokio::spawn(waiting.outcome());
    tokio::time::sleep(Duration::from_millis(50)).await;
    pending.cancel();
    let error = waiter.await.unwrap().err().expect("aborted");
    assert_eq!(error.code(), "ABORT_ERR");
    held.release(ReleaseReason::Explicit);
    // The abandoned OS waiter must not keep the lock: both managers can take it again.
    wait_for(&b, &path, 2000)
        .await
        .release(ReleaseReason::Explicit);
    let back = wait_for(&a, &path, 2000).await;
    assert_eq!(b.held_count(), 0);
    back.release(ReleaseReason::Explicit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_expires_on_the_rust_timer() {
    let (_dir, path) = scratch();
    let (a, events) = manager_with(ManagerOptions {
        lease: Some(Duration::from_millis(100)),
        ..ManagerOptions::default()
    });
    let (b, _) = manager();
    let held = take(&a, &path, Mode::Exclusive);
    let got = wait_for(&b, &path, 3000).await;
    assert!(held.is_released());
    assert_eq!(events.releases_for(ReleaseReason::LeaseExpired), 1);
    got.release(ReleaseReason::Explicit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_fails_waiters_and_removes_the_sidecar() {
    let (_dir, path) = scratch();
    let (m, _) = manager();
    let held = take(&m, &path, Mode::Exclusive);
    let waiter = spawn_wait(&m, &path, 10_000);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(m.close(), 1);
    assert!(held.is_released());
    assert_eq!(waiter.await.unwrap().err().unwrap().code(), "ECLOSED");
    assert!(!sidecar_path(std::path::Path::new(&path)).exists());
    assert_eq!(
        m.try_acquire(&path, Mode::Exclusive).err().unwrap().code(),
        "ECLOSED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    windows,
    ignore = "cannot happen on Windows: a sidecar is opened without FILE_SHARE_DELETE, so nobody can delete it while a manager has it open (by design)"
)]
async fn a_deleted_sidecar_is_noticed_and_exclusion_holds() {
    let (_dir, path, (a, _), (b, _)) = two_managers();
    // b caches a handle on the first sidecar inode, then someone deletes the sidecar.
    take(&b, &path, Mode::Exclusive).release(ReleaseReason::Explicit);
    delete_sidecar(&path);
    let held_by_a = take(&a, &path, Mode::Exclusive);
    // b's stale handle is free at the OS level, but it must not count as the lock.
    assert!(b.try_acquire(&path, Mode::Exclusive).unwrap().is_none());
    held_by_a.release(ReleaseReason::Explicit);
    assert!(b.try_acquire(&path, Mode::Exclusive).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_across_managers_never_overlap() {
    let (_dir, path) = scratch();
    let inside = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (m, _) = manager();
        for _ in 0..4 {
            let (m, path, inside, total) = (m.clone(), path.clone(), inside.clone(), total.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    let held = wait_for(&m, &path, 10_000).await;
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    held.release(ReleaseReason::Explicit);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(total.load(Ordering::SeqCst), 800);
}

#[test]
fn bad_paths_are_refused_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manager();
    let code = |p: &str| m.try_acquire(p, Mode::Exclusive).err().unwrap().code();
    assert_eq!(code(""), "EINVAL");
    assert_eq!(code("a\0b"), "EINVAL");
    assert_eq!(code(dir.path().to_str().unwrap()), "EINVAL");
    assert_eq!(
        code(dir.path().join("missing/roles.json").to_str().unwrap()),
        "ENOENT"
    );
}

#[test]
fn inspect_sees_a_holder_from_outside() {
    let (_dir, path, (a, _), (b, _)) = two_managers();
    assert!(b.inspect(&path).unwrap().is_none());
    let held = take(&a, &path, Mode::Shared);
    let holder = b.inspect(&path).unwrap().expect("held");
    assert_eq!(holder.mode, Mode::Shared);
    assert!(holder.same_process && holder.pid.is_none());
    held.release(ReleaseReason::Explicit);
    assert!(b.inspect(&path).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_waiting_future_neither_deadlocks_nor_keeps_the_lock() {
    let (_dir, path) = scratch();
    let (a, _) = manager();
    let held = take(&a, &path, Mode::Exclusive);
    // The future is dropped while it waits; the wait itself goes on.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        a.acquire(&path, request(Mode::Exclusive, 10_000, 1)),
    )
    .await;
    assert!(gave_up.is_err());
    // Granting it now must not deadlock: the grant nobody wants is handed back.
    let releasing = tokio::task::spawn_blocking(move || held.release(ReleaseReason::Explicit));
    let released = tokio::time::timeout(Duration::from_secs(3), releasing).await;
    assert!(matches!(released, Ok(Ok(true))), "release deadlocked");
    // The abandoned grant was released.
    wait_for(&a, &path, 3000)
        .await
        .release(ReleaseReason::Explicit);
    assert_eq!(a.held_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    windows,
    ignore = "cannot happen on Windows: a sidecar is opened without FILE_SHARE_DELETE, so nobody can delete it while a manager has it open (by design)"
)]
async fn a_lock_whose_sidecar_is_deleted_is_reported_compromised() {
    let (_dir, path) = scratch();
    let (a, events) = manager();
    let held = take(&a, &path, Mode::Exclusive);
    delete_sidecar(&path);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !held.is_released() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held.is_released(), "the holder must learn its lock is gone");
    assert_eq!(events.releases_for(ReleaseReason::Compromised), 1);
    // The fresh sidecar is lockable (by anyone, us included).
    let (b, _) = manager();
    assert!(b.try_acquire(&path, Mode::Exclusive).unwrap().is_some());
}
