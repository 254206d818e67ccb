//! The holder record kept in the sidecar: who holds the lock, since when, and
//! the fencing token of that acquisition.
//!
//! Invariants:
//! - Only a holder writes the record (before it can release: a deferred write
//!   happens under the file's queue mutex), in one positioned write at offset 0,
//!   padded with spaces to cover the previous record, so no truncate is needed
//!   and a reader sees either a whole JSON object or something that does not
//!   parse (reported as "holder unknown", never trusted).
//! - Fencing tokens never go backwards: each acquisition writes
//!   `max(previous + 1, now in µs)`, so the order survives the sidecar being
//!   deleted and re-created.
//! - A record says where its pid means something (host name, boot, PID
//!   namespace: `HolderRecord::whereabouts`). Fields added since the first
//!   version are optional both ways: its records (without them) still parse,
//!   and it reads ours, ignoring what it does not know.

use std::fs::File;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Mode;
use crate::process::{self, Whereabouts};

/// Records longer than this are not ours (ours are ~250 bytes).
const MAX_RECORD: usize = 4096;

/// Which mechanism holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// flock / LockFileEx on the sidecar.
    Os,
    /// The existence of the lock file, with a heartbeat.
    Lockfile,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Os => "os",
            Strategy::Lockfile => "lockfile",
        }
    }
}

/// The JSON record in the sidecar. Unknown fields are ignored (never
/// `deny_unknown_fields`): records of later versions must stay readable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderRecord {
    pub pid: u32,
    pub hostname: String,
    pub start_time: Option<u64>,
    /// The writer's boot (`ProcessIdentity::boot_id`); absent in records of the first version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The writer's PID namespace (Linux); absent in records of the first version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub acquired_at: u64,
    pub mode: Mode,
    pub token: String,
    pub fencing_token: u64,
    pub strategy: Strategy,
    /// Lock-file strategy: when the holder last proved it is alive (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
}

impl HolderRecord {
    /// A record of this process (its pid, host name, start time, boot and PID namespace).
    pub fn ours(
        mode: Mode,
        strategy: Strategy,
        token: String,
        fencing_token: u64,
        acquired_at: u64,
        heartbeat: Option<u64>,
    ) -> HolderRecord {
        let me = process::current();
        HolderRecord {
            pid: me.pid,
            hostname: me.hostname.clone(),
            start_time: me.start_time,
            boot_id: me.boot_id.clone(),
            pid_namespace: me.pid_namespace.clone(),
            acquired_at,
            mode,
            token,
            fencing_token,
            strategy,
            heartbeat,
        }
    }

    /// Where its writer lives: only `ThisMachine` holders can be checked by pid.
    pub fn whereabouts(&self) -> Whereabouts {
        process::current().whereabouts(
            self.pid,
            &self.hostname,
            self.start_time,
            self.boot_id.as_deref(),
            self.pid_namespace.as_deref(),
        )
    }
}

/// A holder as reported to users: what can be said from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub mode: Mode,
    pub strategy: Strategy,
    pub same_process: bool,
    pub same_host: bool,
    /// Only filled when the manager was asked to expose pids.
    pub pid: Option<u32>,
    pub hostname: Option<String>,
    pub acquired_at: Option<u64>,
    pub fencing_token: Option<u64>,
    /// A sentence for a UI: "another process on this machine since 12:01:02 (UTC)".
    pub description: String,
}

impl Holder {
    /// The view of a record; `mode` comes from the lock probe, not from the record,
    /// because a shared record may have been written by a reader who left.
    pub fn from_record(record: Option<&HolderRecord>, mode: Mode, expose_pids: bool) -> Holder {
        let me = process::current();
        let Some(r) = record else {
            return Holder {
                mode,
                strategy: Strategy::Os,
                same_process: false,
                same_host: false,
                pid: None,
                hostname: None,
                acquired_at: None,
                fencing_token: None,
                description: "another process (no readable holder record)".into(),
            };
        };
        let whereabouts = r.whereabouts();
        let same_process = whereabouts == Whereabouts::ThisProcess;
        let same_host = matches!(
            whereabouts,
            Whereabouts::ThisProcess | Whereabouts::ThisMachine(_)
        );
        let who = match whereabouts {
            Whereabouts::ThisProcess => "this process".to_string(),
            Whereabouts::ThisMachine(_) => "another process on this machine".to_string(),
            // Same host name, but another boot or PID namespace: a container or
            // sandbox here, or another machine of the same name.
            Whereabouts::Elsewhere if r.hostname == me.hostname => format!(
                "a process in another PID namespace or boot on host name {}",
                r.hostname
            ),
            Whereabouts::Elsewhere => format!("a process on {}", r.hostname),
        };
        let pid = expose_pids.then_some(r.pid);
        let pid_text = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        Holder {
            mode,
            strategy: r.strategy,
            same_process,
            same_host,
            pid,
            hostname: Some(r.hostname.clone()),
            acquired_at: Some(r.acquired_at),
            fencing_token: Some(r.fencing_token),
            description: format!("{who}{pid_text} since {}", utc_clock(r.acquired_at)),
        }
    }

