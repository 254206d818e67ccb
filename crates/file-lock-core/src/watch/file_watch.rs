//! One watched file, reported as changes in its content or existence.
//!
//! Invariants:
//! - The parent directory is watched, not the file, so atomic replaces
//!   (a rename over the file), deletions and re-creations are all seen and the
//!   watch outlives them. Events of other names are not routed to it (`hub`).
//! - A burst of events is settled, then ended by a fresh look at the file
//!   (read, hash): the final state is never missed, and an event arriving
//!   during that look starts another one. It settles at once on the event
//!   that ends a write (a rename into place, a written file closed: the file
//!   is whole), but at most once per `ENDED_WRITES_EVERY` (or `debounce` when
//!   shorter), so a lone write is reported at once and a rapid series of them
//!   (a sync tool's burst) coalesces; writes that never say they ended settle
//!   after `debounce` of quiet (at most `max_delay` after their first event). Overflows and errors of the OS watch are treated as
//!   "look again", never dropped.
//! - A change is reported only when the content or the existence differs from
//!   the last report, and `external` is judged by content (`own_writes`), with
//!   this watch's own cursor.
//! - Local disks: no polling, so an idle watch costs no CPU. Network shares do
//!   not report other machines' writes, so there the file is stat'ed every
//!   `poll_interval` (and on request, `force_poll`).
//! - No thread and no OS watcher of its own: a `FileWatch` is a `Tracker` (its
//!   state, run by one of the hub's two threads) and a `Handle` (its
//!   callbacks). After `close()` returns, no callback runs (unless `close()`
//!   is called by the watch's own callback: then none runs after it returns).

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::hub;
use super::limits::WatchError;
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

/// How a watch learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// inotify / FSEvents / ReadDirectoryChangesW on the parent directory.
    Events,
    /// A stat every `poll_interval` (network shares).
    Polling,
}

pub struct FileWatch {
    id: u64,
    handle: Arc<Handle>,
    dir: PathBuf,
    mode: WatchMode,
    network: Option<String>,
    open: bool,
}

impl FileWatch {
    /// Starts watching `path` (as given by `super::watched_path`). Changes
    /// after this returns are reported to `on_change`, failures to read the
    /// file to `on_error`; both run on the hub's thread (see `hub`), one
    /// callback at a time, and must not block.
    pub fn start(
        path: &Path,
        options: WatchOptions,
        on_change: impl FnMut(FileChange) + Send + 'static,
        on_error: impl FnMut(io::Error) + Send + 'static,
    ) -> Result<FileWatch, WatchError> {
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
            )
            .into());
        }
        let kind = fs_kind::detect(&dir);
        let network = kind.is_network().then(|| kind.name().to_string());
        let mode = if options.force_poll || network.is_some() {
            WatchMode::Polling
        } else {
            WatchMode::Events
        };
        let handle = Arc::new(Handle {
            delivery: Mutex::new(Some(Delivery {
                on_change: Box::new(on_change),
                on_error: Box::new(on_error),
            })),
            closing: AtomicBool::new(false),
        });
        // What the file looked like when the watch began: changes are relative
        // to this (a stat now; the content is hashed on the hub's thread).
        let at_start = stat_key(path);
        let tracker = Tracker {
            id: 0,
            path: path.to_path_buf(),
            dir: dir.clone(),
            name,
            mode,
            options,
            cursor: own_writes::Cursor::now(),
            at_start,
            last: None,
            polled: at_start,
            burst: None,
            settled_at: None,
            next_poll: None,
            handle: handle.clone(),
        };
        let id = hub::add(tracker)?;
        Ok(FileWatch {
            id,
            handle,
            dir,
            mode,
            network,
            open: true,
        })
    }

    pub fn mode(&self) -> WatchMode {
        self.mode
    }

    /// The share's file system when the file is on a network drive.
    pub fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }

    /// Stops watching (the directory is unwatched when this was its last
    /// watch); no callback runs after this returns. Idempotent.
    pub fn close(&mut self) {
        if !std::mem::replace(&mut self.open, false) {
            return;
        }
        self.handle.detach(self.id);
        hub::remove(self.id, &self.dir, self.mode);
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.close();
    }
}

