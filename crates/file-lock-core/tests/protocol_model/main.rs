//! Exhaustive explicit-state model check of the cross-process lock protocol on
//! one lock path P (the `.roles.json.lock` sidecar), where OS-lock users
//! (shared or exclusive) and lock-file users (always exclusive) meet.
//!
//! Properties, over every interleaving of 2-3 processes with a crash allowed
//! before any step:
//! - SAFETY "exclusive holder alone": no reachable state has a live exclusive
//!   holder beside any other live holder (shared holders may be together).
//!   Reported separately, the stronger "a holder's file is still the one at
//!   the lock path": no live holder whose inode P no longer names.
//! - LIVENESS "a crashed holder's lock is eventually free" (AG EF goal): from
//!   every reachable state (crashes included) a state is reachable by the
//!   survivors' own steps where a live process holds the lock, or every live
//!   process is done. Checked by backward reachability over the explored graph
//!   without crash edges (with them it would hold vacuously: all crash).
//!
//! The OLD protocol (the code before rules A, U, R) must break safety, even
//! with two processes, and its shortest counterexample is printed (`cargo
//! test --test protocol_model -- --nocapture`). The NEW protocol, step for
//! step the implementation (`model::Pc` lists its lines), must keep all three.
//! The checks are shown not to be vacuous: NEW without the L3 linked check,
//! breaking a file without L8's flock (the old empty-file window), or a
//! waiter discarding an empty sidecar under its shared lock (the reviewer's
//! bug) has an exclusive holder beside another; NEW where an abandoned guard
//! is never cleared, or no lock-file record is ever judged stale, breaks
//! liveness, which holds in NEW with the pid judgement alone as well. Two
//! shared holders at once, and a live writer's record judged stale by the
//! clock meeting its flock, are reachable in NEW.
//!
//! Abstractions:
//! - The file system is: which inode P names (if any); per inode its record
//!   (`Empty{creator}`, `Os{pid}`, `Lockfile{pid}`) and who holds its flock,
//!   per open file description: any number shared or one exclusive, released
//!   on unlock, close or crash; the `P.break` guard and its creator. A file
//!   renamed aside is an inode only its renamer knows about.
//! - Each numbered protocol line is one atomic step, except where only local
//!   data follows a read (observe-and-judge: OLD L5-L7, NEW L5-L6; the
//!   discard's "linked and empty") or a failure path gives up (remove guard,
//!   unlock, close). A would-block flock is a retry from the start of the
//!   acquisition (a blocked waiter keeping its handle is covered: a handle may
//!   sit unused for any number of steps).
//! - A shared-to-exclusive flock on the same handle is two steps, as flock(2)
//!   converts: the shared lock is dropped, then the exclusive one tried
//!   (busy: lost). This includes the atomic conversion as the case where
//!   nobody steps in between.
//! - An OS user holds (HOLD) before its record is written, as a waiter that
//!   hands the lock over first does (`Publish`); the write overwrites any
//!   record. Writing before holding (`try_lock`'s path) shows others nothing
//!   this does not.
//! - An OS waiter whose requester went away gives up (`Won::discard`) at most
//!   once per process, right after its flock was granted.
//! - Staleness: an empty file seen unchanged on two observations may be
//!   judged stale (the 2 s grace elapsing while its creator is descheduled);
//!   NEW remembers the file as `StaleWatch` does, across polls and failed
//!   tries. A lock-file record whose writer crashed is judged stale (pid
//!   liveness); in NEW any lock-file record may be, on one observation (a live
//!   writer descheduled past staleMs, or on another host; heartbeats are not
//!   modelled, so the record never changes under the judge). OLD judges only
//!   crashed writers' records, so that its counterexamples show the interplay
//!   and not plain lock files' known weakness. A crashed breaker's guard may
//!   be cleared at any time (its BREAKER_STALE elapsing).
//! - HOLD is the critical section; release steps come after it. The "P still
//!   names our inode" checks of heartbeat and release are not separate steps:
//!   the stronger state predicate already flags every state they would notice.
//! - Inodes are renumbered in order of first reference and forgotten once
//!   nothing refers to them, which keeps the state space finite; a finished
//!   process forgets everything. Pids are not permuted.

mod checker;
mod model;

use checker::check;
use model::User::{self, LockFile as LF, Os, OsShared as Sh};
use model::*;

#[test]
fn old_protocol_breaks_safety() {
    let report = check(&OLD, &[Os, LF, LF], 1);
    assert!(report.exclusion.is_some(), "expected two holders");
    // Without the empty-file judgement, the missing linked check after
    // create_excl + flock alone still lets an OS user's cleanup unlink a fresh
    // lock file under its creator.
    let report = check(&OLD_NO_EMPTY_STALE, &[Os, Os, LF], 1);
    assert!(report.exclusion.is_some(), "expected two holders");
    assert!(report.unlinked_holder.is_some());
}

/// Two processes are enough for OLD: the shortest way, a lock-file user
/// breaks (without its flock) the empty sidecar an OS holder has not written
/// its record into yet, then creates P afresh and holds it too.
#[test]
fn old_protocol_breaks_safety_with_two_processes() {
    for acquisitions in [1, 2] {
        let report = check(&OLD, &[Os, LF], acquisitions);
        assert!(report.exclusion.is_some(), "expected two holders");
        assert!(report.unlinked_holder.is_some(), "expected a lost file");
    }
}

/// Three processes acquiring twice each take several seconds per configuration
/// in a debug build: run them with `cargo test --test protocol_model -- --ignored`.
mod new_protocol_keeps_exclusion_and_frees_crashed_locks {
    use super::*;

