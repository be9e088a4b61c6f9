//! The `threads` mode: a rayon pool of `workers` threads running tasks truly in parallel (what free-threaded
//! Python 3.13t aims for, and what C extensions that release the GIL get). Pool creation is inside the timed run.
//! Every pool thread takes the next chunk from one shared counter when it is free (as ThreadPoolExecutor's workers
//! take the next work item) and records its lane with one `Tracker` for the whole run.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{self, Mark};
use crate::experiment::Experiment;
use crate::timeline::{RunEnd, SpanKind};

use super::{Recorder, Tracker, finished, payload_for};

thread_local! {
    static LANE: Cell<Option<u32>> = const { Cell::new(None) };
}

pub(crate) fn run(exp: &Experiment, rec: &Recorder) -> RunEnd {
    let payload = payload_for(exp);
    let t0 = clock::now_ns();
    let build = Mark::now();
    let starter = rec.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(exp.workers as usize)
        .thread_name(|i| format!("parlab-t{}", i + 1))
        .start_handler(move |i| {
            let lane = starter.lane(format!("t{}", i + 1));
            starter.span(lane, 0, 0, SpanKind::Startup, build, Mark::now());
            LANE.set(Some(lane));
        })
        .build();
    let pool = match pool {
        Ok(p) => p,
        Err(e) => {
            let mut end = finished(t0, 0, 0);
            end.error = Some(format!("could not start {} threads: {e}", exp.workers));
            return end;
        }
    };
    let next = AtomicU64::new(0);
    let chunks = exp.chunks();
    let sums = pool.broadcast(|_| {
        let lane = LANE.get().unwrap_or_else(|| {
            let lane = rec.lane("caller".into());
            LANE.set(Some(lane));
            lane
        });
        let mut tracker = Tracker::new(rec, lane, None);
        let mut sum = 0u64;
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks {
                break sum;
            }
            let (first, count) = exp.chunk_range(c);
            sum = sum.wrapping_add(tracker.run_chunk(exp, first, count, &payload));
        }
    });
    finished(t0, sums.into_iter().fold(0u64, u64::wrapping_add), exp.tasks)
}
