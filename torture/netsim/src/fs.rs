//! The pass-through file system: every request is done on the backing
//! directory, after the control's latency and fault checks.
//!
//! Invariants:
//! - Each inode the kernel knows is held as an `O_PATH` fd on the backing file
//!   (never as a path), so renames and unlinks made through another mount, or
//!   directly in the backing directory, cannot make an inode number name the
//!   wrong file. The fd also pins the backing inode, so its number cannot be
//!   reused while the kernel still knows it.
//! - The FUSE inode number is the backing `st_ino` (root: 1), so two mounts of
//!   one backing directory report the same inode numbers, as NFS clients do.
//!   Files on another device, or with `st_ino` 1, get synthetic numbers.
//! - Create passes the caller's O_CREAT|O_EXCL to one `openat` on the backing
//!   directory, and rename is one `renameat2`: both are exactly as atomic as
//!   on the backing file system, across any number of mounts.
//! - Files are opened with FOPEN_DIRECT_IO (unless `--page-cache`): no read is
//!   served from this mount's page cache, so what another mount wrote is seen
//!   at once; with the default 0 ms TTLs, names and attributes are re-checked
//!   on every access too.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::control::Control;

pub struct Options {
    pub ttl: Duration,
    pub direct_io: bool,
    pub refuse_locks: bool,
}

struct Inode {
    fd: Arc<OwnedFd>,
    nlookup: u64,
}

struct Dir {
    file: File,
    entries: Vec<(u64, FileType, OsString)>,
}

pub struct NetFs {
    root: PathBuf,
    root_key: (u64, u64),
    opts: Options,
    control: Control,
    inodes: Mutex<HashMap<u64, Inode>>,
    synthetic: Mutex<HashMap<(u64, u64), u64>>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    dirs: Mutex<HashMap<u64, Arc<Dir>>>,
    next_handle: AtomicU64,
}

type Result<T> = std::result::Result<T, Errno>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn last_errno() -> Errno {
    Errno::from(io::Error::last_os_error())
}

fn check(ret: libc::c_int) -> Result<libc::c_int> {
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

fn cstr(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Errno::EINVAL)
}

/// The path that reopens what an fd refers to (works for O_PATH fds).
fn proc_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL")
}

