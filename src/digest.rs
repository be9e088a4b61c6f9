//! A run's timeline digested for drawing (model: running totals of a timeline), kept up to date as events arrive so that a frame costs what is on
//! screen, not what was recorded: running totals (span time per kind, tasks done, first and last instants, cores
//! seen), and per lane the covered time in bins of a shared time grid. `app::Run::ingest` feeds it; the Gantt and
//! the summaries read it. (The core bars show CPU the monitor measured, not spans.)
//!
//! Small runs are still drawn exactly from their spans: a lane keeps the indices of its spans until it has more
//! than `EXACT_LANE_SPANS`. Beyond that the bins take over; there are at most `MAX_BINS` of them over the run (the grid doubles its bin width when the
//! run outgrows it), so a window the width of the run gets about ten bins per character cell.
//!
//! Never imports: a terminal or the drawing code; the Gantt and the summaries read it.

use std::collections::HashMap;

use crate::timeline::{Overhead, SPAN_KINDS, Span, SpanKind, Timeline, ratio};

pub(crate) const KINDS: usize = SPAN_KINDS.len();
/// A lane with at most this many spans is drawn exactly from them.
pub(crate) const EXACT_LANE_SPANS: usize = 512;
/// Bins on the grid, at most.
const MAX_BINS: usize = 2_048;
/// The grid's first bin width; it doubles as the run outgrows `MAX_BINS` bins.
const FIRST_BIN_NS: u64 = 1_000;

/// Position of a kind in `SPAN_KINDS` (the order of the legend and of the per-kind arrays here).
pub(crate) fn kind_index(k: SpanKind) -> usize {
    match k {
        SpanKind::Run => 0,
        SpanKind::GilWait => 1,
        SpanKind::Startup => 2,
        SpanKind::Ipc => 3,
        SpanKind::Serialize => 4,
        SpanKind::Idle => 5,
        SpanKind::Failed => 6,
    }
}

/// One lane's share of the digest.
#[derive(Clone, Debug, Default)]
pub(crate) struct LaneDigest {
    /// Spans of this lane so far.
    pub count: usize,
    /// Indices into `Timeline::spans` while the lane has at most `EXACT_LANE_SPANS` (then emptied).
    exact: Vec<u32>,
    /// Covered time per kind per bin of the grid, in ns.
    bins: Vec<[f32; KINDS]>,
    /// The chunk (first task, tasks) the lane's latest run span belongs to.
    chunk: Option<(u64, u64)>,
}

impl LaneDigest {
    /// The lane's spans, when it is small enough to be drawn from them.
    pub(crate) fn exact<'t>(&self, t: &'t Timeline) -> Option<Vec<&'t Span>> {
        if self.count > EXACT_LANE_SPANS {
            return None;
        }
        Some(self.exact.iter().filter_map(|i| t.spans.get(*i as usize)).collect())
    }
}

