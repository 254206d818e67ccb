//! One file's lock inside one manager: the fair queue of in-process callers in
//! front of the OS lock on the file's sidecar.
//!
//! Invariants (all under `state`'s mutex):
//! - The OS lock is held (`os_mode`) exactly while there are in-process holders,
//!   in a mode that covers them; it is dropped as soon as the last one leaves.
//! - At most one thread waits on the OS lock at a time (`os_waiter`). It blocks
//!   in the kernel, so a release by another process wakes it at once, and it
//!   never occupies the JS thread or libuv's pool. While it waits, nobody else
//!   touches the sidecar handle; a waiter abandoned by a timeout or abort is
//!   reused by the next request, or unlocks as soon as it gets the lock.
//! - A grant is only sent to a waiter that still listens; otherwise it is undone.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::error::LockError;
use super::metadata::{self, Holder, HolderRecord};
use super::os_lock;
use super::queue::{FairQueue, Holders};
use super::sidecar::{sidecar_path, Sidecar};
use super::Mode;

/// How often a freshly locked sidecar may turn out to be unlinked before we give up.
const MAX_RELINK_ATTEMPTS: usize = 16;

pub type GrantResult = Result<Grant, LockError>;

/// A granted in-process hold.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub mode: Mode,
    pub fencing_token: u64,
}

pub enum Enqueued {
    Granted(Grant),
    Waiting {
        ticket: u64,
        reply: oneshot::Receiver<GrantResult>,
        holder: Option<Holder>,
    },
}

#[derive(Default)]
struct State {
    queue: FairQueue<oneshot::Sender<GrantResult>>,
    os_mode: Option<Mode>,
    os_fencing: u64,
    sidecar: Option<Arc<Sidecar>>,
    os_waiter: bool,
    closed: bool,
    next_ticket: u64,
}

pub struct PathLock {
    pub target: PathBuf,
    pub sidecar_path: PathBuf,
    expose_pids: bool,
    state: Mutex<State>,
}

