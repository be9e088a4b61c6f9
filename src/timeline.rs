//! The timeline of a run: lanes (one per thread or process), spans (what a lane did, when, on which core) and the
//! events the lab streams. Plain data and pure functions: no clock, no I/O, so tests feed it synthetic events.

use serde::{Deserialize, Serialize};

use crate::clock::Mark;
use crate::experiment::Experiment;

/// What a span of a lane's time was spent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SpanKind {
    Startup,
    Run,
    GilWait,
    Ipc,
    Serialize,
    Idle,
    Failed,
}

pub(crate) const SPAN_KINDS: [SpanKind; 7] = [
    SpanKind::Run,
    SpanKind::GilWait,
    SpanKind::Startup,
    SpanKind::Ipc,
    SpanKind::Serialize,
    SpanKind::Idle,
    SpanKind::Failed,
];

impl SpanKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SpanKind::Startup => "startup",
            SpanKind::Run => "run",
            SpanKind::GilWait => "gil-wait",
            SpanKind::Ipc => "ipc",
            SpanKind::Serialize => "serialize",
            SpanKind::Idle => "idle",
            SpanKind::Failed => "failed",
        }
    }

    /// Whether the lane was using a CPU during the span (waiting and sleeping do not).
    pub(crate) fn is_busy(&self) -> bool {
        matches!(self, SpanKind::Run | SpanKind::Serialize | SpanKind::Ipc | SpanKind::Startup)
    }
}

/// One thread or process that did work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lane {
    pub id: u32,
    pub pid: u32,
    pub tid: u32,
    pub label: String,
}

/// One stretch of one lane's time. Times are raw CLOCK_MONOTONIC nanoseconds (comparable across processes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Span {
    pub lane: u32,
    /// The first task of the span (tiny tasks are recorded per chunk).
    pub task: u64,
    /// How many tasks the span covers (0 for spans that are not task work, like start-up).
    pub count: u64,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// CPU core at start and end (`sched_getcpu`), -1 when unknown.
    pub cpu_start: i32,
    pub cpu_end: i32,
}

impl Span {
    /// A span between two marks (times and cores read by the caller).
    pub(crate) fn between(lane: u32, task: u64, count: u64, kind: SpanKind, start: Mark, end: Mark) -> Span {
        Span { lane, task, count, kind, start_ns: start.ns, end_ns: end.ns, cpu_start: start.cpu, cpu_end: end.cpu }
    }

    pub(crate) fn dur_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// The end of a run, as the lab measured it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunEnd {
    /// When the clock started (before the pool, or after it for a warm pool).
    pub t0_ns: u64,
    pub t_end_ns: u64,
    pub checksum: u64,
    pub tasks_done: u64,
    /// Set when the run failed (a worker crashed, ...): what happened.
    pub error: Option<String>,
}

/// What the lab streams to its caller, one per line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LabEvent {
    Started {
        lab_pid: u32,
        t0_ns: u64,
        cores: u32,
    },
    Lane(Lane),
    Span(Span),
    /// Something worth telling the user (e.g. a knob that was adjusted).
    Note(String),
    /// A process-internals demo's measured summary (sent just before `Finished`).
    Demo(DemoReport),
    Finished(RunEnd),
}

/// What a demo measured: a short table, a one-line reading of what it means, and its key figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DemoReport {
    /// The demo's name (`cow`, `race`, ...).
    pub name: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// One line saying what the figures mean (and where a tutorial's claim misleads).
    pub reading: String,
    pub figures: Vec<Figure>,
}

/// One named, measured value of a demo (`fork_start_ms` = 0.21 ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// Time spent per span kind, summed over lanes (worker time, not wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Overhead {
    pub startup: f64,
    pub ipc: f64,
    pub serialize: f64,
    pub gil_wait: f64,
}

/// Everything known about one run, built from the lab's events.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timeline {
    pub lanes: Vec<Lane>,
    pub spans: Vec<Span>,
    pub lab_pid: u32,
    pub cores: u32,
    /// The first event's idea of "time zero" (replaced by the run's own t0 at the end).
    pub t0_ns: u64,
    pub end: Option<RunEnd>,
    pub notes: Vec<String>,
    /// Set when the run was a demo.
    pub demo: Option<DemoReport>,
}

impl Timeline {
    pub(crate) fn new() -> Timeline {
        Timeline::default()
    }

