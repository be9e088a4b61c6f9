//! The `async` and `async-offload` modes: a single-threaded tokio runtime (current_thread), like asyncio's event
//! loop. Every task is a coroutine. Waits (`sleep`, the reads of `logs`) are awaited, so they overlap; CPU work
//! runs inside the coroutine and blocks the loop (`async`), or is handed to a blocking pool of `workers` threads
//! (`async-offload`, like `loop.run_in_executor`).
//!
//! Lanes are what asyncio really does. The loop is one thread, so everything a coroutine computes is a `run` span on
//! the one `loop` lane, labelled with its task id: coroutines with no await run back to back there and never
//! overlap. A wait is not on any thread: the coroutine is parked on a timer while the loop runs others, so a
//! wait is an `idle` span on an `await N` lane (the lowest-numbered one free when the coroutine starts waiting;
//! their count is how many waits were in flight at once). They carry the loop's pid and tid, because that is the
//! thread the waits belong to. In `async-offload` the CPU work runs on `exec N` lanes, one per executor thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::clock::{self, Mark};
use crate::experiment::{Experiment, Mode, Workload};
use crate::timeline::{RunEnd, SpanKind};
use crate::workload::{self, LOG_LINES_PER_READ, LOG_READ_MS, LogScan, Plain};

use super::{Recorder, Tracker, finished, payload_for};

thread_local! {
    static EXEC_LANE: Cell<Option<u32>> = const { Cell::new(None) };
}

/// The lanes of waiting coroutines, reused lowest-first.
struct Slots {
    lanes: Vec<u32>,
    busy: Vec<bool>,
}

impl Slots {
    fn acquire(&mut self, rec: &Recorder) -> usize {
        if let Some(i) = self.busy.iter().position(|b| !b) {
            self.busy[i] = true;
            return i;
        }
        self.lanes.push(rec.lane(format!("await {}", self.lanes.len() + 1)));
        self.busy.push(true);
        self.lanes.len() - 1
    }
    fn release(&mut self, i: usize) {
        self.busy[i] = false;
    }
}

/// What every coroutine of a run shares: where its spans go.
struct Lanes {
    rec: Recorder,
    /// The event loop's thread.
    main: u32,
    waits: RefCell<Slots>,
    /// Executor threads started so far (`async-offload`).
    execs: Arc<AtomicU32>,
}

impl Lanes {
    /// Waits `ms` on a timer, recorded on a free `await` lane.
    async fn wait(&self, task: u64, ms: u64) {
        let slot = self.waits.borrow_mut().acquire(&self.rec);
        let lane = self.waits.borrow().lanes[slot];
        let t = Mark::now();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.rec.span(lane, task, 1, SpanKind::Idle, t, Mark::now());
        self.waits.borrow_mut().release(slot);
    }
}

pub(crate) fn run(exp: &Experiment, rec: &Recorder) -> RunEnd {
    let payload = payload_for(exp);
    let t0 = clock::now_ns();
    let start = Mark::now();
    let offload = exp.mode == Mode::AsyncOffload;
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time();
    if offload {
        builder.max_blocking_threads(exp.workers as usize);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            let mut end = finished(t0, 0, 0);
            end.error = Some(format!("could not start the tokio runtime: {e}"));
            return end;
        }
    };
    // This thread is the event loop (current_thread runtime): its lane is the one coroutines run on.
    let main = rec.lane("loop".into());
    rec.span(main, 0, 0, SpanKind::Startup, start, Mark::now());
    let lanes = Rc::new(Lanes {
        rec: rec.clone(),
        main,
        waits: RefCell::new(Slots { lanes: Vec::new(), busy: Vec::new() }),
        execs: Arc::new(AtomicU32::new(0)),
    });
    let local = tokio::task::LocalSet::new();
    let sum = local.block_on(&rt, async {
        let mut handles = Vec::new();
        for c in 0..exp.chunks() {
            let (first, count) = exp.chunk_range(c);
            let (lanes, payload) = (Rc::clone(&lanes), Arc::clone(&payload));
            let exp = exp.clone();
            handles.push(tokio::task::spawn_local(async move {
                coroutine(&exp, first, count, &lanes, &payload, offload).await
            }));
        }
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.await.unwrap_or(0));
        }
        sum
    });
    finished(t0, sum, exp.tasks)
}

