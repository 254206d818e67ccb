//! The process's one OS watcher, shared by every `FileWatch` (of every
//! manager, document and `watch()` in the process).
//!
//! Invariants:
//! - At most one OS watcher (one inotify instance on Linux, with notify's one
//!   thread), created at the first watch on a local disk and kept for the
//!   process's life, and at most two threads of ours: `flm-watch` runs every
//!   event-driven watch, `flm-watch-poll` every polling one (network shares),
//!   so a share that hangs a stat never delays local changes. Each is started
//!   when first needed. A failure to create the OS watcher is not remembered:
//!   the next watch tries again.
//! - Each directory is watched once, however many watches its files have;
//!   `dirs` counts them, and the directory is unwatched when its last watch
//!   closes. A watched directory reported removed is watched again at once if
//!   its path exists again, else by the next watch started there (another
//!   inode at the path is noticed); its watches hear its path again from then.
//! - Events are routed by (directory, file name) to the watches of that file;
//!   an overflow or error of the OS queue reaches every watch ("look again").
//!   notify's thread only forwards (a channel send, never a lock), so calling
//!   notify under `HUB`'s lock (from a JS thread, or from `flm-watch` when a
//!   watched directory is reported removed) cannot deadlock with it.
//! - A watch's tracker is added to its thread after its directory is watched,
//!   and its first look happens there: a change made after `start` returns is
//!   seen either by that look or by an event.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::LazyLock;
use std::time::Instant;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::Mutex;

use super::file_watch::{Tracker, WatchMode};
use super::limits::{self, WatchError};

/// What a hub thread is told.
enum Msg {
    Add(Box<Tracker>),
    Remove(u64),
    Os(notify::Result<notify::Event>),
}

struct WatchedDir {
    /// Open watches of files in it.
    watches: usize,
    /// Device and inode when it was watched (to notice it was made again).
    identity: Option<(u64, u64)>,
    /// False once it was removed and could not be watched again.
    live: bool,
}

#[derive(Default)]
struct Hub {
    os: Option<RecommendedWatcher>,
    events: Option<Sender<Msg>>,
    polls: Option<Sender<Msg>>,
    dirs: HashMap<PathBuf, WatchedDir>,
    last_id: u64,
}

static HUB: LazyLock<Mutex<Hub>> = LazyLock::new(|| Mutex::new(Hub::default()));

/// Adds a watch: its directory watched (or counted once more), its tracker
/// handed to its thread. Returns the watch's id.
pub(super) fn add(mut tracker: Tracker) -> Result<u64, WatchError> {
    let mut hub = HUB.lock();
    hub.last_id += 1;
    let id = hub.last_id;
    tracker.id = id;
    let mode = tracker.mode();
    let thread = hub.thread(mode)?;
    if mode == WatchMode::Events {
        hub.watch_dir(tracker.dir(), &thread)?;
    }
    if thread.send(Msg::Add(Box::new(tracker))).is_err() {
        // Its thread is gone (it never ends by itself): cannot happen.
        return Err(std::io::Error::other("the watch thread has stopped").into());
    }
    Ok(id)
}

/// Removes a watch (its callbacks are detached already); unwatches its
/// directory when it was the last watch there.
pub(super) fn remove(id: u64, dir: &Path, mode: WatchMode) {
    let mut hub = HUB.lock();
    let thread = match mode {
        WatchMode::Events => &hub.events,
        WatchMode::Polling => &hub.polls,
    };
    if let Some(thread) = thread {
        let _ = thread.send(Msg::Remove(id));
    }
    if mode == WatchMode::Events {
        hub.unwatch_dir(dir);
    }
}

