//! The `gil` mode: threads that must hold one simulated GIL, built like CPython's "new GIL" (3.2+).
//!
//! A thread must hold the lock to run workload steps. A thread that waits longer than the switch interval without
//! the lock changing hands sets a drop request; the holder checks it between small steps (a few microseconds of
//! work), releases the lock and waits until another thread has taken it (FORCE_SWITCHING), then queues again.
//! Blocking waits (`sleep`, the reads of `logs`) release the lock. This is a simulation, labelled as one: real
//! parallel threads made to behave the way CPython's interpreter makes its threads behave.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{self, Mark};
use crate::experiment::Experiment;
use crate::timeline::{RunEnd, SpanKind};

use super::{Recorder, Tracker, finished, payload_for};

struct State {
    locked: bool,
    /// Incremented every time a thread takes the lock.
    switches: u64,
}

pub(crate) struct Gil {
    state: Mutex<State>,
    /// Signalled when the lock is released.
    released: Condvar,
    /// Signalled when the lock is taken (a forced drop waits for it).
    taken: Condvar,
    drop_request: AtomicBool,
    interval: Duration,
}

impl Gil {
    pub(crate) fn new(interval: Duration) -> Gil {
        Gil {
            state: Mutex::new(State { locked: false, switches: 0 }),
            released: Condvar::new(),
            taken: Condvar::new(),
            drop_request: AtomicBool::new(false),
            interval,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until the calling thread holds the GIL.
    pub(crate) fn take(&self) {
        let mut s = self.lock();
        while s.locked {
            let seen = s.switches;
            let (next, timeout) = self.released.wait_timeout(s, self.interval).unwrap_or_else(|p| p.into_inner());
            s = next;
            if timeout.timed_out() && s.locked && s.switches == seen {
                // Waited a whole interval and nobody switched: ask the holder to drop it.
                self.drop_request.store(true, Ordering::Release);
            }
        }
        s.locked = true;
        s.switches += 1;
        self.drop_request.store(false, Ordering::Release);
        self.taken.notify_all();
    }

    /// Releases the GIL. After a drop request (`forced`), waits until another thread has taken it, so the same
    /// thread cannot grab it straight back.
    pub(crate) fn release(&self, forced: bool) {
        let mut s = self.lock();
        s.locked = false;
        self.released.notify_one();
        if forced {
            let mine = s.switches;
            while s.switches == mine {
                let (next, timeout) = self.taken.wait_timeout(s, self.interval).unwrap_or_else(|p| p.into_inner());
                s = next;
                if timeout.timed_out() {
                    // The requester went away (finished): nobody else wants the lock.
                    break;
                }
            }
        }
    }

    pub(crate) fn drop_requested(&self) -> bool {
        self.drop_request.load(Ordering::Acquire)
    }
}

pub(crate) fn run(exp: &Experiment, rec: &Recorder) -> RunEnd {
    let payload = payload_for(exp);
    let t0 = clock::now_ns();
    let gil = Gil::new(Duration::from_micros(exp.switch_interval_us));
    let next = AtomicU64::new(0);
    let chunks = exp.chunks();
    rec.note(format!(
        "gil is a simulation of CPython's GIL: {}, one lock, switch interval {}",
        crate::units::plural(exp.workers as u64, "thread"),
        crate::units::format_interval_us(exp.switch_interval_us)
    ));
    let sum = std::thread::scope(|s| {
        let handles: Vec<_> = (0..exp.workers)
            .map(|w| {
                let spawned = Mark::now();
                let (gil, next, payload) = (&gil, &next, &payload);
                s.spawn(move || {
                    let lane = rec.lane(format!("t{}", w + 1));
                    rec.span(lane, 0, 0, SpanKind::Startup, spawned, Mark::now());
                    let mut tracker = Tracker::new(rec, lane, Some(gil));
                    tracker.take_gil();
                    let mut sum = 0u64;
                    loop {
                        // Taking the next task happens while holding the GIL, as in a Python worker loop.
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= chunks {
                            break;
                        }
                        let (first, count) = exp.chunk_range(c);
                        sum = sum.wrapping_add(tracker.run_chunk(exp, first, count, payload));
                    }
                    gil.release(false);
                    sum
                })
            })
            .collect();
        handles.into_iter().fold(0u64, |acc, h| acc.wrapping_add(h.join().unwrap_or(0)))
    });
    finished(t0, sum, exp.tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_waiting_thread_gets_the_lock_after_about_one_interval() {
        let gil = Arc::new(Gil::new(Duration::from_millis(2)));
        gil.take();
        let g2 = Arc::clone(&gil);
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            g2.take();
            g2.release(false);
            t.elapsed()
        });
        // The holder "works" in small steps until asked to drop.
        let start = Instant::now();
        while !gil.drop_requested() {
            assert!(start.elapsed() < Duration::from_secs(5), "no drop request was ever made");
            std::hint::spin_loop();
        }
        gil.release(true);
        let waited = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(2));
    }
}
