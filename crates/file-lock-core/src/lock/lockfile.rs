//! Primitives of the PID lock-file strategy, for file systems whose OS locks
//! cannot be trusted: the lock is the *existence* of the lock file. Where OS
//! locks do work, every step here also keeps the rules of `interplay.rs`, so
//! lock-file users and OS-lock users exclude each other on one file.
//!
//! Invariants:
//! - A lock file that is a symlink or belongs to another user is refused, never
//!   honoured or removed.
//! - A lock file is created with O_CREAT|O_EXCL|O_NOFOLLOW (Windows: CREATE_NEW),
//!   mode 0600, and its record is written in one write ending in a newline: a
//!   record without its newline, or that does not parse, is half-written.
//! - Where OS locks work, a lock file counts as ours only once we hold its OS
//!   lock and the path still names it (rule A), and it is removed or broken
//!   only while we hold its OS lock (rule U): a file whose OS lock someone
//!   holds is never broken, whatever its record says.
//! - A lock file is removed only by its holder (after checking the token is
//!   still ours) or by a breaker that proved it stale, never "removed then
//!   created": a holder takes it away by renaming it to a unique name first,
//!   so it can put back a successor's file it grabbed by mistake (a breaker
//!   without OS locks may have raced it).
//! - Stale means provably gone: on this machine (same host name, boot and PID
//!   namespace), the pid is dead or was reused (start time differs). Otherwise
//!   (another machine, boot or namespace, or a record that cannot be read)
//!   only time tells, and only our own monotonic clock counts: the file must
//!   stay byte-for-byte unchanged for `stale_after` while we watch, so
//!   wall-clock jumps and coarse mtimes can neither break a live lock early
//!   nor keep a dead one forever.
//! - At most one breaker works on a lock file at a time (`<lock>.break`, itself
//!   created O_EXCL), and it re-checks under that guard that the file it
//!   removes is the one it judged stale.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::holder_record::{now_ms, HolderRecord, Strategy};
use super::interplay::{self, Step};
use super::os_lock;
use super::Mode;
use crate::process::{self, Liveness, Whereabouts};

/// A breaker guard older than this (by its mtime: a guard is never rewritten)
/// is itself stale.
const BREAKER_STALE: Duration = Duration::from_secs(10);

/// An empty lock file this old is abandoned: a creator writes its record in the
/// same breath as it creates the file (or it is an OS-lock sidecar left where
/// OS locks turned out not to work).
pub const EMPTY_GRACE: Duration = Duration::from_secs(2);

/// What identifies one lock file: its inode where there is one, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    #[cfg(unix)]
    inode: (u64, u64),
    bytes: Vec<u8>,
}

impl Snapshot {
    /// The record, unless the file is half-written or foreign.
    pub fn record(&self) -> Option<HolderRecord> {
        let end = self.bytes.iter().position(|b| *b == b'\n')?;
        serde_json::from_slice(&self.bytes[..end]).ok()
    }

    /// How many bytes the file held when read (an empty one is judged sooner).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A lock file we created.
#[derive(Debug)]
pub struct Claim {
    pub token: String,
    pub fencing_token: u64,
    mode: Mode,
    acquired_at: u64,
    /// Kept open while held: it pins the inode, so "the path names this inode"
    /// proves the file is still ours (an inode cannot be reused while open).
    file: File,
    #[cfg(unix)]
    inode: (u64, u64),
    record_len: usize,
}

/// What an exclusive create of the lock file came to.
pub enum Created {
    /// Ours: created, its OS lock held where there are OS locks, record written.
    Held(Claim),
    /// A file is there already.
    Exists,
    /// We created it, but before we held it someone else took its OS lock (an
    /// OS-lock user: it is theirs), or removed it (it is nobody's): not ours.
    Lost,
}

impl Created {
    pub fn claim(self) -> Option<Claim> {
        match self {
            Created::Held(claim) => Some(claim),
            Created::Exists | Created::Lost => None,
        }
    }
}

impl Claim {
    /// A claim on `file`, its fencing token at least `fencing_floor`.
    fn new(file: File, #[cfg(unix)] inode: (u64, u64), mode: Mode, fencing_floor: u64) -> Claim {
        Claim {
            token: process::current().next_token(),
            fencing_token: now_us().max(fencing_floor),
            mode,
            acquired_at: now_ms(),
            #[cfg(unix)]
            inode,
            file,
            record_len: 0,
        }
    }