struct Delivery {
    on_change: Box<dyn FnMut(FileChange) + Send>,
    on_error: Box<dyn FnMut(io::Error) + Send>,
}

thread_local! {
    /// The watch whose callback runs on this thread right now (0: none).
    static DELIVERING: Cell<u64> = const { Cell::new(0) };
}

/// A watch's callbacks, shared by its `FileWatch` and its `Tracker`.
pub(super) struct Handle {
    /// Held while a callback runs; `None` once closed.
    delivery: Mutex<Option<Delivery>>,
    /// Set by a `close()` made inside the watch's own callback.
    closing: AtomicBool,
}

impl Handle {
    fn deliver(&self, id: u64, call: impl FnOnce(&mut Delivery)) {
        let mut delivery = self.delivery.lock();
        let Some(callbacks) = delivery.as_mut() else {
            return;
        };
        DELIVERING.with(|d| d.set(id));
        // A callback that panics ends its own watch, never the shared thread.
        let outcome = catch_unwind(AssertUnwindSafe(|| call(callbacks)));
        DELIVERING.with(|d| d.set(0));
        if outcome.is_err() || self.closing.load(Ordering::Acquire) {
            *delivery = None;
        }
    }

    /// No callback after this returns (it waits for one in progress), except
    /// when called by this watch's own callback, which holds the lock: the
    /// callbacks are then dropped as soon as it returns.
    fn detach(&self, id: u64) {
        if DELIVERING.with(|d| d.get()) == id {
            self.closing.store(true, Ordering::Release);
            return;
        }
        let callbacks = self.delivery.lock().take();
        drop(callbacks);
    }
}

/// One watch's state, owned by a hub thread.
pub(super) struct Tracker {
    pub(super) id: u64,
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
    mode: WatchMode,
    options: WatchOptions,
    cursor: own_writes::Cursor,
    at_start: StatKey,
    /// The file as last looked at; `None` until a first look succeeds.
    last: Option<Snapshot>,
    /// The stat polls compare with until a first look succeeds.
    polled: StatKey,
    burst: Option<Burst>,
    /// When the last burst was settled (ended writes are looked at no more
    /// often than `ENDED_WRITES_EVERY` after it).
    settled_at: Option<Instant>,
    next_poll: Option<Instant>,
    handle: Arc<Handle>,
}

/// A rapid series of writes that each end (renames into place) is looked at
/// no more often than this: each look reads and hashes the whole file.
const ENDED_WRITES_EVERY: Duration = Duration::from_millis(15);

/// How often a watch's first look is taken again while writes overlap it.
const FIRST_LOOK_TRIES: u32 = 3;

/// Events seen and not yet ended by a look.
#[derive(Clone, Copy)]
struct Burst {
    first: Instant,
    latest: Instant,
    rescan: bool,
    /// The last event said a write ended (a rename into place, a written
    /// file closed): the file is whole now, so the burst settles at once.
    ended: bool,
}

impl Tracker {
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn name(&self) -> &OsStr {
        &self.name
    }

    pub(super) fn mode(&self) -> WatchMode {
        self.mode
    }

    /// The first look, on the hub's thread right after the watch is added.
    pub(super) fn begin(&mut self, now: Instant) {
        self.first_look();
        if self.mode == WatchMode::Polling {
            self.next_poll = Some(now + self.options.poll_interval);
        }
    }

    /// An OS event about the file (or an overflow: `rescan`); `ended`: the
    /// event is one that ends a write (IN_MOVED_TO, IN_CLOSE_WRITE, and their
    /// equivalents), after which the file is whole.
    pub(super) fn touch(&mut self, rescan: bool, ended: bool, now: Instant) {
        match &mut self.burst {
            Some(burst) => {
                burst.latest = now;
                burst.rescan |= rescan;
                burst.ended = ended;
            }
            None => {
                self.burst = Some(Burst {
                    first: now,
                    latest: now,
                    rescan,
                    ended,
                })
            }
        }
    }

