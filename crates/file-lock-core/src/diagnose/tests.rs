//! Tests of the lock diagnostics (`diagnose/`): status, guarded breaking, doctor.

use std::path::{Path, PathBuf};

use super::observe::held_reason;
use super::*;
use crate::lock::lockfile;
#[cfg(unix)]
use crate::lock::os_lock;
#[cfg(unix)]
use crate::lock::Mode;
use crate::lock::{now_ms, sidecar_path, Strategy};
use crate::process;
#[cfg(unix)]
use crate::test_support::{age_by, dead_pid};
use crate::test_support::{names_in, pid_one_in_another_namespace, scratch};

const RULES: Rules = Rules {
    stale_after: Duration::from_secs(30),
    network_factor: 3.0,
    expose_pids: false,
};

/// A fresh folder, the data file in it (as the CLI names it) and its lock file.
fn data_file() -> (tempfile::TempDir, String, PathBuf) {
    let (dir, target) = scratch("roles.json");
    let lock = sidecar_path(&target);
    (dir, target.to_string_lossy().into_owned(), lock)
}

/// A lock file as another process (or host) would have left it.
fn plant(path: &Path, pid: u32, hostname: &str, heartbeat: u64) {
    crate::lock::lockfile::testing::plant(path, pid, hostname, None, heartbeat);
}

#[test]
fn a_holder_in_another_pid_namespace_or_boot_is_held_by_time_not_by_its_pid() {
    let me = process::current();
    let mut record = pid_one_in_another_namespace(now_ms());
    let (_dir, lock) = scratch(".roles.json.lock");
    crate::lock::lockfile::testing::plant_record(&lock, &record);
    let snapshot = lockfile::observe(&lock).unwrap().unwrap();
    let staleness = held_reason(Some(&record), &snapshot, Duration::from_secs(30));
    match staleness {
        Staleness::Held { why, by_time } => {
            assert!(by_time);
            assert!(why.contains("another PID namespace or boot"), "{why}");
            assert!(why.contains(&me.hostname), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // The same record as the previous version wrote it: pid 1 is alive here.
    record.boot_id = None;
    record.pid_namespace = None;
    let staleness = held_reason(Some(&record), &snapshot, Duration::from_secs(30));
    assert!(
        matches!(staleness, Staleness::Held { by_time: false, .. }),
        "{staleness:?}"
    );
}

#[test]
fn a_file_without_lock_file_is_free_and_looking_creates_nothing() {
    let (_dir, file, lock) = data_file();
    let status = status(&file, &RULES).unwrap();
    assert!(!status.locked);
    assert_eq!(status.lock_file_len, None);
    assert_eq!(status.staleness.stale(), None);
    assert_eq!(status.auto_strategy.0, Strategy::Os);
    assert!(!lock.exists());
    let report = break_stale_lock(&file, &RULES, false).unwrap();
    assert!(matches!(report.outcome, BreakOutcome::Nothing(_)));
}

#[cfg(unix)]
#[test]
fn an_os_lock_held_through_the_sidecar_is_reported_and_never_broken() {
    let (_dir, file, lock) = data_file();
    let sidecar = crate::lock::sidecar::Sidecar::open(&lock).unwrap();
    assert!(os_lock::try_lock(sidecar.file(), Mode::Exclusive).unwrap());
    let next = crate::lock::holder_record::next_record(sidecar.file()).unwrap();
    crate::lock::holder_record::write_record(sidecar.file(), Mode::Exclusive, next).unwrap();
    let status = status(&file, &RULES).unwrap();
    assert!(status.locked);
    assert_eq!(status.strategy, Some(Strategy::Os));
    assert_eq!(status.os_lock, OsLockState::Exclusive);
    assert!(status
        .holder
        .unwrap()
        .description
        .starts_with("this process"));
    assert_eq!(status.staleness.stale(), None);
    let report = break_stale_lock(&file, &RULES, false).unwrap();
    assert!(
        matches!(report.outcome, BreakOutcome::Refused { .. }),
        "{report:?}"
    );
    assert!(lock.exists());
    // Released: an idle sidecar is free, and there is nothing to break.
    os_lock::unlock(sidecar.file()).unwrap();
    let status = super::status(&file, &RULES).unwrap();
    assert!(!status.locked && status.holder.is_none());
    let report = break_stale_lock(&file, &RULES, false).unwrap();
    assert!(
        matches!(report.outcome, BreakOutcome::Nothing(_)),
        "{report:?}"
    );
    assert!(lock.exists(), "an idle sidecar is not removed");
}

#[cfg(unix)]
#[test]
fn a_dead_holders_lock_file_is_stale_and_broken_a_live_ones_is_refused() {
    let (dir, file, lock) = data_file();
    let me = process::current();
    plant(&lock, dead_pid(), &me.hostname, now_ms());
    let status = status(&file, &RULES).unwrap();
    assert!(status.locked);
    assert_eq!(status.strategy, Some(Strategy::Lockfile));
    assert_eq!(status.staleness.stale(), Some(true));
    assert!(status.staleness.reason().contains("exited"));
    let report = break_stale_lock(&file, &RULES, false).unwrap();
    assert!(matches!(report.outcome, BreakOutcome::Broken(ref why) if why.contains("exited")));
    assert!(!lock.exists());
    assert!(
        names_in(dir.path()).is_empty(),
        "no guard or renamed-aside file remains"
    );

    // A live holder on this host (us): never broken, waiting does not help.
    let claim = lockfile::try_create(&lock, Mode::Exclusive)
        .map(lockfile::Created::claim)
        .unwrap()
        .unwrap();
    let status = super::status(&file, &RULES).unwrap();
    assert_eq!(status.staleness.stale(), Some(false));
    assert_eq!(status.os_lock, OsLockState::Exclusive);
    let report = break_stale_lock(&file, &RULES, true).unwrap();
    assert!(
        matches!(report.outcome, BreakOutcome::Refused { ref why, by_time: false } if why.contains("alive")),
        "{report:?}"
    );
    assert!(lockfile::remove_own(&lock, &claim).unwrap());
}

#[test]
fn another_hosts_lock_file_is_refused_at_once_and_broken_only_after_watching_it_unchanged() {
    let (_dir, file, lock) = data_file();
    plant(&lock, 4242, "some-other-host", now_ms());
    let rules = Rules {
        stale_after: Duration::from_millis(300),
        ..RULES
    };
    let status = status(&file, &rules).unwrap();
    assert!(status.staleness.by_time(), "{:?}", status.staleness);
    assert!(status
        .holder
        .unwrap()
        .description
        .contains("some-other-host"));
    let report = break_stale_lock(&file, &rules, false).unwrap();
    assert!(matches!(
        report.outcome,
        BreakOutcome::Refused { by_time: true, .. }
    ));
    assert!(lock.exists());
    let report = break_stale_lock(&file, &rules, true).unwrap();
    assert!(
        matches!(report.outcome, BreakOutcome::Broken(ref why) if why.contains("some-other-host")),
        "{report:?}"
    );
    assert!(report.waited >= Duration::from_millis(300));
    assert!(!lock.exists());
}

#[test]
fn a_lock_file_refreshed_while_watched_is_not_broken() {
    let (_dir, file, lock) = data_file();
    plant(&lock, 4242, "some-other-host", 1);
    let refresher = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            plant(&lock, 4242, "some-other-host", 2);
        })
    };
    let rules = Rules {
        stale_after: Duration::from_secs(5),
        ..RULES
    };
    let report = break_stale_lock(&file, &rules, true).unwrap();
    refresher.join().unwrap();
    assert!(
        matches!(report.outcome, BreakOutcome::Refused { ref why, .. } if why.contains("refreshed")),
        "{report:?}"
    );
    assert!(report.waited < Duration::from_secs(5));
    assert!(lock.exists());
}

