//! Tests of who a holder is and where it lives: our own identity, liveness
//! by pid and start time, and which boot, PID namespace or host a record or
//! file name places its writer in.

// Liveness on this machine is only checked by the Unix tests (pids, start times).
#[cfg(unix)]
use super::Liveness::{Alive, Dead, Reused};
#[cfg(unix)]
use super::Whereabouts::ThisMachine;
use super::Whereabouts::{Elsewhere, ThisProcess};
use super::*;

#[test]
fn identity_is_stable_and_recognises_itself() {
    let me = current();
    assert_eq!(me.pid, std::process::id());
    let (boot, ns) = (me.boot_id.as_deref(), me.pid_namespace.as_deref());
    let ours = |pid, boot, ns| {
        matches!(
            me.whereabouts(pid, &me.hostname, me.start_time, boot, ns),
            ThisProcess
        )
    };
    assert!(ours(me.pid, boot, ns));
    // A record of the previous version (no boot, no namespace) is still ours.
    assert!(ours(me.pid, None, None));
    assert!(!ours(me.pid + 1, boot, ns));
    assert!(!ours(me.pid, Some("other-boot"), ns));
    assert!(!ours(me.pid, boot, Some("pid:[1]")));
    assert_ne!(me.next_token(), me.next_token());
}

/// Our identity, as if our boot and PID namespace were these.
fn me_in(boot_id: Option<&str>, pid_namespace: Option<&str>) -> ProcessIdentity {
    ProcessIdentity {
        boot_id: boot_id.map(Into::into),
        pid_namespace: pid_namespace.map(Into::into),
        ..current().clone()
    }
}

const BOOT: &str = "0e1c6a8e-2f4b-4c1d-9c55-3f7f1e0d2a11";
const OTHER_BOOT: &str = "6d1f0b0a-8a4e-4a52-b1a3-77c1de5e9f02";
const NS: &str = "pid:[4026531836]";
const OTHER_NS: &str = "pid:[4026532481]";

/// A writer on our host name as its record (or file name) tells it: pid,
/// start time, boot and PID namespace (`None` where it wrote none).
type Writer<'a> = (u32, Option<u64>, Option<&'a str>, Option<&'a str>);

/// Where `me` places `writer`.
fn placed(me: &ProcessIdentity, (pid, start, boot, ns): Writer) -> Whereabouts {
    me.whereabouts(pid, &me.hostname, start, boot, ns)
}

#[cfg(unix)]
#[test]
fn whereabouts_of_this_process_and_of_pids_on_this_machine() {
    let me = me_in(Some(BOOT), Some(NS));
    let here = |pid, start| (pid, start, Some(BOOT), Some(NS));
    assert_eq!(placed(&me, here(me.pid, me.start_time)), ThisProcess);
    // Another live process here, with its own start time.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let other = sleeper.id();
    let other_start = start_time_of(other);
    assert_eq!(placed(&me, here(other, other_start)), ThisMachine(Alive));
    if let Some(start) = other_start {
        assert_eq!(
            placed(&me, here(other, Some(start + 1))),
            ThisMachine(Reused)
        );
    }
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // Gone now: dead here, and that is meaningful (same boot and namespace).
    assert_eq!(placed(&me, here(other, other_start)), ThisMachine(Dead));
}

#[cfg(unix)]
#[test]
fn another_boot_or_pid_namespace_on_our_host_name_is_elsewhere_whatever_the_pid_says_here() {
    let me = me_in(Some(BOOT), Some(NS));
    let dead = crate::test_support::dead_pid();
    let elsewhere = [
        ("another boot", Some(OTHER_BOOT), Some(NS)),
        ("another PID namespace", Some(BOOT), Some(OTHER_NS)),
        ("another PID namespace, boot unknown", None, Some(OTHER_NS)),
    ];
    for pid in [dead, me.pid, 1] {
        for (case, boot, ns) in elsewhere {
            assert_eq!(
                placed(&me, (pid, None, boot, ns)),
                Elsewhere,
                "{case}, pid {pid}"
            );
        }
    }
    // Even our own pid and start time: in another namespace it is another process.
    let ours_elsewhere = (me.pid, me.start_time, Some(BOOT), Some(OTHER_NS));
    assert_eq!(placed(&me, ours_elsewhere), Elsewhere);
    // What we cannot tell for ourselves cannot be shown to match.
    let blind = me_in(None, None);
    assert_eq!(
        placed(&blind, (dead, None, Some(BOOT), Some(NS))),
        Elsewhere
    );
    assert_eq!(placed(&blind, (dead, None, None, None)), ThisMachine(Dead));
}