/// Bin `i` covers `[origin + i * bin_ns, origin + (i + 1) * bin_ns)`.
#[derive(Clone, Copy, Debug, Default)]
struct Grid {
    origin: u64,
    bin_ns: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Digest {
    spans: usize,
    min_start: u64,
    max_end: u64,
    kind_ns: [u64; KINDS],
    /// Tasks of chunks known to be finished: a lane has moved on to another chunk since.
    tasks_done: u64,
    present: [bool; KINDS],
    grid: Option<Grid>,
    lanes: HashMap<u32, LaneDigest>,
}

impl Default for Digest {
    fn default() -> Digest {
        Digest {
            spans: 0,
            min_start: u64::MAX,
            max_end: 0,
            kind_ns: [0; KINDS],
            tasks_done: 0,
            present: [false; KINDS],
            grid: None,
            lanes: HashMap::new(),
        }
    }
}

/// Adds the part of `[a, b)` (relative to the grid's origin) that falls in each bin.
fn spread<T: Default + Clone>(bin_ns: u64, v: &mut Vec<T>, a: u64, b: u64, mut add: impl FnMut(&mut T, f32)) {
    if b <= a {
        return;
    }
    let i0 = (a / bin_ns) as usize;
    let i1 = ((b - 1) / bin_ns) as usize;
    if v.len() <= i1 {
        v.resize(i1 + 1, T::default());
    }
    for (i, cell) in v.iter_mut().enumerate().take(i1 + 1).skip(i0) {
        let lo = a.max(i as u64 * bin_ns);
        let hi = b.min((i as u64 + 1) * bin_ns);
        add(cell, (hi - lo) as f32);
    }
}

fn coarsen<T: Copy>(v: &mut Vec<T>, merge: impl Fn(T, T) -> T) {
    let n = v.len().div_ceil(2);
    for i in 0..n {
        let a = v[2 * i];
        v[i] = match v.get(2 * i + 1) {
            Some(b) => merge(a, *b),
            None => a,
        };
    }
    v.truncate(n);
}

fn prepend<T: Clone + Default>(v: &mut Vec<T>, k: usize) {
    if !v.is_empty() {
        v.splice(0..0, std::iter::repeat_n(T::default(), k));
    }
}

impl Digest {
    /// Takes in span `index` of `t` (just pushed by `Timeline::ingest`).
    pub(crate) fn add_span(&mut self, t: &Timeline, index: usize) {
        let Some(s) = t.spans.get(index) else { return };
        let (a, b) = (s.start_ns, s.end_ns.max(s.start_ns));
        let k = kind_index(s.kind);
        self.spans += 1;
        self.min_start = self.min_start.min(a);
        self.max_end = self.max_end.max(b);
        self.kind_ns[k] += b - a;
        self.present[k] = true;
        let lane = self.lanes.entry(s.lane).or_default();
        if s.kind == SpanKind::Run && s.count > 0 {
            // A chunk is recorded as several spans when it waits or hands the GIL over (run, idle, run...); its
            // tasks count once, when its lane starts on another chunk (a lane's spans arrive in order).
            let chunk = (s.task, s.count);
            if lane.chunk != Some(chunk) {
                if let Some((_, n)) = lane.chunk {
                    self.tasks_done += n;
                }
                lane.chunk = Some(chunk);
            }
        }
        let g = self.fit(a);
        let (ra, rb) = (a.max(g.origin) - g.origin, b.max(g.origin) - g.origin);

        let lane = self.lanes.entry(s.lane).or_default();
        lane.count += 1;
        if lane.count <= EXACT_LANE_SPANS {
            lane.exact.push(index as u32);
        } else if !lane.exact.is_empty() {
            lane.exact = Vec::new();
        }
        spread(g.bin_ns, &mut lane.bins, ra, rb, |c, d| c[k] += d);
    }

    /// Makes the grid cover `a` and everything seen so far; returns it.
    fn fit(&mut self, a: u64) -> Grid {
        let mut g = *self.grid.get_or_insert(Grid { origin: a, bin_ns: FIRST_BIN_NS });
        if a < g.origin {
            // Earlier than anything so far (a warm pool's start-up): prepend bins, a good number at once so a run of
            // ever-earlier spans does not shift the bins every time.
            let used = self.used_bins();
            let need = (g.origin - a).div_ceil(g.bin_ns) as usize;
            let k = need.max(used / 4).max(16).min((g.origin / g.bin_ns) as usize).max(1);
            for lane in self.lanes.values_mut() {
                prepend(&mut lane.bins, k);
            }
            g.origin -= (k as u64 * g.bin_ns).min(g.origin);
        }
        // Every bin in use lies before the latest end seen, so this bounds them all.
        while (self.max_end.max(a).saturating_sub(g.origin)).div_ceil(g.bin_ns) as usize > MAX_BINS {
            g.bin_ns *= 2;
            for lane in self.lanes.values_mut() {
                coarsen(&mut lane.bins, |x, y| std::array::from_fn(|k| x[k] + y[k]));
            }
        }
        self.grid = Some(g);
        g
    }

    fn used_bins(&self) -> usize {
        self.lanes.values().map(|l| l.bins.len()).max().unwrap_or(0)
    }

    pub(crate) fn lane(&self, id: u32) -> Option<&LaneDigest> {
        self.lanes.get(&id)
    }

    /// Which kinds occurred, in `SPAN_KINDS` order.
    pub(crate) fn present(&self) -> [bool; KINDS] {
        self.present
    }

    /// Tasks of the chunks the lanes have finished so far (each lane's current chunk is not counted yet).
    pub(crate) fn tasks_done(&self) -> u64 {
        self.tasks_done
    }

    pub(crate) fn kind_ns(&self, kind: SpanKind) -> u64 {
        self.kind_ns[kind_index(kind)]
    }

    /// `Timeline::overhead_ms`, from the totals.
    pub(crate) fn overhead_ms(&self) -> Overhead {
        let ms = |k| self.kind_ns(k) as f64 / 1e6;
        Overhead {
            startup: ms(SpanKind::Startup),
            ipc: ms(SpanKind::Ipc),
            serialize: ms(SpanKind::Serialize),
            gil_wait: ms(SpanKind::GilWait),
        }
    }

    /// `Timeline::first_ns`, from the totals.
    pub(crate) fn first_ns(&self, t: &Timeline) -> u64 {
        self.min_start.min(t.t0_ns)
    }

