//! Tests of file versions (`version.rs`): a read says what the file is, a
//! commit writes only over the version it was given, in every way a file can
//! have changed since (renamed over, rewritten in place within the timestamp
//! granularity, deleted, grown), and the token round-trips.

use std::path::{Path, PathBuf};

use super::*;
use crate::test_support::scratch;

fn read_file(path: &Path) -> (Vec<u8>, Version) {
    match read(path, 1 << 20).unwrap() {
        Found::File { bytes, version } => (bytes, version),
        other => panic!("expected a file, got {other:?}"),
    }
}

/// A fresh `roles.json` holding `bytes`, and the version a read of it gives.
fn read_after_writing(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Version) {
    let (dir, path) = scratch("roles.json");
    std::fs::write(&path, bytes).unwrap();
    let (_, version) = read_file(&path);
    (dir, path, version)
}

/// A commit without fsync (what is checked here is the version, not the disk).
fn commit_over(path: &Path, expected: Option<&Version>, bytes: &[u8]) -> Commit {
    commit(path, expected, bytes, Durability::None).unwrap()
}

fn written(outcome: Commit) -> Version {
    match outcome {
        Commit::Written(version, _) => version,
        other => panic!("expected the commit to write, got {other:?}"),
    }
}

/// A commit under a lock on `locked`; what the file held each time the lock
/// was let go (at most once).
fn commit_locked(
    path: &Path,
    locked: &Path,
    expected: Option<&Version>,
    bytes: &[u8],
) -> (Commit, Vec<Vec<u8>>) {
    let mut seen_at_release = Vec::new();
    let mut release = || seen_at_release.push(std::fs::read(path).unwrap());
    let outcome = commit_under(
        path,
        expected,
        bytes,
        Durability::Fsync,
        Some(UnderLock {
            locked,
            release: &mut release,
        }),
    )
    .unwrap();
    (outcome, seen_at_release)
}

/// The canonical path the lock manager gives `path` (its folder resolved).
fn canonical(path: &Path) -> PathBuf {
    crate::watch::watched_path(path).unwrap()
}

#[test]
fn a_read_gives_the_bytes_and_a_version_that_is_current() {
    let (_dir, path) = scratch("roles.json");
    std::fs::write(&path, b"{\"a\":1}").unwrap();
    let (bytes, version) = read_file(&path);
    assert_eq!(bytes, b"{\"a\":1}");
    // Just written: the key alone is too recent to trust.
    assert_eq!(is_current(&path, &version), Current::Unsure);
    assert_eq!(Version::from_token(&version.token()), Some(version));
    assert_eq!(Version::from_token("1:2:3"), None);
    assert_eq!(Version::from_token(&format!("{}:9", version.token())), None);
}

#[test]
fn a_commit_over_the_version_read_writes_and_says_the_new_version() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    let next = written(commit_over(&path, Some(&version), b"[1,2]"));
    assert_eq!(std::fs::read(&path).unwrap(), b"[1,2]");
    assert_eq!(read_file(&path).1, next, "the version said is the file's");
    // And the next commit builds on it.
    written(commit(&path, Some(&next), b"[1,2,3]", Durability::Fsync).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"[1,2,3]");
}

#[test]
fn a_commit_over_a_version_replaced_since_writes_nothing() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    // Another writer's atomic replace (a new inode), same size.
    let other = path.with_file_name("other.tmp");
    std::fs::write(&other, b"[9]").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_eq!(commit_over(&path, Some(&version), b"[2]"), Commit::Changed);
    assert_eq!(std::fs::read(&path).unwrap(), b"[9]", "their text stays");
}

#[test]
fn a_rewrite_in_place_within_the_timestamp_granularity_is_seen_by_content() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    // Same inode, same size, and (on a coarse clock) the same mtime: only the bytes differ.
    std::fs::write(&path, b"[7]").unwrap();
    assert_ne!(is_current(&path, &version), Current::Yes);
    assert_eq!(commit_over(&path, Some(&version), b"[2]"), Commit::Changed);
    assert_eq!(std::fs::read(&path).unwrap(), b"[7]");
}

#[test]
fn the_same_bytes_written_again_are_still_the_version() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    std::fs::write(&path, b"[1]").unwrap(); // touched: another key, same content
    written(commit_over(&path, Some(&version), b"[2]"));
    assert_eq!(std::fs::read(&path).unwrap(), b"[2]");
}

#[test]
fn a_grown_file_or_one_that_appeared_is_changed_and_a_deleted_one_is_written() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    std::fs::write(&path, b"[1,2,3]").unwrap();
    assert_eq!(commit_over(&path, Some(&version), b"[2]"), Commit::Changed);
    // Knowing no version, only a missing file may be written.
    assert_eq!(commit_over(&path, None, b"[2]"), Commit::Changed);
    std::fs::remove_file(&path).unwrap();
    written(commit_over(&path, Some(&version), b"[4]"));
    assert_eq!(std::fs::read(&path).unwrap(), b"[4]");
    std::fs::remove_file(&path).unwrap();
    written(commit_over(&path, None, b"[5]"));
    assert_eq!(std::fs::read(&path).unwrap(), b"[5]");
}

