//! The fair in-process reader-writer queue of one file.
//!
//! Invariants:
//! - Requests are served strictly in arrival order: a request may enter only
//!   when nobody is queued ahead of it, so a waiting writer is never overtaken
//!   by later readers (writers never starve) and readers arriving together
//!   behind a writer enter together after it.
//! - `holders` is exactly the set of granted, unreleased in-process holds.
//!
//! This is pure bookkeeping; the OS lock is the caller's business.

use std::collections::VecDeque;

use super::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holders {
    Free,
    Shared(usize),
    Exclusive,
}

#[derive(Debug)]
pub struct FairQueue<W> {
    holders: Holders,
    waiting: VecDeque<(u64, Mode, W)>,
}

impl<W> Default for FairQueue<W> {
    fn default() -> Self {
        FairQueue {
            holders: Holders::Free,
            waiting: VecDeque::new(),
        }
    }
}

impl<W> FairQueue<W> {
    pub fn holders(&self) -> Holders {
        self.holders
    }

    pub fn head_mode(&self) -> Option<Mode> {
        self.waiting.front().map(|(_, mode, _)| *mode)
    }

    /// Whether a request of `mode` arriving now may skip the queue entirely.
    pub fn can_enter_now(&self, mode: Mode) -> bool {
        self.waiting.is_empty() && self.compatible(mode)
    }

    /// Whether `mode` can join the current holders.
    pub fn compatible(&self, mode: Mode) -> bool {
        match self.holders {
            Holders::Free => true,
            Holders::Shared(_) => mode == Mode::Shared,
            Holders::Exclusive => false,
        }
    }

    pub fn enter(&mut self, mode: Mode) {
        self.holders = match (self.holders, mode) {
            (Holders::Free, Mode::Exclusive) => Holders::Exclusive,
            (Holders::Free, Mode::Shared) => Holders::Shared(1),
            (Holders::Shared(n), Mode::Shared) => Holders::Shared(n + 1),
            (held, _) => panic!("enter({mode:?}) while {held:?}: caller skipped compatible()"),
        };
    }

    pub fn leave(&mut self, mode: Mode) {
        self.holders = match (self.holders, mode) {
            (Holders::Exclusive, Mode::Exclusive) | (Holders::Shared(1), Mode::Shared) => {
                Holders::Free
            }
            (Holders::Shared(n), Mode::Shared) if n > 1 => Holders::Shared(n - 1),
            (held, _) => panic!("leave({mode:?}) while {held:?}: double release"),
        };
    }

    pub fn push(&mut self, ticket: u64, mode: Mode, waiter: W) {
        self.waiting.push_back((ticket, mode, waiter));
    }

    /// Takes a waiter out of the queue; `None` when it was already granted.
    pub fn remove(&mut self, ticket: u64) -> Option<W> {
        let index = self.waiting.iter().position(|(t, _, _)| *t == ticket)?;
        self.waiting.remove(index).map(|(_, _, w)| w)
    }

    /// Pops the head if it can join the current holders (the caller then `enter`s it).
    pub fn pop_compatible_head(&mut self) -> Option<(Mode, W)> {
        let mode = self.head_mode()?;
        if !self.compatible(mode) {
            return None;
        }
        self.waiting.pop_front().map(|(_, mode, w)| (mode, w))
    }

    /// Takes every waiter out (on close).
    pub fn drain(&mut self) -> Vec<W> {
        self.waiting.drain(..).map(|(_, _, w)| w).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_and_a_writer_waits_for_them() {
        let mut q = FairQueue::<&str>::default();
        assert!(q.can_enter_now(Mode::Shared));
        q.enter(Mode::Shared);
        assert!(q.can_enter_now(Mode::Shared));
        q.enter(Mode::Shared);
        assert!(!q.can_enter_now(Mode::Exclusive));
        q.push(1, Mode::Exclusive, "writer");
        assert!(q.pop_compatible_head().is_none());
        q.leave(Mode::Shared);
        q.leave(Mode::Shared);
        assert_eq!(q.pop_compatible_head(), Some((Mode::Exclusive, "writer")));
    }

    #[test]
    fn a_queued_writer_is_not_overtaken_by_later_readers() {
        let mut q = FairQueue::default();
        q.enter(Mode::Shared);
        q.push(1, Mode::Exclusive, "writer");
        assert!(
            !q.can_enter_now(Mode::Shared),
            "reader must queue behind the writer"
        );
        q.push(2, Mode::Shared, "reader-a");
        q.push(3, Mode::Shared, "reader-b");
        q.leave(Mode::Shared);
        let (mode, who) = q.pop_compatible_head().unwrap();
        assert_eq!((mode, who), (Mode::Exclusive, "writer"));
        q.enter(mode);
        assert!(q.pop_compatible_head().is_none());
        q.leave(Mode::Exclusive);
        for expected in ["reader-a", "reader-b"] {
            let (mode, who) = q.pop_compatible_head().unwrap();
            assert_eq!(who, expected);
            q.enter(mode);
        }
        assert_eq!(q.holders(), Holders::Shared(2));
    }

    #[test]
    fn removing_a_waiter_keeps_the_order_of_the_rest() {
        let mut q = FairQueue::default();
        q.enter(Mode::Exclusive);
        q.push(1, Mode::Exclusive, "a");
        q.push(2, Mode::Exclusive, "b");
        q.push(3, Mode::Exclusive, "c");
        assert_eq!(q.remove(2), Some("b"));
        assert_eq!(q.remove(2), None);
        q.leave(Mode::Exclusive);
        assert_eq!(q.pop_compatible_head().map(|h| h.1), Some("a"));
        assert_eq!(q.drain(), vec!["c"]);
    }

    #[test]
    #[should_panic(expected = "double release")]
    fn a_double_release_is_a_bug_not_a_silent_underflow() {
        let mut q = FairQueue::<()>::default();
        q.enter(Mode::Exclusive);
        q.leave(Mode::Exclusive);
        q.leave(Mode::Exclusive);
    }
}