impl Hub {
    /// The sender of `mode`'s thread, started if needed.
    fn thread(&mut self, mode: WatchMode) -> Result<Sender<Msg>, WatchError> {
        let (slot, name) = match mode {
            WatchMode::Events => (&mut self.events, "flm-watch"),
            WatchMode::Polling => (&mut self.polls, "flm-watch-poll"),
        };
        if let Some(sender) = slot {
            return Ok(sender.clone());
        }
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(receiver))?;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    fn watch_dir(&mut self, dir: &Path, thread: &Sender<Msg>) -> Result<(), WatchError> {
        let identity = identity(dir);
        let mut again = false;
        if let Some(watched) = self.dirs.get_mut(dir) {
            if watched.live && watched.identity == identity {
                watched.watches += 1;
                return Ok(());
            }
            again = true;
        }
        // The first watch of this directory (or it was made again since).
        if self.os.is_none() {
            let forward = thread.clone();
            let watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if worth_forwarding(&event) {
                        let _ = forward.send(Msg::Os(event));
                    }
                })
                .map_err(limits::from_create)?;
            self.os = Some(watcher);
        }
        let watched = self.dirs.len();
        let os = self.os.as_mut().expect("created above");
        if again {
            // notify may still hold the old directory's watch under this path.
            let _ = os.unwatch(dir);
        }
        os.watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| limits::from_add(e, dir, watched))?;
        let entry = self.dirs.entry(dir.to_path_buf()).or_insert(WatchedDir {
            watches: 0,
            identity,
            live: true,
        });
        entry.identity = identity;
        entry.live = true;
        entry.watches += 1;
        Ok(())
    }

    /// `dir` was reported removed (itself, or as an entry of a watched
    /// parent). notify drops its watch of that path right after reporting it,
    /// whichever directory now has that path: so it is watched again now (the
    /// request reaches notify's thread after that drop) if it exists, and
    /// otherwise by the next watch started there.
    fn rewatch_removed(&mut self, dir: &Path) {
        let Some(watched) = self.dirs.get_mut(dir) else {
            return;
        };
        let Some(os) = self.os.as_mut() else {
            return;
        };
        let _ = os.unwatch(dir);
        watched.identity = identity(dir);
        watched.live =
            watched.identity.is_some() && os.watch(dir, RecursiveMode::NonRecursive).is_ok();
    }

    fn unwatch_dir(&mut self, dir: &Path) {
        let Some(watched) = self.dirs.get_mut(dir) else {
            return;
        };
        watched.watches -= 1;
        if watched.watches > 0 {
            return;
        }
        self.dirs.remove(dir);
        if let Some(os) = &mut self.os {
            // Fails only when the directory is gone, and its watch with it.
            let _ = os.unwatch(dir);
        }
    }
}

#[cfg(unix)]
fn identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_dir: &Path) -> Option<(u64, u64)> {
    None
}

/// Everything but reads and opens (our own looks cause those): changes,
/// creations, removals, renames, a written file closed, overflows, errors.
fn worth_forwarding(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(event) if event.need_rescan() => true,
        Ok(event) => match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(_) => true,
    }
}

/// Whether the event says a write of the path at `index` (of `count`) is over:
/// a rename into place (IN_MOVED_TO; the destination of a rename both ends of
/// which are watched) or a file opened for writing closed (IN_CLOSE_WRITE).
/// After it the file is whole, so the watch need not wait for quiet.
fn ends_a_write(kind: EventKind, index: usize, count: usize) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => index + 1 == count,
        _ => false,
    }
}

