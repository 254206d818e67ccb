//! The protocol as a transition system: the state, the protocol variants, and
//! every process's steps. What is modelled and why: `main.rs`.

/// Processes per configuration.
pub const MAX_PROCS: usize = 3;
/// P, plus per process a handle, a snapshot, a watched file and an aside.
pub const MAX_INODES: usize = 1 + 4 * MAX_PROCS;

/// A file's record, with the pid of its creator or writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[rustfmt::skip]
pub enum Content { Empty(u8), Os(u8), Lockfile(u8) }

/// A process as configured: an OS-lock user taking the lock exclusively or
/// shared, or a lock-file user (always exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[rustfmt::skip]
pub enum User { Os, OsShared, LockFile }

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[rustfmt::skip]
pub enum Strategy { #[default] Os, LockFile }

/// The flock an open file description holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[rustfmt::skip]
pub enum Flock { #[default] Unlocked, Shared, Exclusive }

/// Program counters: the step a process takes next, named after the protocol
/// lines. NEW, as implemented (`strategy/os.rs`, `strategy/lock_file.rs`,
/// `lockfile.rs`, `sidecar.rs`, `path_lock.rs`); "L1" is a retry, after
/// dropping the handle:
/// - OS user, in its mode (shared or exclusive): O1 open(P, O_CREAT); O2
///   flock_nb (busy: O1); O3 P names h (else O1); O4 read: a lock-file
///   record: unlock, use lock files (L1); else HOLD with the record still
///   unwritten (`Publish`, the waiter's "publish after grant"), then write
///   Os{me} (`Hold`); release: unlock. Close-time cleanup (C*): open P,
///   flock_nb exclusive (busy: done), P names h (else done), unlink(P), unlock.
/// - OS waiter nobody wants (`Won::discard`), at O3 instead of claiming, once
///   per process: D1 flock_nb(h, EX) on the handle it holds, which drops a
///   shared lock first (`DConvert`: flock converts non-atomically) and then
///   tries (`DRelock`: busy: close, O1); D2 P names h and h is empty (else
///   unlock, close, O1); unlink(P) (`CUnlink`); unlock, close, O1. The old
///   code (`discard_converts` off) does D2 at once, under its shared lock.
/// - Lock-file user: L1 create_excl(P) (EEXIST: L5); L2 flock_nb (busy: L1);
///   L3 P names h (else L1); L4 write Lockfile{me}: HOLD. L5 observe P without
///   a lock (absent: L1); L6 an Os record: take over; a lock-file record the
///   judge lets go stale (`Judge`), or an empty file unchanged since the last
///   judgement: break; else poll (L1). L7 open(P) (`T*`); L8 flock_nb; L9 P
///   names h; L10 re-read: take over only an Os record, break only the file
///   judged; L11 write Lockfile{me}: HOLD (`L4Write`). L12-L17 (B*), under
///   that flock: create the guard, re-observe P, rename it aside, unlink it if
///   still the judged file (else put it back), remove the guard, unlock.
///   Release (R*): P names h (else lost); rename P aside; unlink it if ours
///   (else put back); unlock.
/// - OLD: L1-L3 are NEW L1, L2, L4; L5-L7 observe; L6 takes an Os file over
///   (`T*`) without re-reading it; L8-L12 break what L7 saw, without a flock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[rustfmt::skip]
pub enum Pc {
    O1Open, O2Lock, O3Linked, O4Read, Publish,
    DConvert, DRelock, DCheck,
    L1Create, L2Lock, L3Linked, L4Write, Observe,
    TOpen, TLock, TLinked, TClaim,
    BGuard, BRecheck, BRename, BSettle, BPutBack, BUnguard, BUnlock,
    Hold, RRename, RSettle, RUnlock,
    COpen, CLock, CLinked, CUnlink, CUnlock,
    #[default] Done, Crashed,
}

/// One process; the default is an unused slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proc {
    pub strategy: Strategy,
    /// An OS-lock user that takes the lock shared (lock files are exclusive).
    pub shared: bool,
    pub pc: Pc,
    pub handle: Option<u8>,
    /// The flock on `handle`'s open file description.
    pub lock: Flock,
    /// OLD: the last observation (also its stale watch). NEW: the observation
    /// acted on; its content is the intent (an `Os` record: take-over; else break).
    pub snapshot: Option<(u8, Content)>,
    /// NEW: `StaleWatch`, the empty file seen unchanged since the last judged
    /// observation (kept by an `Os` or crashed writer's record; a live one or a hold clears it).
    pub watch: Option<u8>,
    pub aside: Option<u8>,
    pub left: u8,
    /// NEW: an OS waiter gave up once already (bounds the state space).
    pub gave_up: bool,
}

impl Proc {
    /// In the critical section (an OS user's record may still be unwritten).
    pub fn holding(&self) -> bool {
        matches!(self.pc, Pc::Hold | Pc::Publish)
    }
    /// Holds (or will hold) the lock shared.
    pub fn shares(&self) -> bool {
        self.strategy == Strategy::Os && self.shared
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    pub link: Option<u8>,
    pub guard: Option<u8>,
    pub n_inodes: u8,
    pub inodes: [Content; MAX_INODES],
    pub n_procs: u8,
    pub procs: [Proc; MAX_PROCS],
}

/// Which lock-file records a lock-file user may judge stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// None (liveness must then fail: nothing frees a crashed writer's file).
    Never,
    /// Its writer crashed (the earlier abstraction: pid liveness on one host).
    CrashedWriters,
    /// Any: a live writer descheduled past staleMs, or on another host, looks
    /// stale by the clock alone.
    AnyWriter,
}

/// Which rules a protocol follows; the variants differ only in these.
#[derive(Clone, Copy, Debug)]
pub struct Protocol {
    pub name: &'static str,
    /// Rules A, U, R: a lock-file user takes over or breaks a file only after
    /// re-reading it under the flock of the inode P names (L7-L10), and a
    /// break keeps that flock (OLD: takes over unread, breaks what it saw).
    /// Also NEW only: an OS waiter that won a lock nobody wants lets go.
    pub flock_guards_records: bool,
    /// L8 also for a break (without it: open, linked check, re-read, no flock).
    pub break_under_flock: bool,
    /// L3: after create_excl and flock, check that P still names the new inode.
    pub linked_check_after_create: bool,
    /// An empty file seen unchanged twice may be judged stale.
    pub empty_files_go_stale: bool,
    pub judge: Judge,
    /// A crashed breaker's guard is eventually cleared (BREAKER_STALE).
    pub abandoned_guards_cleared: bool,
    /// The waiter's discard converts its lock to exclusive before it looks
    /// (`Sidecar::remove_if_unused_and_empty`; the old code did not).
    pub discard_converts: bool,
}

pub const OLD: Protocol = Protocol {
    name: "OLD",
    flock_guards_records: false,
    break_under_flock: false,
    linked_check_after_create: false,
    empty_files_go_stale: true,
    judge: Judge::CrashedWriters,
    abandoned_guards_cleared: true,
    discard_converts: false,
};
/// Isolates the missing L2 linked check from the empty-file judgement.
pub const OLD_NO_EMPTY_STALE: Protocol = Protocol {
    name: "OLD without empty-file judgement",
    empty_files_go_stale: false,
    ..OLD
};
pub const NEW: Protocol = Protocol {
    name: "NEW",
    flock_guards_records: true,
    break_under_flock: true,
    linked_check_after_create: true,
    judge: Judge::AnyWriter,
    discard_converts: true,
    ..OLD
};
pub const NEW_WITHOUT_L3: Protocol = Protocol {
    name: "NEW without the L3 linked check (deliberately broken)",
    linked_check_after_create: false,
    ..NEW
};
/// The old empty-file window: a creator between create_excl and its write.
pub const NEW_BREAK_WITHOUT_FLOCK: Protocol = Protocol {
    name: "NEW breaking without L8's flock (deliberately broken)",
    break_under_flock: false,
    ..NEW
};
/// The reviewer's bug: the discard unlinks beside a shared holder.
pub const NEW_DISCARD_UNDER_SHARED: Protocol = Protocol {
    name: "NEW discarding under a shared lock (deliberately broken)",
    discard_converts: false,
    ..NEW
};
/// Liveness can fail: a guard nobody may clear blocks every later break.
pub const NEW_GUARDS_NEVER_CLEARED: Protocol = Protocol {
    name: "NEW where a crashed breaker's guard stays forever (deliberately broken)",
    abandoned_guards_cleared: false,
    ..NEW
};
/// The earlier judge: a lock-file record goes stale only when its writer crashed.
pub const NEW_CRASHED_WRITERS_ONLY: Protocol = Protocol {
    name: "NEW judging only crashed writers' records stale",
    judge: Judge::CrashedWriters,
    ..NEW
};
/// Liveness rests on the judge: without it a crashed writer's file stays.
pub const NEW_RECORDS_NEVER_STALE: Protocol = Protocol {
    name: "NEW where no lock-file record is ever judged stale (deliberately broken)",
    judge: Judge::Never,
    ..NEW
};

/// A step's name in traces: who (None: the environment), what, and what next.
#[derive(Clone, Copy)]
pub struct Label(pub Option<u8>, pub &'static str, pub &'static str);

impl State {
    pub fn initial(users: &[User], acquisitions: u8) -> State {
        assert!(users.len() <= MAX_PROCS);
        let mut procs = [Proc::default(); MAX_PROCS];
        for (pr, &user) in procs.iter_mut().zip(users) {
            let strategy = [Strategy::Os, Strategy::Os, Strategy::LockFile][user as usize];
            (pr.strategy, pr.shared) = (strategy, user == User::OsShared);
            (pr.pc, pr.left) = (START[strategy as usize], acquisitions);
        }
        State {
            link: None,
            guard: None,
            n_inodes: 0,
            inodes: [Content::Empty(0); MAX_INODES],
            n_procs: users.len() as u8,
            procs,
        }
    }

