//! The "network": latency before each answer, and faults injected from a
//! control file that is re-read while the file system runs:
//!
//! ```json
//! {"faults": [{"op": "write", "errno": "ENOSPC", "after": 0, "count": 1,
//!              "pathContains": "roles.json"}],
//!  "readOnly": false, "latencyMs": [20, 200]}
//! ```
//!
//! - `op`: one of [`OPS`] or `*`; `errno`: a name of `ERRNOS` or a number;
//!   `after`: let the first N matching calls through (default 0); `count`:
//!   fail at most M calls (default: all); `pathContains`: only calls whose
//!   mount-relative path (`/dir/file`; rename: `/old -> /new`) contains it.
//!   The first rule that fires decides; a call counts against every matching
//!   rule up to that one.
//! - `readOnly: true`: every modifying call (create, mkdir, unlink, rmdir,
//!   rename, link, symlink, setattr, write, fallocate, open for writing) fails
//!   with EROFS, as after a read-only remount.
//! - `latencyMs`: replaces `--latency-ms` while present.
//!
//! Invariants:
//! - The control file is looked at (one `stat`) at most every 20 ms, and
//!   re-read only when its mtime, size or inode changed; a missing or empty
//!   file means no faults, no read-only, the command line's latency.
//! - A control file that does not parse is reported once and the previous
//!   settings stay in force.
//! - Loading a file resets every rule's counters (`after`, `count`).
//! - Every injected error is logged to stderr in one line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// The operation names a fault rule may name (`*` matches any of them).
pub const OPS: &[&str] = &[
    "lookup",
    "getattr",
    "setattr",
    "readlink",
    "mkdir",
    "unlink",
    "rmdir",
    "symlink",
    "rename",
    "link",
    "open",
    "read",
    "write",
    "flush",
    "release",
    "fsync",
    "opendir",
    "readdir",
    "releasedir",
    "fsyncdir",
    "statfs",
    "create",
    "getlk",
    "setlk",
    "fallocate",
];

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("EAGAIN", libc::EAGAIN),
    ("EACCES", libc::EACCES),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("EINVAL", libc::EINVAL),
    ("EMFILE", libc::EMFILE),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ENOLCK", libc::ENOLCK),
    ("ENOTCONN", libc::ENOTCONN),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ESTALE", libc::ESTALE),
    ("EDQUOT", libc::EDQUOT),
];

/// How often the control file is checked for changes, at most.
const CHECK_EVERY: Duration = Duration::from_millis(20);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ControlFile {
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default)]
    read_only: bool,
    latency_ms: Option<[u64; 2]>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultSpec {
    op: String,
    errno: ErrnoSpec,
    #[serde(default)]
    after: u64,
    count: Option<u64>,
    path_contains: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrnoSpec {
    Name(String),
    Number(i32),
}

struct Rule {
    op: String,
    errno: i32,
    after: u64,
    count: Option<u64>,
    path_contains: Option<String>,
    matched: u64,
    injected: u64,
}

/// What identifies one version of the control file.
type Signature = (SystemTime, u64, u64);

#[derive(Default)]
struct State {
    checked: Option<Instant>,
    seen: Option<Signature>,
    rules: Vec<Rule>,
    read_only: bool,
    latency: Option<(u64, u64)>,
}

pub struct Control {
    file: Option<PathBuf>,
    /// From `--latency-ms`, in force unless the control file sets `latencyMs`.
    base_latency: (u64, u64),
    state: Mutex<State>,
    rng: AtomicU64,
}

impl Control {
    pub fn new(file: Option<PathBuf>, base_latency: (u64, u64)) -> Control {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        Control {
            file,
            base_latency,
            state: Mutex::new(State::default()),
            rng: AtomicU64::new(seed),
        }
    }

    /// Called before answering each request: sleeps the latency, then fails
    /// the call with an errno if the read-only switch or a fault rule says so.
    /// `path` (mount-relative) is only computed when a rule or the log needs it.
    pub fn gate(&self, op: &str, modifies: bool, path: &dyn Fn() -> String) -> Result<(), i32> {
        let (latency, verdict) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            self.refresh(&mut state);
            let latency = state.latency.unwrap_or(self.base_latency);
            let verdict = if state.read_only && modifies {
                Some((libc::EROFS, "readOnly".to_string(), path()))
            } else {
                judge(&mut state.rules, op, path)
            };
            (latency, verdict)
        };
        if latency.1 > 0 {
            std::thread::sleep(Duration::from_millis(self.random_in(latency)));
        }
        match verdict {
            None => Ok(()),
            Some((errno, why, path)) => {
                eprintln!(
                    "flm-netsim: fault {op} {path} -> {} ({why})",
                    errno_name(errno)
                );
                Err(errno)
            }
        }
    }

    fn random_in(&self, (min, max): (u64, u64)) -> u64 {
        // splitmix64: good enough for spreading latencies.
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        min + z % (max - min + 1)
    }

    fn refresh(&self, state: &mut State) {
        let Some(file) = &self.file else { return };
        if state.checked.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
            return;
        }
        state.checked = Some(Instant::now());
        let signature = std::fs::metadata(file).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                m.ino(),
            )
        });
        if signature == state.seen {
            return;
        }
        state.seen = signature;
        let text = std::fs::read_to_string(file).unwrap_or_default();
        match parse(&text) {
            Ok((rules, read_only, latency)) => {
                eprintln!(
                    "flm-netsim: control: {} fault rule(s), readOnly {read_only}, latency {:?}",
                    rules.len(),
                    latency.unwrap_or(self.base_latency)
                );
                state.rules = rules;
                state.read_only = read_only;
                state.latency = latency;
            }
            Err(e) => eprintln!("flm-netsim: control: {} not used: {e}", file.display()),
        }
    }
}

