//! The `async` and `async-offload` modes: a single-threaded tokio runtime (current_thread), like asyncio's event
//! loop. Every task is a coroutine. Waits (`sleep`, the reads of `logs`) are awaited, so they overlap; CPU work
//! runs inside the coroutine and blocks the loop (`async`), or is handed to a blocking pool of `workers` threads
//! (`async-offload`, like `loop.run_in_executor`).
//!
//! Lanes: a coroutine's spans go on the lowest-numbered "task slot" free when it starts, so the number of task
//! lanes is the number of coroutines that were in flight at once. Offloaded CPU work goes on executor threads.

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

/// Coroutine lanes, reused lowest-first.
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
        self.lanes.push(rec.lane(format!("task {}", self.lanes.len() + 1)));
        self.busy.push(true);
        self.lanes.len() - 1
    }
    fn release(&mut self, i: usize) {
        self.busy[i] = false;
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
    let loop_lane = rec.lane("loop".into());
    rec.span(loop_lane, 0, 0, SpanKind::Startup, start, Mark::now());
    let slots = Rc::new(RefCell::new(Slots { lanes: Vec::new(), busy: Vec::new() }));
    let local = tokio::task::LocalSet::new();
    let sum = local.block_on(&rt, async {
        let mut handles = Vec::new();
        for c in 0..exp.chunks() {
            let (first, count) = exp.chunk_range(c);
            let (slots, payload, rec) = (Rc::clone(&slots), Arc::clone(&payload), rec.clone());
            let exp = exp.clone();
            handles.push(tokio::task::spawn_local(async move {
                coroutine(&exp, first, count, &slots, &payload, &rec, offload).await
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
    slots: &RefCell<Slots>,
    payload: &Arc<Vec<u8>>,
    rec: &Recorder,
    offload: bool,
) -> u64 {
    let mut sum = 0u64;
    match exp.workload {
        Workload::Sleep(ms) => {
            let slot = slots.borrow_mut().acquire(rec);
            let lane = slots.borrow().lanes[slot];
            for i in first..first + count {
                let t = Mark::now();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                rec.span(lane, i, 1, SpanKind::Idle, t, Mark::now());
                // The same checksum the sleep kernel gives, without sleeping again.
                sum = sum.wrapping_add(workload::mix(i, ms));
                sum = sum.wrapping_add(payload_sum(payload));
            }
            slots.borrow_mut().release(slot);
        }
        Workload::Logs(n) => {
            let slot = slots.borrow_mut().acquire(rec);
            let lane = slots.borrow().lanes[slot];
            for i in first..first + count {
                let mut scan = LogScan::default();
                let mut from = 0;
                while from < n {
                    let t = Mark::now();
                    tokio::time::sleep(Duration::from_millis(LOG_READ_MS)).await;
                    rec.span(lane, i, 1, SpanKind::Idle, t, Mark::now());
                    let to = (from + LOG_LINES_PER_READ).min(n);
                    if offload {
                        let rec2 = rec.clone();
                        scan = tokio::task::spawn_blocking(move || {
                            let submitted = Mark::now();
                            let lane = exec_lane(&rec2, submitted);
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
                        rec.span(lane, i, 1, SpanKind::Run, t, Mark::now());
                    }
                    from = to;
                }
                sum = sum.wrapping_add(workload::mix(i, scan.checksum()));
                sum = sum.wrapping_add(payload_sum(payload));
            }
            slots.borrow_mut().release(slot);
        }
        _ if offload => {
            let (exp, payload, rec) = (exp.clone(), Arc::clone(payload), rec.clone());
            let submitted = Mark::now();
            sum = tokio::task::spawn_blocking(move || {
                let lane = exec_lane(&rec, submitted);
                Tracker::new(&rec, lane, None).run_chunk(&exp, first, count, &payload)
            })
            .await
            .unwrap_or(0);
        }
        _ => {
            let slot = slots.borrow_mut().acquire(rec);
            let lane = slots.borrow().lanes[slot];
            sum = Tracker::new(rec, lane, None).run_chunk(exp, first, count, payload);
            slots.borrow_mut().release(slot);
        }
    }
    sum
}

fn payload_sum(payload: &[u8]) -> u64 {
    if payload.is_empty() { 0 } else { workload::payload_checksum(payload) }
}

/// The calling executor thread's lane; its first use records the thread's start-up.
fn exec_lane(rec: &Recorder, submitted: Mark) -> u32 {
    EXEC_LANE.get().unwrap_or_else(|| {
        let n = EXEC_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        let lane = rec.lane(format!("exec {n}"));
        rec.span(lane, 0, 0, SpanKind::Startup, submitted, Mark::now());
        EXEC_LANE.set(Some(lane));
        lane
    })
}

static EXEC_COUNT: AtomicU32 = AtomicU32::new(0);