    /// Writes our record at the start of the file, padded over the
    /// `previous_len` bytes that were there.
    fn write_record(&mut self, previous_len: usize) -> io::Result<()> {
        let bytes = record_bytes(self, self.acquired_at)?;
        write_at_start(&self.file, &bytes, previous_len)?;
        self.record_len = bytes.len().max(previous_len);
        Ok(())
    }
}

/// Creates the lock file if nobody has it.
pub fn try_create(path: &Path, mode: Mode) -> io::Result<Created> {
    let file = match create_new(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Created::Exists),
        Err(e) => return Err(e),
    };
    interplay::step(Step::CreatedLockFile);
    // Without its OS lock the file is not removed on error (rule U): an empty
    // file is judged abandoned by the clock soon enough.
    #[cfg(unix)]
    let inode = inode_of(&file)?;
    // Also hold the OS lock where there is one, so OS-lock users wait for us in
    // the kernel. If one of them opened our new file and locked it first, it is
    // theirs: they will write their record, and we wait like anyone else.
    match os_lock::try_lock(&file, Mode::Exclusive) {
        Ok(false) => return Ok(Created::Lost),
        Ok(true) => {
            // Rule A: a lock counts only on the file the path still names. The new
            // file may have been removed before we locked it (an OS-lock user
            // cleaning up its idle sidecar, a breaker judging it abandoned).
            #[cfg(unix)]
            let linked = interplay::names_inode(path, inode)?;
            #[cfg(not(unix))]
            let linked = interplay::names(path, &file)?;
            if !linked {
                return Ok(Created::Lost);
            }
        }
        Err(e) if os_lock::means_unsupported(&e) => {} // the file's existence is the lock
        Err(e) => return Err(e),
    }
    // No record outlives a lock file, so the clock is the only floor here.
    #[cfg(unix)]
    let mut claim = Claim::new(file, inode, mode, 0);
    #[cfg(not(unix))]
    let mut claim = Claim::new(file, mode, 0);
    if let Err(e) = claim.write_record(0) {
        let _ = std::fs::remove_file(path); // still under its lock
        return Err(e);
    }
    Ok(Created::Held(claim))
}

/// What became of a lock file that was there already.
pub enum Existing {
    /// It was an idle OS-lock sidecar: it is our lock file now, OS lock held.
    Taken(Claim),
    /// Someone holds it (or may: it is not provably stale yet).
    Busy,
    /// It was provably stale and has been removed (why): create it again.
    Broken(String),
    /// It changed or vanished meanwhile: look again.
    Again,
}

/// Takes an existing lock file when it is free: an OS-lock sidecar whose OS
/// lock nobody holds is idle and taken over in place (rule R); any other file
/// is judged by `watch`, and one judged stale is broken under its OS lock
/// (rule U), so a holder that holds the OS lock — one writing its record, or
/// whose pid cannot be seen from here — is never broken, whatever its record says.
pub fn claim_existing(
    path: &Path,
    mode: Mode,
    watch: &mut StaleWatch,
    stale_after: Duration,
) -> io::Result<Existing> {
    let Some(seen) = observe(path)? else {
        return Ok(Existing::Again);
    };
    if seen.record().is_some_and(|r| r.strategy == Strategy::Os) {
        interplay::step(Step::JudgedExisting);
        match lock_named(path)? {
            Named::Locked(file) => {
                let now = snapshot_of(&file)?;
                let still_idle = now.record().is_some_and(|r| r.strategy == Strategy::Os);
                return if still_idle {
                    take_over(file, now, mode).map(Existing::Taken)
                } else {
                    Ok(Existing::Again)
                };
            }
            Named::Busy => return Ok(Existing::Busy),
            Named::Gone => return Ok(Existing::Again),
            // No OS locks here: a sidecar's record is judged like any other.
            Named::NoOsLocks(_) => {}
        }
    }
    match watch.judge(&seen, stale_after, Instant::now()) {
        Verdict::Held => Ok(Existing::Busy),
        Verdict::Stale(why) => {
            interplay::step(Step::JudgedExisting);
            Ok(match break_locked(path, &seen)? {
                Broken::Yes => Existing::Broken(why),
                Broken::Busy => Existing::Busy,
                Broken::Changed => Existing::Again,
            })
        }
    }
}

/// What came of breaking a lock file judged stale.
pub enum Broken {
    Yes,
    /// Its OS lock is held: someone is at it, whatever its record says.
    Busy,
    /// It changed, vanished, or another breaker is at work: look again.
    Changed,
}

