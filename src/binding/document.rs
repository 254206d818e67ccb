//! The document store's file side for JS (`lib/document/`): reading a
//! version, committing a text over it, atomic replace and stale temp cleanup,
//! as free functions. The caller holds the lock (it may hand it over for the
//! commit to let go), except for `commitDocumentAtOnce`, which takes it.
//!
//! Invariants:
//! - A document's read and its write are one trip off the JS thread each
//!   (`readDocument`, `commitDocument`: `document::version`), but a read of a
//!   file of at most 64 KiB, which is done on the JS thread
//!   (`readSmallDocument`: cheaper than the hop); whether the file is still
//!   the version known is one `stat` on the JS thread (`documentIsCurrent`,
//!   ~2 µs on a local disk: cheaper than any hop).
//! - A commit given its lock lets it go right after the rename (the engine's
//!   release, as `release()` does), and resolves after the directory fsync.
//!   `commitDocumentAtOnce` takes the lock only if it is free at once (the
//!   engine's `try_acquire`, off the JS thread), writes only over the version
//!   given, and never resolves with the lock still held.
//! - A replace happens off the JS thread and rejects with the engine's code
//!   (`coded`); a big text crosses as a string, never as a JS Buffer (a 50 MB
//!   Buffer's external memory made V8 collect garbage on the JS thread).
//! - Cleanup removes only temp files whose writer is provably gone
//!   (`document::atomic_write::remove_stale_temps`).

use std::io;
use std::path::Path;

use napi::bindgen_prelude::AsyncTask;
use napi::bindgen_prelude::{Buffer, ClassInstance, Either};
use napi_derive::napi;

use file_lock_core::document::atomic_write::{self, Durability, Flush};
use file_lock_core::document::version::{self, Commit, Current, Found, UnderLock, Version};
use file_lock_core::lock::{LockError, Mode, ReleaseReason};

use super::coded::{off_thread, to_napi_error, Coded, OffThread};
use super::manager::NativeLockManager;

/// Replaces `path` with `data` atomically (unique temp file, rename), durably
/// when `durable` (fsync of file and directory), off the JS thread. Rejects
/// with an `Error` whose `code` is the errno code. `data` may be a string
/// (written as UTF-8).
// (Called from JS only: unused in `cargo test`.)
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<void>")]
pub fn replace_file(
    path: String,
    data: Either<Buffer, String>,
    durable: bool,
) -> napi::Result<AsyncTask<OffThread<()>>, String> {
    let bytes: Vec<u8> = match data {
        Either::A(buffer) => buffer.to_vec(),
        Either::B(text) => text.into_bytes(),
    };
    let durability = durability(durable);
    Ok(off_thread(move || {
        atomic_write::replace(Path::new(&path), &bytes, durability)
            .map(|_flush| ()) // a plain replace has no audit trail to tell
            .map_err(|e| LockError::io(&path, "write", e).into())
    }))
}

/// Removes temp files of `path` left by writers that died; resolves with how many.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<number>")]
pub fn remove_stale_temps(path: String) -> napi::Result<AsyncTask<OffThread<u32>>, String> {
    Ok(off_thread(move || {
        // A directory we cannot list just has nothing we may clean.
        Ok(atomic_write::remove_stale_temps(Path::new(&path)).unwrap_or(0) as u32)
    }))
}

/// What `readDocument` found.
#[napi(object)]
pub struct DocumentRead {
    /// `held`: the read was given the version held and the file's stat says
    /// it may still be that version (nothing read).
    #[napi(ts_type = "'missing' | 'file' | 'notAFile' | 'tooBig' | 'held'")]
    pub kind: String,
    /// The file's bytes (`file`).
    pub bytes: Option<Buffer>,
    /// The version read, an opaque token for `commitDocument` (`file`).
    pub version: Option<String>,
    /// What it is instead of a regular file ("a FIFO (named pipe)"…: `notAFile`).
    pub what: Option<String>,
    /// Its size, when known (`tooBig`).
    pub size: Option<f64>,
}

fn durability(durable: bool) -> Durability {
    if durable {
        Durability::Fsync
    } else {
        Durability::None
    }
}

/// Reads the regular file at `path` (through links), at most `maxBytes`, off
/// the JS thread: its bytes and version, or what it is instead. With `held`
/// (a version token), nothing is read when the stat says the file may still
/// be that version (`kind: 'held'`, as `documentIsCurrent`'s 'yes' or
/// 'unsure'): one stat where the two calls made two.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<DocumentRead>")]
pub fn read_document(
    path: String,
    max_bytes: f64,
    held: Option<String>,
) -> napi::Result<AsyncTask<OffThread<DocumentRead>>, String> {
    let limit = byte_limit(max_bytes);
    Ok(off_thread(move || {
        Ok(document_read(read_found(&path, limit, held.as_deref())?))
    }))
}