    /// A holder inside this process, known without reading the sidecar.
    pub fn this_process(mode: Mode) -> Holder {
        Holder {
            mode,
            strategy: Strategy::Os,
            same_process: true,
            same_host: true,
            pid: None,
            hostname: None,
            acquired_at: None,
            fencing_token: None,
            description: "this process (another caller in the same app)".into(),
        }
    }
}

/// `HH:MM:SS (UTC)` of a millisecond timestamp.
fn utc_clock(ms: u64) -> String {
    let secs = ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02} (UTC)",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Reads the record at offset 0: `(parsed record, bytes of content seen)`.
pub fn read_record(file: &File) -> io::Result<(Option<HolderRecord>, usize)> {
    let mut buf = [0u8; MAX_RECORD];
    let mut len = 0;
    while len < buf.len() {
        let n = read_at(file, &mut buf[len..], len as u64)?;
        len += n;
        // A short read of a regular file is its end: spare the extra syscall.
        if n == 0 || len < buf.len() {
            break;
        }
    }
    // A record ends at its newline: whatever follows is padding or the tail of a
    // longer record that two shared holders raced to overwrite.
    let text = &buf[..len];
    let end = text.iter().position(|b| *b == b'\n').unwrap_or(len);
    Ok((serde_json::from_slice(&text[..end]).ok(), len))
}

/// What a new holder needs from the previous record: its fencing token, and
/// how many bytes to cover when writing over it.
#[derive(Debug, Clone, Copy)]
pub struct NextRecord {
    pub fencing_token: u64,
    previous_len: usize,
    /// Who wrote the previous record: a lock-file holder means the file is in
    /// lock-file use (see `PathLock`).
    pub previous_strategy: Option<Strategy>,
}

/// Reads the previous record and picks the next fencing token.
pub fn next_record(file: &File) -> io::Result<NextRecord> {
    let (previous, previous_len) = read_record(file)?;
    let fencing_token = previous
        .as_ref()
        .map_or(0, |r| r.fencing_token.saturating_add(1))
        .max(now_us());
    Ok(NextRecord {
        fencing_token,
        previous_len,
        previous_strategy: previous.as_ref().map(|r| r.strategy),
    })
}

/// Writes the record of an acquisition in `mode` (the holder must hold the lock).
pub fn write_record(file: &File, mode: Mode, next: NextRecord) -> io::Result<()> {
    let record = HolderRecord::ours(
        mode,
        Strategy::Os,
        process::current().next_token(),
        next.fencing_token,
        now_ms(),
        None,
    );
    let mut bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
    bytes.push(b'\n');
    if bytes.len() < next.previous_len {
        bytes.resize(next.previous_len, b' ');
    }
    write_all_at(file, &bytes)
}

