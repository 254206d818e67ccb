//! A document's file as versions: read it (bytes + stat key + content hash)
//! and commit a new text in one step (check it is still the version the
//! caller knows, write the temp file, fsync, rename, fsync the directory, and
//! say the new version) — one trip off the JS thread per read or write.
//!
//! Invariants:
//! - A commit writes only over the version the caller knows: same stat key
//!   (inode, size, mtime, ctime), and when that key is too recent to trust (a
//!   change within the file system's timestamp granularity keeps it: git's
//!   "racily clean" case) the same content hash. Anything else is `Changed`,
//!   nothing is written, and the caller reads the file again.
//! - A missing file counts as "no version": writing over nothing is allowed
//!   whatever the caller knew (as a write after an external delete always was).
//! - Under a lock (`commit_under`), a file that lies elsewhere than the lock is
//!   not written, and the lock is let go only once the new text is renamed into
//!   place and its version stated (never on `Changed`/`Elsewhere`/failure
//!   before the rename): the caller's promise still waits for the directory fsync.
//! - A read never blocks and never outgrows memory: a FIFO, a device, a
//!   folder or a socket is reported before a byte is read (and a FIFO is only
//!   ever opened with O_NONBLOCK); more than `max_bytes` is reported after
//!   reading at most `max_bytes + 1` bytes.
//! - One content hash for the whole package (`content_hash`, xxh3): the
//!   version's hash is the one the watcher's own-writes list records.

use std::fs::{File, Metadata};
use std::io::{self, Read as _};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::atomic_write::{self, Durability, Flush};
use crate::paths;
use crate::watch::own_writes::content_hash;

/// A key younger than this is not trusted alone (see the module invariants).
const SETTLED: Duration = Duration::from_millis(100);

/// Inode, size, mtime and ctime (ns): what changes when the file does (the
/// watcher's polls compare the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatKey {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl StatKey {
    pub(crate) fn of(meta: &Metadata) -> StatKey {
        let nanos = |t: io::Result<SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128)
        };
        #[cfg(unix)]
        let (ino, ctime_ns) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.ino(),
                meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            )
        };
        #[cfg(not(unix))]
        let (ino, ctime_ns) = (0, nanos(meta.created()));
        StatKey {
            ino,
            size: meta.len(),
            mtime_ns: nanos(meta.modified()),
            ctime_ns,
        }
    }

    pub(crate) fn parts(&self) -> (u64, u64, i128, i128) {
        (self.ino, self.size, self.mtime_ns, self.ctime_ns)
    }

    /// Whether the file's last change is old enough for the key alone to tell.
    fn settled(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now - self.mtime_ns.max(self.ctime_ns) >= SETTLED.as_nanos() as i128
    }
}

/// One version of a file: its stat key and the hash of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    key: StatKey,
    hash: u64,
}

impl Version {
    /// An opaque token for JS: `ino:size:mtime:ctime:hash`.
    pub fn token(&self) -> String {
        let k = &self.key;
        format!(
            "{}:{}:{}:{}:{:016x}",
            k.ino, k.size, k.mtime_ns, k.ctime_ns, self.hash
        )
    }

    /// The version a token stands for; `None` for anything else.
    pub fn from_token(token: &str) -> Option<Version> {
        let mut parts = token.split(':');
        let mut next = || parts.next();
        let version = Version {
            key: StatKey {
                ino: next()?.parse().ok()?,
                size: next()?.parse().ok()?,
                mtime_ns: next()?.parse().ok()?,
                ctime_ns: next()?.parse().ok()?,
            },
            hash: u64::from_str_radix(next()?, 16).ok()?,
        };
        next().is_none().then_some(version)
    }
}

/// Whether the file at a path is still a version, by its stat alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    /// Same key, old enough to trust.
    Yes,
    /// Another key, or no file.
    No,
    /// Same key but too recent: only its content can tell.
    Unsure,
}

/// One `stat` (through links): is `path` still `version`?
pub fn is_current(path: &Path, version: &Version) -> Current {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            let key = StatKey::of(&meta);
            if key != version.key {
                Current::No
            } else if key.settled() {
                Current::Yes
            } else {
                Current::Unsure
            }
        }
        _ => Current::No,
    }
}

/// What a read found.
#[derive(Debug)]
pub enum Found {
    Missing,
    /// Not a regular file: what it is ("a FIFO (named pipe)", "a folder", …).
    NotAFile(&'static str),
    /// More than the limit: its size when the stat told it.
    TooBig(Option<u64>),
    File {
        bytes: Vec<u8>,
        version: Version,
    },
}

/// Reads the regular file at `path` (through links), at most `max_bytes`.
pub fn read(path: &Path, max_bytes: u64) -> io::Result<Found> {
    read_unless_held(path, max_bytes, None).map(|found| found.unwrap_or(Found::Missing))
}

/// `read`, unless its first stat finds the file may still be `held` (the same
/// key, settled or too recent to trust: `is_current`'s Yes or Unsure): then
/// `None`, nothing opened. What `is_current` then `read` tell, in one stat fewer.
/// Without `held`, never `None`.
pub fn read_unless_held(
    path: &Path,
    max_bytes: u64,
    held: Option<&Version>,
) -> io::Result<Option<Found>> {
    // A stat first: a FIFO or a device is refused without being opened at all.
    let seen = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Found::Missing)),
        Err(e) => return Err(e),
    };
    if seen.is_file() && held.is_some_and(|held| StatKey::of(&seen) == held.key) {
        return Ok(None);
    }
    read_seen(path, &seen, max_bytes).map(Some)
}

