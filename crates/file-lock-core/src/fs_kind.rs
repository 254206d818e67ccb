//! Local disk or network share. On a share, OS locks may be emulated or ignored
//! by the server and other machines' writes raise no change events, so callers
//! stretch their timeouts and say where the file is.
//!
//! Invariant: detection never fails an operation: whatever cannot be told is
//! reported as local (the OS lock is then tried, and its errors still count).

use std::path::Path;

/// The kind of file system a directory is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsKind {
    Local,
    /// A network share, with the file system's short name (`nfs`, `smb`, `sshfs`…).
    Network(String),
}

impl FsKind {
    pub fn is_network(&self) -> bool {
        matches!(self, FsKind::Network(_))
    }

    /// `local`, or the share's file system name.
    pub fn name(&self) -> &str {
        match self {
            FsKind::Local => "local",
            FsKind::Network(name) => name,
        }
    }
}

/// The kind of file system `dir` is on.
pub fn detect(dir: &Path) -> FsKind {
    platform::detect(dir).unwrap_or(FsKind::Local)
}

/// The file system's own type name, for display (`ext4`, `tmpfs`, `nfs4`,
/// `sshfs`…), when it can be told. Never used to decide anything.
pub fn type_name(dir: &Path) -> Option<String> {
    platform::type_name(dir)
}

#[cfg(target_os = "linux")]
mod platform {
    use super::FsKind;
    use std::path::Path;

    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517B;
    const CIFS: i64 = 0xFF53_4D42;
    const SMB2: i64 = 0xFE53_4D42;
    const CEPH: i64 = 0x00C3_6400;
    const AFS: i64 = 0x5346_414F;
    const V9FS: i64 = 0x0102_1997;
    const FUSE: i64 = 0x6573_5546;

    /// FUSE file systems that reach another machine.
    const NETWORK_FUSE: &[&str] = &[
        "sshfs",
        "s3fs",
        "rclone",
        "gcsfuse",
        "glusterfs",
        "davfs",
        "goofys",
        "juicefs",
        "cephfs",
    ];

    pub fn detect(dir: &Path) -> Option<FsKind> {
        let stats = rustix::fs::statfs(dir).ok()?;
        let network = |name: &str| Some(FsKind::Network(name.to_string()));
        match stats.f_type as i64 {
            NFS => network("nfs"),
            SMB => network("smb"),
            CIFS => network("cifs"),
            SMB2 => network("smb2"),
            CEPH => network("ceph"),
            AFS => network("afs"),
            V9FS => network("9p"),
            FUSE => fuse_subtype(dir)
                .filter(|subtype| NETWORK_FUSE.contains(&subtype.as_str()))
                .map(FsKind::Network)
                .or(Some(FsKind::Local)),
            _ => Some(FsKind::Local),
        }
    }

    pub fn type_name(dir: &Path) -> Option<String> {
        fuse_subtype(&std::fs::canonicalize(dir).ok()?)
    }

    /// `sshfs` for a `fuse.sshfs` mount: the mount of the longest mount point
    /// containing `dir`, from /proc/self/mountinfo.
    fn fuse_subtype(dir: &Path) -> Option<String> {
        fuse_subtype_in(&std::fs::read_to_string("/proc/self/mountinfo").ok()?, dir)
    }

    pub(super) fn fuse_subtype_in(mountinfo: &str, dir: &Path) -> Option<String> {
        mountinfo
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let mount_point = unescape(fields.get(4)?);
                let separator = fields.iter().position(|f| *f == "-")?;
                let fstype = fields.get(separator + 1)?;
                dir.starts_with(&mount_point).then(|| {
                    (
                        mount_point.len(),
                        fstype.strip_prefix("fuse.").unwrap_or(fstype).to_string(),
                    )
                })
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, subtype)| subtype)
    }

    /// mountinfo escapes space, tab, newline and backslash as octal.
    fn unescape(field: &str) -> String {
        field
            .replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::FsKind;
    use std::path::Path;

    pub fn detect(dir: &Path) -> Option<FsKind> {
        let stats = rustix::fs::statfs(dir).ok()?;
        if stats.f_flags & (libc::MNT_LOCAL as u32) != 0 {
            return Some(FsKind::Local);
        }
        Some(FsKind::Network(fs_type_name(&stats)))
    }

    pub fn type_name(dir: &Path) -> Option<String> {
        rustix::fs::statfs(dir)
            .ok()
            .map(|stats| fs_type_name(&stats))
    }

    /// `f_fstypename`, a NUL-terminated C string in a fixed array.
    fn fs_type_name(stats: &rustix::fs::StatFs) -> String {
        let bytes: Vec<u8> = stats
            .f_fstypename
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(windows)]
mod platform {
    use super::FsKind;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Storage::FileSystem::{GetDriveTypeW, GetVolumePathNameW};

    const DRIVE_REMOTE: u32 = 4;

    pub fn detect(dir: &Path) -> Option<FsKind> {
        let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
        let mut root = [0u16; 1024];
        let ok = unsafe { GetVolumePathNameW(wide.as_ptr(), root.as_mut_ptr(), root.len() as u32) };
        if ok == 0 {
            return None;
        }
        let remote = unsafe { GetDriveTypeW(root.as_ptr()) } == DRIVE_REMOTE;
        Some(if remote {
            FsKind::Network("smb".into())
        } else {
            FsKind::Local
        })
    }

    pub fn type_name(_dir: &Path) -> Option<String> {
        None
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod platform {
    pub fn detect(_dir: &std::path::Path) -> Option<super::FsKind> {
        None
    }

    pub fn type_name(_dir: &std::path::Path) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_dir_is_local_and_a_missing_dir_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect(dir.path()), FsKind::Local);
        assert_eq!(detect(Path::new("/no/such/dir/anywhere")), FsKind::Local);
        assert_eq!(FsKind::Network("nfs".into()).name(), "nfs");
        assert!(FsKind::Network("nfs".into()).is_network());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fuse_mount_is_named_by_its_longest_containing_mount_point() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 22 0:35 / /mnt/remote\\040box rw,nosuid - fuse.sshfs me@host:/srv rw
41 40 0:36 / /mnt/remote\\040box/local rw - fuse.ntfs-3g /dev/sdb1 rw";
        let subtype = |dir: &str| platform::fuse_subtype_in(mountinfo, Path::new(dir));
        assert_eq!(subtype("/mnt/remote box/data").as_deref(), Some("sshfs"));
        assert_eq!(
            subtype("/mnt/remote box/local/x").as_deref(),
            Some("ntfs-3g")
        );
        assert_eq!(subtype("/home").as_deref(), Some("ext4"));
    }
}
