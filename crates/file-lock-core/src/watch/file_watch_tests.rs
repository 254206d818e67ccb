//! Tests of one file's watch: replaces, deletes and re-creations are seen,
//! our own writes are not external, a burst is one report of its final state,
//! polling sees what events do, and nothing is reported after `close()`.

use super::*;
use std::sync::{Arc, Mutex};

type Changes = Arc<Mutex<Vec<FileChange>>>;

/// A fresh folder (keep it for the whole test) and a file in it holding
/// `contents`, by the path a watch is given.
fn watched_file(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn collect(path: &Path, options: WatchOptions) -> (FileWatch, Changes) {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let sink = changes.clone();
    let watch = FileWatch::start(
        path,
        options,
        move |c| sink.lock().unwrap().push(c),
        |e| panic!("watch error: {e}"),
    )
    .unwrap();
    (watch, changes)
}

fn wait_for(changes: &Changes, n: usize) -> Vec<FileChange> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = changes.lock().unwrap().clone();
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many changes were reported once `quiet` has passed with no more
/// writes: what was not reported by then is not coming.
fn reported_after(changes: &Changes, quiet: Duration) -> usize {
    std::thread::sleep(quiet);
    changes.lock().unwrap().len()
}

fn replace_atomically(path: &Path, text: &str) {
    let temp = path.with_extension("tmp-test");
    std::fs::write(&temp, text).unwrap();
    crate::test_support::rename_over(&temp, path);
}

#[test]
fn sees_atomic_replaces_deletes_and_recreation() {
    let (dir, path) = watched_file("{}");
    let (mut watch, changes) = collect(&path, WatchOptions::default());
    assert_eq!(watch.mode(), WatchMode::Events);
    replace_atomically(&path, r#"{"a":1}"#);
    let seen = wait_for(&changes, 1);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, ChangeKind::Modified);
    assert!(seen[0].external);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(wait_for(&changes, 2)[1].kind, ChangeKind::Deleted);
    std::fs::write(&path, "[]").unwrap();
    assert_eq!(wait_for(&changes, 3)[2].kind, ChangeKind::Created);
    // Other files of the directory are none of its business.
    std::fs::write(dir.path().join("other.json"), "1").unwrap();
    assert_eq!(reported_after(&changes, Duration::from_millis(300)), 3);
    watch.close();
}

#[test]
fn own_writes_are_not_external_and_unchanged_content_is_not_a_change() {
    let (_dir, path) = watched_file("{}");
    let (mut watch, changes) = collect(&path, WatchOptions::default());
    own_writes::record(&path, own_writes::content_hash(b"{\"mine\":true}"));
    replace_atomically(&path, "{\"mine\":true}");
    let seen = wait_for(&changes, 1);
    assert!(!seen[0].external);
    replace_atomically(&path, "{\"mine\":true}"); // same bytes again, not ours
    assert_eq!(reported_after(&changes, Duration::from_millis(300)), 1);
    watch.close();
}

#[test]
fn a_burst_is_reported_once_with_its_final_state() {
    let (_dir, path) = watched_file("0");
    let burst = WatchOptions {
        max_delay: Duration::from_secs(5),
        debounce: Duration::from_millis(200),
        ..WatchOptions::default()
    };
    let (mut watch, changes) = collect(&path, burst);
    for i in 1..=200 {
        replace_atomically(&path, &i.to_string());
    }
    // Settled: the last report carries the final state ("200"), and a
    // burst becomes far fewer reports than writes (one on an idle machine;
    // a loaded one may pause the writer longer than the debounce).
    let deadline = Instant::now() + Duration::from_secs(10);
    while changes.lock().unwrap().last().and_then(|c| c.size) != Some(3) {
        assert!(
            Instant::now() < deadline,
            "the final state was never reported"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(400));
    let seen = changes.lock().unwrap().clone();
    assert_eq!(seen.last().unwrap().size, Some(3));
    assert!(seen.len() < 20, "{} reports for 200 writes", seen.len());
    watch.close();
}

#[test]
fn polling_sees_changes_too() {
    let (_dir, path) = watched_file("{}");
    let polling = WatchOptions {
        force_poll: true,
        poll_interval: Duration::from_millis(20),
        ..WatchOptions::default()
    };
    let (mut watch, changes) = collect(&path, polling);
    assert_eq!(watch.mode(), WatchMode::Polling);
    replace_atomically(&path, "{\"polled\":1}");
    let seen = wait_for(&changes, 1);
    assert_eq!(seen[0].kind, ChangeKind::Modified);
    watch.close();
}

#[test]
fn close_stops_callbacks() {
    let (_dir, path) = watched_file("{}");
    let (mut watch, changes) = collect(&path, WatchOptions::default());
    watch.close();
    replace_atomically(&path, "[1]");
    assert_eq!(reported_after(&changes, Duration::from_millis(200)), 0);
}

/// A write landing while a watch takes its first look (the hub's thread
/// looks at each new watch in turn, so with several watches started at once
/// one look often overlaps the write): each watch reports it once, with the
/// new content, never the content it began with as a change.
#[test]
fn a_write_during_the_first_look_is_reported_once_with_its_content() {
    for round in 0..40 {
        let (_dir, path) = watched_file("{}");
        let watches: Vec<(FileWatch, Changes)> = (0..8)
            .map(|_| collect(&path, WatchOptions::default()))
            .collect();
        replace_atomically(&path, "[1]");
        for (_, changes) in &watches {
            wait_for(changes, 1);
        }
        std::thread::sleep(Duration::from_millis(30));
        for (i, (_, changes)) in watches.iter().enumerate() {
            let sizes: Vec<Option<u64>> = changes.lock().unwrap().iter().map(|c| c.size).collect();
            assert_eq!(sizes, [Some(3)], "round {round}, watch {i}");
        }
    }
}
