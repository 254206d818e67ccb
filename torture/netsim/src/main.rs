//! flm-netsim: a FUSE pass-through file system over a backing directory that
//! stands in for a network drive (NFS, SMB, sshfs) in file-lock-manager's
//! torture tests. Two mounts of one backing directory are two "machines".
//!
//! Invariants:
//! - It mounts /dev/fuse itself with mount(2) (we run as root; no libfuse, no
//!   fusermount), with fstype `fuse.<subtype>`, so /proc/self/mountinfo shows
//!   e.g. `fuse.sshfs` as a real sshfs mount would.
//! - `mounted` is printed on stdout only once a `stat` of the mount's root has
//!   been answered through the mount.
//! - SIGTERM, SIGINT or SIGHUP unmount (lazily if busy) and exit 0, leaving no
//!   mount behind; an unmount by someone else (`umount`) also ends it with
//!   0; a stale mount left on the mount point by a killed run is detached
//!   before mounting.
//! - Requests are answered by a pool of threads (`--threads`), so the latency
//!   of one request delays only that request, not the whole mount.
//! - Everything else is in fs.rs (the pass-through) and control.rs (latency
//!   and fault injection).

mod control;
mod fs;

use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuser::{Config, Session, SessionACL};

const USAGE: &str = "\
usage: flm-netsim <backing-dir> <mountpoint> [options]
  --latency-ms MIN-MAX  sleep a random MIN..MAX ms before answering each request (default 0)
  --subtype NAME        mount as fstype fuse.NAME (e.g. sshfs, so it is seen as a network share)
  --fsname NAME         the mount's source name (default flm-netsim)
  --refuse-locks        flock and fcntl locks fail with ENOLCK
  --control FILE        JSON fault-injection file, re-read when it changes
  --attr-ttl-ms N       kernel cache time of names and attributes (default 0)
  --page-cache          no direct I/O: reads may be served from this mount's page cache
  --threads N           request threads (default 16)";

struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
    latency: (u64, u64),
    subtype: Option<String>,
    fsname: String,
    refuse_locks: bool,
    control: Option<PathBuf>,
    attr_ttl_ms: u64,
    page_cache: bool,
    threads: usize,
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut parsed = Args {
        backing: PathBuf::new(),
        mountpoint: PathBuf::new(),
        latency: (0, 0),
        subtype: None,
        fsname: "flm-netsim".into(),
        refuse_locks: false,
        control: None,
        attr_ttl_ms: 0,
        page_cache: false,
        threads: 16,
    };
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next().map(|v| v.to_string_lossy().into_owned()))
                .ok_or(format!("{flag} needs a value"))
        };
        let number = |text: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {text}"))
        };
        match flag.as_str() {
            "--latency-ms" => {
                let text = value()?;
                let (min, max) = text.split_once('-').unwrap_or((&text, &text));
                parsed.latency = (number(min)?, number(max)?);
                if parsed.latency.0 > parsed.latency.1 {
                    return Err(format!("--latency-ms {text}: MIN > MAX"));
                }
            }
            "--subtype" => parsed.subtype = Some(value()?),
            "--fsname" => parsed.fsname = value()?,
            "--refuse-locks" => parsed.refuse_locks = true,
            "--control" => parsed.control = Some(PathBuf::from(value()?)),
            "--attr-ttl-ms" => parsed.attr_ttl_ms = number(&value()?)?,
            "--page-cache" => parsed.page_cache = true,
            "--threads" => parsed.threads = number(&value()?)?.clamp(1, 256) as usize,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [backing, mountpoint] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| "need exactly <backing-dir> and <mountpoint>".to_string())?;
    parsed.backing = backing;
    parsed.mountpoint = mountpoint;
    Ok(parsed)
}