#[test]
fn a_version_settles_once_its_key_is_old_enough() {
    let (_dir, path) = scratch("roles.json");
    std::fs::write(&path, b"{}").unwrap();
    let (_, version) = read_file(&path);
    std::thread::sleep(SETTLED + Duration::from_millis(20));
    assert_eq!(is_current(&path, &version), Current::Yes);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(is_current(&path, &version), Current::No);
}

#[test]
fn a_read_unless_held_opens_nothing_while_the_stat_is_the_held_one_and_reads_any_change() {
    let (dir, path, held) = read_after_writing(b"{\"a\":1}");
    // The same stat, settled or not: nothing opened (a commit compares the bytes).
    assert!(read_unless_held(&path, 1 << 20, Some(&held))
        .unwrap()
        .is_none());
    // Rewritten in place with another size; renamed over; deleted; a folder.
    std::fs::write(&path, b"{\"a\":22}").unwrap();
    match read_unless_held(&path, 1 << 20, Some(&held)).unwrap() {
        Some(Found::File { bytes, version }) => {
            assert_eq!(bytes, b"{\"a\":22}");
            assert!(read_unless_held(&path, 1 << 20, Some(&version))
                .unwrap()
                .is_none());
        }
        other => panic!("expected the changed file read, got {other:?}"),
    }
    let other = dir.path().join("other.json");
    std::fs::write(&other, b"{\"a\":1}").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert!(matches!(
        read_unless_held(&path, 1 << 20, Some(&held)).unwrap(),
        Some(Found::File { .. })
    ));
    assert!(matches!(
        read_unless_held(&path, 3, Some(&held)).unwrap(),
        Some(Found::TooBig(Some(7)))
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        read_unless_held(&path, 1 << 20, Some(&held)).unwrap(),
        Some(Found::Missing)
    ));
    std::fs::create_dir(&path).unwrap();
    assert!(matches!(
        read_unless_held(&path, 1 << 20, Some(&held)).unwrap(),
        Some(Found::NotAFile("a folder"))
    ));
}

#[cfg(unix)]
#[test]
fn what_is_not_a_regular_file_or_too_big_is_reported_unread() {
    let (dir, path) = scratch("roles.json");
    assert!(matches!(read(&path, 10).unwrap(), Found::Missing));
    assert!(matches!(
        read(dir.path(), 10).unwrap(),
        Found::NotAFile("a folder")
    ));
    let fifo = dir.path().join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert!(matches!(
        read(&fifo, 10).unwrap(),
        Found::NotAFile("a FIFO (named pipe)")
    ));
    std::fs::write(&path, b"0123456789ab").unwrap();
    assert!(matches!(read(&path, 10).unwrap(), Found::TooBig(Some(12))));
    assert!(matches!(read(&path, 12).unwrap(), Found::File { .. }));
}

#[test]
fn a_commit_under_a_lock_lets_it_go_once_its_text_is_in_place_and_its_version_known() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    let (outcome, seen) = commit_locked(&path, &canonical(&path), Some(&version), b"[1,2]");
    let next = written(outcome);
    // Let go after the rename: the next holder reads the new text at once.
    assert_eq!(seen, vec![b"[1,2]".to_vec()]);
    assert_eq!(read_file(&path).1, next, "the version said is the file's");
}

#[test]
fn a_commit_under_a_lock_that_writes_nothing_keeps_the_lock() {
    let (_dir, path, version) = read_after_writing(b"[1]");
    std::fs::write(&path, b"[1,2,3]").unwrap();
    let (outcome, seen) = commit_locked(&path, &canonical(&path), Some(&version), b"[2]");
    assert_eq!(outcome, Commit::Changed);
    assert!(
        seen.is_empty(),
        "the caller still holds its lock to read again"
    );
}

#[cfg(unix)]
#[test]
fn a_file_that_lies_elsewhere_than_the_lock_is_not_written() {
    // The lock was taken where roles.json led then; the link now leads elsewhere.
    let (dir, path, version) = read_after_writing(b"[1]");
    let elsewhere = dir.path().join("elsewhere.json");
    std::fs::write(&elsewhere, b"[1]").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let (outcome, seen) = commit_locked(&link, &canonical(&path), Some(&version), b"[2]");
    assert_eq!(outcome, Commit::Elsewhere);
    assert!(seen.is_empty());
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"[1]");
    assert_eq!(std::fs::read(&path).unwrap(), b"[1]");
    // Through the link to where the lock is, it writes (and keeps the link).
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let (outcome, seen) = commit_locked(&link, &canonical(&path), Some(&version), b"[2]");
    written(outcome);
    assert_eq!(seen, vec![b"[2]".to_vec()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}