fn stat_fd(fd: RawFd) -> Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    check(unsafe {
        libc::fstatat(
            fd,
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    let (tv_sec, tv_nsec) = match t {
        None => (0, libc::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, libc::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(t)) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(_) => (0, 0),
        },
    };
    libc::timespec { tv_sec, tv_nsec }
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

impl NetFs {
    pub fn new(root: &Path, opts: Options, control: Control) -> io::Result<NetFs> {
        let c_root = CString::new(root.as_os_str().as_bytes())?;
        let fd = unsafe {
            libc::open(
                c_root.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = stat_fd(fd.as_raw_fd()).map_err(|e| io::Error::from_raw_os_error(e.code()))?;
        let root_inode = Inode {
            fd: Arc::new(fd),
            nlookup: u64::MAX / 2,
        };
        Ok(NetFs {
            root: root.to_path_buf(),
            root_key: (st.st_dev, st.st_ino),
            opts,
            control,
            inodes: Mutex::new(HashMap::from([(1, root_inode)])),
            synthetic: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        })
    }

    /// Latency and fault injection for one request.
    fn gate(&self, op: &str, modifies: bool, path: &dyn Fn() -> String) -> Result<()> {
        self.control
            .gate(op, modifies, path)
            .map_err(Errno::from_i32)
    }

    fn fuse_ino(&self, dev: u64, ino: u64) -> u64 {
        if (dev, ino) == self.root_key {
            return 1;
        }
        if dev == self.root_key.0 && ino != 1 && ino < 1 << 62 {
            return ino;
        }
        let mut synthetic = lock(&self.synthetic);
        let next = (1 << 62) + synthetic.len() as u64;
        *synthetic.entry((dev, ino)).or_insert(next)
    }

    fn attr(&self, st: &libc::stat) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.fuse_ino(st.st_dev, st.st_ino)),
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            crtime: time(st.st_ctime, st.st_ctime_nsec),
            kind: kind_of(st.st_mode),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
            flags: 0,
        }
    }

    fn inode_fd(&self, ino: INodeNo) -> Result<Arc<OwnedFd>> {
        lock(&self.inodes)
            .get(&ino.0)
            .map(|i| i.fd.clone())
            .ok_or(Errno::ESTALE)
    }

    fn file(&self, fh: FileHandle) -> Result<Arc<File>> {
        lock(&self.files).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    /// Counts one kernel reference to the inode `fd` is on, keeping `fd` if it is new.
    fn remember(&self, fd: OwnedFd) -> Result<FileAttr> {
        let st = stat_fd(fd.as_raw_fd())?;
        let attr = self.attr(&st);
        lock(&self.inodes)
            .entry(attr.ino.0)
            .and_modify(|inode| inode.nlookup += 1)
            .or_insert_with(|| Inode {
                fd: Arc::new(fd),
                nlookup: 1,
            });
        Ok(attr)
    }

    fn lookup_at(&self, parent: RawFd, name: &OsStr) -> Result<FileAttr> {
        let c_name = cstr(name.as_bytes())?;
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = check(unsafe { libc::openat(parent, c_name.as_ptr(), flags) })?;
        self.remember(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Reopens an inode's O_PATH fd as a real open file.
    fn reopen(&self, fd: RawFd, flags: i32) -> Result<OwnedFd> {
        let fd = check(unsafe { libc::open(proc_path(fd).as_ptr(), flags | libc::O_CLOEXEC) })?;
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Files made for another user are theirs, as on a real share (we run as root).
    fn give_to_caller(&self, req: &Request, parent: RawFd, name: &CString) {
        if req.uid() != unsafe { libc::geteuid() } {
            unsafe {
                libc::fchownat(
                    parent,
                    name.as_ptr(),
                    req.uid(),
                    req.gid(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
        }
    }

    fn new_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    fn open_flags(&self) -> FopenFlags {
        if self.opts.direct_io {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::empty()
        }
    }

    /// Mount-relative path of what `fd` refers to, for fault rules and logs.
    fn fd_path(&self, fd: RawFd) -> String {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        match target.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => target.display().to_string(),
        }
    }

    fn ino_path(&self, ino: INodeNo) -> String {
        self.inode_fd(ino)
            .map(|fd| self.fd_path(fd.as_raw_fd()))
            .unwrap_or_default()
    }

    fn child_path(&self, parent: INodeNo, name: &OsStr) -> String {
        let dir = self.ino_path(parent);
        format!("{}/{}", dir.trim_end_matches('/'), name.to_string_lossy())
    }

    fn fh_path(&self, fh: FileHandle) -> String {
        self.file(fh)
            .map(|f| self.fd_path(f.as_raw_fd()))
            .unwrap_or_default()
    }

    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
        fh: Option<FileHandle>,
    ) -> Result<FileAttr> {
        self.gate("setattr", true, &|| self.ino_path(ino))?;
        let fd = self.inode_fd(ino)?;
        let file = fh.and_then(|fh| self.file(fh).ok());
        let path = proc_path(fd.as_raw_fd());
        if let Some(mode) = mode {
            let mode = mode & 0o7777;
            check(match &file {
                Some(f) => unsafe { libc::fchmod(f.as_raw_fd(), mode) },
                None => unsafe { libc::chmod(path.as_ptr(), mode) },
            })?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            let (uid, gid) = (owner.0.unwrap_or(u32::MAX), owner.1.unwrap_or(u32::MAX));
            let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
            check(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, flags) })?;
        }
        if let Some(size) = size {
            check(match &file {
                Some(f) => unsafe { libc::ftruncate(f.as_raw_fd(), size as libc::off_t) },
                None => unsafe { libc::truncate(path.as_ptr(), size as libc::off_t) },
            })?;
        }
        if times.0.is_some() || times.1.is_some() {
            let ts = [timespec(times.0), timespec(times.1)];
            check(match &file {
                Some(f) => unsafe { libc::futimens(f.as_raw_fd(), ts.as_ptr()) },
                None => unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), ts.as_ptr(), 0) },
            })?;
        }
        let st = stat_fd(file.as_ref().map_or(fd.as_raw_fd(), |f| f.as_raw_fd()))?;
        Ok(self.attr(&st))
    }

    fn do_create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64)> {
        self.gate("create", true, &|| self.child_path(parent, name))?;
        let dir = self.inode_fd(parent)?;
        let c_name = cstr(name.as_bytes())?;
        // O_EXCL stays in `flags`: the backing openat is the one atomic test-and-create.
        let flags =
            (flags | libc::O_CREAT | libc::O_CLOEXEC) & !(libc::O_NOFOLLOW | libc::O_DIRECT);
        let fd = check(unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags, mode) })?;
        let file = unsafe { File::from_raw_fd(fd) };
        self.give_to_caller(req, dir.as_raw_fd(), &c_name);
        // The O_PATH fd comes from the open file, so it is surely the same inode.
        let attr = self.remember(self.reopen(file.as_raw_fd(), libc::O_PATH)?)?;
        let fh = self.new_handle();
        lock(&self.files).insert(fh, Arc::new(file));
        Ok((attr, fh))
    }

    fn do_opendir(&self, ino: INodeNo) -> Result<u64> {
        self.gate("opendir", false, &|| self.ino_path(ino))?;
        let fd = self.inode_fd(ino)?;
        let file = File::from(self.reopen(fd.as_raw_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?);
        let mut entries = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (1, FileType::Directory, OsString::from("..")),
        ];
        let listing = std::fs::read_dir(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(Errno::from)?;
        for entry in listing {
            let entry = entry.map_err(Errno::from)?;
            let kind = entry.file_type().map_or(FileType::RegularFile, |t| {
                FileType::from_std(t).unwrap_or(FileType::RegularFile)
            });
            let ino = self.fuse_ino(self.root_key.0, entry.ino());
            entries.push((ino, kind, entry.file_name()));
        }
        let fh = self.new_handle();
        lock(&self.dirs).insert(fh, Arc::new(Dir { file, entries }));
        Ok(fh)
    }
}

