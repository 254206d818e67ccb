//! Tests of the lock-file primitives: creation, heartbeat and release of our
//! own file only, the stale judge, and breaking (by one breaker only).

use super::testing::plant;
use super::*;
#[cfg(unix)]
use crate::test_support::dead_pid;
use crate::test_support::{names_in, scratch};
#[cfg(unix)]
use std::sync::{Arc, Barrier};

/// A fresh folder and the path of a lock file in it.
fn lock_path() -> (tempfile::TempDir, PathBuf) {
    scratch(".roles.json.lock")
}

/// Our claim of the lock file at `path`, or `None` when it already exists.
fn try_claim(path: &Path) -> Option<Claim> {
    try_create(path, Mode::Exclusive).unwrap().claim()
}

/// What a fresh judge says of the lock file at `path` at `now`.
fn judged_at(path: &Path, stale_after: Duration, now: Instant) -> Verdict {
    StaleWatch::default().judge(&observe(path).unwrap().unwrap(), stale_after, now)
}

fn assert_stale_because(verdict: &Verdict, why: &str) {
    assert!(
        matches!(verdict, Verdict::Stale(reason) if reason.contains(why)),
        "expected stale because of {why:?}: {verdict:?}"
    );
}

#[test]
fn one_creator_wins_and_the_file_is_private_and_whole() {
    let (_dir, path) = lock_path();
    let claim = try_claim(&path).expect("created");
    assert!(try_claim(&path).is_none());
    let record = observe(&path)
        .unwrap()
        .unwrap()
        .record()
        .expect("whole record");
    assert_eq!(record.token, claim.token);
    assert_eq!(record.strategy, Strategy::Lockfile);
    assert!(record.heartbeat.is_some());
    #[cfg(unix)]
    assert_eq!(crate::test_support::permission_bits(&path), 0o600);
}

#[test]
fn heartbeat_and_release_touch_only_our_own_file() {
    let (dir, path) = lock_path();
    let claim = try_claim(&path).unwrap();
    assert!(heartbeat(&path, &claim).unwrap());
    // Someone broke our lock and a successor holds it now.
    std::fs::remove_file(&path).unwrap();
    let successor = try_claim(&path).unwrap();
    assert!(
        !heartbeat(&path, &claim).unwrap(),
        "we must learn the lock is lost"
    );
    assert!(!remove_own(&path, &claim).unwrap());
    let left = observe(&path).unwrap().unwrap().record().unwrap();
    assert_eq!(
        left.token, successor.token,
        "the successor's file survives our release"
    );
    assert!(remove_own(&path, &successor).unwrap());
    assert!(observe(&path).unwrap().is_none());
    assert!(
        names_in(dir.path()).is_empty(),
        "no renamed-aside files remain"
    );
}

#[test]
fn a_lock_of_a_live_process_on_this_host_is_never_stale() {
    let (_dir, path) = lock_path();
    let me = process::current();
    plant(&path, me.pid, &me.hostname, me.start_time, 0);
    let later = Instant::now() + Duration::from_secs(3600);
    assert_eq!(
        judged_at(&path, Duration::from_millis(1), later),
        Verdict::Held
    );
}

#[cfg(unix)]
#[test]
fn dead_and_reused_pids_on_this_host_are_stale_at_once() {
    let (_dir, path) = lock_path();
    let me = process::current();
    let now = Instant::now();
    plant(&path, dead_pid(), &me.hostname, None, now_ms());
    assert_stale_because(&judged_at(&path, Duration::from_secs(30), now), "exited");
    if let Some(start) = me.start_time {
        plant(&path, me.pid, &me.hostname, Some(start + 1), now_ms());
        assert_stale_because(&judged_at(&path, Duration::from_secs(30), now), "reused");
    }
}

#[test]
fn another_hosts_lock_goes_stale_only_after_staying_unchanged_by_our_clock() {
    let (_dir, path) = lock_path();
    let stale_after = Duration::from_secs(30);
    let t0 = Instant::now();
    let mut watch = StaleWatch::default();
    // A heartbeat far in the future (a clock jump) buys nothing, and blocks nothing forever.
    plant(&path, 4242, "other-host", None, now_ms() + 86_400_000);
    let snapshot = observe(&path).unwrap().unwrap();
    assert_eq!(watch.judge(&snapshot, stale_after, t0), Verdict::Held);
    assert_eq!(
        watch.judge(&snapshot, stale_after, t0 + Duration::from_secs(29)),
        Verdict::Held
    );
    // A refreshed heartbeat restarts the clock.
    plant(&path, 4242, "other-host", None, now_ms() + 86_400_001);
    let refreshed = observe(&path).unwrap().unwrap();
    assert_eq!(
        watch.judge(&refreshed, stale_after, t0 + Duration::from_secs(31)),
        Verdict::Held
    );
    let verdict = watch.judge(&refreshed, stale_after, t0 + Duration::from_secs(62));
    assert_stale_because(&verdict, "other-host");
}