/// Breaks the lock file judged stale as `judged`, holding its OS lock while
/// it goes where there are OS locks (rule U).
pub fn break_locked(path: &Path, judged: &Snapshot) -> io::Result<Broken> {
    let file = match lock_named(path)? {
        Named::Locked(file) | Named::NoOsLocks(file) => file,
        Named::Busy => return Ok(Broken::Busy),
        Named::Gone => return Ok(Broken::Changed),
    };
    if snapshot_of(&file)? != *judged {
        return Ok(Broken::Changed);
    }
    let broken = break_stale(path, judged)?;
    drop(file); // the OS lock goes after the name (rule U)
    Ok(if broken { Broken::Yes } else { Broken::Changed })
}

/// The file at the path, opened and locked.
enum Named {
    /// Its OS lock is ours and the path still names it (rule A).
    Locked(File),
    /// This file system has no OS locks.
    NoOsLocks(File),
    Busy,
    /// Vanished, or replaced before we locked it.
    Gone,
}

fn lock_named(path: &Path) -> io::Result<Named> {
    let file = match open_existing(path, true) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Named::Gone),
        Err(e) => return Err(e),
    };
    refuse_foreign(&file)?;
    match os_lock::try_lock(&file, Mode::Exclusive) {
        Ok(true) => {}
        Ok(false) => return Ok(Named::Busy),
        Err(e) if os_lock::means_unsupported(&e) => return Ok(Named::NoOsLocks(file)),
        Err(e) => return Err(e),
    }
    interplay::step(Step::LockedExisting);
    Ok(if interplay::names(path, &file)? {
        Named::Locked(file)
    } else {
        Named::Gone
    })
}

/// Writes our record into an idle sidecar whose OS lock we hold.
fn take_over(file: File, previous: Snapshot, mode: Mode) -> io::Result<Claim> {
    let previous_token = previous
        .record()
        .map_or(0, |r| r.fencing_token.saturating_add(1));
    #[cfg(unix)]
    let mut claim = Claim::new(file, previous.inode, mode, previous_token);
    #[cfg(not(unix))]
    let mut claim = Claim::new(file, mode, previous_token);
    claim.write_record(previous.bytes.len())?;
    Ok(claim)
}

/// Reads the lock file: `None` when there is none.
pub fn observe(path: &Path) -> io::Result<Option<Snapshot>> {
    Ok(observe_open(path, false)?.map(|(snapshot, _)| snapshot))
}

/// `observe`, also handing back the handle it read through (opened for
/// writing too when `write`), so the caller can probe that very file's OS lock.
pub fn observe_open(path: &Path, write: bool) -> io::Result<Option<(Snapshot, File)>> {
    let file = match open_existing(path, write) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    refuse_foreign(&file)?;
    Ok(Some((snapshot_of(&file)?, file)))
}

/// The identity and content of an open lock file.
fn snapshot_of(file: &File) -> io::Result<Snapshot> {
    use std::io::Seek;
    let mut bytes = Vec::with_capacity(512);
    let mut reader = file;
    reader.seek(io::SeekFrom::Start(0))?;
    reader.take(64 * 1024).read_to_end(&mut bytes)?;
    Ok(Snapshot {
        #[cfg(unix)]
        inode: inode_of(file)?,
        bytes,
    })
}

/// Rewrites our record with a fresh heartbeat. `Ok(false)`: the file is no
/// longer ours (broken by someone who judged it stale): the lock is lost.
pub fn heartbeat(path: &Path, claim: &Claim) -> io::Result<bool> {
    #[cfg(unix)]
    {
        if !names_our_file(path, claim)? {
            return Ok(false);
        }
        let fresh = record_bytes(claim, now_ms())?;
        write_at_start(&claim.file, &fresh, claim.record_len)?;
        Ok(true)
    }
    #[cfg(not(unix))]
    heartbeat_by_token(path, claim)
}

/// Whether `path` still names the inode our open handle is on (one `stat`).
#[cfg(unix)]
fn names_our_file(path: &Path, claim: &Claim) -> io::Result<bool> {
    interplay::names_inode(path, claim.inode)
}

#[cfg(not(unix))]
fn heartbeat_by_token(path: &Path, claim: &Claim) -> io::Result<bool> {
    let file = match open_existing(path, true) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let current = snapshot_of(&file)?;
    if current.record().map(|r| r.token) != Some(claim.token.clone()) {
        return Ok(false);
    }
    let fresh = record_bytes(claim, now_ms())?;
    write_at_start(&file, &fresh, current.bytes.len())?;
    Ok(true)
}

