//! The audit trail: one JSON object per line for every lock operation, appended
//! to a file (rotated at a size limit) or handed to a logger.
//!
//! Invariants: recording never blocks or fails the operation being recorded
//! (entries go through a bounded queue to one writer thread; when the queue is
//! full the entry is counted as dropped and the next written entry says how
//! many); the file is opened append-only, mode 0600, never through a symlink;
//! a line is written in one `write` so readers never see half a line; once the
//! manager is closed (`AuditSink::close`), what was queued is written and the
//! file closed before close returns (at most `CLOSE_WAIT`): Windows cannot move
//! an open file nor remove its folder, and no handle should outlive its manager.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Serialize;

/// One audited operation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    /// `acquire`, `release`, `lease-expired`, `compromised`, `stale-lock-removed`,
    /// or a document event (`recovered`, `external-change`, `merged`, `conflict`,
    /// `conflict-resolved`, `weak-flush`).
    pub op: &'static str,
    pub file: String,
    /// `os` or `lockfile`; empty (left out) for document events.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub strategy: &'static str,
    /// `granted`, `timeout`, `aborted`, `closed`, `error`; for releases the reason.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Entries lost before this one because the queue was full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_before: Option<u64>,
}

impl AuditEntry {
    /// An entry for `op` on `file`, stamped now, with the other fields empty.
    pub fn new(op: &'static str, file: &Path) -> AuditEntry {
        AuditEntry {
            time: crate::lock::now_ms(),
            op,
            file: file.to_string_lossy().into_owned(),
            strategy: "os",
            outcome: "",
            exclusive: None,
            fencing_token: None,
            waited_ms: None,
            held_ms: None,
            detail: None,
            dropped_before: None,
        }
    }

    /// The entry as one JSON line (no newline): what the file and a logger get.
    pub fn to_json_line(&self) -> String {
        // Every field is a string, a number or a bool: this cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where audit entries go.
pub trait AuditSink: Send + Sync + 'static {
    fn record(&self, entry: AuditEntry);

    /// No more entries (the manager closed): what was recorded is still
    /// delivered, then the sink lets go of what it holds; later entries are
    /// dropped.
    fn close(&self) {}
}

/// Entries waiting for the writer thread before new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// An append-only JSON-lines file, rotated to `<path>.1` … `<path>.<keep>`.
pub struct AuditFile {
    /// `None` once closed: the writer thread drains what is queued, then ends
    /// and closes the file.
    queue: parking_lot::Mutex<Option<SyncSender<AuditEntry>>>,
    /// Ends (disconnects) when the writer has written the last entry and
    /// closed the file.
    done: parking_lot::Mutex<Option<mpsc::Receiver<()>>>,
    dropped: Arc<AtomicU64>,
}

/// How long `close` waits for the queued entries to be written and the file
/// closed: long enough for a full queue on a slow disk, short enough that a
/// hung one does not hang the app's exit.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl AuditFile {
    /// Opens (creating) the trail; fails now if it cannot be written.
    pub fn open(path: PathBuf, max_bytes: u64, keep: u32) -> io::Result<AuditFile> {
        let mut writer = Writer {
            file: open_append(&path)?,
            path,
            max_bytes: max_bytes.max(4096),
            keep: keep.max(1),
        };
        let (queue, entries) = mpsc::sync_channel::<AuditEntry>(QUEUE);
        // Disconnected when the writer thread ends, with the file closed.
        let (finished, done) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("file-lock-audit".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for entry in entries {
                    // A failing disk must not stop the app; the next entry tries again.
                    let _ = writer.append(&entry);
                }
                drop(writer);
                drop(finished);
            })?;
        Ok(AuditFile {
            queue: parking_lot::Mutex::new(Some(queue)),
            done: parking_lot::Mutex::new(Some(done)),
            dropped: Arc::default(),
        })
    }
}

impl AuditSink for AuditFile {
    fn record(&self, mut entry: AuditEntry) {
        let queue = self.queue.lock();
        let Some(queue) = queue.as_ref() else {
            return; // closed
        };
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            entry.dropped_before = Some(dropped);
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(entry) {
            self.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
        }
    }

    fn close(&self) {
        drop(self.queue.lock().take());
        // So that whoever closed the manager can move or delete the trail at
        // once (Windows refuses while it is open).
        if let Some(done) = self.done.lock().take() {
            let _ = done.recv_timeout(CLOSE_WAIT);
        }
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    max_bytes: u64,
    keep: u32,
}

impl Writer {
    fn append(&mut self, entry: &AuditEntry) -> io::Result<()> {
        let mut line = entry.to_json_line().into_bytes();
        line.push(b'\n');
        if self.file.metadata()?.len() + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)
    }

    /// `path.(keep-1)` → `path.keep`, …, `path` → `path.1`, then a fresh `path`.
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn entry(op: &'static str) -> AuditEntry {
        AuditEntry {
            time: 1,
            op,
            file: "/data/roles.json".into(),
            strategy: "os",
            outcome: "granted",
            exclusive: Some(true),
            fencing_token: Some(7),
            waited_ms: None,
            held_ms: None,
            detail: None,
            dropped_before: None,
        }
    }

    fn lines_of(path: &Path, count: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<_> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn entries_are_json_lines_in_order() {
        let (_dir, path) = crate::test_support::scratch("audit.jsonl");
        let audit = AuditFile::open(path.clone(), 1 << 20, 3).unwrap();
        audit.record(entry("acquire"));
        audit.record(entry("release"));
        let lines = lines_of(&path, 2);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["op"], "acquire");
        assert_eq!(lines[1]["op"], "release");
        assert_eq!(lines[0]["fencingToken"], 7);
        assert!(lines[0].get("waitedMs").is_none());
    }

    #[test]
    fn the_trail_rotates_at_its_size_limit() {
        let (_dir, path) = crate::test_support::scratch("audit.jsonl");
        let audit = AuditFile::open(path.clone(), 4096, 2).unwrap();
        for _ in 0..100 {
            audit.record(entry("acquire"));
        }
        let rotated = PathBuf::from(format!("{}.1", path.display()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rotated.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(rotated.exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
    }

    #[test]
    fn closing_writes_what_was_queued_then_lets_go_of_the_file() {
        let (dir, path) = crate::test_support::scratch("audit.jsonl");
        let audit = AuditFile::open(path.clone(), 1 << 20, 3).unwrap();
        audit.record(entry("acquire"));
        audit.record(entry("release"));
        audit.close();
        // After close: dropped.
        audit.record(entry("lease-expired"));
        // When close returns, both are written and the file is closed: an open
        // trail keeps its folder from being removed on Windows (under Wine,
        // its name too).
        let text = std::fs::read_to_string(&path).unwrap();
        let ops: Vec<_> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["op"].clone())
            .collect();
        assert_eq!(ops, ["acquire", "release"]);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(dir.path()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!path.exists(), "nothing written after close");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_trail_is_refused() {
        let (dir, target) = crate::test_support::scratch_file("elsewhere", "");
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(AuditFile::open(link, 1 << 20, 3).is_err());
    }
}