/// `next_record` then `write_record`: returns the new fencing token.
#[cfg(test)]
pub fn take_over_record(file: &File, mode: Mode) -> io::Result<u64> {
    let next = next_record(file)?;
    write_record(file, mode, next)?;
    Ok(next.fencing_token)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8]) -> io::Result<()> {
    let mut offset = 0u64;
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("s"))
            .unwrap();
        (dir, file)
    }

    #[test]
    fn records_round_trip_and_fencing_tokens_grow() {
        let (_dir, file) = scratch();
        assert!(read_record(&file).unwrap().0.is_none());
        let first = take_over_record(&file, Mode::Exclusive).unwrap();
        let second = take_over_record(&file, Mode::Shared).unwrap();
        assert!(second > first);
        let record = read_record(&file).unwrap().0.unwrap();
        assert_eq!(record.fencing_token, second);
        assert_eq!(record.mode, Mode::Shared);
        assert_eq!(record.pid, std::process::id());
    }

    #[test]
    fn a_shorter_record_pads_over_a_longer_one() {
        let (_dir, file) = scratch();
        write_all_at(
            &file,
            format!("{{\"junk\":\"{}\"}}", "x".repeat(600)).as_bytes(),
        )
        .unwrap();
        take_over_record(&file, Mode::Exclusive).unwrap();
        assert!(read_record(&file).unwrap().0.is_some());
    }

    #[test]
    fn a_garbled_record_reads_as_unknown_and_fencing_still_grows() {
        let (_dir, file) = scratch();
        write_all_at(&file, b"{\"pid\": 12, \"hostn").unwrap();
        assert!(read_record(&file).unwrap().0.is_none());
        assert!(take_over_record(&file, Mode::Exclusive).unwrap() > 0);
    }

    #[test]
    fn holder_view_hides_pids_unless_asked() {
        let (_dir, file) = scratch();
        take_over_record(&file, Mode::Exclusive).unwrap();
        let record = read_record(&file).unwrap().0.unwrap();
        let hidden = Holder::from_record(Some(&record), Mode::Exclusive, false);
        assert!(hidden.same_process && hidden.pid.is_none());
        assert!(!hidden.description.contains("pid"));
        let shown = Holder::from_record(Some(&record), Mode::Exclusive, true);
        assert_eq!(shown.pid, Some(std::process::id()));
    }

    /// A record exactly as the first version wrote it (no bootId, no pidNamespace).
    fn previous_version_json(pid: u32, hostname: &str) -> String {
        format!(
            r#"{{"pid":{pid},"hostname":{hostname:?},"startTime":12345,"acquiredAt":1700000000000,"mode":"exclusive","token":"abc-1","fencingToken":7,"strategy":"lockfile","heartbeat":1700000000500}}"#
        )
    }

    #[test]
    fn records_of_the_previous_version_still_parse() {
        let record: HolderRecord =
            serde_json::from_str(&previous_version_json(42, "somewhere")).unwrap();
        assert_eq!((record.pid, record.fencing_token), (42, 7));
        assert_eq!(record.hostname, "somewhere");
        assert_eq!(record.strategy, Strategy::Lockfile);
        assert_eq!(record.heartbeat, Some(1_700_000_000_500));
        assert_eq!((record.boot_id, record.pid_namespace), (None, None));
        // Fields of a later version are ignored, not refused.
        let later = previous_version_json(42, "somewhere")
            .replace("\"pid\":42", "\"pid\":42,\"somethingNew\":{\"x\":1}");
        assert!(serde_json::from_str::<HolderRecord>(&later).is_ok());
    }

    #[test]
    fn our_records_round_trip_with_boot_and_pid_namespace() {
        let ours = HolderRecord::ours(
            Mode::Exclusive,
            Strategy::Lockfile,
            "t-1".into(),
            9,
            10,
            Some(11),
        );
        let me = process::current();
        let json = serde_json::to_string(&ours).unwrap();
        if me.boot_id.is_some() {
            assert!(json.contains("\"bootId\":"), "{json}");
        }
        if me.pid_namespace.is_some() {
            assert!(json.contains("\"pidNamespace\":"), "{json}");
        }
        let back: HolderRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.boot_id, me.boot_id);
        assert_eq!(back.pid_namespace, me.pid_namespace);
        assert_eq!(
            (back.pid, back.fencing_token, back.heartbeat),
            (me.pid, 9, Some(11))
        );
        assert_eq!(back.whereabouts(), Whereabouts::ThisProcess);
        // Unknown values are left out, as the first version wrote them.
        let bare = HolderRecord {
            boot_id: None,
            pid_namespace: None,
            ..ours
        };
        let json = serde_json::to_string(&bare).unwrap();
        assert!(
            !json.contains("bootId") && !json.contains("pidNamespace"),
            "{json}"
        );
    }

    #[test]
    fn a_holder_in_another_pid_namespace_or_boot_is_not_on_this_machine() {
        let me = process::current();
        let mut record = crate::test_support::pid_one_in_another_namespace(0);
        let holder = Holder::from_record(Some(&record), Mode::Exclusive, false);
        assert!(!holder.same_host && !holder.same_process, "{holder:?}");
        assert!(
            holder.description.contains("another PID namespace or boot"),
            "{}",
            holder.description
        );
        assert!(holder.description.contains(&me.hostname));
        record.pid_namespace = me.pid_namespace.clone();
        record.boot_id = Some("another-boot".into());
        assert_eq!(record.whereabouts(), Whereabouts::Elsewhere);
        // The previous version's record of pid 1 on our host name: a process here.
        let previous: HolderRecord =
            serde_json::from_str(&previous_version_json(1, &me.hostname)).unwrap();
        let holder = Holder::from_record(Some(&previous), Mode::Exclusive, false);
        assert!(holder.same_host && !holder.same_process, "{holder:?}");
        assert!(holder
            .description
            .starts_with("another process on this machine"));
    }
}
