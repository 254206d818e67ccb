//! One file's lock inside one manager: the fair queue of in-process callers in
//! front of the cross-process lock (`strategy::CrossProcessLock`), and the pump
//! that hands the lock on.
//!
//! Invariants (all under `state`'s mutex):
//! - The cross-process lock is held (`held`) exactly while there are
//!   in-process holders, in a mode that covers them; it is dropped as soon as
//!   the last one leaves.
//! - At most one waiter thread per file-level mode waits for the cross-process
//!   lock (`waiting`), never the JS thread or libuv's pool. A waiter whose
//!   requester gave up is reused by the next request of its mode; any other
//!   request still tries the lock itself, so an abandoned exclusive waiter
//!   never holds up a reader. A waiter that wins a lock nobody needs any more
//!   lets go at once, and one that waited with a mechanism the file no longer
//!   uses hands nothing out.
//! - A grant is only sent to a waiter that still listens; otherwise it is undone.
//! - Which mechanism locks the file is the strategy module's business: this
//!   file never looks inside a held lock.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::config::StrategyChoice;
use super::error::LockError;
use super::holder_record::{Holder, Strategy};
use super::queue::{FairQueue, Holders};
use super::sidecar::sidecar_path;
use super::strategy::{self, Attempt, CrossProcessLock, HeldLock, Place, Won};
use super::{waiter_pool, Mode};
use crate::fs_kind::{self, FsKind};

pub use super::strategy::StaleRemoved;

/// How often one attempt may be told to switch mechanisms (once, in practice).
const MAX_SWITCHES: usize = 2;

pub type GrantResult = Result<Grant, LockError>;

/// A granted in-process hold.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub mode: Mode,
    pub fencing_token: u64,
}

/// Whoever waits in the queue. `answer` is called exactly once, under the
/// queue's mutex, unless the waiter is taken out with `cancel` first.
pub trait Waiter: Send {
    /// Delivers the grant or the failure. `false`: nobody wants it any more (a
    /// grant is then undone).
    fn answer(self: Box<Self>, result: GrantResult) -> bool;
}

pub enum Enqueued {
    Granted(Grant),
    /// Queued: `holder` is who it waits for (when asked for).
    Waiting {
        ticket: u64,
        holder: Option<Holder>,
    },
}

struct State {
    queue: FairQueue<Box<dyn Waiter>>,
    /// The mechanism this file is locked with across processes.
    lock: Arc<dyn CrossProcessLock>,
    /// The cross-process lock we hold, in which file-level mode.
    held: Option<(Mode, Box<dyn HeldLock>)>,
    fencing: u64,
    /// Waiter threads in flight: `[shared, exclusive]`.
    waiting: [bool; 2],
    closed: bool,
    /// Dropped from the manager's registry while idle (a later request for the
    /// file gets a new `PathLock`; one still referenced keeps working).
    forgotten: bool,
    next_ticket: u64,
}