    pub fn live(&self) -> impl Iterator<Item = &Proc> {
        self.procs[..self.n_procs as usize]
            .iter()
            .filter(|p| p.pc != Pc::Crashed)
    }

    /// flock_nb(`want`) by p on `ino` would block: another open file
    /// description holds it exclusively, or at all when `want` is exclusive.
    fn flock_busy(&self, ino: u8, me: usize, want: Flock) -> bool {
        let procs = self.procs[..self.n_procs as usize].iter().enumerate();
        procs
            .filter(|&(q, pr)| q != me && pr.handle == Some(ino))
            .any(|(_, pr)| match pr.lock {
                Flock::Unlocked => false,
                Flock::Shared => want == Flock::Exclusive,
                Flock::Exclusive => true,
            })
    }

    /// A new file at P, opened by p.
    pub fn created(mut self, p: usize, content: Content) -> State {
        let ino = self.n_inodes;
        (self.inodes[ino as usize], self.n_inodes, self.link) = (content, ino + 1, Some(ino));
        self.opened(p, ino)
    }

    /// Renumber inodes by first reference and forget unreferenced ones, so
    /// states differing only in inode names or in garbage are one state.
    /// Garbage also: a watched file that can never be an empty P again (only
    /// a file renamed aside returns to P; a record is never emptied), the
    /// give-up mark of a process that can never give up again, and whatever a
    /// finished process remembers.
    pub fn canonicalise(&mut self) -> [u8; MAX_INODES] {
        let s = *self;
        let may_return = |i: u8| s.link == Some(i) || s.live().any(|q| q.aside == Some(i));
        for pr in &mut self.procs[..self.n_procs as usize] {
            let empty = |i: u8| matches!(s.content(i), Content::Empty(_));
            pr.watch = pr.watch.filter(|&i| may_return(i) && empty(i));
            pr.gave_up &= pr.strategy == Strategy::Os;
            if pr.pc == Pc::Done {
                *pr = Proc::default();
            }
        }
        let old = self.inodes;
        let mut map = [u8::MAX; MAX_INODES];
        let mut n = 0u8;
        let mut inodes = [Content::Empty(0); MAX_INODES];
        let mut renumber = |ino: &mut u8| {
            let slot = &mut map[*ino as usize];
            if *slot == u8::MAX {
                *slot = n;
                inodes[n as usize] = old[*ino as usize];
                n += 1;
            }
            *ino = *slot;
        };
        self.link.iter_mut().for_each(&mut renumber);
        for pr in &mut self.procs[..self.n_procs as usize] {
            let snapshot = pr.snapshot.as_mut().map(|(i, _)| i);
            let refs = [
                pr.handle.as_mut(),
                snapshot,
                pr.watch.as_mut(),
                pr.aside.as_mut(),
            ];
            refs.into_iter().flatten().for_each(&mut renumber);
        }
        self.inodes = inodes;
        self.n_inodes = n;
        map
    }
}

/// Queries, then step builders: each returns the state after one change by process p.
#[rustfmt::skip]
impl State {
    pub fn content(&self, ino: u8) -> Content { self.inodes[ino as usize] }
    fn observe(&self) -> Option<(u8, Content)> { self.link.map(|i| (i, self.content(i))) }
    pub fn crashed(&self, pid: u8) -> bool { self.procs[pid as usize].pc == Pc::Crashed }
    pub fn holders(&self) -> impl Iterator<Item = &Proc> { self.live().filter(|p| p.holding()) }
    /// SAFETY: an exclusive holder beside any other holder.
    pub fn exclusion_broken(&self) -> bool {
        self.holders().count() >= 2 && self.holders().any(|p| !p.shares())
    }
    /// The reviewer's failure: an exclusive holder beside a shared one.
    pub fn exclusive_beside_shared(&self) -> bool {
        self.holders().any(|p| p.shares()) && self.holders().any(|p| !p.shares())
    }
    pub fn unlinked_holder(&self) -> bool { self.holders().any(|p| p.handle != self.link) }
    /// The liveness goal: someone alive holds, or everyone alive is done.
    pub fn goal(&self) -> bool {
        self.holders().next().is_some() || self.live().all(|p| p.pc == Pc::Done)
    }