    pub(crate) fn ingest(&mut self, event: LabEvent) {
        match event {
            LabEvent::Started { lab_pid, t0_ns, cores } => {
                self.lab_pid = lab_pid;
                self.t0_ns = t0_ns;
                self.cores = cores;
            }
            LabEvent::Lane(lane) => {
                if let Some(l) = self.lanes.iter_mut().find(|l| l.id == lane.id) {
                    *l = lane;
                } else {
                    self.lanes.push(lane);
                }
            }
            LabEvent::Span(span) => self.spans.push(span),
            LabEvent::Note(n) => self.notes.push(n),
            LabEvent::Demo(report) => self.demo = Some(report),
            LabEvent::Finished(end) => {
                self.t0_ns = end.t0_ns;
                self.end = Some(end);
            }
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.end.is_some()
    }

    /// The latest time anything happened (for drawing a run in progress).
    pub(crate) fn last_ns(&self) -> u64 {
        let spans = self.spans.iter().map(|s| s.end_ns).max().unwrap_or(self.t0_ns);
        self.end.as_ref().map_or(spans, |e| e.t_end_ns.max(spans))
    }

    /// The earliest time anything happened: start-up of a warm pool comes before t0.
    pub(crate) fn first_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(self.t0_ns).min(self.t0_ns)
    }

    pub(crate) fn wall_ns(&self) -> u64 {
        match &self.end {
            Some(e) => e.t_end_ns.saturating_sub(e.t0_ns),
            None => self.last_ns().saturating_sub(self.t0_ns),
        }
    }

    pub(crate) fn kind_ns(&self, kind: SpanKind) -> u64 {
        self.spans.iter().filter(|s| s.kind == kind).map(Span::dur_ns).sum()
    }

    /// Time the lanes spent running the workload (parlab's own CPU time, from the spans).
    pub(crate) fn cpu_ns(&self) -> u64 {
        self.kind_ns(SpanKind::Run)
    }

    /// Run time divided by wall time: how many lanes were running at once on average.
    pub(crate) fn parallelism(&self) -> f64 {
        ratio(self.cpu_ns() as f64, self.wall_ns() as f64)
    }

    pub(crate) fn overhead_ms(&self) -> Overhead {
        let ms = |k| self.kind_ns(k) as f64 / 1e6;
        Overhead {
            startup: ms(SpanKind::Startup),
            ipc: ms(SpanKind::Ipc),
            serialize: ms(SpanKind::Serialize),
            gil_wait: ms(SpanKind::GilWait),
        }
    }

    /// The share of busy lane time that was not running the workload (start-up, ipc, serialize, gil-wait).
    pub(crate) fn overhead_share(&self) -> f64 {
        let o = self.overhead_ms();
        let over = o.startup + o.ipc + o.serialize + o.gil_wait;
        ratio(over, over + self.cpu_ns() as f64 / 1e6)
    }

    /// Per-core busy share of parlab's own lanes in `[from, to)`, from the spans (exact, not sampled).
    /// A span is attributed to the core it started on (and split evenly when it ended on another).
    pub(crate) fn core_busy(&self, cores: usize, from: u64, to: u64) -> Vec<f64> {
        let mut busy = vec![0f64; cores.max(1)];
        if to <= from {
            return busy;
        }
        for s in self.spans.iter().filter(|s| s.kind.is_busy()) {
            let a = s.start_ns.max(from);
            let b = s.end_ns.min(to);
            if b <= a {
                continue;
            }
            let d = (b - a) as f64;
            let cs = usize::try_from(s.cpu_start).ok().filter(|c| *c < busy.len());
            let ce = usize::try_from(s.cpu_end).ok().filter(|c| *c < busy.len());
            match (cs, ce) {
                (Some(x), Some(y)) if x != y => {
                    busy[x] += d / 2.0;
                    busy[y] += d / 2.0;
                }
                (Some(x), _) | (None, Some(x)) => busy[x] += d,
                (None, None) => {}
            }
        }
        let len = (to - from) as f64;
        busy.iter().map(|b| (b / len).min(1.0)).collect()
    }