/// What is at `path`, read up to `limit` bytes (both readers); `None` when
/// the stat says it may still be the version `held` (a token).
fn read_found(path: &str, limit: u64, held: Option<&str>) -> Result<Option<Found>, LockError> {
    let held = held.and_then(Version::from_token);
    version::read_unless_held(Path::new(path), limit, held.as_ref())
        .map_err(|e| LockError::io(path, "read", e))
}

/// Past this size a document is never read on the JS thread.
const SMALL_READ: u64 = 64 * 1024;

/// `readDocument` on the JS thread, for a file of at most 64 KiB (a settings
/// or roles file): a stat, an open and a read, ~10 µs on a local disk, where a
/// trip to the thread pool and back costs ~40 µs. Null for a bigger file (read
/// it with `readDocument`): at most 64 KiB + 1 bytes are read here, and a
/// FIFO or device is refused before it is opened, as off the thread.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn read_small_document(
    path: String,
    max_bytes: f64,
    held: Option<String>,
) -> napi::Result<Option<DocumentRead>, String> {
    let limit = byte_limit(max_bytes);
    let found = read_found(&path, limit.min(SMALL_READ), held.as_deref()).map_err(to_napi_error)?;
    Ok(match found {
        Some(Found::TooBig(_)) if limit > SMALL_READ => None,
        found => Some(document_read(found)),
    })
}

fn byte_limit(max_bytes: f64) -> u64 {
    if max_bytes.is_finite() && max_bytes >= 0.0 {
        max_bytes as u64
    } else {
        u64::MAX - 1
    }
}

fn nothing_read(kind: &str) -> DocumentRead {
    DocumentRead {
        kind: kind.to_string(),
        bytes: None,
        version: None,
        what: None,
        size: None,
    }
}

/// What a read found, for JS (`None`: the version held, not read).
fn document_read(found: Option<Found>) -> DocumentRead {
    let Some(found) = found else {
        return nothing_read("held");
    };
    match found {
        Found::Missing => nothing_read("missing"),
        Found::NotAFile(what) => DocumentRead {
            what: Some(what.to_string()),
            ..nothing_read("notAFile")
        },
        Found::TooBig(size) => DocumentRead {
            size: size.map(|s| s as f64),
            ..nothing_read("tooBig")
        },
        Found::File { bytes, version } => DocumentRead {
            bytes: Some(bytes.into()),
            version: Some(version.token()),
            ..nothing_read("file")
        },
    }
}

/// What `commitDocument` did.
#[napi(object)]
pub struct DocumentCommit {
    /// The new version's token; absent when nothing was written (the file
    /// changed, or lies elsewhere than the lock).
    pub version: Option<String>,
    /// The file lies elsewhere than `lockedPath` (a link re-pointed): nothing written.
    pub elsewhere: bool,
    /// The lock `lockId` was let go of (right after the rename): JS only
    /// updates its bookkeeping. False when it was not held any more (lost).
    pub released: bool,
    /// Apple only: why the file had a plain fsync instead of F_FULLFSYNC (the
    /// file system refused it), for the audit trail; absent when fully flushed.
    pub weak_flush: Option<String>,
    /// `commitDocumentAtOnce` only: written, but the lock it took was let go
    /// by the engine before the rename was done (its lease ran out, its lock
    /// file was taken, the manager closed): another writer may have run.
    pub lost: bool,
}

impl DocumentCommit {
    fn done(version: Option<String>, elsewhere: bool, released: bool) -> DocumentCommit {
        DocumentCommit {
            version,
            elsewhere,
            released,
            weak_flush: None,
            lost: false,
        }
    }

    /// What a commit's outcome says to JS.
    fn of(outcome: io::Result<Commit>, path: &str, released: bool) -> Result<Self, Coded> {
        match outcome {
            Ok(Commit::Written(version, flush)) => Ok(DocumentCommit {
                weak_flush: match flush {
                    Flush::Full => None,
                    Flush::PlainFsync(why) => Some(why),
                },
                ..DocumentCommit::done(Some(version.token()), false, released)
            }),
            Ok(Commit::Changed) => Ok(DocumentCommit::done(None, false, released)),
            Ok(Commit::Elsewhere) => Ok(DocumentCommit::done(None, true, released)),
            Err(e) => Err(LockError::io(path, "write", e).into()),
        }
    }
}