async fn coroutine(
    exp: &Experiment,
    first: u64,
    count: u64,
    lanes: &Lanes,
    payload: &Arc<Vec<u8>>,
    offload: bool,
) -> u64 {
    let rec = &lanes.rec;
    let mut sum = 0u64;
    match exp.workload {
        Workload::Sleep(ms) => {
            for i in first..first + count {
                lanes.wait(i, ms).await;
                // The same checksum the sleep kernel gives, without sleeping again.
                sum = sum.wrapping_add(workload::mix(i, ms));
                sum = sum.wrapping_add(payload_sum(payload));
            }
        }
        Workload::Logs(n) => {
            for i in first..first + count {
                let mut scan = LogScan::default();
                let mut from = 0;
                while from < n {
                    lanes.wait(i, LOG_READ_MS).await;
                    let to = (from + LOG_LINES_PER_READ).min(n);
                    if offload {
                        let (rec2, execs) = (rec.clone(), Arc::clone(&lanes.execs));
                        scan = tokio::task::spawn_blocking(move || {
                            let submitted = Mark::now();
                            let lane = exec_lane(&rec2, &execs, submitted);
                            let t = Mark::now();
                            scan.feed(i, from, to, &mut Plain);
                            rec2.span(lane, i, 1, SpanKind::Run, t, Mark::now());
                            scan
                        })
                        .await
                        .unwrap_or_default();
                    } else {
                        let t = Mark::now();
                        scan.feed(i, from, to, &mut Plain);
                        rec.span(lanes.main, i, 1, SpanKind::Run, t, Mark::now());
                    }
                    from = to;
                }
                sum = sum.wrapping_add(workload::mix(i, scan.checksum()));
                sum = sum.wrapping_add(payload_sum(payload));
            }
        }
        _ if offload => {
            let (exp, payload, rec, execs) = (exp.clone(), Arc::clone(payload), rec.clone(), Arc::clone(&lanes.execs));
            let submitted = Mark::now();
            sum = tokio::task::spawn_blocking(move || {
                let lane = exec_lane(&rec, &execs, submitted);
                Tracker::new(&rec, lane, None).run_chunk(&exp, first, count, &payload)
            })
            .await
            .unwrap_or(0);
        }
        // No await inside: the coroutine holds the loop until its work is done, as in asyncio.
        _ => sum = Tracker::new(rec, lanes.main, None).run_chunk(exp, first, count, payload),
    }
    sum
}

fn payload_sum(payload: &[u8]) -> u64 {
    if payload.is_empty() { 0 } else { workload::payload_checksum(payload) }
}