#[test]
fn bad_paths_carry_the_librarys_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("roles.json");
    let error = status(&missing.to_string_lossy(), &RULES).unwrap_err();
    assert_eq!(error.code(), "ENOENT");
    let error = status(&dir.path().to_string_lossy(), &RULES).unwrap_err();
    assert_eq!(error.code(), "EINVAL");
    assert_eq!(doctor(&missing).unwrap_err().code(), "ENOENT");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"").unwrap();
    assert_eq!(doctor(&file).unwrap_err().code(), "EINVAL");
}

#[test]
fn doctor_passes_on_a_local_temp_dir_picks_os_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.json"), b"{}").unwrap();
    let report = doctor(dir.path()).unwrap();
    for check in &report.checks {
        // Windows has no directory fsync to check (NTFS journals renames).
        if cfg!(windows) && check.id == "fsync-dir" {
            assert_eq!(check.status, CheckStatus::Skip, "{check:?}");
            continue;
        }
        assert_eq!(check.status, CheckStatus::Ok, "{check:?}");
    }
    assert!(report.healthy());
    assert_eq!(report.verdict.0, Strategy::Os);
    assert!(report.os_locks.supported);
    let ids: Vec<_> = report.checks.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "writable",
            "exclusive-create",
            "os-locks",
            "network",
            "rename",
            "fsync-file",
            "fsync-dir",
            "cleanup"
        ]
    );
    assert_eq!(names_in(dir.path()), ["keep.json"]);
}

#[cfg(unix)]
#[test]
fn doctor_removes_what_a_killed_run_left_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let probe = |pid: u32, place: &str| dir.path().join(format!(".flm-doctor.{pid}.{place}.probe"));
    let (dead, alive) = (dead_pid(), std::process::id());
    let left = probe(dead, "abc-1");
    let live = probe(alive, "abc-2");
    let young = probe(dead, "abc-3");
    // Probes named with a place: ours (the pid is checked), another one (it is not).
    let ours_left = probe(dead, &process::current().file_token());
    let foreign = probe(dead, "abc-4~000000000000");
    let foreign_ancient = probe(alive, "abc-5~000000000000");
    for path in [&left, &live, &young, &ours_left, &foreign, &foreign_ancient] {
        std::fs::write(path, b"x").unwrap();
    }
    let (old, ancient) = (Duration::from_secs(600), Duration::from_secs(7200));
    for (path, age) in [
        (&left, old),
        (&live, old),
        (&ours_left, old),
        (&foreign, old),
        (&foreign_ancient, ancient),
    ] {
        age_by(path, age);
    }
    let report = doctor(dir.path()).unwrap();
    let cleanup = report.checks.iter().find(|c| c.id == "cleanup").unwrap();
    assert!(
        cleanup.detail.contains("3 left by an interrupted"),
        "{cleanup:?}"
    );
    assert!(!left.exists() && !ours_left.exists() && !foreign_ancient.exists());
    assert!(live.exists() && young.exists());
    assert!(
        foreign.exists(),
        "a pid of another host, boot or PID namespace proves nothing here"
    );
}

#[cfg(unix)]
#[test]
fn doctor_in_a_read_only_directory_fails_writable_and_skips_what_needs_it() {
    use std::os::unix::fs::PermissionsExt;
    if unsafe { libc::geteuid() } == 0 {
        return; // root writes anywhere; the CLI tests cover it unprivileged where possible
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let report = doctor(dir.path()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!report.healthy());
    assert_eq!(report.checks[0].status, CheckStatus::Fail);
    assert!(report.checks.iter().any(|c| c.status == CheckStatus::Skip));
}
