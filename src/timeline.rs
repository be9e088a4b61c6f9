//! The timeline of a run: lanes (one per thread or process), spans (what a lane did, when, on which core) and the
//! events the lab streams. Plain data and pure functions: no clock, no I/O, so tests feed it synthetic events.
//!
//! Never imports: a terminal, a runtime, the sampler, the lab or the faces.

use serde::{Deserialize, Serialize};

use crate::clock::Mark;
use crate::experiment::{Experiment, Workload};
use crate::units::fmt_ratio;
use crate::units::plural;

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

impl Lane {
    /// The lane's ids: "pid/tid" for a thread, "pid" for a process's main thread; so threads of one process show
    /// one pid. The TUI's Gantt and the SVG export label lanes with this.
    pub(crate) fn ids(&self) -> String {
        if self.tid == self.pid || self.tid == 0 { self.pid.to_string() } else { format!("{}/{}", self.pid, self.tid) }
    }

    /// The lane's label: its name and its ids, e.g. "t1 4112/4113" or "p1 4120".
    pub(crate) fn full_label(&self) -> String {
        format!("{} {}", self.label, self.ids())
    }
}

/// Lanes in reading order, by index into `lanes`: a worker's number counts as a number (t1, t2, … t10), and lanes
/// named alike stay together where the first of them came (a loop before its tasks, a parent before its
/// children). The TUI's Gantt and the SVG export both order lanes with this.
pub(crate) fn lane_order(lanes: &[Lane]) -> Vec<usize> {
    let split = |label: &str| -> (String, Option<u64>) {
        let digits = label.len() - label.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, num) = label.split_at(label.len() - digits);
        (stem.trim_end().to_string(), num.parse().ok())
    };
    let keys: Vec<(String, Option<u64>)> = lanes.iter().map(|l| split(&l.label)).collect();
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (stem, _)) in keys.iter().enumerate() {
        first.entry(stem.as_str()).or_insert(i);
    }
    let mut order: Vec<usize> = (0..lanes.len()).collect();
    order.sort_by_key(|&i| (first[keys[i].0.as_str()], keys[i].1, i));
    order
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
    /// Said by the caller's side, never by a lab: the run has sent nothing for a while and some of its processes
    /// are stopped (what, which pids, how to continue them). Shown to the user at once; the run keeps a note.
    Stalled(String),
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
    pub figures: Vec<DemoFigure>,
}

