//! One watched file, reported as changes in its content or existence.
//!
//! Invariants:
//! - The parent directory is watched, not the file, so atomic replaces
//!   (a rename over the file), deletions and re-creations are all seen and the
//!   watch outlives them. Events of other names are ignored.
//! - A burst of events is settled (quiet for `debounce`, or `max_delay` after
//!   its first event) and then ended by a fresh look at the file (read, hash):
//!   the final state is never missed, and an event arriving during that look
//!   starts another one. Overflows and errors of the OS watch are treated as
//!   "look again", never dropped.
//! - A change is reported only when the content or the existence differs from
//!   the last report, and `external` is judged by content (`own_writes`).
//! - Local disks: no polling, so an idle watch costs no CPU. Network shares do
//!   not report other machines' writes, so there the file is stat'ed every
//!   `poll_interval` (and on request, `force_poll`).
//! - After `close()` returns, no callback runs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::own_writes;
use crate::fs_kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Created,
    Deleted,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Modified => "modified",
            ChangeKind::Created => "created",
            ChangeKind::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileChange {
    pub kind: ChangeKind,
    /// False when the file now holds content this process wrote.
    pub external: bool,
    pub size: Option<u64>,
    pub mtime_ms: Option<f64>,
    /// The OS reported an overflow or error: the change was found by re-reading.
    pub rescan: bool,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// A burst is over after this long without events.
    pub debounce: Duration,
    /// ... or this long after its first event, whichever comes first.
    pub max_delay: Duration,
    /// Stat interval when polling.
    pub poll_interval: Duration,
    /// Poll even on a local disk (tests; file systems that report nothing).
    pub force_poll: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(15),
            max_delay: Duration::from_millis(150),
            poll_interval: Duration::from_millis(1000),
            force_poll: false,
        }
    }
}

enum Signal {
    Event { rescan: bool },
    Stop,
}

/// How a watch learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// inotify / FSEvents / ReadDirectoryChangesW on the parent directory.
    Events,
    /// A stat every `poll_interval` (network shares).
    Polling,
}

pub struct FileWatch {
    signals: Sender<Signal>,
    os_watch: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
    mode: WatchMode,
    network: Option<String>,
}

impl FileWatch {
    /// Starts watching `path` (as given by `super::watched_path`). Changes
    /// after this returns are reported to `on_change`, failures to read the
    /// file to `on_error`; both run on the watch's own thread.
    pub fn start(
        path: &Path,
        options: WatchOptions,
        on_change: impl FnMut(FileChange) + Send + 'static,
        on_error: impl FnMut(io::Error) + Send + 'static,
    ) -> io::Result<FileWatch> {
        let dir = path
            .parent()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the path has no directory")
            })?
            .to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
            .to_os_string();
        if !std::fs::metadata(&dir)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the parent is not a directory",
            ));
        }
        let kind = fs_kind::detect(&dir);
        let network = kind.is_network().then(|| kind.name().to_string());
        let mode = if options.force_poll || network.is_some() {
            WatchMode::Polling
        } else {
            WatchMode::Events
        };
        let (signals, receiver) = mpsc::channel();
        let os_watch = match mode {
            WatchMode::Polling => None,
            WatchMode::Events => {
                let events = signals.clone();
                let mut watcher =
                    notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
                        let rescan = match &result {
                            Ok(event) if event.need_rescan() => true,
                            Ok(event) if concerns(event, &name) => false,
                            Ok(_) => return,
                            Err(_) => true, // e.g. a queue overflow: look again
                        };
                        let _ = events.send(Signal::Event { rescan });
                    })
                    .map_err(notify_to_io)?;
                watcher
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .map_err(notify_to_io)?;
                Some(watcher)
            }
        };
        // What the file looked like when the watch began: changes are relative
        // to this (a stat now; the content is hashed on the watch's thread).
        let at_start = stat_key(path);
        let cursor = own_writes::Cursor::now();
        let target = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("flm-watch".into())
            .spawn(move || {
                run(
                    target, at_start, cursor, options, mode, receiver, on_change, on_error,
                )
            })?;
        Ok(FileWatch {
            signals,
            os_watch,
            thread: Some(thread),
            mode,
            network,
        })
    }

    pub fn mode(&self) -> WatchMode {
        self.mode
    }

    /// The share's file system when the file is on a network drive.
    pub fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }

    /// Stops the OS watch and the thread; no callback runs after this returns.
    pub fn close(&mut self) {
        self.os_watch = None;
        let _ = self.signals.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether an OS event is about our file (by name) and can mean new content.
fn concerns(event: &notify::Event, name: &std::ffi::OsStr) -> bool {
    let content_event = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    content_event && event.paths.iter().any(|p| p.file_name() == Some(name))
}

fn notify_to_io(error: notify::Error) -> io::Error {
    match error.kind {
        notify::ErrorKind::Io(e) => e,
        notify::ErrorKind::PathNotFound => io::Error::new(io::ErrorKind::NotFound, "path not found"),
        notify::ErrorKind::MaxFilesWatch => io::Error::other(
            "the OS limit on watches is reached (Linux: fs.inotify.max_user_watches / max_user_instances)",
        ),
        _ => io::Error::other(error.to_string()),
    }
}

/// Inode, size, mtime, ctime: what a poll compares. `None` when missing.
type StatKey = Option<(u64, u64, i128, i128)>;

fn stat_key(path: &Path) -> StatKey {
    let meta = std::fs::metadata(path).ok()?;
    let nanos = |t: io::Result<SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128)
    };
    #[cfg(unix)]
    let (ino, ctime) = {
        use std::os::unix::fs::MetadataExt;
        (
            meta.ino(),
            meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        )
    };
    #[cfg(not(unix))]
    let (ino, ctime) = (0, 0);
    Some((ino, meta.len(), nanos(meta.modified()), ctime))
}