impl PathLock {
    pub fn new(target: PathBuf, expose_pids: bool) -> Self {
        PathLock {
            sidecar_path: sidecar_path(&target),
            target,
            expose_pids,
            state: Mutex::default(),
        }
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
        if st.os_waiter || !st.queue.can_enter_now(mode) {
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

    /// Joins the queue: granted at once, or a receiver for the grant.
    pub fn enqueue(self: &Arc<Self>, mode: Mode) -> Result<Enqueued, LockError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(LockError::Closed);
        }
        if let Some(grant) = self.try_enter(&mut st, mode)? {
            return Ok(Enqueued::Granted(grant));
        }
        let in_process = st.queue.holders() != Holders::Free;
        st.next_ticket += 1;
        let ticket = st.next_ticket;
        let (tx, rx) = oneshot::channel();
        st.queue.push(ticket, mode, tx);
        self.pump(&mut st);
        let holder = if in_process {
            Some(Holder::this_process(st.os_mode.unwrap_or(mode)))
        } else {
            self.recorded_holder(&st)
        };
        Ok(Enqueued::Waiting {
            ticket,
            reply: rx,
            holder,
        })
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
            Self::release_os(&mut st);
        }
        self.pump(&mut st);
    }

    /// Who holds the lock now, as far as we can tell without waiting.
    pub fn current_holder(&self) -> Option<Holder> {
        let st = self.state.lock();
        match st.queue.holders() {
            Holders::Free => self.recorded_holder(&st),
            Holders::Shared(_) => Some(Holder::this_process(Mode::Shared)),
            Holders::Exclusive => Some(Holder::this_process(Mode::Exclusive)),
        }
    }

    /// Fails every waiter with `ECLOSED`, drops the OS lock and removes the
    /// sidecar when nobody else uses it. Holds released afterwards hand nothing on.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for waiter in st.queue.drain() {
            let _ = waiter.send(Err(LockError::Closed));
        }
        Self::release_os(&mut st);
        if let Some(sidecar) = st.sidecar.take() {
            if !st.os_waiter {
                sidecar.remove_if_unused(&self.sidecar_path);
            }
        }
    }

    /// Grants queued requests while possible; starts the OS waiter when the OS lock is contended.
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
                        Self::release_os(st);
                        return;
                    };
                    match st.os_mode {
                        Some(held) if held.covers(head) => {
                            if let Some((mode, reply)) = st.queue.pop_compatible_head() {
                                Self::grant(st, mode, reply);
                            }
                            continue;
                        }
                        Some(_) => Self::release_os(st),
                        None => {}
                    }
                    if st.os_waiter {
                        return;
                    }
                    match self.try_os(st, head) {
                        Ok(Some(_)) => {}
                        Ok(None) => return self.spawn_os_waiter(st, head),
                        Err(e) => {
                            if let Some((_, reply)) = st.queue.pop_compatible_head() {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                }
            }
        }
    }

    fn grant(st: &mut State, mode: Mode, reply: oneshot::Sender<GrantResult>) {
        st.queue.enter(mode);
        let grant = Grant {
            mode,
            fencing_token: st.os_fencing,
        };
        if reply.send(Ok(grant)).is_err() {
            // The requester stopped listening (timed out in the same instant): undo.
            st.queue.leave(mode);
        }
    }

    /// Takes the OS lock if it is free now. `Ok(Some(fencing))` when held.
    fn try_os(&self, st: &mut State, mode: Mode) -> Result<Option<u64>, LockError> {
        for _ in 0..MAX_RELINK_ATTEMPTS {
            let sidecar = self.sidecar(st)?;
            let locked = os_lock::try_lock(sidecar.file(), mode)
                .map_err(|e| LockError::io(&self.sidecar_path, "lock", e))?;
            if !locked {
                return Ok(None);
            }
            if let Some(token) = self.claim(st, &sidecar, mode)? {
                return Ok(Some(token));
            }
        }
        Err(LockError::io(
            &self.sidecar_path,
            "lock",
            std::io::Error::other("the lock file keeps being deleted while locking"),
        ))
    }

    /// After the OS lock on `sidecar` was obtained: verify the sidecar is still
    /// the one at the path and record ourselves as holder. `Ok(None)`: it was
    /// unlinked meanwhile; the lock is dropped and the caller must start over.
    fn claim(
        &self,
        st: &mut State,
        sidecar: &Arc<Sidecar>,
        mode: Mode,
    ) -> Result<Option<u64>, LockError> {
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
        let token = metadata::write_record(sidecar.file(), mode)
            .map_err(|e| unlock_on_error(e, "write"))?;
        st.os_mode = Some(mode);
        st.os_fencing = token;
        Ok(Some(token))
    }

    fn sidecar(&self, st: &mut State) -> Result<Arc<Sidecar>, LockError> {
        if let Some(sidecar) = &st.sidecar {
            return Ok(Arc::clone(sidecar));
        }
        let sidecar = Arc::new(
            Sidecar::open(&self.sidecar_path)
                .map_err(|e| LockError::io(&self.sidecar_path, "open", e))?,
        );
        st.sidecar = Some(Arc::clone(&sidecar));
        Ok(sidecar)
    }

    fn release_os(st: &mut State) {
        if st.os_mode.take().is_some() {
            if let Some(sidecar) = &st.sidecar {
                let _ = os_lock::unlock(sidecar.file());
            }
        }
    }

    fn spawn_os_waiter(self: &Arc<Self>, st: &mut State, mode: Mode) {
        let Some(sidecar) = st.sidecar.clone() else {
            return;
        };
        st.os_waiter = true;
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("file-lock-waiter".into())
            .stack_size(128 * 1024)
            .spawn(move || me.wait_for_os(sidecar, mode));
        if let Err(e) = spawned {
            st.os_waiter = false;
            if let Some((_, reply)) = st.queue.pop_compatible_head() {
                let _ = reply.send(Err(LockError::io(&self.sidecar_path, "spawn waiter", e)));
            }
        }
    }

    /// Body of the OS waiter thread.
    fn wait_for_os(self: Arc<Self>, sidecar: Arc<Sidecar>, mode: Mode) {
        let result = os_lock::lock_blocking(sidecar.file(), mode);
        let mut st = self.state.lock();
        st.os_waiter = false;
        let current = st
            .sidecar
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &sidecar));
        match result {
            Err(e) => {
                if let Some((_, reply)) = st.queue.pop_compatible_head() {
                    let _ = reply.send(Err(LockError::io(&self.sidecar_path, "lock", e)));
                }
            }
            Ok(()) if st.closed || !current || st.os_mode.is_some() || st.queue.is_empty() => {
                let _ = os_lock::unlock(sidecar.file());
            }
            Ok(()) => {
                if let Err(e) = self.claim(&mut st, &sidecar, mode) {
                    if let Some((_, reply)) = st.queue.pop_compatible_head() {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
        self.pump(&mut st);
        if st.closed && !st.os_waiter {
            if let Some(sidecar) = st.sidecar.take() {
                sidecar.remove_if_unused(&self.sidecar_path);
            }
        }
    }

    fn recorded_holder(&self, st: &State) -> Option<Holder> {
        let sidecar = st.sidecar.as_ref()?;
        let (record, _) = metadata::read_record(sidecar.file()).ok()?;
        let record: Option<HolderRecord> = record;
        let mode = record.as_ref().map_or(Mode::Exclusive, |r| r.mode);
        Some(Holder::from_record(record.as_ref(), mode, self.expose_pids))
    }
}