    fn assert_passes(users: &[User], acquisitions: u8) -> checker::Report {
        let report = check(&NEW, users, acquisitions);
        assert!(report.passes_all(), "{}", report.explain());
        report
    }

    #[test]
    fn os_and_lock_file_two_acquisitions_each() {
        assert_passes(&[Os, LF], 2);
        assert_passes(&[Sh, LF], 2);
    }

    #[test]
    fn os_and_two_lock_files() {
        assert_passes(&[Os, LF, LF], 1);
    }

    #[test]
    fn two_os_and_a_lock_file() {
        assert_passes(&[Os, Os, LF], 1);
    }

    #[test]
    fn two_shared_os_and_a_lock_file() {
        let report = assert_passes(&[Sh, Sh, LF], 1);
        let together = report.find(|s| s.holders().filter(|p| p.shares()).count() == 2);
        assert!(together.is_some(), "two shared holders never met");
    }

    #[test]
    fn two_shared_os_and_an_exclusive_os() {
        assert_passes(&[Sh, Sh, Os], 1);
    }

    #[test]
    #[ignore = "several seconds in a debug build; npm test runs it (cargo test --test protocol_model -- --ignored)"]
    fn three_processes_two_acquisitions_each() {
        assert_passes(&[Os, LF, LF], 2);
        assert_passes(&[Os, Os, LF], 2);
    }

    #[test]
    #[ignore = "several seconds in a debug build; npm test runs it (cargo test --test protocol_model -- --ignored)"]
    fn three_processes_with_shared_readers_two_acquisitions_each() {
        assert_passes(&[Sh, Sh, LF], 2);
        assert_passes(&[Sh, Sh, Os], 2);
    }
}

/// The checker is not vacuous: dropping L3 from the new protocol is caught.
#[test]
fn new_protocol_without_the_linked_check_is_caught() {
    let report = check(&NEW_WITHOUT_L3, &[Os, Os, LF], 1);
    assert!(report.exclusion.is_some(), "expected two holders");
    let report = check(&NEW_WITHOUT_L3, &[Os, LF], 2);
    assert!(report.unlinked_holder.is_some(), "expected a lost file");
}

/// Breaking an empty file without its flock reopens the old window: its
/// creator (here an OS user) takes the flock and writes into the file unlinked.
#[test]
fn breaking_without_the_flock_is_caught() {
    let report = check(&NEW_BREAK_WITHOUT_FLOCK, &[Os, LF], 1);
    assert!(report.exclusion.is_some(), "expected two holders");
}

/// The reviewer's bug: a waiter that won a shared lock nobody wants unlinks
/// the empty sidecar beside a shared holder that has not written its record;
/// a third process creates P afresh and holds it exclusively. Invisible with
/// exclusive flocks only.
#[test]
fn discarding_under_a_shared_lock_is_caught() {
    for third in [LF, Os] {
        let report = check(&NEW_DISCARD_UNDER_SHARED, &[Sh, Sh, third], 1);
        assert!(report.exclusion.is_some(), "expected two holders");
        let beside = report.find(State::exclusive_beside_shared);
        assert!(
            beside.is_some(),
            "expected an exclusive holder beside a shared one"
        );
    }
    let report = check(&NEW_DISCARD_UNDER_SHARED, &[Os, Os, LF], 1);
    assert!(report.passes_all(), "{}", report.explain());
}

/// The liveness check is not vacuous either.
#[test]
fn a_guard_that_is_never_cleared_is_caught() {
    let report = check(&NEW_GUARDS_NEVER_CLEARED, &[Os, LF, LF], 1);
    assert!(report.exclusion.is_none());
    assert!(report.stuck.is_some(), "expected a stuck lock");
}

/// Liveness rests on judging records stale, not on the survivors alone.
#[test]
fn records_never_judged_stale_are_caught() {
    let report = check(&NEW_RECORDS_NEVER_STALE, &[Os, LF], 1);
    assert!(report.exclusion.is_none());
    assert!(report.stuck.is_some(), "expected a stuck lock");
}

/// Liveness does not rest on judging a live writer's record stale: with the
/// pid judgement alone (crashed writers only) it holds as well.
#[test]
fn liveness_holds_without_judging_live_writers() {
    let report = check(&NEW_CRASHED_WRITERS_ONLY, &[LF, LF], 2);
    assert!(report.passes_all(), "{}", report.explain());
}

/// The model's own bookkeeping: canonical states, the liveness check, and
/// that a live holder's record judged stale meets its flock.
#[test]
fn model_sanity() {
    // Renaming inodes or dropping garbage does not make a new state.
    let mut a = State::initial(&[Os, LF], 1).created(0, Content::Os(0));
    a.procs[1].snapshot = Some((0, Content::Os(0)));
    let mut b = a;
    (b.inodes[0], b.inodes[1], b.n_inodes, b.link) = (Content::Empty(1), b.inodes[0], 2, Some(1));
    (b.procs[0].handle, b.procs[1].snapshot) = (Some(1), Some((1, Content::Os(0))));
    a.canonicalise();
    b.canonicalise();
    assert!(a == b);
    // A lone process that crashes at once leaves a state where everyone alive
    // (nobody) is done; a lone holder is a goal.
    let report = check(&NEW, &[LF], 1);
    assert!(report.passes_all());
    // A breaker that judged a live holder's record stale reaches its flock.
    let report = check(&NEW, &[LF, LF], 1);
    assert!(report.passes_all(), "{}", report.explain());
    let at_the_flock = report.find(|s| {
        s.live().any(|p| {
            let judged = match p.snapshot {
                Some((_, Content::Lockfile(w))) => s.procs[w as usize].holding(),
                _ => false,
            };
            p.pc == Pc::TLock && judged
        })
    });
    assert!(at_the_flock.is_some(), "no live record was judged stale");
}