    /// Lengths of the GIL holds that ended in a hand-off to another thread, in nanoseconds: a `run` span followed
    /// on another lane by a `run` span that began within `slack_ns` of its end.
    pub(crate) fn gil_handoffs_ns(&self, slack_ns: u64) -> Vec<u64> {
        let mut runs: Vec<&Span> = self.spans.iter().filter(|s| s.kind == SpanKind::Run).collect();
        runs.sort_by_key(|s| s.start_ns);
        let mut out = Vec::new();
        for w in runs.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.lane != b.lane && b.start_ns >= a.end_ns && b.start_ns - a.end_ns <= slack_ns {
                // Only holds cut short by a drop request: the next holder had been waiting.
                let waited = self.spans.iter().any(|s| {
                    s.lane == b.lane
                        && s.kind == SpanKind::GilWait
                        && s.end_ns <= b.start_ns + slack_ns
                        && s.end_ns + slack_ns >= b.start_ns
                        && s.start_ns <= a.start_ns
                });
                if waited {
                    out.push(a.dur_ns());
                }
            }
        }
        out
    }
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// A finished run: the experiment and its timeline, plus the figures derived from a baseline if there is one.
#[derive(Clone, Debug)]
pub(crate) struct RunReport {
    pub experiment: Experiment,
    pub timeline: Timeline,
    pub parent_pid: u32,
    /// Wall times of every repetition (the timeline is the median one's).
    pub walls_ns: Vec<u64>,
    /// Against the sequential baseline, when one was measured.
    pub speedup: Option<f64>,
}

impl RunReport {
    pub(crate) fn wall_ms(&self) -> f64 {
        let mut walls: Vec<f64> = self.walls_ns.iter().map(|w| *w as f64 / 1e6).collect();
        if walls.is_empty() {
            return self.timeline.wall_ns() as f64 / 1e6;
        }
        median(&mut walls)
    }

    pub(crate) fn checksum(&self) -> u64 {
        self.timeline.end.as_ref().map_or(0, |e| e.checksum)
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.timeline.end.as_ref().and_then(|e| e.error.as_deref())
    }

    /// Speedup divided by the cores this machine has.
    pub(crate) fn efficiency(&self) -> Option<f64> {
        self.speedup.map(|s| s / self.timeline.cores.max(1) as f64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn span(lane: u32, kind: SpanKind, start_ms: u64, end_ms: u64, cpu: i32) -> Span {
        Span {
            lane,
            task: 0,
            count: 1,
            kind,
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms * 1_000_000,
            cpu_start: cpu,
            cpu_end: cpu,
        }
    }

    fn lane(id: u32, pid: u32) -> LabEvent {
        LabEvent::Lane(Lane { id, pid, tid: pid + id, label: format!("w{id}") })
    }

    #[test]
    fn ingest_builds_lanes_spans_and_wall_time() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 7, t0_ns: 0, cores: 2 });
        t.ingest(lane(0, 10));
        t.ingest(lane(1, 11));
        t.ingest(LabEvent::Span(span(0, SpanKind::Startup, 0, 2, 0)));
        t.ingest(LabEvent::Span(span(0, SpanKind::Run, 2, 100, 0)));
        t.ingest(LabEvent::Span(span(1, SpanKind::Run, 3, 90, 1)));
        assert_eq!(t.wall_ns(), 100_000_000);
        t.ingest(LabEvent::Finished(RunEnd {
            t0_ns: 0,
            t_end_ns: 101_000_000,
            checksum: 5,
            tasks_done: 2,
            error: None,
        }));
        assert_eq!(t.wall_ns(), 101_000_000);
        assert_eq!(t.cpu_ns(), 185_000_000);
        assert_eq!(t.overhead_ms().startup, 2.0);
        let p = t.parallelism();
        assert!((p - 185.0 / 101.0).abs() < 1e-9);
    }

    #[test]
    fn core_busy_attributes_spans_to_their_cores() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Span(span(0, SpanKind::Run, 0, 50, 0)));
        t.ingest(LabEvent::Span(span(1, SpanKind::GilWait, 0, 100, 1)));
        let busy = t.core_busy(2, 0, 100_000_000);
        assert_eq!(busy, vec![0.5, 0.0]);
    }

    #[test]
    fn gil_handoffs_measure_holds_that_ended_in_a_switch() {
        let mut t = Timeline::new();
        // lane 0 holds 0-5, lane 1 (waiting since 0) holds 5-10, lane 0 (waiting since 5) holds 10-15.
        for ev in [
            span(0, SpanKind::Run, 0, 5, 0),
            span(1, SpanKind::GilWait, 0, 5, 1),
            span(1, SpanKind::Run, 5, 10, 1),
            span(0, SpanKind::GilWait, 5, 10, 0),
            span(0, SpanKind::Run, 10, 15, 0),
        ] {
            t.ingest(LabEvent::Span(ev));
        }
        assert_eq!(t.gil_handoffs_ns(100_000), vec![5_000_000, 5_000_000]);
    }

    #[test]
    fn median_of_even_and_odd_lists() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