/// Removes our lock file. `Ok(false)` when it was no longer ours (it is left,
/// or put back, for whoever has it now).
pub fn remove_own(path: &Path, claim: &Claim) -> io::Result<bool> {
    #[cfg(unix)]
    let ours = |at: &Path| names_our_file(at, claim);
    #[cfg(not(unix))]
    let ours = |at: &Path| -> io::Result<bool> {
        Ok(observe(at)?
            .and_then(|snapshot| snapshot.record())
            .is_some_and(|record| record.token == claim.token))
    };
    // Most often a lost lock is seen here already: then the file is not touched at all.
    if !ours(path)? {
        return Ok(false);
    }
    interplay::step(Step::ReleasingLockFile);
    let aside = unique_beside(path, "released");
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) if os_lock::means_in_use(&e) => return release_in_place(claim).map(|()| true),
        Err(e) => return Err(e),
    }
    let still_ours = ours(&aside)?;
    if still_ours {
        std::fs::remove_file(&aside)?;
    } else {
        // A successor's file: put it back unless yet another one took its place.
        put_back(&aside, path)?;
    }
    Ok(still_ours)
}

/// Windows: an OS-lock user has the file open (its sidecar, without
/// FILE_SHARE_DELETE), so it cannot be moved away. Released where it is
/// instead: under our OS lock, our record becomes an idle OS-lock sidecar's
/// (rule R: its writer held the OS lock while it held the file), which a
/// lock-file user takes over in place and an OS-lock user simply locks. The
/// OS lock goes when the claim is dropped, after the record is written.
fn release_in_place(claim: &Claim) -> io::Result<()> {
    let bytes = record_bytes_as(claim, Strategy::Os, None)?;
    // Over all of what is there (a heartbeat may have written a longer record).
    let there = claim.file.metadata()?.len() as usize;
    write_at_start(&claim.file, &bytes, there.max(claim.record_len))
}

/// The judgement on a lock file someone else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Held,
    /// Provably abandoned, with the reason (for events and the audit trail).
    Stale(String),
}

/// Watches one lock file across polls, to judge it by our own clock.
#[derive(Debug, Default)]
pub struct StaleWatch {
    unchanged_since: Option<(Snapshot, Instant)>,
}

impl StaleWatch {
    pub fn judge(&mut self, snapshot: &Snapshot, stale_after: Duration, now: Instant) -> Verdict {
        // A pid is judged only where it means something: same host name, boot
        // and PID namespace. Anywhere else, only the clock below tells.
        match snapshot.record().map(|record| record.whereabouts()) {
            Some(Whereabouts::ThisMachine(Liveness::Dead)) => {
                return Verdict::Stale("its process has exited".into())
            }
            Some(Whereabouts::ThisMachine(Liveness::Reused)) => {
                return Verdict::Stale("its process has exited and its pid was reused".into())
            }
            Some(Whereabouts::ThisMachine(Liveness::Alive) | Whereabouts::ThisProcess) => {
                self.unchanged_since = None;
                return Verdict::Held;
            }
            Some(Whereabouts::Elsewhere) | None => {}
        }
        let since = match &self.unchanged_since {
            Some((seen, since)) if seen == snapshot => *since,
            _ => {
                self.unchanged_since = Some((snapshot.clone(), now));
                now
            }
        };
        let limit = if snapshot.bytes.is_empty() {
            stale_after.min(EMPTY_GRACE)
        } else {
            stale_after
        };
        if now.duration_since(since) < limit {
            return Verdict::Held;
        }
        Verdict::Stale(match snapshot.record() {
            Some(record) => format!(
                "its holder on {}{} has not refreshed it for {} ms",
                record.hostname,
                if record.hostname == process::current().hostname {
                    " (another boot or PID namespace)"
                } else {
                    ""
                },
                stale_after.as_millis()
            ),
            None => format!("it has been unreadable for {} ms", limit.as_millis()),
        })
    }
}