/// The rest of `read`, once a stat of `path` saw `seen`.
fn read_seen(path: &Path, seen: &std::fs::Metadata, max_bytes: u64) -> io::Result<Found> {
    if !seen.is_file() {
        return Ok(Found::NotAFile(paths::kind_of(seen)));
    }
    if seen.len() > max_bytes {
        return Ok(Found::TooBig(Some(seen.len())));
    }
    let mut file = match open_for_reading(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        // Replaced since the stat: a socket cannot be opened, a folder (Windows) neither.
        Err(e) if e.raw_os_error() == Some(ENXIO) => return Ok(Found::NotAFile("a socket")),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            return Ok(Found::NotAFile("a folder"))
        }
        Err(e) => return Err(e),
    };
    // What was opened is what counts (the name may have been replaced since the stat).
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Ok(Found::NotAFile(paths::kind_of(&opened)));
    }
    if opened.len() > max_bytes {
        return Ok(Found::TooBig(Some(opened.len())));
    }
    // The size may change while we read, or be wrong (0 in /proc): never more than max + 1.
    let mut bytes = Vec::with_capacity(opened.len().min(max_bytes) as usize + 1);
    (&mut file).take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Ok(Found::TooBig(None));
    }
    // The key from before the read: a write during it leaves another key, so
    // the next check reads again rather than trusting what was half-seen.
    let version = Version {
        key: StatKey::of(&opened),
        hash: content_hash(&bytes),
    };
    Ok(Found::File { bytes, version })
}

#[cfg(unix)]
const ENXIO: i32 = libc::ENXIO;
#[cfg(not(unix))]
const ENXIO: i32 = -1;

fn open_for_reading(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path)
}

/// What a commit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Commit {
    /// The new text is on disk (durably, if asked: how, the `Flush` says), as this version.
    Written(Version, Flush),
    /// The file is not the version expected: nothing was written.
    Changed,
    /// The file now lies elsewhere than the lock the caller holds (a link
    /// re-pointed since the lock was taken): nothing was written.
    Elsewhere,
}

/// The lock a commit runs under, for a caller that wants the commit to check
/// it and let it go. (This module takes no lock and knows no lock engine:
/// the caller says where its lock is and how to let it go.)
pub struct UnderLock<'a> {
    /// The canonical path the lock was taken on (`lock::LockManager::resolve`'s
    /// form): a file that lies elsewhere now is not written.
    pub locked: &'a Path,
    /// Lets the lock go. Called once the new text is renamed into place and
    /// its version is known, before the directory fsync: the next holder can
    /// read the new text at once, and its own directory fsync (of the same
    /// directory, after ours started) cannot make its text durable before ours.
    pub release: &'a mut dyn FnMut(),
}

/// Writes `bytes` over `path` if it is still `expected` (`None`: the caller
/// knows no version, so only a missing file may be written).
pub fn commit(
    path: &Path,
    expected: Option<&Version>,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<Commit> {
    commit_under(path, expected, bytes, durability, None)
}

/// `commit`, under a lock it checks (`Elsewhere`) and lets go once the new
/// text is in place (only when it wrote: otherwise the caller still holds it).
pub fn commit_under(
    path: &Path,
    expected: Option<&Version>,
    bytes: &[u8],
    durability: Durability,
    lock: Option<UnderLock<'_>>,
) -> io::Result<Commit> {
    let replace = atomic_write::Replace::prepare(path)?;
    if let Some(lock) = &lock {
        // A folder that cannot be resolved fails the write below, as before.
        if replace.canonical_target().is_some_and(|c| c != lock.locked) {
            return Ok(Commit::Elsewhere);
        }
    }
    if !still(path, replace.found.as_ref(), expected)? {
        return Ok(Commit::Changed);
    }
    let hash = content_hash(bytes);
    let (key, flush) = replace.write(bytes, hash, durability, |target| {
        // Stated before the lock goes: after that, another writer's file may be there.
        let key = StatKey::of(&std::fs::metadata(target)?);
        if let Some(lock) = lock {
            (lock.release)();
        }
        Ok(key)
    })?;
    Ok(Commit::Written(Version { key, hash }, flush))
}

/// Whether the file at `path` is `expected` (or missing), given what an
/// `lstat` of where its links lead found there (`found`: the same as a `stat`
/// of `path`, one syscall fewer).
fn still(path: &Path, found: Option<&Metadata>, expected: Option<&Version>) -> io::Result<bool> {
    let Some(meta) = found else {
        return Ok(true);
    };
    let Some(expected) = expected else {
        return Ok(false);
    };
    let key = StatKey::of(meta);
    if !meta.is_file() || key.size != expected.key.size {
        return Ok(false);
    }
    if key == expected.key && key.settled() {
        return Ok(true);
    }
    // Same size, another or a recent key (touched, or rewritten in place):
    // the bytes decide.
    let mut bytes = Vec::with_capacity(key.size as usize + 1);
    (&mut open_for_reading(path)?)
        .take(key.size + 1)
        .read_to_end(&mut bytes)?;
    Ok(content_hash(&bytes) == expected.hash)
}

#[cfg(test)]
#[path = "version_tests.rs"]
mod tests;