fn empty(reply: ReplyEmpty, result: Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl NetFs {
    fn entry(&self, reply: ReplyEntry, result: Result<FileAttr>) {
        match result {
            Ok(attr) => reply.entry(&self.opts.ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

impl Filesystem for NetFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Lookups and readdirs in one directory run in parallel, as on a real share.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        if self.opts.direct_io {
            // Let mmap work on direct-I/O files where the kernel allows it.
            let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        }
        if self.opts.refuse_locks {
            // Without these the kernel would emulate locks inside this mount only.
            config
                .add_capabilities(InitFlags::FUSE_POSIX_LOCKS | InitFlags::FUSE_FLOCK_LOCKS)
                .map_err(|missing| io::Error::other(format!("kernel lacks {missing:?}")))?;
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let result = (|| {
            self.gate("lookup", false, &|| self.child_path(parent, name))?;
            self.lookup_at(self.inode_fd(parent)?.as_raw_fd(), name)
        })();
        self.entry(reply, result);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut inodes = lock(&self.inodes);
        if let Some(inode) = inodes.get_mut(&ino.0) {
            inode.nlookup = inode.nlookup.saturating_sub(nlookup);
            if inode.nlookup == 0 && ino.0 != 1 {
                inodes.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let result = (|| {
            self.gate("getattr", false, &|| self.ino_path(ino))?;
            // An open file's own fd answers for it even once renamed over or unlinked.
            match fh.and_then(|fh| self.file(fh).ok()) {
                Some(file) => stat_fd(file.as_raw_fd()),
                None => stat_fd(self.inode_fd(ino)?.as_raw_fd()),
            }
        })();
        match result {
            Ok(st) => reply.attr(&self.opts.ttl, &self.attr(&st)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.do_setattr(ino, mode, (uid, gid), size, (atime, mtime), fh) {
            Ok(attr) => reply.attr(&self.opts.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let result = (|| {
            self.gate("readlink", false, &|| self.ino_path(ino))?;
            let fd = self.inode_fd(ino)?;
            let mut buf = vec![0u8; libc::PATH_MAX as usize];
            let n = unsafe {
                libc::readlinkat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(last_errno());
            }
            buf.truncate(n as usize);
            Ok(buf)
        })();
        match result {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = (|| {
            self.gate("mkdir", true, &|| self.child_path(parent, name))?;
            let dir = self.inode_fd(parent)?;
            let c_name = cstr(name.as_bytes())?;
            check(unsafe { libc::mkdirat(dir.as_raw_fd(), c_name.as_ptr(), mode & !umask) })?;
            self.give_to_caller(req, dir.as_raw_fd(), &c_name);
            self.lookup_at(dir.as_raw_fd(), name)
        })();
        self.entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            (|| {
                self.gate("unlink", true, &|| self.child_path(parent, name))?;
                let dir = self.inode_fd(parent)?;
                let c_name = cstr(name.as_bytes())?;
                check(unsafe { libc::unlinkat(dir.as_raw_fd(), c_name.as_ptr(), 0) }).map(drop)
            })(),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            (|| {
                self.gate("rmdir", true, &|| self.child_path(parent, name))?;
                let dir = self.inode_fd(parent)?;
                let c_name = cstr(name.as_bytes())?;
                check(unsafe {
                    libc::unlinkat(dir.as_raw_fd(), c_name.as_ptr(), libc::AT_REMOVEDIR)
                })
                .map(drop)
            })(),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let result = (|| {
            self.gate("symlink", true, &|| self.child_path(parent, link_name))?;
            let dir = self.inode_fd(parent)?;
            let c_name = cstr(link_name.as_bytes())?;
            let c_target = cstr(target.as_os_str().as_bytes())?;
            check(unsafe { libc::symlinkat(c_target.as_ptr(), dir.as_raw_fd(), c_name.as_ptr()) })?;
            self.give_to_caller(req, dir.as_raw_fd(), &c_name);
            self.lookup_at(dir.as_raw_fd(), link_name)
        })();
        self.entry(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            (|| {
                let path = || {
                    format!(
                        "{} -> {}",
                        self.child_path(parent, name),
                        self.child_path(newparent, newname)
                    )
                };
                self.gate("rename", true, &path)?;
                let (from, to) = (self.inode_fd(parent)?, self.inode_fd(newparent)?);
                let (c_from, c_to) = (cstr(name.as_bytes())?, cstr(newname.as_bytes())?);
                check(unsafe {
                    libc::renameat2(
                        from.as_raw_fd(),
                        c_from.as_ptr(),
                        to.as_raw_fd(),
                        c_to.as_ptr(),
                        flags.bits(),
                    )
                })
                .map(drop)
            })(),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = (|| {
            self.gate("link", true, &|| self.child_path(newparent, newname))?;
            let (fd, dir) = (self.inode_fd(ino)?, self.inode_fd(newparent)?);
            let c_name = cstr(newname.as_bytes())?;
            check(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    proc_path(fd.as_raw_fd()).as_ptr(),
                    dir.as_raw_fd(),
                    c_name.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            })?;
            self.lookup_at(dir.as_raw_fd(), newname)
        })();
        self.entry(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let modifies =
                flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0;
            self.gate("open", modifies, &|| self.ino_path(ino))?;
            let fd = self.inode_fd(ino)?;
            let strip =
                libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_DIRECT;
            let file = File::from(self.reopen(fd.as_raw_fd(), flags.0 & !strip)?);
            let fh = self.new_handle();
            lock(&self.files).insert(fh, Arc::new(file));
            Ok(fh)
        })();
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), self.open_flags()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = (|| {
            self.gate("read", false, &|| self.fh_path(fh))?;
            let file = self.file(fh)?;
            let mut buf = vec![0u8; size as usize];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Errno::from(e)),
                }
            }
            buf.truncate(filled);
            Ok(buf)
        })();
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = (|| {
            self.gate("write", true, &|| self.fh_path(fh))?;
            // An O_APPEND backing fd appends whatever the offset: right across mounts.
            self.file(fh)?.write_at(data, offset).map_err(Errno::from)
        })();
        match result {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.gate("flush", false, &|| self.fh_path(fh)));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let gated = self.gate("release", false, &|| self.fh_path(fh));
        lock(&self.files).remove(&fh.0);
        empty(reply, gated);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            (|| {
                self.gate("fsync", false, &|| self.fh_path(fh))?;
                let file = self.file(fh)?;
                let synced = if datasync {
                    file.sync_data()
                } else {
                    file.sync_all()
                };
                synced.map_err(Errno::from)
            })(),
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.do_opendir(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = (|| {
            self.gate("readdir", false, &|| self.ino_path(ino))?;
            lock(&self.dirs).get(&fh.0).cloned().ok_or(Errno::EBADF)
        })();
        match result {
            Ok(dir) => {
                for (i, (ino, kind, name)) in dir.entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let gated = self.gate("releasedir", false, &|| self.ino_path(ino));
        lock(&self.dirs).remove(&fh.0);
        empty(reply, gated);
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            (|| {
                self.gate("fsyncdir", false, &|| self.ino_path(ino))?;
                let dir = lock(&self.dirs).get(&fh.0).cloned().ok_or(Errno::EBADF)?;
                dir.file.sync_all().map_err(Errno::from)
            })(),
        );
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let result = (|| {
            self.gate("statfs", false, &|| self.ino_path(ino))?;
            let fd = self.inode_fd(INodeNo::ROOT)?;
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            check(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) })?;
            Ok(st)
        })();
        match result {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                st.f_bsize as u32,
                st.f_namemax as u32,
                st.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(req, parent, name, mode & !umask, flags) {
            Ok((attr, fh)) => reply.created(
                &self.opts.ttl,
                &attr,
                Generation(0),
                FileHandle(fh),
                self.open_flags(),
            ),
            Err(e) => reply.error(e),
        }
    }

    // Only reached with --refuse-locks (otherwise the kernel keeps locks itself,
    // per mount, as with sshfs): every lock is refused, unlocking is fine.
    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        match self.gate("getlk", false, &|| self.ino_path(ino)) {
            Ok(()) => reply.error(Errno::ENOLCK),
            Err(e) => reply.error(e),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _owner: LockOwner,
        _start: u64,
        _end: u64,
        typ: i32,
        _pid: u32,
        _sleep: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            (|| {
                self.gate("setlk", false, &|| self.ino_path(ino))?;
                if typ == libc::F_UNLCK {
                    Ok(())
                } else {
                    Err(Errno::ENOLCK)
                }
            })(),
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            (|| {
                self.gate("fallocate", true, &|| self.fh_path(fh))?;
                let file = self.file(fh)?;
                check(unsafe {
                    libc::fallocate(
                        file.as_raw_fd(),
                        mode,
                        offset as libc::off_t,
                        length as libc::off_t,
                    )
                })
                .map(drop)
            })(),
        );
    }
}
