//! Threads that block in the kernel on behalf of contended locks.
//!
//! Invariants: a job always runs (a thread is reused when one is idle, else one
//! is started); an idle thread leaves after `IDLE_EXIT` without work, and only
//! after taking itself off the idle list under its mutex, so no job can be sent
//! to a thread that is leaving. Never the JS thread, never libuv's pool.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

const IDLE_EXIT: Duration = Duration::from_secs(10);

struct Idle {
    id: u64,
    jobs: Sender<Job>,
}

#[derive(Default)]
struct Pool {
    idle: Mutex<(u64, Vec<Idle>)>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// Runs `job` on a waiter thread.
pub fn run(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let job: Job = Box::new(job);
    let reused = pool().idle.lock().1.pop();
    match reused {
        Some(idle) => {
            // The thread cannot leave while it is off the idle list: the send succeeds.
            idle.jobs
                .send(job)
                .map_err(|_| std::io::Error::other("waiter thread vanished"))
        }
        None => spawn(job),
    }
}

fn spawn(first: Job) -> std::io::Result<()> {
    let id = {
        let mut idle = pool().idle.lock();
        idle.0 += 1;
        idle.0
    };
    std::thread::Builder::new()
        .name("file-lock-waiter".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let (tx, rx) = mpsc::channel::<Job>();
            let mut job = first;
            loop {
                // Keep the thread (and the pool's bookkeeping) through a panicking job.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                pool().idle.lock().1.push(Idle {
                    id,
                    jobs: tx.clone(),
                });
                job = match rx.recv_timeout(IDLE_EXIT) {
                    Ok(next) => next,
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {
                        let mut idle = pool().idle.lock();
                        match idle.1.iter().position(|i| i.id == id) {
                            Some(index) => {
                                idle.1.swap_remove(index);
                                return;
                            }
                            // Someone took us off the list: a job is on its way.
                            None => {
                                drop(idle);
                                match rx.recv() {
                                    Ok(next) => next,
                                    Err(_) => return,
                                }
                            }
                        }
                    }
                };
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn every_job_runs_and_threads_are_reused() {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let done = done.clone();
            run(move || {
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while done.load(Ordering::SeqCst) < 50 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 50);
        assert!(
            pool().idle.lock().0 < 50,
            "threads were reused, not one per job"
        );
    }
}
