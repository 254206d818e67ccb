//! One file's lock inside one manager: the fair queue of in-process callers in
//! front of the OS lock on the file's sidecar.
//!
//! Invariants (all under `state`'s mutex):
//! - The OS lock is held (`os_held`, on one sidecar handle) exactly while there
//!   are in-process holders, in a mode that covers them; it is dropped as soon
//!   as the last one leaves.
//! - At most one pool thread per mode waits on the OS lock (`os_waiting`), each
//!   on a handle of its own, blocked in the kernel: a release by another process
//!   wakes it at once, and it never occupies the JS thread or libuv's pool.
//!   A waiter whose requester gave up is reused by the next request of its
//!   mode; any other request still tries the lock itself (on the shared handle),
//!   so an abandoned exclusive waiter never holds up a reader. A waiter that
//!   wins a lock nobody needs any more lets go at once.
//! - A grant is only sent to a waiter that still listens; otherwise it is undone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::dir_watch::DirWatch;
use super::error::LockError;
use super::lockfile::{self, StaleWatch, Verdict};
use super::manager::StrategyChoice;
use super::metadata::{self, Holder, HolderRecord, NextRecord, Strategy};
use super::os_lock;
use super::queue::{FairQueue, Holders};
use super::sidecar::{sidecar_path, Sidecar};
use super::{waiter_pool, Mode};
use crate::fs_kind::{self, FsKind};

/// How often a freshly locked sidecar may turn out to be unlinked before we give up.
const MAX_RELINK_ATTEMPTS: usize = 16;

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

#[derive(Default)]
struct State {
    queue: FairQueue<Box<dyn Waiter>>,
    /// The file-level lock we hold, and what holds it.
    os_held: Option<(Mode, HeldBy)>,
    /// Lock-file strategy: how long the current holder's file has looked unchanged.
    stale_watch: StaleWatch,
    os_fencing: u64,
    /// The handle for non-blocking attempts, kept open between acquisitions.
    sidecar: Option<Arc<Sidecar>>,
    /// Waiter threads in flight: `[shared, exclusive]`.
    os_waiting: [bool; 2],
    closed: bool,
    /// Dropped from the manager's registry while idle (a later request for the
    /// file gets a new `PathLock`; one still referenced keeps working).
    forgotten: bool,
    next_ticket: u64,
}

fn slot(mode: Mode) -> usize {
    usize::from(mode.is_exclusive())
}

/// How a file is locked across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// flock / LockFileEx on a persistent sidecar.
    Flock,
    /// The existence of the lock file, with heartbeats; stale after `stale_after`
    /// without one (other hosts) or at once when its process is gone (this host).
    LockFile { stale_after: Duration },
}

/// Told when a stale lock file was removed: (data file, why it was stale).
pub type StaleRemoved = Arc<dyn Fn(&std::path::Path, &str) + Send + Sync>;

/// What holds the file-level lock.
enum HeldBy {
    Flock(Arc<Sidecar>),
    File(lockfile::Claim),
}

impl State {
    fn os_mode(&self) -> Option<Mode> {
        self.os_held.as_ref().map(|(mode, _)| *mode)
    }
}

/// What `strategy: 'auto'` picks for a file in `dir` (on `file_system`), and why.
pub fn auto_strategy(dir: &std::path::Path, file_system: &FsKind) -> (Strategy, String) {
    if file_system.is_network() {
        (
            Strategy::Lockfile,
            format!(
                "the file is on a network drive ({}), where OS locks are unreliable",
                file_system.name()
            ),
        )
    } else if !os_lock::supported_in(dir) {
        (
            Strategy::Lockfile,
            "the file system refused OS locks (ENOTSUP, EOPNOTSUPP, ENOSYS or ENOLCK)".to_string(),
        )
    } else {
        (Strategy::Os, "OS locks work on this local disk".to_string())
    }
}

/// `staleMs` as applied on `file_system`: a share's round trips (and its
/// holders' heartbeats) are slower, so it is stretched by the network factor.
pub fn stale_after_on(
    file_system: &FsKind,
    stale_after: Duration,
    network_factor: f64,
) -> Duration {
    if file_system.is_network() {
        Duration::try_from_secs_f64(stale_after.as_secs_f64() * network_factor.max(1.0))
            .unwrap_or(Duration::MAX)
    } else {
        stale_after
    }
}

