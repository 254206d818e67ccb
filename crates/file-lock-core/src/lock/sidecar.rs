//! The sidecar `.<name>.lock` that carries the OS lock and the holder record.
//!
//! Invariants:
//! - The data file is never locked: writers replace it by rename, which would
//!   leave a lock on a dead inode.
//! - A lock taken on a sidecar handle counts only while the sidecar path still
//!   names that handle's file (`still_linked`). Cleanup may unlink the sidecar;
//!   a waiter that locked the unlinked inode must notice and start over.
//! - The sidecar is never followed through a symlink, is created mode 0600, and
//!   one owned by another user is refused (Unix).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{os_lock, Mode};

/// The sidecar path of a data file: `/dir/roles.json` → `/dir/.roles.json.lock`.
/// A name too long for that gets `.<stem>.lock` (a prefix of the name and a
/// hash of all of it: `paths::fit`), the same in every process, so that a file
/// that opens can always be locked.
pub fn sidecar_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(crate::paths::fit(".", std::ffi::OsStr::new(&name), ".lock"))
}

/// The sidecar belongs to another user: it is neither honoured nor removed
/// (`ELOCKFOREIGN`). Someone else's file could be a trap or a tampered lock.
#[derive(Debug)]
pub struct ForeignOwner {
    pub owner: u32,
}

impl std::fmt::Display for ForeignOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the lock file belongs to another user (uid {}); it is not honoured or removed",
            self.owner
        )
    }
}

impl std::error::Error for ForeignOwner {}

/// An open sidecar handle and the identity of the file it was opened on.
#[derive(Debug)]
pub struct Sidecar {
    file: File,
    /// This handle's open created the file (it did not exist before).
    created: bool,
    #[cfg(unix)]
    identity: (u64, u64),
}

