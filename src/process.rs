//! Who this process is, as recorded in lock metadata.
//!
//! Invariant: the identity is computed once per process and never changes, so
//! a record written by this process can always be recognised as ours
//! (`is_current`), and a pid reused by another program can be told apart by its
//! start time (`liveness`). A process is only ever reported dead when the OS
//! says no such process exists (ESRCH); a permission error means it is alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The identity written into every lock record this process makes.
#[derive(Debug, Clone)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub hostname: String,
    /// Platform start time of the process (opaque; compared for equality only).
    pub start_time: Option<u64>,
    /// Random per-process prefix of every token this process hands out.
    nonce: String,
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
        ProcessIdentity {
            pid,
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            start_time: start_time_of(pid),
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        }
    })
}

impl ProcessIdentity {
    /// A token unique across processes and acquisitions (random prefix + counter).
    pub fn next_token(&self) -> String {
        let n = TOKEN_COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.nonce)
    }

    /// Whether a record with these fields was written by this very process.
    pub fn is_current(&self, pid: u32, hostname: &str, start_time: Option<u64>) -> bool {
        pid == self.pid && hostname == self.hostname && start_time == self.start_time
    }
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
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 and negatives address process groups, not a process
    }
    // kill(pid, 0): 0 = exists; EPERM = exists but not ours; ESRCH = gone.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_recognises_itself() {
        let me = current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.is_current(me.pid, &me.hostname, me.start_time));
        assert!(!me.is_current(me.pid + 1, &me.hostname, me.start_time));
        assert_ne!(me.next_token(), me.next_token());
    }

    #[cfg(unix)]
    #[test]
    fn liveness_tells_running_dead_and_reused_pids_apart() {
        let me = current();
        assert_eq!(liveness(me.pid, me.start_time), Liveness::Alive);
        assert_eq!(liveness(me.pid, None), Liveness::Alive);
        if let Some(start) = me.start_time {
            assert_eq!(liveness(me.pid, Some(start + 1)), Liveness::Reused);
        }
        // A child that has exited and been reaped leaves its pid unused (for now).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(liveness(pid, None), Liveness::Dead);
        // pid 1 belongs to another user here or is us: either way it exists.
        assert_ne!(liveness(1, None), Liveness::Dead);
        assert_eq!(liveness(0, None), Liveness::Dead);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn start_time_is_read_for_live_processes_only() {
        assert!(start_time_of(std::process::id()).is_some());
        assert_eq!(start_time_of(u32::MAX - 1), None);
    }
}