pub struct PathLock {
    pub target: PathBuf,
    pub sidecar_path: PathBuf,
    backend: Backend,
    /// Why `backend` was chosen.
    why: String,
    /// Set when flock turned out unsupported here, or another process was seen
    /// locking this file with a lock file: the lock file is used from then on.
    lock_file_in_use: AtomicBool,
    stale_after: Duration,
    on_stale_removed: Option<StaleRemoved>,
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
        let stale_after = stale_after_on(&file_system, stale_after, network_factor);
        let lock_file = Backend::LockFile { stale_after };
        let (backend, why) = match choice {
            StrategyChoice::Os => (Backend::Flock, "chosen by the strategy option".to_string()),
            StrategyChoice::Lockfile => (lock_file, "chosen by the strategy option".to_string()),
            StrategyChoice::Auto => {
                match auto_strategy(target.parent().unwrap_or(&target), &file_system) {
                    (Strategy::Os, why) => (Backend::Flock, why),
                    (Strategy::Lockfile, why) => (lock_file, why),
                }
            }
        };
        PathLock {
            backend,
            why,
            lock_file_in_use: AtomicBool::new(false),
            stale_after,
            on_stale_removed,
            sidecar_path: sidecar_path(&target),
            file_system,
            target,
            expose_pids,
            state: Mutex::default(),
        }
    }

    /// Why this file is locked the way it is (for `Lock.strategyReason`).
    pub fn strategy_reason(&self) -> String {
        if self.lock_file_in_use.load(Ordering::Relaxed) {
            "the lock file is in use for this file (OS locks were refused, or another process locks it with a lock file)".into()
        } else {
            self.why.clone()
        }
    }

    /// How this file is locked across processes now.
    pub fn backend(&self) -> Backend {
        if self.lock_file_in_use.load(Ordering::Relaxed) {
            Backend::LockFile {
                stale_after: self.stale_after,
            }
        } else {
            self.backend
        }
    }

    /// The share's name when the file is on a network drive.
    pub fn network(&self) -> Option<String> {
        self.file_system
            .is_network()
            .then(|| self.file_system.name().to_string())
    }

    /// Grants `mode` now if nobody is ahead and the OS lock is free; never blocks.
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
        if st.queue.holders() == Holders::Free && self.try_os(st, mode)?.is_none() {
            return Ok(None);
        }
        st.queue.enter(mode);
        Ok(Some(Grant {
            mode,
            fencing_token: st.os_fencing,
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
            self.release_os(&mut st);
        }
        self.pump(&mut st);
    }

    /// Whether the OS lock we hold is still on the file the sidecar path names.
    /// An error to check is not a loss: only a proven unlink or replacement is.
    pub fn still_stands(&self) -> bool {
        let st = self.state.lock();
        match &st.os_held {
            Some((_, HeldBy::Flock(sidecar))) => {
                sidecar.still_linked(&self.sidecar_path).unwrap_or(true)
            }
            // Refreshing the heartbeat is also the proof the file is still ours.
            Some((_, HeldBy::File(claim))) => {
                lockfile::heartbeat(&self.sidecar_path, claim).unwrap_or(true)
            }
            None => true,
        }
    }

    /// Who holds the lock now, as far as we can tell without waiting.
    pub fn current_holder(&self) -> Option<Holder> {
        self.holder_now(&self.state.lock())
    }

    fn holder_now(&self, st: &State) -> Option<Holder> {
        let mode = match st.queue.holders() {
            Holders::Free => return self.recorded_holder(st),
            Holders::Shared(_) => Mode::Shared,
            Holders::Exclusive => Mode::Exclusive,
        };
        let strategy = match self.backend() {
            Backend::Flock => Strategy::Os,
            Backend::LockFile { .. } => Strategy::Lockfile,
        };
        Some(Holder {
            strategy,
            ..Holder::this_process(mode)
        })
    }

    /// Fails every waiter with `ECLOSED`, drops the OS lock and removes the
    /// sidecar when nobody else uses it. Holds released afterwards hand nothing on.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for waiter in st.queue.drain() {
            waiter.answer(Err(LockError::Closed));
        }
        self.release_os(&mut st);
        if let Some(sidecar) = st.sidecar.take() {
            // Keeps the file while anyone holds it; a waiter of ours that gets it
            // after close removes it then.
            sidecar.remove_if_unused(&self.sidecar_path);
        }
    }

    /// When nobody holds, waits or has an OS waiter in flight: closes the cached
    /// handle and removes the sidecar if no other process uses it; the registry
    /// then drops this file. `true` when forgotten.
    pub fn forget_if_idle(&self) -> bool {
        let mut st = self.state.lock();
        let idle = st.queue.holders() == Holders::Free
            && st.queue.head_mode().is_none()
            && st.os_waiting == [false; 2]
            && st.os_held.is_none();
        if idle {
            if let Some(sidecar) = st.sidecar.take() {
                sidecar.remove_if_unused(&self.sidecar_path);
            }
            st.forgotten = true;
        }
        idle
    }

    pub fn is_forgotten(&self) -> bool {
        self.state.lock().forgotten
    }

    /// Grants queued requests while possible; starts an OS waiter when the OS lock is contended.
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
                        self.release_os(st);
                        return;
                    };
                    match st.os_mode() {
                        Some(held) if held.covers(head) => {
                            if let Some((mode, reply)) = st.queue.pop_compatible_head() {
                                Self::grant(st, mode, reply);
                            }
                            continue;
                        }
                        Some(_) => self.release_os(st),
                        None => {}
                    }
                    if st.os_waiting[self.waiter_slot(head)] {
                        return; // a waiter for this very mode will call back
                    }
                    match self.try_os(st, head) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            if self.spawn_os_waiter(st, head) {
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
            fencing_token: st.os_fencing,
        };
        if !reply.answer(Ok(grant)) {
            // The requester stopped listening (timed out in the same instant): undo.
            st.queue.leave(mode);
        }
    }

    /// Takes the OS lock if it is free now. `Ok(Some(fencing))` when held.
    fn try_os(&self, st: &mut State, mode: Mode) -> Result<Option<u64>, LockError> {
        if let Backend::LockFile { stale_after } = self.backend() {
            return self.try_lock_file(st, stale_after);
        }
        for _ in 0..MAX_RELINK_ATTEMPTS {
            let sidecar = self.sidecar(st)?;
            let locked = match os_lock::try_lock(sidecar.file(), mode) {
                Ok(locked) => locked,
                Err(e) if os_lock::means_unsupported(&e) && self.backend == Backend::Flock => {
                    // This file system has no OS locks: the lock file from now on.
                    self.lock_file_in_use.store(true, Ordering::Relaxed);
                    // The empty sidecar we just created would pass for a lock file
                    // whose holder has not written its record yet: we would wait
                    // `staleMs` for ourselves. Nobody else can have a claim on it.
                    let empty = sidecar.file().metadata().is_ok_and(|m| m.len() == 0);
                    if sidecar.created()
                        && empty
                        && matches!(sidecar.still_linked(&self.sidecar_path), Ok(true))
                    {
                        let _ = std::fs::remove_file(&self.sidecar_path);
                    }
                    st.sidecar = None;
                    return self.try_lock_file(st, self.stale_after);
                }
                Err(e) => return Err(LockError::io(&self.sidecar_path, "lock", e)),
            };
            if !locked {
                return Ok(None);
            }
            let claimed = self.claim(st, &sidecar, mode)?;
            if let Backend::LockFile { stale_after } = self.backend() {
                return self.try_lock_file(st, stale_after);
            }
            if let Some(next) = claimed {
                if let Err(e) = metadata::write_record(sidecar.file(), mode, next) {
                    self.release_os(st);
                    return Err(LockError::io(&self.sidecar_path, "write", e));
                }
                return Ok(Some(next.fencing_token));
            }
        }
        Err(LockError::io(
            &self.sidecar_path,
            "lock",
            std::io::Error::other("the lock file keeps being deleted while locking"),
        ))
    }

    /// After the OS lock on `sidecar` was obtained: verify the sidecar is still
    /// the one at the path and pick our fencing token; the caller writes the
    /// record. `Ok(None)`: it was unlinked meanwhile; the lock is dropped and
    /// the caller must start over.
    fn claim(
        &self,
        st: &mut State,
        sidecar: &Arc<Sidecar>,
        mode: Mode,
    ) -> Result<Option<NextRecord>, LockError> {
        let unlock_on_error = |e: std::io::Error, op| {
            let _ = os_lock::unlock(sidecar.file());
            LockError::io(&self.sidecar_path, op, e)
        };
        let linked = sidecar
            .still_linked(&self.sidecar_path)
            .map_err(|e| unlock_on_error(e, "stat"))?;
        if !linked {
            let _ = os_lock::unlock(sidecar.file());
            if st.sidecar.as_ref().is_some_and(|s| Arc::ptr_eq(s, sidecar)) {
                st.sidecar = None;
            }
            return Ok(None);
        }
        let next = metadata::next_record(sidecar.file()).map_err(|e| unlock_on_error(e, "read"))?;
        if next.previous_strategy == Some(Strategy::Lockfile) && self.backend == Backend::Flock {
            // Another process locks this file with a lock file: follow its protocol
            // from now on (its holders also hold the flock while they can).
            let _ = os_lock::unlock(sidecar.file());
            self.lock_file_in_use.store(true, Ordering::Relaxed);
            st.sidecar = None;
            return Ok(None);
        }
        st.os_held = Some((mode, HeldBy::Flock(Arc::clone(sidecar))));
        st.os_fencing = next.fencing_token;
        Ok(Some(next))
    }

    fn sidecar(&self, st: &mut State) -> Result<Arc<Sidecar>, LockError> {
        if let Some(sidecar) = &st.sidecar {
            return Ok(Arc::clone(sidecar));
        }
        let sidecar = Arc::new(
            Sidecar::open_noting_creation(&self.sidecar_path)
                .map_err(|e| LockError::io(&self.sidecar_path, "open", e))?,
        );
        st.sidecar = Some(Arc::clone(&sidecar));
        Ok(sidecar)
    }

    fn release_os(&self, st: &mut State) {
        match st.os_held.take() {
            Some((_, HeldBy::Flock(sidecar))) => {
                let _ = os_lock::unlock(sidecar.file());
            }
            Some((_, HeldBy::File(claim))) => {
                let _ = lockfile::remove_own(&self.sidecar_path, &claim);
            }
            None => {}
        }
    }

    /// Lock files are exclusive at the file level (shared holders of one process
    /// still share): one waiter serves both modes.
    fn waiter_slot(&self, mode: Mode) -> usize {
        match self.backend() {
            Backend::Flock => slot(mode),
            Backend::LockFile { .. } => slot(Mode::Exclusive),
        }
    }

    /// Lock-file strategy: create the lock file, or break it when provably stale.
    fn try_lock_file(
        &self,
        st: &mut State,
        stale_after: Duration,
    ) -> Result<Option<u64>, LockError> {
        let path = &self.sidecar_path;
        let io = |op| move |e| LockError::io(path, op, e);
        for _ in 0..MAX_RELINK_ATTEMPTS {
            if let Some(claim) =
                lockfile::try_create(path, Mode::Exclusive).map_err(io("create"))?
            {
                let token = claim.fencing_token;
                st.os_held = Some((Mode::Exclusive, HeldBy::File(claim)));
                st.os_fencing = token;
                st.stale_watch = StaleWatch::default();
                return Ok(Some(token));
            }
            let Some(snapshot) = lockfile::observe(path).map_err(io("read"))? else {
                continue; // released in between: try again
            };
            match lockfile::take_over_idle(path, &snapshot, Mode::Exclusive).map_err(io("lock"))? {
                lockfile::TakeOver::Taken(claim) => {
                    let token = claim.fencing_token;
                    st.os_held = Some((Mode::Exclusive, HeldBy::File(claim)));
                    st.os_fencing = token;
                    st.stale_watch = StaleWatch::default();
                    return Ok(Some(token));
                }
                lockfile::TakeOver::Busy => return Ok(None),
                lockfile::TakeOver::NotApplicable => {}
            }
            match st.stale_watch.judge(&snapshot, stale_after, Instant::now()) {
                Verdict::Held => return Ok(None),
                Verdict::Stale(reason) => {
                    if lockfile::break_stale(path, &snapshot).map_err(io("remove a stale"))? {
                        if let Some(report) = &self.on_stale_removed {
                            report(&self.target, &reason);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Body of a lock-file waiter: it polls with growing pauses (2 ms up to
    /// `stale_after / 20`, at most 50 ms), each ended early by a removal in the
    /// directory where that can be watched (a release, usually).
    fn poll_lock_file(self: Arc<Self>, stale_after: Duration) {
        let longest = (stale_after / 20).clamp(Duration::from_millis(5), Duration::from_millis(50));
        let mut pause = Duration::from_millis(2);
        let watch = DirWatch::new(self.sidecar_path.parent().unwrap_or(&self.sidecar_path));
        loop {
            watch.wait(pause);
            pause = (pause * 2).min(longest);
            let mut st = self.state.lock();
            let wanted = !st.closed
                && st.os_held.is_none()
                && st.queue.holders() == Holders::Free
                && st.queue.head_mode().is_some();
            if !wanted {
                st.os_waiting[slot(Mode::Exclusive)] = false;
                return self.pump(&mut st);
            }
            match self.try_lock_file(&mut st, stale_after) {
                Ok(None) => continue,
                Ok(Some(_)) => {}
                Err(e) => {
                    if let Some((_, reply)) = st.queue.pop_compatible_head() {
                        reply.answer(Err(e));
                    }
                }
            }
            st.os_waiting[slot(Mode::Exclusive)] = false;
            return self.pump(&mut st);
        }
    }

    /// Starts an OS waiter; `false` (the head failed) when no thread could run it.
    fn spawn_os_waiter(self: &Arc<Self>, st: &mut State, mode: Mode) -> bool {
        let slot = self.waiter_slot(mode);
        st.os_waiting[slot] = true;
        let me = Arc::clone(self);
        let started = match self.backend() {
            Backend::Flock => waiter_pool::run(move || me.wait_for_os(mode)),
            Backend::LockFile { stale_after } => {
                waiter_pool::run(move || me.poll_lock_file(stale_after))
            }
        };
        match started {
            Ok(()) => true,
            Err(e) => {
                st.os_waiting[slot] = false;
                if let Some((_, reply)) = st.queue.pop_compatible_head() {
                    reply.answer(Err(LockError::io(&self.sidecar_path, "start a waiter", e)));
                }
                false
            }
        }
    }

    /// Body of an OS waiter: blocks on a handle of its own until the kernel grants `mode`.
    fn wait_for_os(self: Arc<Self>, mode: Mode) {
        let result = Sidecar::open(&self.sidecar_path)
            .and_then(|sidecar| os_lock::lock_blocking(sidecar.file(), mode).map(|()| sidecar))
            .map(Arc::new);
        let mut st = self.state.lock();
        st.os_waiting[slot(mode)] = false;
        match result {
            Err(e) => {
                if st.queue.head_mode() == Some(mode) {
                    if let Some((_, reply)) = st.queue.pop_compatible_head() {
                        reply.answer(Err(LockError::io(&self.sidecar_path, "lock", e)));
                    }
                }
            }
            Ok(sidecar) => {
                let wanted = st.os_held.is_none()
                    && st.queue.holders() == Holders::Free
                    && st.queue.head_mode().is_some_and(|head| mode.covers(head));
                if st.closed || !wanted {
                    let _ = os_lock::unlock(sidecar.file());
                    if st.closed && st.os_waiting == [false; 2] {
                        drop(st);
                        sidecar.remove_if_unused(&self.sidecar_path);
                        return;
                    }
                } else {
                    match self.claim(&mut st, &sidecar, mode) {
                        Ok(Some(next)) => {
                            // Hand the lock over first: on a cold CPU each syscall costs
                            // µs. The record is still written before anyone can release
                            // (release needs this mutex). A failed write leaves the
                            // previous record; the fencing token stays monotonic through
                            // its time floor.
                            self.pump(&mut st);
                            let still_ours = matches!(
                                &st.os_held,
                                Some((_, HeldBy::Flock(s))) if Arc::ptr_eq(s, &sidecar)
                            );
                            if still_ours {
                                let _ = metadata::write_record(sidecar.file(), mode, next);
                            }
                            return;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            if let Some((_, reply)) = st.queue.pop_compatible_head() {
                                reply.answer(Err(e));
                            }
                        }
                    }
                }
            }
        }
        self.pump(&mut st);
    }

    fn recorded_holder(&self, st: &State) -> Option<Holder> {
        if let Backend::LockFile { .. } = self.backend() {
            let record = lockfile::observe(&self.sidecar_path).ok()??.record();
            let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
            return Some(Holder::from_record(record.as_ref(), mode, self.expose_pids));
        }
        let sidecar = st.sidecar.as_ref()?;
        let (record, _) = metadata::read_record(sidecar.file()).ok()?;
        let record: Option<HolderRecord> = record;
        let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
        Some(Holder::from_record(record.as_ref(), mode, self.expose_pids))
    }
}
