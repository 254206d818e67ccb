//! Who this process is, as recorded in lock metadata.
//!
//! Invariant: the identity is computed once per process and never changes, so
//! a record written by this process can always be recognised as ours
//! (`whereabouts` says `ThisProcess`), and a pid reused by another program can be told apart by its
//! start time (`liveness`). A process is only ever reported dead when the OS
//! says no such process exists (ESRCH); a permission error means it is alive.
//!
//! A pid means something only where it was handed out: on one host name, in
//! one boot, in one PID namespace. A record therefore also carries the boot
//! (Linux: `boot_id`; macOS and Windows: the boot time) and the PID namespace
//! (Linux), and `whereabouts` asks the OS about a recorded pid only when all
//! of them match ours (or the record predates them). A record from anywhere
//! else (another machine that shares our host name, a container, a Flatpak or
//! Snap sandbox, a previous boot) can only be judged by time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The identity written into every lock record this process makes.
#[derive(Debug, Clone)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub hostname: String,
    /// Platform start time of the process (opaque; compared for equality only).
    pub start_time: Option<u64>,
    /// Which boot of the machine: Linux `/proc/sys/kernel/random/boot_id`;
    /// macOS and Windows `boottime:<seconds since the epoch>` (compare with `same_boot`).
    pub boot_id: Option<String>,
    /// Linux: the PID namespace, as `/proc/self/ns/pid` names it (`pid:[4026531836]`).
    pub pid_namespace: Option<String>,
    /// Random per-process prefix of every token this process hands out.
    nonce: String,
    /// A short hash of host name, boot and PID namespace, for file names (`file_token`).
    place: String,
}

static CURRENT: OnceLock<ProcessIdentity> = OnceLock::new();
static TOKEN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This process's identity.
pub fn current() -> &'static ProcessIdentity {
    CURRENT.get_or_init(|| {
        let pid = std::process::id();
        let mut nonce = [0u8; 8];
        // A zero nonce only makes tokens guessable, never wrong: they stay unique per process.
        let _ = getrandom::fill(&mut nonce);
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        let boot_id = boot_id();
        let pid_namespace = pid_namespace();
        ProcessIdentity {
            pid,
            place: place_tag(&hostname, boot_id.as_deref(), pid_namespace.as_deref()),
            hostname,
            start_time: start_time_of(pid),
            boot_id,
            pid_namespace,
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        }
    })
}

/// Where the writer of a record (or of a file named with its pid) lives, seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whereabouts {
    /// This very process.
    ThisProcess,
    /// Same host, boot and PID namespace: the pid means something here, and was
    /// checked (kill(pid, 0) / OpenProcess, and the start time).
    ThisMachine(Liveness),
    /// Another host, another boot, or another PID namespace: the pid means
    /// nothing here, so only time tells whether its holder is gone.
    Elsewhere,
}

/// Whether two boot ids name the same boot. Linux boot ids are equal or not;
/// boot times (`boottime:<s>`, macOS and Windows) are derived from the wall
/// clock and may differ by a little for one boot: within 2 s they are the same.
pub fn same_boot(a: &str, b: &str) -> bool {
    match (boot_time_of(a), boot_time_of(b)) {
        (Some(a), Some(b)) => a.abs_diff(b) <= BOOT_TIME_TOLERANCE_S,
        _ => a == b,
    }
}

/// Two boot times this close (in seconds) are one boot.
const BOOT_TIME_TOLERANCE_S: u64 = 2;

const BOOT_TIME_PREFIX: &str = "boottime:";

fn boot_time_of(id: &str) -> Option<u64> {
    id.strip_prefix(BOOT_TIME_PREFIX)?.parse().ok()
}

#[cfg(any(target_os = "macos", windows, test))]
fn boot_time_text(seconds_since_epoch: u64) -> String {
    format!("{BOOT_TIME_PREFIX}{seconds_since_epoch}")
}

/// Whether a file name's token field (`<token>`, or `<token>~<place>` as
/// `ProcessIdentity::file_token` makes it) lets the pid beside it be checked
/// here: its place is ours, or it has none (a name of a previous version,
/// judged as before). A pid from another host, boot or PID namespace must not
/// be checked here: a pid that looks dead here may belong to a live writer.
pub fn file_pid_is_checkable(token_field: &str) -> bool {
    match token_field.rsplit_once('~') {
        Some((_, place)) => place == current().place,
        None => true,
    }
}

impl ProcessIdentity {
    /// A token unique across processes and acquisitions (random prefix + counter).
    pub fn next_token(&self) -> String {
        let n = TOKEN_COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.nonce)
    }

    /// A token for a file name that also tells where the pid beside it means
    /// something: `<token>~<place>` (see `file_pid_is_checkable`). It holds no dots.
    pub fn file_token(&self) -> String {
        format!("{}~{}", self.next_token(), self.place)
    }

    /// Where the writer of a record with these fields lives, seen from this
    /// process. Another host name, or a boot or PID namespace that is known on
    /// both sides and differs: `Elsewhere`. A boot or namespace in the record
    /// that we cannot tell for ourselves: `Elsewhere` too (we cannot show the
    /// pid means something here). A record without them (written by a
    /// previous version) on our host name: judged by its pid, as before.
    pub fn whereabouts(
        &self,
        pid: u32,
        hostname: &str,
        start_time: Option<u64>,
        boot_id: Option<&str>,
        pid_namespace: Option<&str>,
    ) -> Whereabouts {
        if !self.pids_mean_the_same(hostname, boot_id, pid_namespace) {
            Whereabouts::Elsewhere
        } else if pid == self.pid && start_time == self.start_time {
            Whereabouts::ThisProcess
        } else {
            Whereabouts::ThisMachine(liveness(pid, start_time))
        }
    }

    /// Whether a pid written on `hostname`, in `boot_id` and `pid_namespace`
    /// (`None`: not recorded), names the same process as that pid here.
    fn pids_mean_the_same(
        &self,
        hostname: &str,
        boot_id: Option<&str>,
        pid_namespace: Option<&str>,
    ) -> bool {
        let boot_matches = match (boot_id, self.boot_id.as_deref()) {
            (None, _) => true,
            (Some(theirs), Some(ours)) => same_boot(theirs, ours),
            (Some(_), None) => false,
        };
        let namespace_matches = match (pid_namespace, self.pid_namespace.as_deref()) {
            (None, _) => true,
            (Some(theirs), Some(ours)) => theirs == ours,
            (Some(_), None) => false,
        };
        hostname == self.hostname && boot_matches && namespace_matches
    }
}

