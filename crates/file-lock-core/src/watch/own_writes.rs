//! What this process wrote to each file, by content hash, so a watcher can
//! tell our own writes from external ones by what is in the file rather than
//! by when the change arrived.
//!
//! Invariants: a hash is recorded before the rename that publishes it (a
//! watcher never sees our content before it is known to be ours). Each watcher
//! keeps its own cursor: seeing one of our writes moves that watcher past it
//! and every older write of the file, so an external writer who later restores
//! an old version of ours is still external to it, while other watchers of the
//! same file (a document and an app's own `watch`) judge the same write for
//! themselves. Memory is bounded (per file and in files).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Writes remembered per file (watchers look at them within milliseconds).
const PER_FILE: usize = 64;
/// Files remembered; beyond this the least recently written is forgotten.
const FILES: usize = 256;

/// (sequence number, content hash) of one of our writes.
type Write = (u64, u64);

/// Our recent writes, per file.
static OWN: Mutex<Vec<(PathBuf, VecDeque<Write>)>> = Mutex::new(Vec::new());
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// The package's one content hash (xxh3, 64 bits): own writes, document
/// versions, the watcher's looks. Not for security: an accidental collision
/// only labels one external change as ours. (xxh3: it runs at memory speed,
/// where SipHash, used before, is several times slower.)
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// One watcher's position in the writes of its file.
#[derive(Debug, Clone, Copy)]
pub struct Cursor(u64);

impl Cursor {
    /// Writes recorded from now on are judged; older ones are history.
    pub fn now() -> Cursor {
        Cursor(SEQUENCE.load(Ordering::SeqCst).saturating_sub(1))
    }
}

/// Remembers that this process is about to publish `hash` as `path`'s content.
pub fn record(path: &Path, hash: u64) {
    let sequence = SEQUENCE.fetch_add(1, Ordering::SeqCst);
    let mut own = OWN.lock();
    let mut entry = match own.iter().position(|(p, _)| p == path) {
        Some(i) => own.remove(i),
        None => {
            if own.len() == FILES {
                own.remove(0);
            }
            (path.to_path_buf(), VecDeque::new())
        }
    };
    if entry.1.len() == PER_FILE {
        entry.1.pop_front();
    }
    entry.1.push_back((sequence, hash));
    // Most recently written last, so eviction drops the stalest file.
    own.push(entry);
}

/// Whether `path` holding `hash` is one of our writes this watcher has not
/// passed yet; if so, the watcher moves past it (and every older write).
pub fn take_if_own(path: &Path, hash: u64, cursor: &mut Cursor) -> bool {
    let own = OWN.lock();
    let Some((_, writes)) = own.iter().find(|(p, _)| p == path) else {
        return false;
    };
    match writes
        .iter()
        .rev()
        .find(|(sequence, h)| *sequence > cursor.0 && *h == hash)
    {
        Some((sequence, _)) => {
            cursor.0 = *sequence;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_ours_once_and_supersedes_older_ones() {
        let path = Path::new("/nonexistent/own-writes-test/a.json");
        let mut cursor = Cursor::now();
        record(path, 1);
        record(path, 2);
        record(path, 3);
        assert!(take_if_own(path, 2, &mut cursor));
        // 1 was superseded by 2: content 1 appearing now was written by someone else.
        assert!(!take_if_own(path, 1, &mut cursor));
        assert!(!take_if_own(path, 2, &mut cursor));
        assert!(take_if_own(path, 3, &mut cursor));
        assert!(!take_if_own(path, 3, &mut cursor));
    }

    #[test]
    fn every_watcher_judges_each_write_for_itself() {
        let path = Path::new("/nonexistent/own-writes-test/e.json");
        let (mut document, mut app) = (Cursor::now(), Cursor::now());
        record(path, 7);
        assert!(take_if_own(path, 7, &mut document));
        assert!(take_if_own(path, 7, &mut app));
        assert!(!take_if_own(path, 7, &mut app));
    }

    #[test]
    fn writes_before_a_watch_began_are_history() {
        let path = Path::new("/nonexistent/own-writes-test/f.json");
        record(path, 8);
        let mut cursor = Cursor::now();
        assert!(!take_if_own(path, 8, &mut cursor));
    }

    #[test]
    fn other_files_and_unknown_content_are_external() {
        let path = Path::new("/nonexistent/own-writes-test/b.json");
        let mut cursor = Cursor::now();
        record(path, 10);
        assert!(!take_if_own(
            Path::new("/nonexistent/own-writes-test/c.json"),
            10,
            &mut cursor
        ));
        assert!(!take_if_own(path, 11, &mut cursor));
        assert!(take_if_own(path, 10, &mut cursor));
    }

    #[test]
    fn memory_stays_bounded() {
        let path = Path::new("/nonexistent/own-writes-test/d.json");
        let mut cursor = Cursor::now();
        for h in 0..(PER_FILE as u64 * 2) {
            record(path, 1000 + h);
        }
        assert!(!take_if_own(path, 1000, &mut cursor)); // evicted
        assert!(take_if_own(
            path,
            1000 + PER_FILE as u64 * 2 - 1,
            &mut cursor
        ));
    }
}