    fn at(mut self, p: usize, pc: Pc) -> State { self.procs[p].pc = pc; self }
    fn opened(mut self, p: usize, ino: u8) -> State { self.procs[p].handle = Some(ino); self }
    fn flocked(mut self, p: usize, lock: Flock) -> State { self.procs[p].lock = lock; self }
    /// Unlock and close (closing releases the flock anyway).
    fn closed(mut self, p: usize) -> State {
        (self.procs[p].handle, self.procs[p].lock) = (None, Flock::Unlocked);
        self
    }
    fn written(mut self, ino: u8, c: Content) -> State { self.inodes[ino as usize] = c; self }
    /// rename(P, aside): only p knows the file now.
    fn renamed_aside(mut self, p: usize) -> State { self.procs[p].aside = self.link.take(); self }
    fn with_snapshot(mut self, p: usize, snap: Option<(u8, Content)>) -> State {
        self.procs[p].snapshot = snap;
        self
    }
    fn watching(mut self, p: usize, w: Option<u8>) -> State { self.procs[p].watch = w; self }
    fn with_guard(mut self, guard: Option<u8>) -> State { self.guard = guard; self }
    /// unlink(aside), after linking it back at P first if `put_back` and P is absent.
    fn unlinked_aside(mut self, p: usize, put_back: bool) -> State {
        let aside = self.procs[p].aside.take();
        if put_back && self.link.is_none() { self.link = aside; }
        self
    }
    /// Give up this attempt: drop snapshot and handle (then start over at L1).
    fn retry(self, p: usize) -> State { self.closed(p).with_snapshot(p, None) }
}

/// Where an acquisition starts, by strategy.
const START: [Pc; 2] = [Pc::O1Open, Pc::L1Create];

pub const CRASHES: &str = "CRASHES";

/// The steps process `p` can take from `s` (crash excluded).
fn step(s: &State, p: usize, proto: &Protocol, out: &mut Vec<(Label, State)>) {
    use Content::{Empty, Lockfile, Os};
    use Flock::{Exclusive, Shared};
    use Pc::*;
    let (me, pr, t) = (p as u8, s.procs[p], *s);
    let h = pr.handle;
    let linked = h.is_some() && s.link == h;
    let busy = |want| h.is_some_and(|i| s.flock_busy(i, p, want));
    let held = h.map(|i| s.content(i));
    let (closed, retry) = (t.closed(p), t.retry(p));
    let old = !proto.flock_guards_records;
    // What the step does => the state after it => the next step.
    macro_rules! emit {
        ($text:expr => $state:expr => $next:expr) => {
            out.push((Label(Some(me), $text, ""), $state.at(p, $next)))
        };
    }
    match pr.pc {
        O1Open => match s.link {
            Some(i) => emit!("O1 open(P, O_CREAT): opened P" => t.opened(p, i) => O2Lock),
            None => {
                emit!("O1 open(P, O_CREAT): created P, empty" => t.created(p, Empty(me)) => O2Lock)
            }
        },
        O2Lock if pr.shared => match busy(Shared) {
            true => emit!("O2 flock_nb(h, SH): busy -> close, O1" => closed => O1Open),
            false => emit!("O2 flock_nb(h, SH): taken" => t.flocked(p, Shared) => O3Linked),
        },
        O2Lock if busy(Exclusive) => {
            emit!("O2 flock_nb(h, EX): busy -> close, O1" => closed => O1Open)
        }
        O2Lock => emit!("O2 flock_nb(h, EX): taken" => t.flocked(p, Exclusive) => O3Linked),
        O3Linked => {
            // NEW: a waiter whose requester went away lets go (`Won::discard`).
            if !old && !pr.gave_up {
                let mut t = t;
                t.procs[p].gave_up = true;
                let next = match (proto.discard_converts, pr.lock) {
                    (true, Shared) => DConvert,
                    _ => DCheck,
                };
                emit!("O3 nobody wants the lock: discard" => t => next);
            }
            match linked {
                true => emit!("O3 stat(P) == fstat(h)" => t => O4Read),
                false => emit!("O3 P no longer names h -> close, O1" => closed => O1Open),
            }
        }
        O4Read if matches!(held, Some(Lockfile(_))) => {
            let mut t = closed;
            (t.procs[p].strategy, t.procs[p].shared) = (Strategy::LockFile, false);
            emit!("O4 lock-file record -> close, use lock files" => t => L1Create);
        }
        O4Read => emit!("O4 record is empty or an OS user's -> HOLD, unpublished" => t => Publish),
        Publish => {
            emit!("publish: write Os{me} (overwrites)" => t.written(h.unwrap(), Os(me)) => Hold)
        }
        DConvert => {
            let text = "discard: flock_nb(h, EX) drops the shared lock first";
            emit!(text => t.flocked(p, Flock::Unlocked) => DRelock);
        }
        DRelock if busy(Exclusive) => {
            emit!("discard: flock_nb(h, EX): busy -> close, O1" => closed => O1Open)
        }
        DRelock => emit!("discard: flock_nb(h, EX): taken" => t.flocked(p, Exclusive) => DCheck),
        DCheck if linked && matches!(held, Some(Empty(_))) => {
            emit!("discard: P names h, h is empty" => t => CUnlink)
        }
        DCheck => emit!("discard: P is not h, or h has a record -> close, O1" => closed => O1Open),
        L1Create if s.link.is_none() => {
            emit!("L1 create_excl(P): created" => t.created(p, Empty(me)) => L2Lock)
        }
        L1Create => emit!("L1 create_excl(P): EEXIST" => t => Observe),
        // OLD keeps its snapshot (its stale watch) across this retry.
        L2Lock if busy(Exclusive) => {
            emit!("L2 flock_nb(h): busy -> close, L1" => closed => L1Create)
        }
        // OLD (and NEW without L3) goes on to write its record at once.
        L2Lock if !proto.linked_check_after_create => {
            emit!("L2 flock_nb(h): taken" => t.flocked(p, Exclusive) => L4Write)
        }
        L2Lock => emit!("L2 flock_nb(h): taken" => t.flocked(p, Exclusive) => L3Linked),
        L3Linked if linked => emit!("L3 P still names h" => t => L4Write),
        L3Linked => emit!("L3 P no longer names h -> close, L1" => retry => L1Create),
        L4Write => {
            let t = t.written(h.unwrap(), Lockfile(me)).with_snapshot(p, None);
            emit!("write Lockfile{me} -> HOLD" => t.watching(p, None) => Hold);
        }
        // OLD L5-L7, NEW L5-L6: P is judged from outside, without its flock.
        // OLD breaks what it saw; NEW re-reads it under the flock first (L7-L10).
        Observe => {
            let Some(obs) = s.observe() else {
                return emit!("L5 observe: P absent -> L1" => t => L1Create);
            };
            let act = t.with_snapshot(p, Some(obs));
            let (poll, brk) = if old { (act, BGuard) } else { (t, TOpen) };
            let watch = |w| if old { poll } else { poll.watching(p, w) };
            match obs.1 {
                Os(_) => emit!("L6 observe: Os record -> take over" => act => TOpen),
                Lockfile(w) if proto.judge != Judge::Never && s.crashed(w) => {
                    emit!("L6 observe: writer crashed" => act => brk)
                }
                Lockfile(_) => {
                    if proto.judge == Judge::AnyWriter {
                        let text = "L6 observe: live writer's record looks stale (staleMs)";
                        emit!(text => act => brk);
                    }
                    emit!("L6 observe: held -> poll L1" => watch(None) => L1Create);
                }
                Empty(_) => {
                    let seen = match old {
                        true => pr.snapshot == Some(obs),
                        false => pr.watch == Some(obs.0),
                    };
                    if proto.empty_files_go_stale && seen {
                        emit!("L6 observe: same empty file, grace over" => act => brk);
                    }
                    emit!("L6 observe: empty file -> poll L1" => watch(Some(obs.0)) => L1Create);
                }
            }
        }
        TOpen => match s.link {
            None => emit!("L7 open(P): absent -> L1" => retry => L1Create),
            Some(i) => emit!("L7 open(P)" => t.opened(p, i) => TLock),
        },
        TLock if !proto.break_under_flock && !matches!(pr.snapshot, Some((_, Os(_)))) => {
            emit!("L8 skipped: a break without the flock" => t => TLinked)
        }
        TLock if busy(Exclusive) => emit!("L8 flock_nb(h): busy -> close, L1" => retry => L1Create),
        TLock => emit!("L8 flock_nb(h): taken" => t.flocked(p, Exclusive) => TLinked),
        TLinked if linked => emit!("L9 stat(P) == fstat(h)" => t => TClaim),
        TLinked => emit!("L9 P no longer names h -> unlock, L1" => retry => L1Create),
        TClaim if old => {
            let t = t.written(h.unwrap(), Lockfile(me)).with_snapshot(p, None);
            emit!("L6 write Lockfile{me}, content unread -> HOLD" => t => Hold);
        }
        // The snapshot's content is the intent: an Os record to take over, else a break.
        TClaim => match (pr.snapshot.unwrap(), (h.unwrap(), held.unwrap())) {
            ((_, Os(_)), (_, Os(_))) => emit!("L10 read: an Os record -> L11" => t => L4Write),
            ((_, Os(_)), _) => emit!("L10 read: no Os record -> unlock, L1" => retry => L1Create),
            (judged, now) if judged == now => emit!("L10 read: as judged -> L12" => t => BGuard),
            _ => emit!("L10 read: changed -> unlock, L1" => retry => L1Create),
        },
        BGuard if s.guard.is_some() => emit!("break: guard exists -> L1" => retry => L1Create),
        BGuard => emit!("break: create guard" => t.with_guard(Some(me)) => BRecheck),
        BRecheck if s.observe() == pr.snapshot => emit!("break: P unchanged" => t => BRename),
        BRecheck => emit!("break: P changed -> unguard, L1" => retry.with_guard(None) => L1Create),
        BRename if s.link.is_none() => {
            emit!("break: rename: ENOENT -> unguard, L1" => retry.with_guard(None) => L1Create)
        }
        BRename => emit!("break: rename(P, aside)" => t.renamed_aside(p) => BSettle),
        BSettle if pr.aside.map(|a| (a, s.content(a))) != pr.snapshot => {
            emit!("break: aside is not the judged file" => t => BPutBack)
        }
        BSettle => emit!("break: unlink(aside)" => t.unlinked_aside(p, false) => BUnguard),
        BPutBack => {
            let text = "break: link(aside, P) if absent, unlink(aside)";
            emit!(text => t.unlinked_aside(p, true) => BUnguard);
        }
        BUnguard => {
            let t = t.with_guard(None).with_snapshot(p, None);
            emit!("break: remove guard" => t => if h.is_some() { BUnlock } else { L1Create });
        }
        BUnlock => emit!("break: unlock, close -> L1" => retry => L1Create),
        Hold if pr.strategy == Strategy::Os => finish(closed, p, "release: unlock", out),
        Hold if linked => emit!("release: P names our inode" => t => RRename),
        Hold => emit!("release: P no longer names our inode (lost)" => t => RUnlock),
        RRename if s.link.is_none() => emit!("release: rename: ENOENT" => t => RUnlock),
        RRename => emit!("release: rename(P, aside)" => t.renamed_aside(p) => RSettle),
        RSettle if pr.aside == h => {
            emit!("release: unlink(aside)" => t.unlinked_aside(p, false) => RUnlock)
        }
        RSettle => {
            let text = "release: not ours -> put back, unlink(aside)";
            emit!(text => t.unlinked_aside(p, true) => RUnlock);
        }
        RUnlock => finish(closed, p, "release: unlock, close", out),
        COpen => match s.link {
            None => emit!("cleanup: open existing P: absent -> done" => t => Done),
            Some(i) => emit!("cleanup: open existing P" => t.opened(p, i) => CLock),
        },
        CLock if busy(Exclusive) => {
            emit!("cleanup: flock_nb(h, EX): busy -> done" => closed => Done)
        }
        CLock => emit!("cleanup: flock_nb(h, EX): taken" => t.flocked(p, Exclusive) => CLinked),
        CLinked if linked => emit!("cleanup: stat(P) == fstat(h)" => t => CUnlink),
        CLinked => emit!("cleanup: P no longer names h -> done" => closed => Done),
        CUnlink => emit!("unlink(P)" => State { link: None, ..t } => CUnlock),
        // Only a discard has acquisitions left.
        CUnlock if pr.left > 0 => emit!("discard: unlock, close -> O1" => closed => O1Open),
        CUnlock => emit!("cleanup: unlock, close -> done" => closed => Done),
        Done | Crashed => {}
    }
}

/// After a release: the next acquisition, or done (an OS user may first run
/// its close-time cleanup, which is what can unlink a fresh lock file).
fn finish(mut t: State, p: usize, text: &'static str, out: &mut Vec<(Label, State)>) {
    let label = |then| Label(Some(p as u8), text, then);
    t.procs[p].left -= 1;
    if t.procs[p].left > 0 {
        let next = START[t.procs[p].strategy as usize];
        return out.push((label(" -> next acquisition"), t.at(p, next)));
    }
    out.push((label(" -> done"), t.at(p, Pc::Done)));
    if t.procs[p].strategy == Strategy::Os {
        out.push((label(" -> close: cleanup"), t.at(p, Pc::COpen)));
    }
}

/// Successors before canonicalisation: inode numbers are still the parent's.
pub fn raw_successors(s: &State, proto: &Protocol) -> Vec<(Label, State)> {
    let mut out = Vec::new();
    for p in 0..s.n_procs as usize {
        if matches!(s.procs[p].pc, Pc::Done | Pc::Crashed) {
            continue;
        }
        step(s, p, proto, &mut out);
        // Flocks, handles and memory go with the process; its files and guard stay.
        let mut t = *s;
        t.procs[p] = Proc::default();
        out.push((Label(Some(p as u8), CRASHES, ""), t.at(p, Pc::Crashed)));
    }
    if proto.abandoned_guards_cleared && s.guard.is_some_and(|g| s.crashed(g)) {
        let text = "the crashed breaker's guard is cleared (BREAKER_STALE)";
        out.push((Label(None, text, ""), s.with_guard(None)));
    }
    out
}
