//! The `sequential` mode: one thread runs every task, one after another (a plain Python loop).

use crate::clock;
use crate::experiment::Experiment;
use crate::timeline::RunEnd;

use super::{Recorder, Tracker, finished, payload_for};

pub(crate) fn run(exp: &Experiment, rec: &Recorder) -> RunEnd {
    let payload = payload_for(exp);
    let t0 = clock::now_ns();
    let lane = rec.lane("main".into());
    let mut tracker = Tracker::new(rec, lane, None);
    let mut sum = 0u64;
    for c in 0..exp.chunks() {
        let (first, count) = exp.chunk_range(c);
        sum = sum.wrapping_add(tracker.run_chunk(exp, first, count, &payload));
    }
    finished(t0, sum, exp.tasks)
}