impl State {
    fn held_mode(&self) -> Option<Mode> {
        self.held.as_ref().map(|(mode, _)| *mode)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn slot(mode: Mode) -> usize {
    usize::from(mode.is_exclusive())
}

pub struct PathLock {
    pub target: PathBuf,
    pub sidecar_path: PathBuf,
    place: Place,
    /// Why the mechanism was chosen.
    why: String,
    /// Whether the lock file was chosen; using it otherwise means the file
    /// switched (OS locks refused here, or another process seen using one).
    chose_lock_file: bool,
    /// Whether the mechanism now is the lock file, and how often its holds are
    /// verified: readable without the mutex (a grant is completed under it).
    uses_lock_file: AtomicBool,
    verify_every_us: AtomicU64,
    /// Detected once, when the file is first locked.
    pub file_system: FsKind,
    expose_pids: bool,
    state: Mutex<State>,
}

impl PathLock {
    pub fn new(
        target: PathBuf,
        expose_pids: bool,
        choice: StrategyChoice,
        stale_after: Duration,
        network_factor: f64,
        on_stale_removed: Option<StaleRemoved>,
    ) -> Self {
        let file_system = fs_kind::detect(target.parent().unwrap_or(&target));
        let place = Place {
            sidecar_path: sidecar_path(&target),
            target: target.clone(),
            stale_after: strategy::stale_after_on(&file_system, stale_after, network_factor),
            on_stale_removed,
        };
        let chosen = strategy::choose(&place, choice, &file_system);
        let chose_lock_file = chosen.lock.strategy() == Strategy::Lockfile;
        PathLock {
            uses_lock_file: AtomicBool::new(chose_lock_file),
            chose_lock_file,
            verify_every_us: AtomicU64::new(micros(chosen.lock.verify_every())),
            why: chosen.why,
            sidecar_path: place.sidecar_path.clone(),
            place,
            file_system,
            target,
            expose_pids,
            state: Mutex::new(State {
                queue: FairQueue::default(),
                lock: chosen.lock,
                held: None,
                fencing: 0,
                waiting: [false; 2],
                closed: false,
                forgotten: false,
                next_ticket: 0,
            }),
        }
    }

    /// Why this file is locked the way it is (for `Lock.strategyReason`).
    pub fn strategy_reason(&self) -> String {
        if self.uses_lock_file.load(Ordering::Relaxed) && !self.chose_lock_file {
            "the lock file is in use for this file (OS locks were refused, or another process locks it with a lock file)".into()
        } else {
            self.why.clone()
        }
    }

    /// How this file is locked across processes now.
    pub fn strategy(&self) -> Strategy {
        if self.uses_lock_file.load(Ordering::Relaxed) {
            Strategy::Lockfile
        } else {
            Strategy::Os
        }
    }

    /// How often a held lock of this file is verified.
    pub fn verify_every(&self) -> Duration {
        Duration::from_micros(self.verify_every_us.load(Ordering::Relaxed))
    }

    /// The share's name when the file is on a network drive.
    pub fn network(&self) -> Option<String> {
        self.file_system
            .is_network()
            .then(|| self.file_system.name().to_string())
    }

    /// Grants `mode` now if nobody is ahead and the lock is free; never blocks.
    pub fn try_acquire(&self, mode: Mode) -> Result<Option<Grant>, LockError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(LockError::Closed);
        }
        self.try_enter(&mut st, mode)
    }

    fn try_enter(&self, st: &mut State, mode: Mode) -> Result<Option<Grant>, LockError> {
        if !st.queue.can_enter_now(mode) {
            return Ok(None);
        }
        if st.queue.holders() == Holders::Free && !self.try_lock(st, mode)? {
            return Ok(None);
        }
        st.queue.enter(mode);
        Ok(Some(Grant {
            mode,
            fencing_token: st.fencing,
        }))
    }