#[test]
fn a_half_written_lock_file_is_kept_while_young_and_reclaimed_after() {
    let (_dir, path) = lock_path();
    std::fs::write(&path, b"{\"pid\": 12, \"hostna").unwrap();
    let snapshot = observe(&path).unwrap().unwrap();
    assert!(snapshot.record().is_none());
    let t0 = Instant::now();
    let mut watch = StaleWatch::default();
    let stale_after = Duration::from_secs(5);
    assert_eq!(watch.judge(&snapshot, stale_after, t0), Verdict::Held);
    let verdict = watch.judge(&snapshot, stale_after, t0 + Duration::from_secs(6));
    assert_stale_because(&verdict, "unreadable");
    assert!(break_stale(&path, &snapshot).unwrap());
    assert!(try_claim(&path).is_some());
}

#[test]
fn a_file_that_changed_since_it_was_judged_is_not_broken() {
    let (_dir, path) = lock_path();
    plant(&path, 4242, "other-host", None, 1);
    let judged = observe(&path).unwrap().unwrap();
    plant(&path, 4242, "other-host", None, 2); // its holder came back to life
    assert!(!break_stale(&path, &judged).unwrap());
    assert!(observe(&path).unwrap().is_some());
}

/// One racer for a stale lock: judge, break if stale, then try to create;
/// a few times over. Its claim, if it won.
#[cfg(unix)]
fn race_for(path: &Path) -> Option<Claim> {
    for _ in 0..50 {
        if let Some(snapshot) = observe(path).unwrap() {
            let verdict =
                StaleWatch::default().judge(&snapshot, Duration::from_secs(30), Instant::now());
            match verdict {
                Verdict::Stale(_) => {
                    let _ = break_stale(path, &snapshot).unwrap();
                }
                Verdict::Held => return None,
            }
        }
        if let Some(claim) = try_claim(path) {
            return Some(claim);
        }
    }
    None
}

#[cfg(unix)]
#[test]
fn two_breakers_of_one_stale_lock_end_with_exactly_one_holder_every_time() {
    let (_dir, path) = lock_path();
    let path = Arc::new(path);
    let dead = dead_pid();
    let me = process::current();
    for round in 0..200 {
        plant(&path, dead, &me.hostname, None, round);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (path, barrier) = (Arc::clone(&path), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    race_for(&path)
                })
            })
            .collect();
        let winners: Vec<_> = racers
            .into_iter()
            .filter_map(|r| r.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one holder");
        let on_disk = observe(&path).unwrap().unwrap().record().unwrap();
        assert_eq!(
            on_disk.token, winners[0].token,
            "round {round}: the file is the winner's"
        );
        assert!(remove_own(&path, &winners[0]).unwrap());
    }
}

#[cfg(unix)]
#[test]
fn lock_files_of_names_up_to_the_limit_are_created_released_and_broken() {
    let dir = tempfile::tempdir().unwrap();
    let me = process::current();
    let names = (200..=255)
        .map(|n| "r".repeat(n))
        .chain(["é".repeat(127), format!("{}.json", "日".repeat(83))]);
    for name in names {
        let path = crate::lock::sidecar_path(&dir.path().join(&name));
        let guard = suffixed(&path, ".break");
        assert_eq!(
            guard,
            suffixed(&path, ".break"),
            "the guard is the same for everyone"
        );
        for built in [&path, &guard, &unique_beside(&path, "released")] {
            assert!(crate::paths::units(built.file_name().unwrap()) <= crate::paths::NAME_MAX);
        }
        let claim = try_claim(&path).unwrap();
        assert!(remove_own(&path, &claim).unwrap(), "{} bytes", name.len());
        plant(&path, dead_pid(), &me.hostname, None, 1);
        let judged = observe(&path).unwrap().unwrap();
        assert!(break_stale(&path, &judged).unwrap(), "{} bytes", name.len());
        assert!(
            names_in(dir.path()).is_empty(),
            "{} bytes: nothing left aside",
            name.len()
        );
    }
}

/// Windows: an OS-lock user keeps its sidecar open without FILE_SHARE_DELETE,
/// so a lock-file holder cannot move its file away at release; it releases in
/// place instead (an idle OS-lock record), and the next lock-file user takes
/// the file over, with a higher fencing token.
#[cfg(windows)]
#[test]
fn a_lock_file_an_os_lock_user_keeps_open_is_released_in_place() {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ: u32 = 1;
    const FILE_SHARE_WRITE: u32 = 2;
    let (_dir, path) = lock_path();
    let claim = try_claim(&path).unwrap();
    // An OS-lock user's handle of the sidecar, as sidecar.rs opens it: no FILE_SHARE_DELETE.
    let os_user = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(&path)
        .unwrap();
    assert!(
        remove_own(&path, &claim).unwrap(),
        "released, though the file stays"
    );
    let fencing = claim.fencing_token;
    drop(claim); // its OS lock goes with it
    let left = observe(&path).unwrap().unwrap().record().unwrap();
    assert_eq!(
        left.strategy,
        Strategy::Os,
        "the file is an idle sidecar now"
    );
    let mut watch = StaleWatch::default();
    let next = match claim_existing(&path, Mode::Exclusive, &mut watch, Duration::from_secs(10))
        .unwrap()
    {
        Existing::Taken(next) => next,
        _ => panic!("the idle sidecar must be taken over at once"),
    };
    assert!(next.fencing_token > fencing);
    drop(os_user);
}
