//! What this process wrote to each file, by content hash, so a watcher can
//! tell our own writes from external ones by what is in the file rather than
//! by when the change arrived.
//!
//! Invariants: a hash is recorded before the rename that publishes it (a
//! watcher can never see our content before it is known to be ours); seeing a
//! hash consumes it and every older one of that file (they were superseded),
//! so an external writer who later restores an old version of ours is still
//! reported as external; memory is bounded (per file and in files).

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Unconsumed writes remembered per file (a watcher consumes them quickly).
const PER_FILE: usize = 64;
/// Files remembered; beyond this the least recently written is forgotten.
const FILES: usize = 256;

static OWN: Mutex<Vec<(PathBuf, VecDeque<u64>)>> = Mutex::new(Vec::new());

/// A 64-bit hash of file content (SipHash with fixed keys: the same in every
/// watcher of this process). Not for security: an accidental collision only
/// labels one external change as ours.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Remembers that this process is about to publish `hash` as `path`'s content.
pub fn record(path: &Path, hash: u64) {
    let mut own = OWN.lock();
    let index = match own.iter().position(|(p, _)| p == path) {
        Some(i) => i,
        None => {
            if own.len() == FILES {
                own.remove(0);
            }
            own.push((path.to_path_buf(), VecDeque::new()));
            own.len() - 1
        }
    };
    // Most recently written last, so eviction drops the stalest file.
    let mut entry = own.remove(index);
    if entry.1.len() == PER_FILE {
        entry.1.pop_front();
    }
    entry.1.push_back(hash);
    own.push(entry);
}

/// Whether `path` holding `hash` is one of our writes; if so, that write and
/// all older ones of the file are forgotten.
pub fn take_if_own(path: &Path, hash: u64) -> bool {
    let mut own = OWN.lock();
    let Some(index) = own.iter().position(|(p, _)| p == path) else {
        return false;
    };
    let hashes = &mut own[index].1;
    let Some(at) = hashes.iter().rposition(|h| *h == hash) else {
        return false;
    };
    hashes.drain(..=at);
    if hashes.is_empty() {
        own.remove(index);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_ours_once_and_supersedes_older_ones() {
        let path = Path::new("/nonexistent/own-writes-test/a.json");
        record(path, 1);
        record(path, 2);
        record(path, 3);
        assert!(take_if_own(path, 2));
        // 1 was superseded by 2: content 1 appearing now was written by someone else.
        assert!(!take_if_own(path, 1));
        assert!(!take_if_own(path, 2));
        assert!(take_if_own(path, 3));
        assert!(!take_if_own(path, 3));
    }

    #[test]
    fn other_files_and_unknown_content_are_external() {
        let path = Path::new("/nonexistent/own-writes-test/b.json");
        record(path, 10);
        assert!(!take_if_own(
            Path::new("/nonexistent/own-writes-test/c.json"),
            10
        ));
        assert!(!take_if_own(path, 11));
        assert!(take_if_own(path, 10));
    }

    #[test]
    fn memory_stays_bounded() {
        let path = Path::new("/nonexistent/own-writes-test/d.json");
        for h in 0..(PER_FILE as u64 * 2) {
            record(path, 1000 + h);
        }
        assert!(!take_if_own(path, 1000)); // evicted
        assert!(take_if_own(path, 1000 + PER_FILE as u64 * 2 - 1));
    }
}