    /// Joins the queue: granted at once, or `waiter` is answered later.
    pub fn enqueue(
        self: &Arc<Self>,
        mode: Mode,
        waiter: Box<dyn Waiter>,
        describe_holder: bool,
    ) -> Result<Enqueued, LockError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(LockError::Closed);
        }
        if let Some(grant) = self.try_enter(&mut st, mode)? {
            return Ok(Enqueued::Granted(grant));
        }
        // Who we wait for, as it stands before anything is handed on.
        let holder = if describe_holder {
            self.holder_now(&st)
        } else {
            None
        };
        st.next_ticket += 1;
        let ticket = st.next_ticket;
        st.queue.push(ticket, mode, waiter);
        self.pump(&mut st);
        Ok(Enqueued::Waiting { ticket, holder })
    }

    /// Leaves the queue. `false` when the request was already answered.
    pub fn cancel(self: &Arc<Self>, ticket: u64) -> bool {
        let mut st = self.state.lock();
        let removed = st.queue.remove(ticket).is_some();
        if removed {
            self.pump(&mut st);
        }
        removed
    }

    /// Ends one in-process hold and hands the lock on.
    pub fn release(self: &Arc<Self>, mode: Mode) {
        let mut st = self.state.lock();
        st.queue.leave(mode);
        if st.queue.holders() == Holders::Free {
            Self::let_go(&mut st);
        }
        self.pump(&mut st);
    }

    /// Whether the cross-process lock we hold still stands (lock files: this
    /// is also the heartbeat). An error to check is not a loss.
    pub fn still_stands(&self) -> bool {
        let st = self.state.lock();
        st.held.as_ref().is_none_or(|(_, held)| held.still_held())
    }

    /// Who holds the lock now, as far as we can tell without waiting.
    pub fn current_holder(&self) -> Option<Holder> {
        self.holder_now(&self.state.lock())
    }

    fn holder_now(&self, st: &State) -> Option<Holder> {
        let mode = match st.queue.holders() {
            Holders::Free => return st.lock.recorded_holder(self.expose_pids),
            Holders::Shared(_) => Mode::Shared,
            Holders::Exclusive => Mode::Exclusive,
        };
        Some(Holder {
            strategy: st.lock.strategy(),
            ..Holder::this_process(mode)
        })
    }

    /// Fails every waiter with `ECLOSED`, drops the cross-process lock and
    /// removes the sidecar when nobody else uses it. Holds released afterwards
    /// hand nothing on.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for waiter in st.queue.drain() {
            waiter.answer(Err(LockError::Closed));
        }
        Self::let_go(&mut st);
        st.lock.close();
    }

    /// When nobody holds, waits or has a waiter in flight: lets go of the
    /// cached handle and removes the sidecar if no other process uses it; the
    /// registry then drops this file. `true` when forgotten.
    pub fn forget_if_idle(&self) -> bool {
        let mut st = self.state.lock();
        let idle = st.queue.holders() == Holders::Free
            && st.queue.head_mode().is_none()
            && st.waiting == [false; 2]
            && st.held.is_none();
        if idle {
            st.lock.close();
            st.forgotten = true;
        }
        idle
    }

    pub fn is_forgotten(&self) -> bool {
        self.state.lock().forgotten
    }

    /// Grants queued requests while possible; starts a waiter when the
    /// cross-process lock is contended.
    fn pump(self: &Arc<Self>, st: &mut State) {
        while !st.closed {
            match st.queue.holders() {
                Holders::Exclusive => return,
                Holders::Shared(_) => match st.queue.pop_compatible_head() {
                    Some((mode, reply)) => Self::grant(st, mode, reply),
                    None => return,
                },
                Holders::Free => {
                    let Some(head) = st.queue.head_mode() else {
                        Self::let_go(st);
                        return;
                    };
                    match st.held_mode() {
                        Some(held) if held.covers(head) => {
                            if let Some((mode, reply)) = st.queue.pop_compatible_head() {
                                Self::grant(st, mode, reply);
                            }
                            continue;
                        }
                        Some(_) => Self::let_go(st),
                        None => {}
                    }
                    if st.waiting[slot(st.lock.file_mode(head))] {
                        return; // a waiter for this very mode will call back
                    }
                    match self.try_lock(st, head) {
                        Ok(true) => {}
                        Ok(false) => {
                            // The attempt may have switched mechanisms, and with
                            // them the waiter slot the head needs.
                            if st.waiting[slot(st.lock.file_mode(head))]
                                || self.spawn_waiter(st, head)
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            if let Some((_, reply)) = st.queue.pop_compatible_head() {
                                reply.answer(Err(e));
                            }
                        }
                    }
                }
            }
        }
    }

    fn grant(st: &mut State, mode: Mode, reply: Box<dyn Waiter>) {
        st.queue.enter(mode);
        let grant = Grant {
            mode,
            fencing_token: st.fencing,
        };
        if !reply.answer(Ok(grant)) {
            // The requester stopped listening (timed out in the same instant): undo.
            st.queue.leave(mode);
        }
    }

    /// Takes the cross-process lock if it is free now; `true` when held.
    fn try_lock(&self, st: &mut State, mode: Mode) -> Result<bool, LockError> {
        for _ in 0..MAX_SWITCHES {
            let file_mode = st.lock.file_mode(mode);
            match st.lock.try_acquire(file_mode, None)? {
                Attempt::Held(mut held) => {
                    if let Err(e) = held.publish() {
                        held.release();
                        return Err(LockError::io(&self.sidecar_path, "write", e));
                    }
                    Self::hold(st, file_mode, held);
                    return Ok(true);
                }
                Attempt::Busy => return Ok(false),
                Attempt::UseLockFile => self.switch_to_lock_file(st),
            }
        }
        Ok(false)
    }

    fn hold(st: &mut State, mode: Mode, held: Box<dyn HeldLock>) {
        st.fencing = held.fencing_token();
        st.held = Some((mode, held));
    }

    fn let_go(st: &mut State) {
        if let Some((_, held)) = st.held.take() {
            held.release();
        }
    }

    /// From now on this file is locked with a lock file (one way only).
    fn switch_to_lock_file(&self, st: &mut State) {
        if st.lock.strategy() == Strategy::Lockfile {
            return;
        }
        st.lock = strategy::build(&self.place, Strategy::Lockfile);
        self.uses_lock_file.store(true, Ordering::Relaxed);
        self.verify_every_us
            .store(micros(st.lock.verify_every()), Ordering::Relaxed);
    }

    /// Starts a waiter; `false` (the head failed) when no thread could run it.
    fn spawn_waiter(self: &Arc<Self>, st: &mut State, mode: Mode) -> bool {
        let lock = Arc::clone(&st.lock);
        let file_mode = lock.file_mode(mode);
        st.waiting[slot(file_mode)] = true;
        let me = Arc::clone(self);
        match waiter_pool::run(move || me.wait_with(lock, file_mode)) {
            Ok(()) => true,
            Err(e) => {
                st.waiting[slot(file_mode)] = false;
                if let Some((_, reply)) = st.queue.pop_compatible_head() {
                    reply.answer(Err(LockError::io(&self.sidecar_path, "start a waiter", e)));
                }
                false
            }
        }
    }

    /// Body of a waiter: waits with `lock` until it can try again, then tries
    /// under the mutex, until the lock is held, nobody wants it, or it fails.
    fn wait_with(self: Arc<Self>, lock: Arc<dyn CrossProcessLock>, mode: Mode) {
        let mut wait = lock.start_waiting(mode);
        loop {
            let won = wait.until_worth_trying();
            let mut st = self.state.lock();
            let current = Arc::ptr_eq(&st.lock, &lock);
            let wanted = current
                && !st.closed
                && st.held.is_none()
                && st.queue.holders() == Holders::Free
                && st.queue.head_mode().is_some_and(|head| mode.covers(head));
            if !wanted {
                st.waiting[slot(mode)] = false;
                if let Ok(Some(won)) = won {
                    self.discard(&st, won);
                }
                return self.pump(&mut st);
            }
            let attempt = won.map_err(|e| LockError::io(&self.sidecar_path, "lock", e));
            if strategy::is_sharing_violation(&attempt) {
                // Another process's handle kept the wait from opening the file
                // (Windows): nothing in the kernel will wake this waiter when
                // it closes, so pause. (`try_acquire` reads one as busy itself.)
                drop(st);
                std::thread::sleep(strategy::SHARED_PAUSE);
                continue;
            }
            match attempt.and_then(|won| lock.try_acquire(mode, won)) {
                Ok(Attempt::Held(held)) => {
                    st.waiting[slot(mode)] = false;
                    Self::hold(&mut st, mode, held);
                    // Hand the lock over first: on a cold CPU each syscall costs
                    // µs. The record is still written before anyone can release
                    // (release needs this mutex).
                    self.pump(&mut st);
                    if let Some((_, held)) = &mut st.held {
                        let _ = held.publish();
                    }
                    return;
                }
                Ok(Attempt::Busy) => continue,
                Ok(Attempt::UseLockFile) => self.switch_to_lock_file(&mut st),
                Err(e) => {
                    if let Some((_, reply)) = st.queue.pop_compatible_head() {
                        reply.answer(Err(e));
                    }
                }
            }
            st.waiting[slot(mode)] = false;
            return self.pump(&mut st);
        }
    }

    /// A won OS lock nobody wants: after `close()`, the last waiter removes the
    /// sidecar close could not; otherwise it lets go.
    fn discard(&self, st: &State, won: Won) {
        if st.closed && st.waiting == [false; 2] {
            won.remove_if_unused(&self.sidecar_path);
        } else {
            won.discard(&self.sidecar_path);
        }
    }
}
