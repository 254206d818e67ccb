//! What the tests of many modules set up the same way: a fresh folder of
//! their own (so no test sees another's files and nothing outlives the test),
//! what is left in it, a process that has exited, a holder elsewhere.
//!
//! Invariant: only tests use it (`#[cfg(test)]`), and nothing here asserts:
//! each test still checks what it is about itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use crate::lock::{HolderRecord, Mode, Strategy};

/// A fresh folder and the path of `name` in it (nothing created there yet).
/// The folder goes when the `TempDir` is dropped: keep it for the whole test.
pub(crate) fn scratch(name: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// `scratch`, with `name` written holding `contents`.
pub(crate) fn scratch_file(name: &str, contents: &str) -> (TempDir, PathBuf) {
    let (dir, path) = scratch(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// The names of what is in `dir`, sorted (read_dir's order is the file
/// system's).
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The permission bits of `path` (`0o600` for a private file).
#[cfg(unix)]
pub(crate) fn permission_bits(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Makes the file at `path` look last written `age` ago: cleanups judge
/// whether a leftover is abandoned by that.
#[cfg_attr(not(unix), allow(dead_code))] // the cleanup tests are Unix-only
pub(crate) fn age_by(path: &Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

/// Renames `from` over `to` as a Windows program saving a file must: a
/// replace fails with a sharing error while anyone has the target open (our
/// own watch reading it after the previous change, an indexer), unless the
/// rename has POSIX semantics (NTFS on Windows 10 and later; not Wine, nor
/// older Windows or FAT), so it is retried for up to 2 s there. One try
/// elsewhere.
pub(crate) fn rename_over(from: &Path, to: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::rename(from, to) {
            Err(e)
                if cfg!(windows)
                    && e.kind() == std::io::ErrorKind::PermissionDenied
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result.unwrap(),
        }
    }
}

/// The pid of a process that has exited.
pub(crate) fn dead_pid() -> u32 {
    #[cfg(unix)]
    let mut child = std::process::Command::new("true").spawn().unwrap();
    #[cfg(windows)]
    let mut child = std::process::Command::new("cmd")
        .args(["/C", "exit"])
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A lock-file record of pid 1 on our host name, written in another PID
/// namespace: its pid says nothing about any process here.
pub(crate) fn pid_one_in_another_namespace(heartbeat: u64) -> HolderRecord {
    let mut record = HolderRecord::ours(
        Mode::Exclusive,
        Strategy::Lockfile,
        "t-elsewhere".into(),
        1,
        0,
        Some(heartbeat),
    );
    record.pid = 1;
    record.start_time = None;
    record.pid_namespace = Some("pid:[1]".into());
    record
}