    /// `Timeline::last_ns`, from the totals.
    pub(crate) fn last_ns(&self, t: &Timeline) -> u64 {
        let spans = if self.spans == 0 { t.t0_ns } else { self.max_end };
        t.end.as_ref().map_or(spans, |e| e.t_end_ns.max(spans))
    }

    /// `Timeline::wall_ns`, from the totals.
    pub(crate) fn wall_ns(&self, t: &Timeline) -> u64 {
        match &t.end {
            Some(e) => e.t_end_ns.saturating_sub(e.t0_ns),
            None => self.last_ns(t).saturating_sub(t.t0_ns),
        }
    }

    /// `Timeline::parallelism`, from the totals.
    pub(crate) fn parallelism(&self, t: &Timeline) -> f64 {
        ratio(self.kind_ns(SpanKind::Run) as f64, self.wall_ns(t) as f64)
    }

    /// Per slice of a lane's window, the covered time per kind and the run time weighted by where in the slice it
    /// lies (0 = left edge, 1 = right edge), as the Gantt needs them.
    pub(crate) fn lane_cells(&self, lane: &LaneDigest, from: u64, to: u64, n: usize) -> (Vec<[f64; KINDS]>, Vec<f64>) {
        let mut cov = vec![[0f64; KINDS]; n];
        let mut centre = vec![0f64; n];
        let run = kind_index(SpanKind::Run);
        let bins = &lane.bins;
        let mut acc = [0f32; KINDS];
        let mut at = usize::MAX;
        let mut flush = |s: usize, acc: &mut [f32; KINDS]| {
            if s != usize::MAX {
                for (c, a) in cov[s].iter_mut().zip(acc.iter()) {
                    *c += *a as f64;
                }
            }
            *acc = [0.0; KINDS];
        };
        self.each_bin(bins.len(), from, to, n, |s, i, w, mid| {
            if s != at {
                flush(at, &mut acc);
                at = s;
            }
            let b = &bins[i];
            if w >= 1.0 {
                for (a, v) in acc.iter_mut().zip(b.iter()) {
                    *a += *v;
                }
            } else {
                let w = w as f32;
                for (a, v) in acc.iter_mut().zip(b.iter()) {
                    *a += *v * w;
                }
            }
            if b[run] > 0.0 {
                centre[s] += b[run] as f64 * w * mid;
            }
        });
        flush(at, &mut acc);
        (cov, centre)
    }