#[cfg(unix)]
#[test]
fn a_record_of_the_previous_version_is_judged_by_its_pid_as_before() {
    let me = me_in(Some(BOOT), Some(NS));
    let previous = |pid, start| (pid, start, None, None);
    let dead = crate::test_support::dead_pid();
    assert_eq!(placed(&me, previous(me.pid, me.start_time)), ThisProcess);
    assert_eq!(placed(&me, previous(dead, None)), ThisMachine(Dead));
    assert_eq!(placed(&me, previous(1, None)), ThisMachine(Alive));
    if let Some(start) = me.start_time {
        let reused = previous(me.pid, Some(start + 1));
        assert_eq!(placed(&me, reused), ThisMachine(Reused));
    }
}

#[test]
fn another_host_name_is_elsewhere() {
    let me = me_in(Some(BOOT), Some(NS));
    let other_host = format!("{}-other", me.hostname);
    for (boot, ns) in [(Some(BOOT), Some(NS)), (None, None)] {
        assert_eq!(
            me.whereabouts(me.pid, &other_host, me.start_time, boot, ns),
            Whereabouts::Elsewhere
        );
    }
    assert_eq!(
        current().whereabouts(4242, &other_host, None, None, None),
        Whereabouts::Elsewhere
    );
}

#[test]
fn boot_times_within_two_seconds_are_one_boot_and_boot_ids_must_be_equal() {
    assert!(same_boot(BOOT, BOOT));
    assert!(!same_boot(BOOT, OTHER_BOOT));
    let t = boot_time_text;
    assert!(same_boot(&t(1_700_000_000), &t(1_700_000_002)));
    assert!(same_boot(&t(1_700_000_002), &t(1_700_000_000)));
    assert!(!same_boot(&t(1_700_000_000), &t(1_700_000_003)));
    assert!(!same_boot(&t(1_700_000_000), BOOT));
    let me = me_in(Some(&t(1_700_000_000)), None);
    let (a_second_later, hours_later) = (t(1_700_000_001), t(1_700_009_000));
    let booted_at = |time: &str| placed(&me, (me.pid, me.start_time, Some(time), None));
    assert_eq!(booted_at(&a_second_later), ThisProcess);
    assert_eq!(booted_at(&hours_later), Elsewhere);
}

#[test]
fn file_tokens_tell_whether_their_pid_can_be_checked_here() {
    let token = current().file_token();
    assert!(!token.contains('.'), "{token}");
    assert!(file_pid_is_checkable(&token));
    assert!(
        file_pid_is_checkable("abc-1"),
        "a name of the previous version"
    );
    assert!(!file_pid_is_checkable("abc-1~000000000000"));
    let (host, boot, ns) = ("h", Some(BOOT), Some(NS));
    assert_ne!(
        place_tag(host, boot, ns),
        place_tag(host, Some(OTHER_BOOT), ns)
    );
    assert_ne!(
        place_tag(host, boot, ns),
        place_tag(host, boot, Some(OTHER_NS))
    );
    assert_ne!(place_tag(host, boot, ns), place_tag("h2", boot, ns));
    assert_eq!(place_tag(host, boot, ns), place_tag(host, boot, ns));
}

#[cfg(target_os = "linux")]
#[test]
fn on_linux_the_boot_and_pid_namespace_are_known() {
    let me = current();
    let boot = me.boot_id.as_deref().expect("boot_id");
    assert_eq!(boot.len(), 36, "{boot}");
    let ns = me.pid_namespace.as_deref().expect("pid namespace");
    assert!(ns.starts_with("pid:[") && ns.ends_with(']'), "{ns}");
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
