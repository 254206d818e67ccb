use super::*;
use std::time::Instant;

// The waiters of the process share one descriptor: these tests wake each
// other's waits, so they take turns.
static TURNS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn a_removal_ends_the_pause_early_and_nothing_else_is_needed() {
    let _turn = TURNS.lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    std::fs::write(&file, "").unwrap();
    let watch = DirWatch::new(dir.path());
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_file(file).unwrap();
    });
    let started = Instant::now();
    watch.wait(Duration::from_secs(5));
    remover.join().unwrap();
    if cfg!(target_os = "linux") {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "woken by the removal"
        );
    }
    // Other tests of this binary remove files in folders they wait in (a
    // wake-up for every waiter): of a few pauses, one at least runs out.
    let waited_out = (0..10).any(|_| {
        let started = Instant::now();
        watch.wait(Duration::from_millis(30));
        started.elapsed() >= Duration::from_millis(25)
    });
    assert!(waited_out, "a quiet directory waits the pause out");
}

/// inotify instances this process has open.
#[cfg(target_os = "linux")]
fn inotify_instances() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:inotify")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn two_hundred_waiters_in_a_hundred_folders_share_one_instance_and_each_is_woken() {
    let _turn = TURNS.lock();
    let before = inotify_instances();
    let dirs: Vec<_> = (0..100).map(|_| tempfile::tempdir().unwrap()).collect();
    let watches: Vec<_> = dirs
        .iter()
        .flat_map(|dir| [DirWatch::new(dir.path()), DirWatch::new(dir.path())])
        .collect();
    assert!(watches.iter().all(|w| w.registered.is_some()));
    assert!(
        inotify_instances() <= before + 1,
        "one instance for all waiters"
    );
    assert!(shared::watched() >= 100, "each folder watched");
    // A removal in the last folder wakes a waiter of the first (all share it).
    let file = dirs[99].path().join("lock");
    std::fs::write(&file, "").unwrap();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_file(file).unwrap();
    });
    let started = Instant::now();
    watches[0].wait(Duration::from_secs(5));
    remover.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "woken early");
    // The last waiter of a folder unwatches it.
    let watched = shared::watched();
    drop(watches);
    assert!(shared::watched() <= watched - 100);
    assert!(inotify_instances() <= before + 1);
}