    /// Calls `f(slice, bin, share of the bin in the slice, middle of that part within the slice as 0..1)` for every
    /// piece of a bin that overlaps one of `n` equal slices of `[from, to)`, slice by slice.
    fn each_bin(&self, bins: usize, from: u64, to: u64, n: usize, mut f: impl FnMut(usize, usize, f64, f64)) {
        let Some(g) = self.grid else { return };
        if n == 0 || to <= from || bins == 0 {
            return;
        }
        // Positions in units of bins, from the grid's origin.
        let bin = g.bin_ns as f64;
        let per = (to - from) as f64 / n as f64 / bin;
        let start = (from as f64 - g.origin as f64) / bin;
        for s in 0..n {
            let p0 = start + s as f64 * per;
            let (lo, hi) = (p0.max(0.0), (p0 + per).min(bins as f64));
            if hi <= lo {
                continue;
            }
            let (i0, i1) = (lo as usize, (hi.ceil() as usize).min(bins));
            for i in i0..i1 {
                let (a, b) = (lo.max(i as f64), hi.min(i as f64 + 1.0));
                if b > a {
                    f(s, i, b - a, ((a + b) / 2.0 - p0) / per);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::LabEvent;
    use crate::timeline::tests::span;

    fn timeline(spans: &[Span]) -> (Timeline, Digest) {
        let mut t = Timeline::new();
        let mut d = Digest::default();
        for s in spans {
            t.ingest(LabEvent::Span(*s));
            d.add_span(&t, t.spans.len() - 1);
        }
        (t, d)
    }

    #[test]
    fn kind_indices_follow_the_legend_order() {
        for (i, k) in SPAN_KINDS.iter().enumerate() {
            assert_eq!(kind_index(*k), i);
        }
    }

    #[test]
    fn totals_agree_with_the_timeline() {
        let (t, d) = timeline(&[
            span(0, SpanKind::Startup, 0, 2, 0),
            span(0, SpanKind::Run, 2, 100, 0),
            span(1, SpanKind::Run, 3, 90, 1),
            span(1, SpanKind::GilWait, 90, 95, 1),
        ]);
        assert_eq!(d.overhead_ms(), t.overhead_ms());
        assert_eq!(d.first_ns(&t), t.first_ns());
        assert_eq!(d.last_ns(&t), t.last_ns());
        assert_eq!(d.wall_ns(&t), t.wall_ns());
        assert_eq!(d.parallelism(&t), t.parallelism());
        assert_eq!(d.tasks_done(), 0, "each lane is still on its first chunk");
        assert_eq!(d.lane(0).unwrap().exact(&t).unwrap().len(), 2);
    }

    #[test]
    fn lane_bins_keep_their_time_as_the_grid_coarsens_and_grows_left() {
        // Ten thousand 1 ms spans on two lanes, with a warm-pool start-up that comes in last but began first: the
        // grid grows to the right, coarsens, and extends to the left, and every lane keeps its time.
        let mut spans: Vec<Span> =
            (0..10_000u64).map(|i| span((i % 2) as u32, SpanKind::Run, 100 + i, 101 + i, (i % 2) as i32)).collect();
        spans.push(span(2, SpanKind::Startup, 10, 60, 1));
        let (t, d) = timeline(&spans);
        for lane in 0..3u32 {
            let exact: u64 = t.spans.iter().filter(|s| s.lane == lane).map(|s| s.dur_ns()).sum();
            let (cov, _) = d.lane_cells(d.lane(lane).unwrap(), 0, 10_200 * 1_000_000, 50);
            let binned: f64 = cov.iter().map(|c| c.iter().sum::<f64>()).sum();
            assert!((binned - exact as f64).abs() / (exact as f64) < 0.01, "lane {lane}: {binned} vs {exact}");
        }
        assert!(d.lane(0).unwrap().exact(&t).is_none(), "a big lane is drawn from bins");
    }

    #[test]
    fn a_chunk_split_by_waits_counts_its_tasks_once() {
        // A sleep task recorded as run, idle, run on one lane (as threads and gil record waits), 8 tasks on 2 lanes.
        let mut spans = Vec::new();
        for task in 0..8u64 {
            let lane = (task % 2) as u32;
            let at = task / 2 * 30;
            for (kind, a, b) in [(SpanKind::Run, 0, 1), (SpanKind::Idle, 1, 29), (SpanKind::Run, 29, 30)] {
                spans.push(Span { task, count: 1, ..span(lane, kind, at + a, at + b, 0) });
            }
        }
        let (_, d) = timeline(&spans);
        assert_eq!(d.tasks_done(), 6, "8 tasks, the last one of each lane still going: never 16 for 8");
    }

    #[test]
    fn lane_cells_split_kinds_and_place_run_time() {
        // 600 spans on lane 0: run in the first half of every 10 ms, gil-wait in the second half.
        let mut spans = Vec::new();
        for i in 0..600u64 {
            spans.push(span(0, SpanKind::Run, i * 10, i * 10 + 5, 0));
            spans.push(span(0, SpanKind::GilWait, i * 10 + 5, i * 10 + 10, 0));
        }
        let (_, d) = timeline(&spans);
        let lane = d.lane(0).unwrap();
        let (cov, _) = d.lane_cells(lane, 0, 6_000 * 1_000_000, 150);
        for c in [0, 75, 149] {
            let run = cov[c][kind_index(SpanKind::Run)] / 4e7;
            let wait = cov[c][kind_index(SpanKind::GilWait)] / 4e7;
            assert!((run - 0.5).abs() < 0.05 && (wait - 0.5).abs() < 0.05, "cell {c}: {run} {wait}");
        }

        // Run for 3.5 s, then wait for 2.5 s, drawn in cells of 1 s: the fourth cell is run on its left half.
        let mut spans = Vec::new();
        for i in 0..600u64 {
            let kind = if i < 350 { SpanKind::Run } else { SpanKind::GilWait };
            spans.push(span(0, kind, i * 10, i * 10 + 10, 0));
        }
        let (_, d) = timeline(&spans);
        let (cov, centre) = d.lane_cells(d.lane(0).unwrap(), 0, 7_000 * 1_000_000, 7);
        let share = |c: usize, k: SpanKind| cov[c][kind_index(k)] / 1e9;
        assert!((share(0, SpanKind::Run) - 1.0).abs() < 0.01);
        assert!((share(3, SpanKind::Run) - 0.5).abs() < 0.01);
        assert!((share(5, SpanKind::GilWait) - 1.0).abs() < 0.01);
        assert!(share(6, SpanKind::GilWait) < 0.001, "at most a bin's smear past the end");
        let mid = centre[3] / cov[3][kind_index(SpanKind::Run)];
        assert!((mid - 0.25).abs() < 0.01, "the run time sits on the left: {mid}");
    }
}
