//! The interplay replayed on real files: one participant is paused at each
//! `Step` while an OS-lock user (which also cleans up its idle sidecar, as
//! `close()` does) and a lock-file user (judging empty files stale after 1 ms,
//! so every time-based judgement comes due at once) keep trying; then it is let
//! go. Every hold of every participant is counted: two at once is the failure.
//! Participants are threads with handles of their own, which meet at the OS
//! lock exactly as processes do.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::pause;
use super::Step;
use crate::lock::holder_record;
use crate::lock::lockfile::testing::plant;
use crate::lock::sidecar::Sidecar;
use crate::lock::strategy::lock_file::LockFile;
use crate::lock::strategy::os::OsLock;
use crate::lock::strategy::{Attempt, CrossProcessLock, HeldLock, Place};
use crate::lock::Mode;
use crate::test_support::dead_pid;

/// Who is inside, and every overlap seen.
#[derive(Default)]
struct Inside {
    count: AtomicUsize,
    overlaps: Mutex<Vec<String>>,
}

impl Inside {
    /// Holds for a moment, noting an overlap, then releases.
    fn occupy(&self, who: &str, mut held: Box<dyn HeldLock>) {
        let _ = held.publish();
        if self.count.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlaps
                .lock()
                .unwrap()
                .push(format!("{who} entered while another held"));
        }
        std::thread::sleep(Duration::from_micros(300));
        // Leaves, then lets go: a release hands the lock on (a successor may
        // enter as soon as the lock file is moved away). What a release must
        // never do — take a successor's file with it — shows as that
        // successor's overlap with the next one.
        self.count.fetch_sub(1, Ordering::SeqCst);
        held.release();
    }
}

fn place(dir: &tempfile::TempDir) -> Place {
    let target = dir.path().join("roles.json");
    Place {
        sidecar_path: crate::lock::sidecar_path(&target),
        target,
        stale_after: Duration::from_millis(1),
        on_stale_removed: None,
    }
}

/// What is on disk before the paused participant starts.
#[derive(Debug, Clone, Copy)]
enum Before {
    Nothing,
    /// An OS-lock sidecar nobody holds (an idle one, to be taken over).
    IdleSidecar,
    /// The lock file of a process that has exited (to be broken).
    DeadHoldersFile,
}

fn prepare(before: Before, path: &Path) {
    match before {
        Before::Nothing => {}
        Before::IdleSidecar => {
            let sidecar = Sidecar::open(path).unwrap();
            holder_record::take_over_record(sidecar.file(), Mode::Exclusive).unwrap();
        }
        Before::DeadHoldersFile => {
            let me = crate::process::current();
            plant(
                path,
                dead_pid(),
                &me.hostname,
                None,
                holder_record::now_ms(),
            );
        }
    }
}

/// Acquires once with `lock`, switching to a lock file when told to (as
/// `PathLock` does), retrying while busy for up to a second.
fn acquire(lock: Box<dyn CrossProcessLock>, place: &Place) -> Option<Box<dyn HeldLock>> {
    let mut lock = lock;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match lock.try_acquire(Mode::Exclusive, None).unwrap() {
            Attempt::Held(held) => return Some(held),
            Attempt::Busy => std::thread::sleep(Duration::from_micros(200)),
            Attempt::UseLockFile => lock = Box::new(LockFile::new(place.clone())),
        }
    }
    None
}