/// The first rule that fails this call, counting the call against each
/// matching rule up to and including that one.
fn judge(rules: &mut [Rule], op: &str, path: &dyn Fn() -> String) -> Option<(i32, String, String)> {
    let mut path_seen: Option<String> = None;
    for (i, rule) in rules.iter_mut().enumerate() {
        if rule.op != "*" && rule.op != op {
            continue;
        }
        let path = path_seen.get_or_insert_with(path);
        if rule
            .path_contains
            .as_ref()
            .is_some_and(|part| !path.contains(part.as_str()))
        {
            continue;
        }
        rule.matched += 1;
        if rule.matched > rule.after && rule.count.is_none_or(|count| rule.injected < count) {
            rule.injected += 1;
            return Some((rule.errno, format!("rule {i}"), path.clone()));
        }
    }
    None
}

type Parsed = (Vec<Rule>, bool, Option<(u64, u64)>);

fn parse(text: &str) -> Result<Parsed, String> {
    if text.trim().is_empty() {
        return Ok((Vec::new(), false, None));
    }
    let file: ControlFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = Vec::new();
    for spec in file.faults {
        if spec.op != "*" && !OPS.contains(&spec.op.as_str()) {
            return Err(format!(
                "unknown op {:?} (one of {} or \"*\")",
                spec.op,
                OPS.join(", ")
            ));
        }
        let errno = match spec.errno {
            ErrnoSpec::Number(n) if n > 0 => n,
            ErrnoSpec::Number(n) => return Err(format!("errno {n} is not positive")),
            ErrnoSpec::Name(name) => ERRNOS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, n)| *n)
                .ok_or_else(|| format!("unknown errno {name:?}"))?,
        };
        rules.push(Rule {
            op: spec.op,
            errno,
            after: spec.after,
            count: spec.count,
            path_contains: spec.path_contains,
            matched: 0,
            injected: 0,
        });
    }
    let latency = match file.latency_ms {
        Some([min, max]) if min > max => return Err(format!("latencyMs [{min},{max}]: min > max")),
        other => other.map(|[min, max]| (min, max)),
    };
    Ok((rules, file.read_only, latency))
}

fn errno_name(errno: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, n)| *n == errno)
        .map_or_else(|| format!("errno {errno}"), |(name, _)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fail_after_n_calls_at_most_count_times_on_matching_paths() {
        let (mut rules, ro, latency) = parse(
            r#"{"faults":[{"op":"write","errno":"ENOSPC","after":1,"count":2,"pathContains":"roles"}],
                "latencyMs":[1,2]}"#,
        )
        .unwrap();
        assert!(!ro);
        assert_eq!(latency, Some((1, 2)));
        let roles = || "/roles.json".to_string();
        let other = || "/other".to_string();
        assert!(judge(&mut rules, "write", &other).is_none());
        assert!(judge(&mut rules, "read", &roles).is_none());
        assert!(judge(&mut rules, "write", &roles).is_none());
        assert_eq!(judge(&mut rules, "write", &roles).unwrap().0, libc::ENOSPC);
        assert_eq!(judge(&mut rules, "write", &roles).unwrap().0, libc::ENOSPC);
        assert!(judge(&mut rules, "write", &roles).is_none());
    }

    #[test]
    fn bad_files_are_refused_and_empty_ones_mean_nothing() {
        assert!(parse("").unwrap().0.is_empty());
        assert!(parse(r#"{"faults":[{"op":"wirte","errno":"EIO"}]}"#).is_err());
        assert!(parse(r#"{"faults":[{"op":"write","errno":"EWHAT"}]}"#).is_err());
        assert!(parse(r#"{"readonly":true}"#).is_err());
        assert_eq!(
            parse(r#"{"faults":[{"op":"*","errno":5}]}"#).unwrap().0[0].errno,
            5
        );
    }
}