/// A hub thread: routes events to trackers, settles their bursts, polls.
fn run(messages: Receiver<Msg>) {
    let mut trackers: HashMap<u64, Tracker> = HashMap::new();
    // directory → file name → watches of that file
    let mut routes: HashMap<PathBuf, HashMap<OsString, Vec<u64>>> = HashMap::new();
    // Trackers with a deadline (a burst to settle, a poll to make).
    let mut due: HashSet<u64> = HashSet::new();
    loop {
        let next = due
            .iter()
            .filter_map(|id| trackers.get(id).and_then(Tracker::deadline))
            .min();
        let message = match next {
            None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => messages.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match message {
            Ok(Msg::Add(tracker)) => {
                let mut tracker = *tracker;
                let id = tracker.id;
                if tracker.mode() == WatchMode::Events {
                    routes
                        .entry(tracker.dir().to_path_buf())
                        .or_default()
                        .entry(tracker.name().to_os_string())
                        .or_default()
                        .push(id);
                }
                tracker.begin(Instant::now());
                due.insert(id);
                trackers.insert(id, tracker);
            }
            Ok(Msg::Remove(id)) => {
                due.remove(&id);
                if let Some(tracker) = trackers.remove(&id) {
                    unroute(&mut routes, &tracker, id);
                }
            }
            Ok(Msg::Os(event)) => {
                let now = Instant::now();
                let (paths, rescan) = match &event {
                    Ok(event) if !event.need_rescan() => (&event.paths[..], false),
                    _ => (&[][..], true),
                };
                if rescan {
                    // The OS lost events, or failed: every watch looks again.
                    for (id, tracker) in trackers.iter_mut() {
                        tracker.touch(true, false, now);
                        due.insert(*id);
                    }
                }
                let removed = matches!(&event, Ok(e) if matches!(e.kind, EventKind::Remove(_)));
                let kind = event.as_ref().ok().map(|e| e.kind);
                for (index, path) in paths.iter().enumerate() {
                    let ended = kind.is_some_and(|k| ends_a_write(k, index, paths.len()));
                    if removed && routes.contains_key(path.as_path()) {
                        HUB.lock().rewatch_removed(path);
                    }
                    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                        continue;
                    };
                    let Some(ids) = routes.get(dir).and_then(|names| names.get(name)) else {
                        continue;
                    };
                    for id in ids {
                        if let Some(tracker) = trackers.get_mut(id) {
                            tracker.touch(false, ended, now);
                            due.insert(*id);
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        due.retain(|id| {
            let Some(tracker) = trackers.get_mut(id) else {
                return false;
            };
            if tracker.deadline().is_some_and(|at| at <= now) {
                tracker.run_due(now);
            }
            tracker.deadline().is_some()
        });
    }
}

fn unroute(routes: &mut HashMap<PathBuf, HashMap<OsString, Vec<u64>>>, tracker: &Tracker, id: u64) {
    let Some(names) = routes.get_mut(tracker.dir()) else {
        return;
    };
    if let Some(ids) = names.get_mut(tracker.name()) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            names.remove(tracker.name());
        }
    }
    if names.is_empty() {
        routes.remove(tracker.dir());
    }
}

/// How many open watches count `dir` (0: not watched). For tests.
#[cfg(test)]
pub(super) fn watches_of(dir: &Path) -> usize {
    HUB.lock().dirs.get(dir).map_or(0, |d| d.watches)
}

#[cfg(test)]
mod tests {
    use super::super::file_watch::{FileChange, FileWatch, WatchOptions};
    use super::super::{own_writes, watched_path};
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    type Seen = Arc<parking_lot::Mutex<Vec<FileChange>>>;

    fn watch(path: &Path) -> (FileWatch, Seen) {
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        let watch = FileWatch::start(
            path,
            WatchOptions::default(),
            move |c| sink.lock().push(c),
            |_| {},
        )
        .unwrap();
        (watch, seen)
    }

    fn replace(path: &Path, text: &str) {
        let temp = path.with_extension("tmp-hub-test");
        std::fs::write(&temp, text).unwrap();
        crate::test_support::rename_over(&temp, path);
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The inotify watches of this process's inotify instances, as
    /// (instance fd, inode of the watched directory), from /proc/self/fdinfo.
    #[cfg(target_os = "linux")]
    fn inotify_watches() -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let fd = entry.file_name().to_string_lossy().into_owned();
            let is_inotify = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy() == "anon_inode:inotify");
            if !is_inotify {
                continue;
            }
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            for line in info.lines().filter(|l| l.starts_with("inotify wd:")) {
                let ino = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("ino:"))
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok());
                if let Some(ino) = ino {
                    out.push((fd.clone(), ino));
                }
            }
        }
        out
    }

    #[cfg(target_os = "linux")]
    fn inode(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).unwrap().ino()
    }

    #[test]
    fn many_watches_share_one_os_watcher_and_two_threads() {
        let root = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for i in 0..40 {
            let dir = root.path().join(format!("d{i}"));
            std::fs::create_dir(&dir).unwrap();
            files.push(watched_path(&dir.join("roles.json")).unwrap());
        }
        for i in 0..20 {
            files.push(watched_path(&root.path().join(format!("f{i}.json"))).unwrap());
        }
        for file in &files {
            std::fs::write(file, "{}").unwrap();
        }
        let watches: Vec<_> = files.iter().map(|f| watch(f)).collect();
        // Every watch's file, replaced at once: each sees its own change only.
        for (i, file) in files.iter().enumerate() {
            replace(file, &format!("{{\"i\":{i}}}"));
        }
        wait_until("every watch saw its change", || {
            watches.iter().all(|(_, seen)| !seen.lock().is_empty())
        });
        std::thread::sleep(Duration::from_millis(100));
        for (i, (_, seen)) in watches.iter().enumerate() {
            let seen = seen.lock();
            assert_eq!(seen.len(), 1, "watch {i}: {seen:?}");
            assert!(seen[0].external);
            assert_eq!(seen[0].size, Some(format!("{{\"i\":{i}}}").len() as u64));
        }
        #[cfg(target_os = "linux")]
        {
            // One instance holds all 41 directories (other tests of this
            // process may add theirs to it, and lock-file waiters have their own).
            let ours: Vec<_> = (0..40)
                .map(|i| inode(&root.path().join(format!("d{i}"))))
                .chain([inode(root.path())])
                .collect();
            let instances: HashSet<String> = inotify_watches()
                .into_iter()
                .filter(|(_, ino)| ours.contains(ino))
                .map(|(fd, _)| fd)
                .collect();
            assert_eq!(instances.len(), 1, "{instances:?}");
            // Threads: notify's one and ours (comm is cut at 15 bytes).
            let names: Vec<String> = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .filter(|n| n.starts_with("flm-watch") || n.starts_with("notify-rs"))
                .collect();
            assert!(names.len() <= 3, "{names:?}");
        }
    }

    #[test]
    fn polling_watches_share_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..20)
            .map(|i| watched_path(&dir.path().join(format!("p{i}.json"))).unwrap())
            .collect();
        let watches: Vec<_> = files
            .iter()
            .map(|file| {
                std::fs::write(file, "{}").unwrap();
                let seen: Seen = Arc::default();
                let sink = seen.clone();
                let options = WatchOptions {
                    force_poll: true,
                    poll_interval: Duration::from_millis(20),
                    ..WatchOptions::default()
                };
                let watch =
                    FileWatch::start(file, options, move |c| sink.lock().push(c), |_| {}).unwrap();
                assert_eq!(watch.mode(), WatchMode::Polling);
                (watch, seen)
            })
            .collect();
        // Polling watches do not watch their directory.
        assert_eq!(watches_of(files[0].parent().unwrap()), 0);
        for (i, file) in files.iter().enumerate() {
            replace(file, &format!("[{i}]"));
        }
        wait_until("every polling watch saw its change", || {
            watches.iter().all(|(_, seen)| seen.lock().len() == 1)
        });
        #[cfg(target_os = "linux")]
        {
            let pollers = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|n| n.trim() == "flm-watch-poll")
                .count();
            assert_eq!(pollers, 1);
        }
    }

    #[test]
    fn a_directory_is_unwatched_when_its_last_watch_closes() {
        let dir = tempfile::tempdir().unwrap();
        let a = watched_path(&dir.path().join("a.json")).unwrap();
        let b = watched_path(&dir.path().join("b.json")).unwrap();
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "1").unwrap();
        let canonical = a.parent().unwrap().to_path_buf();
        let (mut first, _) = watch(&a);
        let (mut second, _) = watch(&a);
        let (mut third, seen) = watch(&b);
        assert_eq!(watches_of(&canonical), 3);
        #[cfg(target_os = "linux")]
        let watched = || {
            let ino = inode(&canonical);
            inotify_watches().iter().filter(|(_, i)| *i == ino).count()
        };
        #[cfg(target_os = "linux")]
        assert_eq!(watched(), 1, "one inotify watch for three watches");
        first.close();
        second.close();
        assert_eq!(watches_of(&canonical), 1);
        // The remaining watch still hears its file.
        replace(&b, "2");
        wait_until("b's change", || seen.lock().len() == 1);
        third.close();
        assert_eq!(watches_of(&canonical), 0);
        #[cfg(target_os = "linux")]
        assert_eq!(watched(), 0, "the directory is unwatched");
    }

    #[test]
    fn a_directory_made_again_is_watched_again() {
        use super::super::file_watch::ChangeKind;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("again");
        std::fs::create_dir(&dir).unwrap();
        let file = watched_path(&dir.join("roles.json")).unwrap();
        std::fs::write(&file, "{}").unwrap();
        let (mut old, old_seen) = watch(&file);
        std::fs::remove_dir_all(&dir).unwrap();
        wait_until("the old watch saw the file deleted", || {
            old_seen.lock().first().map(|c| c.kind) == Some(ChangeKind::Deleted)
        });
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&file, "{}").unwrap();
        // The next watch started there watches the new directory, for both.
        let (mut new, seen) = watch(&file);
        replace(&file, "[1]");
        wait_until("the change in the new directory", || seen.lock().len() == 1);
        wait_until("the old watch hears the path again", || {
            old_seen.lock().last().map(|c| c.size) == Some(Some(3))
        });
        new.close();
        old.close();
        assert_eq!(watches_of(file.parent().unwrap()), 0);
    }

    #[test]
    fn callbacks_that_close_their_watch_or_panic_do_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&file, "{}").unwrap();
        // One panics, one closes itself from its own callback.
        let panicking = FileWatch::start(
            &file,
            WatchOptions::default(),
            |_| panic!("a listener's bug"),
            |_| {},
        )
        .unwrap();
        let slot: Arc<parking_lot::Mutex<Option<FileWatch>>> = Arc::default();
        let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (own, count) = (slot.clone(), closed.clone());
        let closer = FileWatch::start(
            &file,
            WatchOptions::default(),
            move |_| {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Some(mut me) = own.lock().take() {
                    me.close();
                }
            },
            |_| {},
        )
        .unwrap();
        *slot.lock() = Some(closer);
        let (mut healthy, seen) = watch(&file);
        replace(&file, "[1]");
        wait_until("the healthy watch's first change", || {
            seen.lock().len() == 1
        });
        // The closer's call may come after the healthy watch's (the thread
        // settles each watch in turn): wait for it, then show it was the last.
        wait_until("the closer's one call", || {
            closed.load(std::sync::atomic::Ordering::SeqCst) == 1
        });
        replace(&file, "[2]");
        wait_until("the healthy watch's second change", || {
            seen.lock().len() == 2
        });
        assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 1);
        healthy.close();
        drop(panicking);
    }

    #[test]
    fn each_watch_of_a_file_judges_our_writes_for_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&file, "{}").unwrap();
        let (_a, seen_a) = watch(&file);
        let (_b, seen_b) = watch(&file);
        own_writes::record(&file, own_writes::content_hash(b"[\"ours\"]"));
        replace(&file, "[\"ours\"]");
        wait_until("both saw it", || {
            seen_a.lock().len() == 1 && seen_b.lock().len() == 1
        });
        assert!(!seen_a.lock()[0].external);
        assert!(!seen_b.lock()[0].external);
    }
}