    /// When a burst is over: after `debounce` of quiet (at most `max_delay`
    /// after its first event), or sooner when its last event ended a write: at
    /// once, or `ENDED_WRITES_EVERY` after the previous look in a rapid series.
    fn settles_at(&self, burst: &Burst) -> Instant {
        let quiet =
            (burst.latest + self.options.debounce).min(burst.first + self.options.max_delay);
        if !burst.ended {
            return quiet;
        }
        let spacing = self.options.debounce.min(ENDED_WRITES_EVERY);
        let earliest = self
            .settled_at
            .map_or(burst.latest, |at| (at + spacing).max(burst.latest));
        earliest.min(quiet)
    }

    /// When this watch next needs its thread: a burst settles, or a poll.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let settled = self.burst.as_ref().map(|b| self.settles_at(b));
        match (settled, self.next_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due at `now`: a settled burst is ended by a look, a poll
    /// that sees the file's stat change starts a burst.
    pub(super) fn run_due(&mut self, now: Instant) {
        if let Some(poll) = self.next_poll.filter(|at| *at <= now) {
            // Late polls (a slow share) do not pile up.
            self.next_poll = Some((poll + self.options.poll_interval).max(now));
            if self.burst.is_none() {
                let seen = self.last.as_ref().map_or(self.polled, |s| s.stat);
                if stat_key(&self.path) != seen {
                    self.touch(false, false, now);
                }
            }
        }
        let settled = self
            .burst
            .as_ref()
            .is_some_and(|b| self.settles_at(b) <= now);
        if settled {
            let burst = self.burst.take().expect("settled burst");
            self.settled_at = Some(now);
            self.settle(burst.rescan);
        }
    }

    fn first_look(&mut self) {
        // A write landing between the look's stat and its read leaves the old
        // stat beside the new content, which no later look would report (the
        // content is the same then); one landing after the read leaves the old
        // content, which is no change. A second stat tells a look a write
        // overlapped: it is taken again, up to `FIRST_LOOK_TRIES` times.
        let mut tries = 0;
        let (now, steady) = loop {
            let now = match look(&self.path) {
                Ok(now) => now,
                Err(e) => {
                    // Unreadable (permissions?): the next event or poll tries again.
                    self.polled = stat_key(&self.path);
                    self.error(e);
                    return;
                }
            };
            tries += 1;
            let steady = stat_key(&self.path) == now.stat;
            if steady || tries == FIRST_LOOK_TRIES {
                break (now, steady);
            }
        };
        // Changed between watch() and this look (or still changing: writes
        // that never pause): report it against the stat seen at watch(); the
        // content before it is unknown, so it counts as new.
        if now.stat != self.at_start || !steady {
            let before = Snapshot {
                stat: self.at_start,
                content: self.at_start.map(|(_, size, _, _)| Seen {
                    hash: !0,
                    size,
                    mtime_ms: 0.0,
                }),
            };
            if let Some(change) = change_between(&mut self.cursor, &self.path, &before, &now, false)
            {
                self.change(change);
            }
        }
        self.last = Some(now);
    }

    fn settle(&mut self, rescan: bool) {
        let Some(last) = &self.last else {
            self.first_look();
            return;
        };
        match look(&self.path) {
            Ok(now) => {
                let change = change_between(&mut self.cursor, &self.path, last, &now, rescan);
                self.last = Some(now);
                if let Some(change) = change {
                    self.change(change);
                }
            }
            Err(e) => self.error(e),
        }
    }

    fn change(&self, change: FileChange) {
        self.handle.deliver(self.id, move |d| (d.on_change)(change));
    }

    fn error(&self, error: io::Error) {
        self.handle.deliver(self.id, move |d| (d.on_error)(error));
    }
}

/// Inode, size, mtime, ctime: what a poll compares. `None` when missing.
type StatKey = Option<(u64, u64, i128, i128)>;

fn stat_key(path: &Path) -> StatKey {
    let meta = std::fs::metadata(path).ok()?;
    Some(crate::document::version::StatKey::of(&meta).parts())
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

#[cfg(test)]
#[path = "file_watch_tests.rs"]
mod tests;