/// Removes a lock file judged stale, if it is still exactly `judged`.
/// `Ok(true)`: removed; `Ok(false)`: it changed, vanished, or another breaker
/// is at work: observe and judge again.
pub fn break_stale(path: &Path, judged: &Snapshot) -> io::Result<bool> {
    let guard_path = suffixed(path, ".break");
    let guard = match create_new(&guard_path) {
        Ok(guard) => guard,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            clear_abandoned_guard(&guard_path)?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let result = (|| {
        if observe(path)?.as_ref() != Some(judged) {
            return Ok(false);
        }
        let aside = unique_beside(path, "stale");
        std::fs::rename(path, &aside)?;
        // Under the guard only a holder's own release can have swapped the file;
        // then `aside` is not what we judged: put it back.
        if observe(&aside)?.as_ref() == Some(judged) {
            std::fs::remove_file(&aside)?;
            Ok(true)
        } else {
            put_back(&aside, path)?;
            Ok(false)
        }
    })();
    drop(guard);
    let _ = std::fs::remove_file(&guard_path);
    result
}

/// A breaker that crashed leaves its guard: after `BREAKER_STALE` unchanged
/// (by file age, as a guard is never rewritten) it is removed.
fn clear_abandoned_guard(guard_path: &Path) -> io::Result<()> {
    let age = std::fs::symlink_metadata(guard_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok());
    if age.is_some_and(|age| age > BREAKER_STALE) {
        let _ = std::fs::remove_file(guard_path);
    }
    Ok(())
}

fn record_bytes(claim: &Claim, heartbeat: u64) -> io::Result<Vec<u8>> {
    record_bytes_as(claim, Strategy::Lockfile, Some(heartbeat))
}

/// `claim`'s record as a holder of `strategy`, one JSON line.
fn record_bytes_as(
    claim: &Claim,
    strategy: Strategy,
    heartbeat: Option<u64>,
) -> io::Result<Vec<u8>> {
    let record = HolderRecord::ours(
        claim.mode,
        strategy,
        claim.token.clone(),
        claim.fencing_token,
        claim.acquired_at,
        heartbeat,
    );
    let mut bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `path` with `suffix` added to its name (`.roles.json.lock.break`); when that
/// would not fit `NAME_MAX`, built on the name's stem (`paths::fit`): the same
/// in every process, as the `.break` guard must be.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    path.with_file_name(crate::paths::fit("", name, suffix))
}

fn unique_beside(path: &Path, why: &str) -> PathBuf {
    suffixed(path, &format!(".{why}-{}", process::current().next_token()))
}

/// Moves `aside` back to `path` unless something is there now (then the
/// file at `aside` is removed: its owner will find its lock gone and say so).
fn put_back(aside: &Path, path: &Path) -> io::Result<()> {
    // link() fails rather than replace: whoever is at `path` now keeps it.
    let _ = std::fs::hard_link(aside, path);
    std::fs::remove_file(aside)
}

fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        options.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options.open(path)
}

fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// A lock file of another user is neither honoured nor removed (`ELOCKFOREIGN`).
#[cfg(unix)]
fn refuse_foreign(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = file.metadata()?.uid();
    if owner != rustix::process::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            super::sidecar::ForeignOwner { owner },
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_foreign(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn inode_of(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(unix)]
fn write_at_start(file: &File, bytes: &[u8], previous_len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut padded = bytes.to_vec();
    if padded.len() < previous_len {
        padded.resize(previous_len, b' ');
    }
    file.write_all_at(&padded, 0)
}

#[cfg(windows)]
fn write_at_start(file: &File, bytes: &[u8], previous_len: usize) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    let mut padded = bytes.to_vec();
    if padded.len() < previous_len {
        padded.resize(previous_len, b' ');
    }
    let mut offset = 0;
    while offset < padded.len() {
        offset += file.seek_write(&padded[offset..], offset as u64)?;
    }
    Ok(())
}

/// Lock files as other processes leave them, for the tests of this module and
/// of `diagnose`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A lock file as another process (or host) would have left it.
    pub(crate) fn plant(
        path: &Path,
        pid: u32,
        hostname: &str,
        start_time: Option<u64>,
        heartbeat: u64,
    ) {
        let record = HolderRecord {
            pid,
            hostname: hostname.into(),
            start_time,
            boot_id: None,
            pid_namespace: None,
            acquired_at: heartbeat,
            mode: Mode::Exclusive,
            token: format!("planted-{pid}-{heartbeat}"),
            fencing_token: 1,
            strategy: Strategy::Lockfile,
            heartbeat: Some(heartbeat),
        };
        plant_record(path, &record);
    }

    /// A lock file holding exactly `record`.
    pub(crate) fn plant_record(path: &Path, record: &HolderRecord) {
        let mut bytes = serde_json::to_vec(record).unwrap();
        bytes.push(b'\n');
        std::fs::write(path, bytes).unwrap();
    }
}

#[cfg(test)]
#[path = "lockfile_tests.rs"]
mod tests;