fn main() {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("flm-netsim: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("flm-netsim: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> io::Result<()> {
    // Before any thread exists, so that every thread inherits the mask and
    // only sigwait below ever takes these signals.
    let signals = block_signals();
    raise_fd_limit();

    let backing = std::fs::canonicalize(&args.backing)?;
    if !backing.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            backing.display()
        )));
    }
    detach_stale_mount(&args.mountpoint);
    let mountpoint = std::fs::canonicalize(&args.mountpoint)?;
    if mountpoint.starts_with(&backing) {
        return Err(io::Error::other(
            "the mount point must not be inside the backing directory",
        ));
    }

    let control = control::Control::new(args.control.clone(), args.latency);
    let opts = fs::Options {
        ttl: Duration::from_millis(args.attr_ttl_ms),
        direct_io: !args.page_cache,
        refuse_locks: args.refuse_locks,
    };
    let filesystem = fs::NetFs::new(&backing, opts, control)?;

    let dev_fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    mount(
        &dev_fuse,
        &mountpoint,
        args.subtype.as_deref(),
        &args.fsname,
    )?;
    let mut config = Config::default();
    config.acl = SessionACL::All;
    config.n_threads = Some(args.threads);
    let session =
        match Session::from_fd(filesystem, OwnedFd::from(dev_fuse), SessionACL::All, config) {
            Ok(session) => session,
            Err(e) => {
                unmount(&mountpoint);
                return Err(e);
            }
        };
    let background = session.spawn()?;

    // Usable once the kernel got an answer through the mount.
    match std::fs::metadata(&mountpoint) {
        Ok(meta) if meta.ino() == 1 => {}
        other => {
            unmount(&mountpoint);
            return Err(io::Error::other(format!("mount not usable: {other:?}")));
        }
    }
    println!("mounted");
    io::stdout().flush()?;

    // Until a signal, or until the session ends because someone else unmounted it.
    let signal = loop {
        if let Some(signal) = wait_for(&signals, Duration::from_millis(100)) {
            break signal;
        }
        if background.guard.is_finished() {
            eprintln!("flm-netsim: {} was unmounted", mountpoint.display());
            return background.join();
        }
    };
    eprintln!(
        "flm-netsim: signal {signal}: unmounting {}",
        mountpoint.display()
    );
    unmount(&mountpoint);
    // The kernel ends the connection once the mount is gone; files still open
    // on a lazily detached mount keep it alive, so do not wait for those long:
    // exiting closes /dev/fuse, and their calls then fail with ENOTCONN.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !background.guard.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if background.guard.is_finished() {
        if let Err(e) = background.join() {
            eprintln!("flm-netsim: session ended with {e}");
        }
    }
    Ok(())
}

fn c_path(path: &Path) -> io::Result<CString> {
    Ok(CString::new(path.as_os_str().as_bytes())?)
}

fn mount(
    dev_fuse: &std::fs::File,
    mountpoint: &Path,
    subtype: Option<&str>,
    fsname: &str,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fstype = match subtype {
        Some(subtype) => format!("fuse.{subtype}"),
        None => "fuse".to_string(),
    };
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
        dev_fuse.as_raw_fd()
    );
    let (source, target) = (CString::new(fsname)?, c_path(mountpoint)?);
    let (fstype, data) = (CString::new(fstype)?, CString::new(data)?);
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if ret != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mount {}: {e}", mountpoint.display()),
        ));
    }
    Ok(())
}

fn unmount(mountpoint: &Path) {
    let Ok(target) = c_path(mountpoint) else {
        return;
    };
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return;
    }
    let busy = io::Error::last_os_error();
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        eprintln!(
            "flm-netsim: umount {}: {busy}; lazy: {}",
            mountpoint.display(),
            io::Error::last_os_error()
        );
    }
}

/// A mount point whose daemon died answers ENOTCONN: detach it.
fn detach_stale_mount(mountpoint: &Path) {
    if let Err(e) = std::fs::metadata(mountpoint) {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            if let Ok(target) = c_path(mountpoint) {
                unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
                eprintln!(
                    "flm-netsim: detached a stale mount on {}",
                    mountpoint.display()
                );
            }
        }
    }
}

fn block_signals() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// One of the blocked signals, if it arrives within `timeout`.
fn wait_for(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
    (signal > 0).then_some(signal)
}

/// Each inode the kernel knows is an open fd: allow many.
fn raise_fd_limit() {
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