/// Writes `data` over `path` in one step if the file is still `expected` (a
/// token from `readDocument` or a previous commit; null: only a missing file
/// may be written): check, temp file, fsync, rename, directory fsync.
///
/// Given the lock it runs under (`manager`, `lockId`, and `lockedPath`, the
/// canonical path that lock was taken on), it writes only if the file still
/// lies there, and once it wrote it lets that lock go itself, right after the
/// rename and before the directory fsync: the next holder (in any process)
/// starts while ours is made durable. The promise still resolves only once
/// the directory fsync is done.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<DocumentCommit>")]
pub fn commit_document(
    path: String,
    expected: Option<String>,
    data: Either<Buffer, String>,
    durable: bool,
    manager: Option<ClassInstance<NativeLockManager>>,
    lock_id: Option<i64>,
    locked_path: Option<String>,
) -> napi::Result<AsyncTask<OffThread<DocumentCommit>>, String> {
    let bytes: Vec<u8> = match data {
        Either::A(buffer) => buffer.to_vec(),
        Either::B(text) => text.into_bytes(),
    };
    // A token we did not make knows no version: only a missing file is written.
    let expected = expected.as_deref().and_then(Version::from_token);
    let lock = match (manager, lock_id, locked_path) {
        (Some(manager), Some(id), Some(locked)) => {
            Some((manager.core().clone(), id as u64, locked))
        }
        _ => None,
    };
    Ok(off_thread(move || {
        let mut released = false;
        let mut release = || {
            if let Some((core, id, _)) = &lock {
                released = core.release(*id, ReleaseReason::Explicit);
            }
        };
        let under = lock.as_ref().map(|(_, _, locked)| UnderLock {
            locked: Path::new(locked),
            release: &mut release,
        });
        let outcome = version::commit_under(
            Path::new(&path),
            expected.as_ref(),
            &bytes,
            durability(durable),
            under,
        );
        DocumentCommit::of(outcome, &path, released)
    }))
}

/// `commitDocument` taking the file's exclusive lock itself, off the JS
/// thread, when it is free right now (in this process and outside it): a
/// write whose caller applied its change to `expected` without holding the
/// lock. Under the lock the commit checks the file is still `expected`
/// (else `version` is absent and nothing is written), writes, and lets the
/// lock go right after the rename, as `commitDocument` does; a lock that is
/// not free (or cannot be taken) does nothing either (no `version`). Either
/// way the lock is not held when the promise resolves.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<DocumentCommit>")]
pub fn commit_document_at_once(
    path: String,
    expected: String,
    text: String,
    durable: bool,
    manager: ClassInstance<NativeLockManager>,
) -> napi::Result<AsyncTask<OffThread<DocumentCommit>>, String> {
    let bytes = text.into_bytes();
    let expected = Version::from_token(&expected);
    let core = manager.core().clone();
    Ok(off_thread(move || {
        let nothing_done = DocumentCommit::done(None, false, false);
        let Some(expected) = expected else {
            return Ok(nothing_done);
        };
        let held = match core.try_acquire(&path, Mode::Exclusive) {
            Ok(Some(held)) => held,
            // Taken, or not takeable here: the caller's locked way says why.
            Ok(None) | Err(_) => return Ok(nothing_done),
        };
        let mut released = false;
        let outcome = {
            let mut release = || released = held.release(ReleaseReason::Explicit);
            version::commit_under(
                Path::new(&path),
                Some(&expected),
                &bytes,
                durability(durable),
                Some(UnderLock {
                    locked: held.path(),
                    release: &mut release,
                }),
            )
        };
        let written = matches!(outcome, Ok(Commit::Written(..)));
        if !released {
            // Nothing written (changed, elsewhere, failed): let go at once.
            // (Written and not released by us: the engine let go first.)
            held.release(ReleaseReason::Explicit);
        }
        Ok(DocumentCommit {
            lost: written && !released,
            ..DocumentCommit::of(outcome, &path, released)?
        })
    }))
}

// (Registered with Node by napi outside `cfg(test)`.)
#[cfg_attr(test, allow(dead_code))]
/// Whether `path` is still `version`, by one stat on this thread: `'yes'`,
/// `'no'`, or `'unsure'` (same stat, but too recent to trust without reading).
#[napi(ts_return_type = "'yes' | 'no' | 'unsure'")]
pub fn document_is_current(path: String, version: String) -> &'static str {
    match Version::from_token(&version).map(|v| version::is_current(Path::new(&path), &v)) {
        Some(Current::Yes) => "yes",
        Some(Current::Unsure) => "unsure",
        Some(Current::No) | None => "no",
    }
}