/// One named, measured value of a demo (`fork_start_ms` = 0.21 ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DemoFigure {
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
            LabEvent::Stalled(_) => {
                let note = "this run stalled on a stopped process: its figures include the stall";
                if !self.notes.iter().any(|n| n == note) {
                    self.notes.push(note.to_string());
                }
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

    /// Wait time divided by wall time: how many waits (`idle` spans) were in flight at once on average.
    pub(crate) fn waits_in_flight(&self) -> f64 {
        ratio(self.kind_ns(SpanKind::Idle) as f64, self.wall_ns() as f64)
    }

    /// What `parallelism` means for this run. A run that only waited (sleep) has a parallelism of 0 because no
    /// lane computed anything: the true figure is how many waits overlapped.
    pub(crate) fn parallelism_reading(&self) -> Parallelism {
        if self.cpu_ns() > 0 && self.wall_ns() > 0 {
            Parallelism::Running(self.parallelism())
        } else if self.kind_ns(SpanKind::Idle) > 0 && self.wall_ns() > 0 {
            Parallelism::OnlyWaited(self.waits_in_flight())
        } else {
            Parallelism::Nothing
        }
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

    /// The share of busy lane time that was not running the workload (start-up, ipc, serialize, gil-wait), on the
    /// clock: a warm pool's start-up, done before t0, is not part of the measured run.
    pub(crate) fn overhead_share(&self) -> f64 {
        let timed = |kind: SpanKind| -> f64 {
            let ns: u64 = self
                .spans
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.end_ns.saturating_sub(s.start_ns.max(self.t0_ns)))
                .sum();
            ns as f64
        };
        let over: f64 =
            [SpanKind::Startup, SpanKind::Ipc, SpanKind::Serialize, SpanKind::GilWait].into_iter().map(timed).sum();
        ratio(over, over + timed(SpanKind::Run))
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

/// What a run's lanes did at once, as `Timeline::parallelism_reading` found it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Parallelism {
    /// Run time / wall: lanes computing at once on average.
    Running(f64),
    /// No lane computed anything; this many waits were in flight at once on average.
    OnlyWaited(f64),
    /// No run or wait was recorded (the run failed first, or took no time).
    Nothing,
}

impl Parallelism {
    /// The figure and what it means, for one line of a summary.
    pub(crate) fn describe(&self) -> String {
        match *self {
            Parallelism::Running(p) => format!("{}× (run time / wall)", fmt_ratio(p)),
            Parallelism::OnlyWaited(w) => format!(
                "none: no lane computed, the tasks only waited ({}× waits in flight on average: wait time / wall)",
                fmt_ratio(w)
            ),
            Parallelism::Nothing => "none: no run or wait was recorded".to_string(),
        }
    }
}

/// Whether a workload's tasks wait (sleep; the reads of logs). Waits overlap beyond the core count, so the cores'
/// ceiling bounds only the CPU part of such a run.
pub(crate) fn workload_waits(w: &Workload) -> bool {
    matches!(w, Workload::Sleep(_) | Workload::Logs(_))
}

/// The speedup ceiling of this machine, said so that it is true for the workload: `cores`× holds for CPU work only.
pub(crate) fn ceiling_note(w: &Workload, cores: u32) -> String {
    match w {
        Workload::Sleep(_) => format!(
            "the {cores}× ceiling holds for CPU work only: these tasks wait, and waits overlap beyond the core count"
        ),
        Workload::Logs(_) => format!(
            "the {cores}× ceiling holds for the parsing only: the reads wait, and waits overlap beyond the core count"
        ),
        _ => format!("the ceiling is {cores}× for CPU work"),
    }
}

/// How a speedup reads against the cores: "% of the cores" only means something for CPU work, and above 100% it
/// needs its reason beside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Efficiency {
    /// CPU work: speedup / cores, at most 1.
    Share(f64),
    /// CPU work faster than the cores allow: the baseline ran slower than usual (noise, caches), not more cores.
    AboveCeiling(f64),
    /// The tasks wait: their speedup is not bounded by the cores, so a share of them means nothing.
    WaitsOverlap,
}

impl Efficiency {
    pub(crate) fn of(speedup: f64, cores: u32, workload: &Workload) -> Efficiency {
        let e = speedup / cores.max(1) as f64;
        if workload_waits(workload) {
            Efficiency::WaitsOverlap
        } else if e > 1.0 {
            Efficiency::AboveCeiling(e)
        } else {
            Efficiency::Share(e)
        }
    }

    /// The share of the cores, when it means one.
    pub(crate) fn value(&self) -> Option<f64> {
        match *self {
            Efficiency::Share(e) | Efficiency::AboveCeiling(e) => Some(e),
            Efficiency::WaitsOverlap => None,
        }
    }

    /// A table cell: `49%`, `103%*` (see `note`), `—` (not bound by the cores).
    pub(crate) fn cell(&self) -> String {
        match *self {
            Efficiency::Share(e) => format!("{:.0}%", e * 100.0),
            Efficiency::AboveCeiling(e) => format!("{:.0}%*", e * 100.0),
            Efficiency::WaitsOverlap => "—".to_string(),
        }
    }