/// The file as last looked at.
#[derive(Clone)]
struct Snapshot {
    stat: StatKey,
    /// `None` when the file does not exist.
    content: Option<Seen>,
}

#[derive(Clone, Copy)]
struct Seen {
    hash: u64,
    size: u64,
    mtime_ms: f64,
}

fn look(path: &Path) -> io::Result<Snapshot> {
    let stat = stat_key(path);
    match std::fs::read(path) {
        Ok(bytes) => {
            // From the stat just taken (its mtime is in ns): no second stat.
            let mtime_ms = stat.map_or(0.0, |(_, _, mtime_ns, _)| mtime_ns as f64 / 1e6);
            Ok(Snapshot {
                stat,
                content: Some(Seen {
                    hash: own_writes::content_hash(&bytes),
                    size: bytes.len() as u64,
                    mtime_ms,
                }),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Snapshot {
            stat: None,
            content: None,
        }),
        Err(e) => Err(e),
    }
}

/// The change between two looks, if any. Content we wrote is consumed from
/// `own_writes` whether or not it is reported.
fn change_between(
    cursor: &mut own_writes::Cursor,
    path: &Path,
    before: &Snapshot,
    now: &Snapshot,
    rescan: bool,
) -> Option<FileChange> {
    let (kind, seen) = match (before.content, now.content) {
        (None, None) => return None,
        (Some(_), None) => {
            return Some(FileChange {
                kind: ChangeKind::Deleted,
                external: true,
                size: None,
                mtime_ms: None,
                rescan,
            })
        }
        (None, Some(seen)) => (ChangeKind::Created, seen),
        (Some(old), Some(seen)) => {
            if old.hash == seen.hash {
                own_writes::take_if_own(path, seen.hash, cursor);
                return None;
            }
            (ChangeKind::Modified, seen)
        }
    };
    Some(FileChange {
        kind,
        external: !own_writes::take_if_own(path, seen.hash, cursor),
        size: Some(seen.size),
        mtime_ms: Some(seen.mtime_ms),
        rescan,
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    path: PathBuf,
    at_start: StatKey,
    mut cursor: own_writes::Cursor,
    options: WatchOptions,
    mode: WatchMode,
    signals: mpsc::Receiver<Signal>,
    mut on_change: impl FnMut(FileChange),
    mut on_error: impl FnMut(io::Error),
) {
    let mut last = loop {
        match look(&path) {
            Ok(snapshot) => break snapshot,
            Err(e) => {
                on_error(e);
                // Unreadable (permissions?): wait for the next event to try again.
                match signals.recv() {
                    Ok(Signal::Event { .. }) => continue,
                    _ => return,
                }
            }
        }
    };
    // Changed between watch() and our first look: report it against the stat
    // seen at watch(); the content before it is unknown, so it counts as new.
    if last.stat != at_start {
        let before = Snapshot {
            stat: at_start,
            content: at_start.map(|(_, size, _, _)| Seen {
                hash: !0,
                size,
                mtime_ms: 0.0,
            }),
        };
        if let Some(change) = change_between(&mut cursor, &path, &before, &last, false) {
            on_change(change);
        }
    }
    loop {
        // Wait for the first event of a burst (or a poll tick that sees a change).
        let mut rescan = match mode {
            WatchMode::Events => match signals.recv() {
                Ok(Signal::Event { rescan }) => rescan,
                _ => return,
            },
            WatchMode::Polling => match signals.recv_timeout(options.poll_interval) {
                Ok(Signal::Event { rescan }) => rescan,
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if stat_key(&path) == last.stat {
                        continue;
                    }
                    false
                }
            },
        };
        // Let the burst settle.
        let first = Instant::now();
        loop {
            let left = options.max_delay.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match signals.recv_timeout(options.debounce.min(left)) {
                Ok(Signal::Event { rescan: r }) => rescan |= r,
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        match look(&path) {
            Ok(now) => {
                if let Some(change) = change_between(&mut cursor, &path, &last, &now, rescan) {
                    on_change(change);
                }
                last = now;
            }
            Err(e) => on_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn collect(path: &Path, options: WatchOptions) -> (FileWatch, Arc<Mutex<Vec<FileChange>>>) {
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

    fn wait_for(changes: &Arc<Mutex<Vec<FileChange>>>, n: usize) -> Vec<FileChange> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = changes.lock().unwrap().clone();
            if seen.len() >= n || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn replace_atomically(path: &Path, text: &str) {
        let temp = path.with_extension("tmp-test");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, path).unwrap();
    }

    #[test]
    fn sees_atomic_replaces_deletes_and_recreation() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&path, "{}").unwrap();
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
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(changes.lock().unwrap().len(), 3);
        watch.close();
    }

    #[test]
    fn own_writes_are_not_external_and_unchanged_content_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&path, "{}").unwrap();
        let (mut watch, changes) = collect(&path, WatchOptions::default());
        own_writes::record(&path, own_writes::content_hash(b"{\"mine\":true}"));
        replace_atomically(&path, "{\"mine\":true}");
        let seen = wait_for(&changes, 1);
        assert!(!seen[0].external);
        replace_atomically(&path, "{\"mine\":true}"); // same bytes again, not ours
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(changes.lock().unwrap().len(), 1);
        watch.close();
    }

    #[test]
    fn a_burst_is_reported_once_with_its_final_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&path, "0").unwrap();
        let (mut watch, changes) = collect(
            &path,
            WatchOptions {
                max_delay: Duration::from_secs(5),
                debounce: Duration::from_millis(200),
                ..WatchOptions::default()
            },
        );
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
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&path, "{}").unwrap();
        let (mut watch, changes) = collect(
            &path,
            WatchOptions {
                force_poll: true,
                poll_interval: Duration::from_millis(20),
                ..WatchOptions::default()
            },
        );
        assert_eq!(watch.mode(), WatchMode::Polling);
        replace_atomically(&path, "{\"polled\":1}");
        let seen = wait_for(&changes, 1);
        assert_eq!(seen[0].kind, ChangeKind::Modified);
        watch.close();
    }

    #[test]
    fn close_stops_callbacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::watched_path(&dir.path().join("roles.json")).unwrap();
        std::fs::write(&path, "{}").unwrap();
        let (mut watch, changes) = collect(&path, WatchOptions::default());
        watch.close();
        replace_atomically(&path, "[1]");
        std::thread::sleep(Duration::from_millis(200));
        assert!(changes.lock().unwrap().is_empty());
    }
}