impl Sidecar {
    /// Opens (creating if needed) the sidecar for locking and record writes:
    /// one `open`, as waiter threads do on every contended wait.
    pub fn open(path: &Path) -> io::Result<Sidecar> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        Self::open_with(path, &mut options)
    }

    /// `open`, also telling whether this open created the file (`created()`),
    /// for the handle a file keeps between acquisitions (opened once).
    pub fn open_noting_creation(path: &Path) -> io::Result<Sidecar> {
        // Create it, or open the one there; one removed in between (a lock-file
        // holder releasing) is created again.
        let mut attempts = 0;
        loop {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create_new(true);
            match Self::open_with(path, &mut options) {
                Ok(mut sidecar) => {
                    sidecar.created = true;
                    return Ok(sidecar);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match Self::open_existing(path) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 100 => {
                            attempts += 1
                        }
                        opened => return opened,
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether opening this handle created the file.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Opens an existing sidecar without creating it (for inspection).
    pub fn open_existing(path: &Path) -> io::Result<Sidecar> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        Self::open_with(path, &mut options)
    }

    #[cfg(unix)]
    fn open_with(path: &Path, options: &mut OpenOptions) -> io::Result<Sidecar> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let meta = regular_file_metadata(&file)?;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                ForeignOwner { owner: meta.uid() },
            ));
        }
        Ok(Sidecar {
            identity: (meta.dev(), meta.ino()),
            file,
            created: false,
        })
    }

    #[cfg(windows)]
    fn open_with(path: &Path, options: &mut OpenOptions) -> io::Result<Sidecar> {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::{
            FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_READ, FILE_SHARE_WRITE,
        };
        // Without FILE_SHARE_DELETE nobody can delete the sidecar while a handle is
        // open, so the unlinked-inode race of Unix cannot happen here.
        let file = options
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?;
        regular_file_metadata(&file)?;
        Ok(Sidecar {
            file,
            created: false,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether `path` still names the file this handle is open on.
    #[cfg(unix)]
    pub fn still_linked(&self, path: &Path) -> io::Result<bool> {
        super::interplay::names_inode(path, self.identity)
    }

    /// On Windows an open sidecar cannot be deleted or replaced (no FILE_SHARE_DELETE).
    #[cfg(windows)]
    pub fn still_linked(&self, _path: &Path) -> io::Result<bool> {
        Ok(true)
    }

    /// Removes the sidecar if nobody holds or waits for it: only while we hold it
    /// exclusively, and unlinking before unlocking (waiters then see a stale inode).
    pub fn remove_if_unused(self: Arc<Self>, path: &Path) -> bool {
        self.remove_when_unused(path, false)
    }

    /// `remove_if_unused`, only when it holds no record (nobody's: an open
    /// created it, and no holder wrote into it).
    pub fn remove_if_unused_and_empty(self: Arc<Self>, path: &Path) -> bool {
        self.remove_when_unused(path, true)
    }

    fn remove_when_unused(self: Arc<Self>, path: &Path, only_empty: bool) -> bool {
        // Exclusively (rule U of interplay.rs): a shared lock may sit beside a
        // shared holder that has not written its record yet. On a handle that
        // holds the lock shared, this converts it.
        if !matches!(os_lock::try_lock(&self.file, Mode::Exclusive), Ok(true)) {
            return false;
        }
        let empty = || self.file.metadata().is_ok_and(|m| m.len() == 0);
        if !matches!(self.still_linked(path), Ok(true)) || (only_empty && !empty()) {
            let _ = os_lock::unlock(&self.file);
            return false;
        }
        #[cfg(unix)]
        {
            let removed = std::fs::remove_file(path).is_ok();
            let _ = os_lock::unlock(&self.file);
            removed
        }
        #[cfg(windows)]
        {
            // Our own handle lacks FILE_SHARE_DELETE: close it first. Any other open
            // handle makes the delete fail, which is what we want.
            let _ = os_lock::unlock(&self.file);
            match Arc::try_unwrap(self) {
                Ok(sidecar) => {
                    drop(sidecar);
                    std::fs::remove_file(path).is_ok()
                }
                Err(_) => false,
            }
        }
    }
}

/// The metadata of an opened sidecar, which must be a regular file: a
/// folder, FIFO or device of that name is someone else's, not a lock.
fn regular_file_metadata(file: &File) -> io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the lock sidecar is not a regular file",
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder, the path of a sidecar in it, and the sidecar opened
    /// (so created) there.
    fn opened() -> (tempfile::TempDir, PathBuf, Sidecar) {
        let (dir, path) = crate::test_support::scratch(".a.lock");
        let sidecar = Sidecar::open(&path).unwrap();
        (dir, path, sidecar)
    }

    #[test]
    fn sidecar_sits_beside_the_file_with_a_dot_name() {
        assert_eq!(
            sidecar_path(Path::new("/data/roles.json")),
            PathBuf::from("/data/.roles.json.lock")
        );
    }

    #[test]
    fn sidecars_of_long_names_fit_and_are_the_same_in_every_process() {
        let fits = "r".repeat(249); // `.` + 249 + `.lock` = 255
        assert_eq!(
            sidecar_path(&Path::new("/data").join(&fits)),
            Path::new("/data").join(format!(".{fits}.lock"))
        );
        for name in ["r".repeat(250), "r".repeat(255), "é".repeat(127)] {
            let sidecar = sidecar_path(&Path::new("/data").join(&name));
            let file_name = sidecar.file_name().unwrap().to_str().unwrap();
            assert!(file_name.len() <= 255 && file_name.ends_with(".lock"));
            assert!(file_name.starts_with(&format!(".{}", &name[..32])));
            assert_eq!(sidecar, sidecar_path(&Path::new("/data").join(&name)));
        }
        assert_ne!(
            sidecar_path(Path::new(&format!("/data/{}a", "r".repeat(254)))),
            sidecar_path(Path::new(&format!("/data/{}b", "r".repeat(254))))
        );
    }

    #[cfg(unix)]
    #[test]
    fn sidecar_is_private_and_not_followed_through_symlinks() {
        let (dir, path, sidecar) = opened();
        assert_eq!(crate::test_support::permission_bits(&path), 0o600);
        assert!(sidecar.still_linked(&path).unwrap());

        let link = dir.path().join(".b.lock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(Sidecar::open(&link).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_sidecar_of_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            return; // only root can give a file away; the JS suite covers it as root too
        }
        let (_dir, path) = crate::test_support::scratch_file(".a.lock", "");
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let error = Sidecar::open(&path).unwrap_err();
        assert!(error.get_ref().unwrap().is::<ForeignOwner>());
        assert_eq!(
            crate::lock::LockError::io(&path, "open", error).code(),
            "ELOCKFOREIGN"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_unlinked_or_replaced_sidecar_is_noticed() {
        let (_dir, path, sidecar) = opened();
        std::fs::remove_file(&path).unwrap();
        assert!(!sidecar.still_linked(&path).unwrap());
        let _fresh = Sidecar::open(&path).unwrap();
        assert!(!sidecar.still_linked(&path).unwrap());
    }

    #[test]
    fn removal_waits_for_nobody_and_skips_a_held_sidecar() {
        let (_dir, path, holder) = opened();
        assert!(os_lock::try_lock(holder.file(), Mode::Shared).unwrap());
        assert!(!Arc::new(Sidecar::open(&path).unwrap()).remove_if_unused(&path));
        assert!(path.exists());
        os_lock::unlock(holder.file()).unwrap();
        assert!(Arc::new(Sidecar::open(&path).unwrap()).remove_if_unused(&path));
        assert!(!path.exists());
    }
}