    /// Why the cell is not a plain share of the cores, for a footnote.
    pub(crate) fn note(&self, cores: u32) -> Option<String> {
        match self {
            Efficiency::Share(_) => None,
            Efficiency::AboveCeiling(_) => Some(format!(
                "* above 100% of {}: the sequential baseline ran slower than usual this time (timing noise, caches), \
                 not on more cores than you have; --repeat N takes medians",
                plural(cores as u64, "core")
            )),
            Efficiency::WaitsOverlap => Some(
                "— efficiency: the tasks wait, and waits overlap beyond the core count, so a share of the cores \
                 means nothing here"
                    .to_string(),
            ),
        }
    }
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median of some values (0 for none); the values are left as they are.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut values = values.to_vec();
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
        let walls: Vec<f64> = self.walls_ns.iter().map(|w| *w as f64 / 1e6).collect();
        if walls.is_empty() {
            return self.timeline.wall_ns() as f64 / 1e6;
        }
        median(&walls)
    }

    pub(crate) fn checksum(&self) -> u64 {
        self.timeline.end.as_ref().map_or(0, |e| e.checksum)
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.timeline.end.as_ref().and_then(|e| e.error.as_deref())
    }

    /// The speedup against the cores this machine has (see `Efficiency`).
    pub(crate) fn efficiency(&self) -> Option<Efficiency> {
        self.speedup.map(|s| Efficiency::of(s, self.timeline.cores, &self.experiment.workload))
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
    fn a_warm_pools_start_up_before_the_clock_is_not_overhead_of_the_run() {
        let mut t = Timeline { t0_ns: 10_000_000, ..Timeline::default() };
        t.spans.push(span(0, SpanKind::Startup, 0, 10, 0));
        t.spans.push(span(0, SpanKind::Ipc, 10, 15, 0));
        t.spans.push(span(0, SpanKind::Run, 15, 30, 0));
        assert_eq!(t.overhead_share(), 0.25);
        t.t0_ns = 0;
        assert_eq!(t.overhead_share(), 0.5, "a cold pool's start-up is on the clock");
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
    fn efficiency_of_tasks_that_wait_is_not_a_share_of_the_cores() {
        // An async gather of sleeps 3.96× faster than sequential on one core: not "396% of 1 core".
        let e = Efficiency::of(3.96, 1, &Workload::Sleep(50));
        assert_eq!(e, Efficiency::WaitsOverlap);
        assert_eq!(e.value(), None);
        assert_eq!(e.cell(), "—");
        assert!(e.note(1).unwrap().contains("waits overlap beyond the core count"), "{:?}", e.note(1));
        assert_eq!(Efficiency::of(1.5, 2, &Workload::Logs(1000)), Efficiency::WaitsOverlap);
    }

    #[test]
    fn efficiency_above_the_cores_on_cpu_work_says_why() {
        let e = Efficiency::of(2.1, 2, &Workload::Fib { lo: 30, hi: 30 });
        assert_eq!(e.cell(), "105%*");
        let note = e.note(2).unwrap();
        assert!(note.starts_with("* above 100% of 2 cores: the sequential baseline ran slower"), "{note}");
        let within = Efficiency::of(1.9, 2, &Workload::Fib { lo: 30, hi: 30 });
        assert_eq!((within.cell(), within.note(2)), ("95%".to_string(), None));
        assert_eq!(
            Efficiency::of(1.2, 1, &Workload::Tiny).note(1).unwrap()[..22].to_string(),
            "* above 100% of 1 core"
        );
    }

    #[test]
    fn the_core_ceiling_is_said_to_hold_for_cpu_work_only() {
        assert_eq!(ceiling_note(&Workload::Fib { lo: 30, hi: 30 }, 2), "the ceiling is 2× for CPU work");
        let sleep = ceiling_note(&Workload::Sleep(10), 2);
        assert!(sleep.starts_with("the 2× ceiling holds for CPU work only"), "{sleep}");
        assert!(ceiling_note(&Workload::Logs(10), 2).contains("parsing only"));
    }

    #[test]
    fn a_run_that_only_waited_reports_its_waits_in_flight_not_zero_parallelism() {
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 7, t0_ns: 0, cores: 2 });
        for lane in 0..4 {
            t.ingest(LabEvent::Span(span(lane, SpanKind::Idle, 0, 50, 0)));
        }
        t.ingest(LabEvent::Finished(RunEnd {
            t0_ns: 0,
            t_end_ns: 50_000_000,
            checksum: 1,
            tasks_done: 4,
            error: None,
        }));
        assert_eq!(t.parallelism(), 0.0);
        assert_eq!(t.parallelism_reading(), Parallelism::OnlyWaited(4.0));
        let text = t.parallelism_reading().describe();
        assert!(text.contains("4.00× waits in flight") && !text.contains("0.00"), "{text}");
        assert_eq!(Timeline::new().parallelism_reading(), Parallelism::Nothing);
    }

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        assert_eq!(fmt_ratio(1.953), "1.95");
        assert_eq!(fmt_ratio(0.0013), "0.0013");
        assert_eq!(fmt_ratio(0.05), "0.050");
        assert_eq!(fmt_ratio(0.0), "0.00");
        assert_eq!(Parallelism::Running(0.0013).describe(), "0.0013× (run time / wall)");
    }

    #[test]
    fn median_of_even_and_odd_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