/// A short stable hash (FNV-1a, 48 bits in hex) of where our pids mean something.
fn place_tag(hostname: &str, boot_id: Option<&str>, pid_namespace: Option<&str>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [hostname, boot_id.unwrap_or(""), pid_namespace.unwrap_or("")] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:012x}", hash >> 16)
}

/// This boot: `/proc/sys/kernel/random/boot_id` (a random UUID per boot).
#[cfg(target_os = "linux")]
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// This boot: `kern.boottime`, in whole seconds since the epoch.
#[cfg(target_os = "macos")]
fn boot_id() -> Option<String> {
    let mut mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    let mut boot: libc::timeval = unsafe { std::mem::zeroed() };
    let mut size = std::mem::size_of::<libc::timeval>();
    let result = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            &mut boot as *mut libc::timeval as *mut libc::c_void,
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if result != 0 || size != std::mem::size_of::<libc::timeval>() || boot.tv_sec <= 0 {
        return None;
    }
    let rounded = boot.tv_sec as u64 + u64::from(boot.tv_usec >= 500_000);
    Some(boot_time_text(rounded))
}

/// This boot: now minus the time since boot (`GetTickCount64`), in whole
/// seconds since the epoch. It moves with the wall clock, hence `same_boot`'s tolerance.
#[cfg(windows)]
fn boot_id() -> Option<String> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let since_boot = Duration::from_millis(unsafe {
        windows_sys::Win32::System::SystemInformation::GetTickCount64()
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let boot = now.checked_sub(since_boot)?;
    Some(boot_time_text((boot.as_millis() as u64 + 500) / 1000))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn boot_id() -> Option<String> {
    None
}

/// This PID namespace: `/proc/self/ns/pid` (`pid:[4026531836]`), unique within a boot.
#[cfg(target_os = "linux")]
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(link.to_string_lossy().into_owned()).filter(|ns| !ns.is_empty())
}

/// macOS and Windows have no PID namespaces (a Windows container is another host name).
#[cfg(not(target_os = "linux"))]
fn pid_namespace() -> Option<String> {
    None
}

/// Whether the process that wrote a lock record still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running, and (when both start times are known) the very same process.
    Alive,
    /// No process has that pid.
    Dead,
    /// A process has that pid, but it started at another time: the pid was reused.
    Reused,
}

/// Whether `pid` (which started at `start_time`, when known) still runs on
/// this machine. Permission errors mean alive: the process exists.
pub fn liveness(pid: u32, start_time: Option<u64>) -> Liveness {
    if !exists(pid) {
        return Liveness::Dead;
    }
    match (start_time, start_time_of(pid)) {
        (Some(recorded), Some(now)) if recorded != now => Liveness::Reused,
        _ => Liveness::Alive,
    }
}

#[cfg(unix)]
fn exists(pid: u32) -> bool {
    // 0 and negatives address process groups, not a process.
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // kill(pid, 0): 0 = exists; EPERM = exists but not ours; ESRCH = gone.
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

#[cfg(windows)]
fn exists(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_ACCESS_DENIED};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    const STILL_ACTIVE: u32 = 259;
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return GetLastError() == ERROR_ACCESS_DENIED;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        ok == 0 || code == STILL_ACTIVE
    }
}

#[cfg(not(any(unix, windows)))]
fn exists(_pid: u32) -> bool {
    true
}

/// Start time of `pid`: `/proc/PID/stat` field 22 (clock ticks since boot).
#[cfg(target_os = "linux")]
pub fn start_time_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may itself contain ')' and spaces: parse after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // `after_name` starts at field 3, so field 22 is the 20th token.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Start time of `pid` in microseconds since the epoch (`proc_pidinfo`).
#[cfg(target_os = "macos")]
pub fn start_time_of(pid: u32) -> Option<u64> {
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    let written = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            &mut info as *mut _ as *mut libc::c_void,
            size,
        )
    };
    (written == size).then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

/// Creation time of `pid` as a FILETIME (100 ns ticks), from `GetProcessTimes`.
#[cfg(windows)]
pub fn start_time_of(pid: u32) -> Option<u64> {
    use windows_sys::Win32::Foundation::{CloseHandle, FILETIME};
    use windows_sys::Win32::System::Threading::{
        GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let zero = || FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return None;
        }
        let (mut created, mut exited, mut kernel, mut user) = (zero(), zero(), zero(), zero());
        let ok = GetProcessTimes(handle, &mut created, &mut exited, &mut kernel, &mut user);
        CloseHandle(handle);
        (ok != 0)
            .then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn start_time_of(_pid: u32) -> Option<u64> {
    None
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