/// Pauses a participant of `strategy` at `step` (after `before`) while the two
/// others work, and reports every overlap.
fn replay(step: Step, before: Before, paused_uses_os: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let place = place(&dir);
    prepare(before, &place.sidecar_path);
    let inside = Arc::new(Inside::default());
    let (reached_tx, reached) = mpsc::channel();
    let (resume, resume_rx) = mpsc::channel::<()>();
    let paused = {
        let (place, inside) = (place.clone(), Arc::clone(&inside));
        std::thread::spawn(move || {
            let mut once = Some((reached_tx, resume_rx));
            pause::install(move |at| {
                if at == step {
                    if let Some((reached, resume)) = once.take() {
                        let _ = reached.send(());
                        let _ = resume.recv_timeout(Duration::from_secs(5));
                    }
                }
            });
            let lock: Box<dyn CrossProcessLock> = if paused_uses_os {
                Box::new(OsLock::new(place.clone()))
            } else {
                Box::new(LockFile::new(place.clone()))
            };
            if let Some(held) = acquire(lock, &place) {
                inside.occupy("the paused participant", held);
            }
        })
    };
    let reached_it = reached.recv_timeout(Duration::from_secs(2)).is_ok();
    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = [true, false]
        .into_iter()
        .map(|os| {
            let (place, inside, stop) = (place.clone(), Arc::clone(&inside), Arc::clone(&stop));
            std::thread::spawn(move || {
                let who = if os {
                    "an OS-lock user"
                } else {
                    "a lock-file user"
                };
                let lock: Box<dyn CrossProcessLock> = if os {
                    Box::new(OsLock::new(place.clone()))
                } else {
                    Box::new(LockFile::new(place.clone()))
                };
                while !stop.load(Ordering::SeqCst) {
                    match lock.try_acquire(Mode::Exclusive, None).unwrap() {
                        Attempt::Held(held) => inside.occupy(who, held),
                        Attempt::Busy | Attempt::UseLockFile => {}
                    }
                    // An idle OS-lock user removes its sidecar, as close() does.
                    lock.close();
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    drop(resume);
    paused.join().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::SeqCst);
    for other in others {
        other.join().unwrap();
    }
    assert!(reached_it, "the paused participant never reached {step:?}");
    let overlaps = inside.overlaps.lock().unwrap().clone();
    overlaps
}

fn assert_never_two(step: Step, before: Before, paused_uses_os: bool) {
    for round in 0..5 {
        let overlaps = replay(step, before, paused_uses_os);
        assert!(
            overlaps.is_empty(),
            "paused at {step:?} after {before:?} (round {round}): {overlaps:?}"
        );
    }
}

#[test]
fn a_lock_file_creator_paused_before_locking_its_new_file() {
    // Its new file may be removed meanwhile (an idle sidecar's cleanup): then
    // it holds nothing, and whoever creates the next file is alone.
    assert_never_two(Step::CreatedLockFile, Before::Nothing, false);
}

#[test]
fn an_os_lock_user_paused_between_locking_and_writing_its_record() {
    // Its sidecar is still empty: a lock-file user judging empty files by the
    // clock must not break it under its feet.
    assert_never_two(Step::LockedSidecar, Before::Nothing, true);
}

#[test]
fn a_take_over_of_an_idle_sidecar_paused_at_each_step() {
    assert_never_two(Step::JudgedExisting, Before::IdleSidecar, false);
    assert_never_two(Step::LockedExisting, Before::IdleSidecar, false);
}

#[test]
fn a_break_of_a_dead_holders_lock_file_paused_at_each_step() {
    assert_never_two(Step::JudgedExisting, Before::DeadHoldersFile, false);
    assert_never_two(Step::LockedExisting, Before::DeadHoldersFile, false);
}

#[test]
fn a_lock_file_holder_paused_while_releasing() {
    assert_never_two(Step::ReleasingLockFile, Before::Nothing, false);
}

#[test]
fn an_os_lock_user_paused_while_switching_to_lock_files() {
    assert_never_two(Step::SwitchingToLockFile, Before::DeadHoldersFile, true);
}

/// A shared waiter that wins beside a shared holder who has not written its
/// record yet (its sidecar still empty), and that nobody wants any more, must
/// not remove that sidecar: rule U needs the OS lock exclusively.
#[test]
fn an_unwanted_shared_waiter_never_removes_a_sidecar_a_shared_holder_is_claiming() {
    use crate::lock::os_lock;
    use crate::lock::path_lock::{Enqueued, GrantResult, PathLock, Waiter};
    use crate::lock::StrategyChoice;

    struct Nobody;
    impl Waiter for Nobody {
        fn answer(self: Box<Self>, _result: GrantResult) -> bool {
            false
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("roles.json");
    let sidecar_path = crate::lock::sidecar_path(&target);
    let path_lock = || {
        Arc::new(PathLock::new(
            target.clone(),
            false,
            StrategyChoice::Os,
            Duration::from_secs(30),
            1.0,
            None,
        ))
    };
    // Another process in the middle of claiming: the empty sidecar, locked.
    let claiming = Sidecar::open(&sidecar_path).unwrap();
    assert!(os_lock::try_lock(claiming.file(), Mode::Exclusive).unwrap());
    let waiting = path_lock();
    let ticket = match waiting
        .enqueue(Mode::Shared, Box::new(Nobody), false)
        .unwrap()
    {
        Enqueued::Waiting { ticket, .. } => ticket,
        Enqueued::Granted(_) => panic!("the sidecar is locked: it must wait"),
    };
    std::thread::sleep(Duration::from_millis(50)); // its waiter blocks in the kernel
    assert!(waiting.cancel(ticket)); // and its requester gives up
                                     // The other process now holds it shared, record still unwritten.
    assert!(os_lock::try_lock(claiming.file(), Mode::Shared).unwrap());
    std::thread::sleep(Duration::from_millis(100)); // the waiter wins shared, unwanted
    assert!(
        claiming.still_linked(&sidecar_path).unwrap(),
        "the sidecar was removed under a shared holder"
    );
    let exclusive = path_lock().try_acquire(Mode::Exclusive).unwrap();
    assert!(
        exclusive.is_none(),
        "an exclusive grant beside a shared holder"
    );
}