/// The calling executor thread's lane; its first use records the thread's start-up.
fn exec_lane(rec: &Recorder, execs: &AtomicU32, submitted: Mark) -> u32 {
    EXEC_LANE.get().unwrap_or_else(|| {
        let n = execs.fetch_add(1, Ordering::Relaxed) + 1;
        let lane = rec.lane(format!("exec {n}"));
        rec.span(lane, 0, 0, SpanKind::Startup, submitted, Mark::now());
        EXEC_LANE.set(Some(lane));
        lane
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::experiment::{Fit, Knobs};
    use crate::lab::Rec;
    use crate::timeline::{LabEvent, Span, Timeline};

    /// Runs `mode` in this process and returns its timeline (the test thread is the event loop).
    fn run_here(workload: &str, tasks: u64, mode: Mode, workers: Option<u32>) -> Timeline {
        let knobs = Knobs { workers, ..Knobs::default() };
        let exp = Experiment::build(workload.parse().unwrap(), tasks, mode, &knobs, Fit::Strict, 2).unwrap();
        let (tx, rx) = mpsc::channel();
        let end = run(&exp, &Recorder::new(tx));
        let mut t = Timeline::new();
        for rec in rx.try_iter() {
            match rec {
                Rec::Event(ev) => t.ingest(ev),
                Rec::Spans(spans) => spans.into_iter().for_each(|s| t.ingest(LabEvent::Span(s))),
            }
        }
        t.ingest(LabEvent::Finished(end));
        t
    }

    fn spans_on(t: &Timeline, lane: u32, kind: SpanKind) -> Vec<Span> {
        let mut v: Vec<Span> = t.spans.iter().filter(|s| s.lane == lane && s.kind == kind).copied().collect();
        v.sort_by_key(|s| s.start_ns);
        v
    }

    fn tasks_of(spans: &[Span]) -> Vec<u64> {
        let mut v: Vec<u64> = spans.iter().flat_map(|s| s.task..s.task + s.count).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn async_cpu_coroutines_run_back_to_back_on_the_one_loop_lane() {
        let t = run_here("fib:18", 6, Mode::Async, None);
        assert_eq!(t.lanes.len(), 1, "one event-loop thread, one lane: {:?}", t.lanes);
        let lp = &t.lanes[0];
        assert_eq!((lp.label.as_str(), lp.pid, lp.tid), ("loop", std::process::id(), clock::tid()));
        let runs = spans_on(&t, lp.id, SpanKind::Run);
        assert_eq!(runs.len(), t.spans.iter().filter(|s| s.kind == SpanKind::Run).count());
        for w in runs.windows(2) {
            assert!(w[0].end_ns <= w[1].start_ns, "coroutines overlapped: {w:?}");
        }
        assert_eq!(tasks_of(&runs), (0..6).collect::<Vec<_>>(), "every task is a span labelled with its id");
    }

    #[test]
    fn async_offload_runs_the_cpu_work_on_executor_lanes_beside_the_loop() {
        let t = run_here("fib:18", 6, Mode::AsyncOffload, Some(2));
        let lp = t.lanes.iter().find(|l| l.label == "loop").expect("a loop lane");
        assert_eq!(lp.tid, clock::tid());
        let execs: Vec<_> = t.lanes.iter().filter(|l| l.label.starts_with("exec ")).collect();
        assert!(!execs.is_empty() && execs.len() <= 2, "one lane per executor thread, at most 2: {:?}", t.lanes);
        assert_eq!(t.lanes.len(), 1 + execs.len(), "{:?}", t.lanes);
        assert!(execs.iter().all(|l| l.tid != lp.tid && l.pid == lp.pid));
        assert!(spans_on(&t, lp.id, SpanKind::Run).is_empty(), "no CPU work on the loop");
        let runs: Vec<Span> = execs.iter().flat_map(|l| spans_on(&t, l.id, SpanKind::Run)).collect();
        assert_eq!(tasks_of(&runs), (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn async_sleeps_overlap_as_waits_on_await_lanes_of_the_loop_thread() {
        let t = run_here("sleep:200", 4, Mode::Async, None);
        let waits: Vec<&Span> = t.spans.iter().filter(|s| s.kind == SpanKind::Idle).collect();
        assert_eq!(tasks_of(&waits.iter().map(|s| **s).collect::<Vec<_>>()), vec![0, 1, 2, 3]);
        assert!(t.spans.iter().all(|s| s.kind != SpanKind::Run), "sleeping is not running");
        let first_end = waits.iter().map(|s| s.end_ns).min().unwrap();
        let last_start = waits.iter().map(|s| s.start_ns).max().unwrap();
        assert!(last_start < first_end, "the four waits were in flight at once");
        let awaits: Vec<_> = t.lanes.iter().filter(|l| l.label.starts_with("await ")).collect();
        assert_eq!(awaits.len(), 4, "{:?}", t.lanes);
        assert!(t.lanes.iter().all(|l| l.tid == clock::tid()), "waits belong to the loop's thread");
    }
}
