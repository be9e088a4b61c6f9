//! The TUI's state machine: every piece of state the screens show lives in `App`, and `App::update` is the only
//! place it changes. Events come in (keys, lab events, core samples, ticks); effects go out (start or cancel a
//! run, check an exercise, save progress, quit) for `tui` to perform. No terminal, no processes, no clock here,
//! so tests drive it with synthetic events.

use std::collections::HashMap;

use crate::exercise::CheckOutcome;
use crate::units::fmt_num;
use crate::units::{format_bytes, format_interval_us, plural};

use crate::experiment::{Experiment, Fit, Knobs, MAX_TASKS, MAX_WORKERS, MODES, Mode, START_METHODS, Workload};
use crate::lab::demos::DemoSpec;
use crate::lesson::{Block, ExerciseSpec, ExperimentKind, Knob, Lesson, Metric, Quiz, Section};
use crate::progress::{LessonMark, Progress};
use crate::timeline::{LabEvent, RunEnd, Timeline, median};
use crate::ui::digest::Digest;
use crate::ui::theme::{Palette, Theme};

/// The smallest terminal the screens are laid out for.
pub(crate) const MIN_W: u16 = 80;
pub(crate) const MIN_H: u16 = 24;
/// Most modes a compare view shows.
pub(crate) const MAX_COMPARE: usize = 4;
/// Switch intervals the `i` key steps through, in microseconds.
const INTERVALS_US: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
/// Payloads per task the `b`/`B` keys step through, in bytes.
const PAYLOADS: [u64; 7] = [0, 1 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20];
/// System core samples kept for the history sparklines.
pub(crate) const HISTORY: usize = 120;
/// Runs `R` makes of one setup before it shows their median.
pub(crate) const REPEATS: usize = 3;
/// Other programs using more than this many cores on average during a run make its figures suspect.
pub(crate) const OTHERS_WARN_CORES: f64 = 0.3;
/// Measured CPU samples a run keeps (adjacent ones are merged beyond this).
const MAX_CPU_SAMPLES: usize = 2_048;

/// A key, already decoded from the terminal's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Char(char),
    Up,
    Down,
    Left,
    Right,
    Enter,
    Esc,
    Backspace,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    /// Shift-Tab.
    BackTab,
    CtrlC,
}

/// Everything that can happen to the app.
#[derive(Clone, Debug)]
pub(crate) enum AppEvent {
    Key(Key),
    /// Mouse wheel: up or down, at a screen column.
    Scroll {
        up: bool,
        column: u16,
    },
    Resize(u16, u16),
    /// Only while something is live: the current CLOCK_MONOTONIC time, so live Gantts grow.
    Tick(u64),
    /// System-wide per-core utilization, 0..=100 per core.
    Cores(Vec<f32>),
    /// Cores' worth of CPU that programs other than parlab used over the monitor's last interval.
    Others(f32),
    /// CPU time measured for a run's processes (its lab and workers): ns per core over the `interval_ns` that ended
    /// at `at_ns` (CLOCK_MONOTONIC).
    RunCpu {
        run: u64,
        per_core_ns: Vec<u64>,
        interval_ns: u64,
        at_ns: u64,
    },
    Lab(u64, LabEvent),
    /// What the python engine's interpreter is (detected off the UI thread), or why it is unavailable.
    Python(Result<crate::engine::detect::Interpreter, String>),
    /// A lab's event stream ended (or it never started): `error` explains an early end.
    LabExited {
        run: u64,
        error: Option<String>,
        now_ns: u64,
    },
    CheckDone {
        run: u64,
        result: Result<CheckOutcome, String>,
    },
    /// SIGTERM or SIGHUP.
    Signal,
}

/// What the app wants done; `tui` performs these.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    Start {
        run: u64,
        exp: Experiment,
    },
    /// Run a process-internals demo in a lab (its events arrive like a run's).
    StartDemo {
        run: u64,
        demo: DemoSpec,
    },
    Cancel {
        run: u64,
    },
    Check {
        run: u64,
        spec: Box<ExerciseSpec>,
        setup: Experiment,
    },
    CancelCheck {
        run: u64,
    },
    SaveProgress,
    Monitor(MonitorRate),
    Quit,
}

/// How often the system core sampler should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MonitorRate {
    Off,
    /// A core panel is on screen.
    Slow,
    /// A run is live.
    Fast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    List,
    Lesson,
    Compare,
    /// A recording opened with `parlab replay` (see `view::Replay`).
    Replay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusKind {
    Info,
    Error,
}

/// Keys and what they do, for the help overlay: (keys, ASCII spelling, meaning). The knobs follow, from
/// `KNOB_KEYS`.
pub(crate) const KEYS: &[(&str, &str, &str)] = &[
    ("↑/↓", "Up/Down", "move, scroll the lesson"),
    ("PgUp/PgDn", "PgUp/PgDn", "scroll a page"),
    ("Enter", "Enter", "open (resumes a lesson)"),
    ("←/→", "Left/Right", "previous / next section"),
    ("Tab / S-Tab", "Tab / S-Tab", "next / previous block"),
    ("/", "/", "search the lessons"),
    ("r", "r", "run the experiment"),
    ("R", "R", "run 3 times: median"),
    ("c", "c", "compare modes"),
    ("e", "e", "engine: native/py/both"),
    ("Esc", "Esc", "cancel a run, or go back"),
    ("1-9", "1-9", "answer the selected quiz"),
    ("p", "p", "predict, then measure"),
    ("h", "h", "next hint"),
    ("x", "x", "check the exercise"),
    ("t", "t", "theme (remembered)"),
    ("] / [", "] / [", "zoom in / out"),
    ("{ / }", "{ / }", "pan left / right"),
    ("< / >", "< / >", "cursor (reads the span)"),
    ("( / )", "( / )", "cursor: prev / next span"),
    ("g / G", "g / G", "GIL hand-off next/prev"),
    (";", ";", "cursor: next lane"),
    ("f", "f", "pause the live view"),
    ("Space", "Space", "replay: play / pause"),
    (", / .", ", / .", "replay: slower / faster"),
    ("P", "P", "presenter layout"),
    ("?", "?", "this help"),
    ("q / Ctrl-C", "q / Ctrl-C", "quit"),
];

/// One knob's keys: the single table the key handling, the help overlay and the panel's knob line read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KnobKey {
    pub knob: Knob,
    /// As the help shows them.
    pub keys: &'static str,
    /// The characters that turn it (down, then up, for a pair).
    pub chars: &'static [char],
    pub what: &'static str,
}

impl KnobKey {
    /// The keys for the panel's knob line: `w/W`.
    pub(crate) fn short(&self) -> String {
        self.keys.replace(' ', "")
    }
}

pub(crate) const KNOB_KEYS: &[KnobKey] = &[
    KnobKey { knob: Knob::Mode, keys: "m", chars: &['m'], what: "mode" },
    KnobKey { knob: Knob::Workers, keys: "w / W", chars: &['w', 'W'], what: "workers - / +" },
    KnobKey { knob: Knob::Chunksize, keys: "k / K", chars: &['k', 'K'], what: "chunksize - / +" },
    KnobKey { knob: Knob::Start, keys: "s", chars: &['s'], what: "start method (processes)" },
    KnobKey { knob: Knob::Warm, keys: "u", chars: &['u'], what: "warm pool (processes)" },
    KnobKey { knob: Knob::SwitchInterval, keys: "i", chars: &['i'], what: "switch interval (gil)" },
    KnobKey { knob: Knob::Payload, keys: "b / B", chars: &['b', 'B'], what: "payload per task - / +" },
    KnobKey { knob: Knob::Size, keys: "- / +", chars: &['-', '+', '_', '='], what: "workload size - / +" },
    KnobKey { knob: Knob::Tasks, keys: "n / N", chars: &['n', 'N'], what: "tasks - / +" },
];

/// The knob a key turns.
fn knob_of(c: char) -> Option<&'static KnobKey> {
    KNOB_KEYS.iter().find(|k| k.chars.contains(&c))
}

/// What a run runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Job {
    Experiment(Experiment),
    Demo(DemoSpec),
}

/// CPU time the monitor measured for a run's own processes, per core.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunCpu {
    /// Per core, the CPU time measured so far, in ns.
    pub per_core_ns: Vec<u64>,
    /// The samples, in order of arrival.
    pub samples: Vec<CpuSample>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CpuSample {
    /// When the sample's interval ended (CLOCK_MONOTONIC ns) and how long it was.
    pub at_ns: u64,
    pub interval_ns: u64,
    pub per_core_ns: Vec<u64>,
}

impl RunCpu {
    pub(crate) fn add(&mut self, s: CpuSample) {
        if self.per_core_ns.len() < s.per_core_ns.len() {
            self.per_core_ns.resize(s.per_core_ns.len(), 0);
        }
        for (t, v) in self.per_core_ns.iter_mut().zip(&s.per_core_ns) {
            *t += v;
        }
        self.samples.push(s);
        if self.samples.len() > MAX_CPU_SAMPLES {
            // Merge neighbours: the history keeps its shape at half the resolution.
            let old = std::mem::take(&mut self.samples);
            for pair in old.chunks(2) {
                let mut m = pair[0].clone();
                if let Some(b) = pair.get(1) {
                    m.at_ns = b.at_ns;
                    m.interval_ns += b.interval_ns;
                    if m.per_core_ns.len() < b.per_core_ns.len() {
                        m.per_core_ns.resize(b.per_core_ns.len(), 0);
                    }
                    for (x, y) in m.per_core_ns.iter_mut().zip(&b.per_core_ns) {
                        *x += y;
                    }
                }
                self.samples.push(m);
            }
        }
    }

    pub(crate) fn measured(&self) -> bool {
        !self.samples.is_empty()
    }
}

/// One run the app started: what it runs and what the lab has told us so far.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub id: u64,
    pub job: Job,
    /// The id of the setup it was started for (`Setup::id`).
    pub origin: String,
    pub timeline: Timeline,
    /// The timeline's totals and bins, kept up to date by `ingest` so drawing never walks every span.
    pub digest: Digest,
    /// Its processes' CPU, measured by the monitor.
    pub cpu: RunCpu,
    /// Cores used by other programs, summed over the monitor's samples during the run, and how many samples.
    pub others: (f64, u32),
    pub live: bool,
    pub cancelled: bool,
}

impl Run {
    fn new(id: u64, job: Job, origin: &str) -> Run {
        Run {
            id,
            job,
            origin: origin.to_string(),
            timeline: Timeline::new(),
            digest: Digest::default(),
            cpu: RunCpu::default(),
            others: (0.0, 0),
            live: true,
            cancelled: false,
        }
    }

    /// The experiment, unless this run is a demo.
    pub(crate) fn exp(&self) -> Option<&Experiment> {
        match &self.job {
            Job::Experiment(e) => Some(e),
            Job::Demo(_) => None,
        }
    }

    pub(crate) fn demo(&self) -> Option<&DemoSpec> {
        match &self.job {
            Job::Demo(d) => Some(d),
            Job::Experiment(_) => None,
        }
    }

    /// What the run is, for messages: "gil run", "cow demo".
    pub(crate) fn what(&self) -> String {
        match &self.job {
            Job::Experiment(e) => format!("{} run", e.mode),
            Job::Demo(d) => format!("{} demo", d.name),
        }
    }

    /// Takes in one lab event, keeping the digest in step with the timeline.
    pub(crate) fn ingest(&mut self, ev: LabEvent) {
        let span = matches!(ev, LabEvent::Span(_));
        self.timeline.ingest(ev);
        if span {
            let i = self.timeline.spans.len() - 1;
            self.digest.add_span(&self.timeline, i);
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        if self.cancelled {
            return Some("cancelled");
        }
        self.timeline.end.as_ref().and_then(|e| e.error.as_deref())
    }

    /// Finished with a result (not live, not cancelled, no error).
    pub(crate) fn succeeded(&self) -> bool {
        !self.live && self.timeline.is_finished() && self.error().is_none()
    }

    pub(crate) fn wall_ns(&self) -> u64 {
        self.digest.wall_ns(&self.timeline)
    }

    pub(crate) fn wall_ms(&self) -> f64 {
        self.wall_ns() as f64 / 1e6
    }

    /// Tasks the lanes have finished running so far.
    pub(crate) fn tasks_done(&self) -> u64 {
        match &self.timeline.end {
            Some(e) if e.error.is_none() => e.tasks_done,
            _ => self.digest.tasks_done(),
        }
    }

    /// Cores other programs used on average while the run went, when the monitor sampled during it.
    pub(crate) fn others_cores(&self) -> Option<f64> {
        let (sum, n) = self.others;
        (n > 0).then(|| sum / f64::from(n))
    }
}

/// What the experiment panel is set up to run: a lesson's experiment or exercise, with the learner's knobs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Setup {
    /// The experiment's id (or `lesson#S.B` for one without), or the exercise id.
    pub id: String,
    /// Where its block is: section and block index within the section.
    pub section: usize,
    pub block: usize,
    pub workload: Workload,
    pub tasks: u64,
    pub mode: Mode,
    /// The modes the lesson compares (`c`).
    pub modes: Vec<Mode>,
    pub knobs: Knobs,
    pub note: Option<String>,
    /// Set for a process-internals demo: `r` runs it in a lab and the panel shows its table.
    pub demo: Option<String>,
    pub exercise: Option<ExerciseSpec>,
}

impl Setup {
    pub(crate) fn may_change(&self, knob: Knob) -> bool {
        self.exercise.as_ref().is_none_or(|e| e.may_change.contains(&knob))
    }

    /// The experiment these knobs describe, validated.
    pub(crate) fn experiment(&self, mode: Mode, cores: u32) -> Result<Experiment, String> {
        Experiment::build(self.workload, self.tasks, mode, &self.knobs, Fit::Lenient, cores)
    }

    /// What kind of block it is, for titles: experiment, demo or exercise.
    pub(crate) fn kind(&self) -> &'static str {
        if self.exercise.is_some() {
            "exercise"
        } else if self.demo.is_some() {
            "demo"
        } else {
            "experiment"
        }
    }

    /// Whether the knobs that apply to the mode include `knob` (the panel shows only those).
    pub(crate) fn applies(&self, knob: Knob) -> bool {
        match knob {
            Knob::Workers => self.mode.uses_workers(),
            Knob::Chunksize => matches!(self.mode, Mode::Processes | Mode::Threads),
            Knob::Start | Knob::Warm => self.mode == Mode::Processes,
            Knob::SwitchInterval => self.mode == Mode::Gil,
            // Messages to worker processes carry it; other modes share it in memory, so it shows there once set.
            Knob::Payload => {
                self.knobs.payload.unwrap_or(0) > 0
                    || match &self.exercise {
                        Some(e) => e.may_change.contains(&Knob::Payload),
                        None => self.mode == Mode::Processes,
                    }
            }
            Knob::Mode | Knob::Size | Knob::Tasks => true,
        }
    }
}

/// The state of an exercise check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Check {
    Running { run: u64, exercise: String, setup: Experiment },
    Done(CheckOutcome),
    Failed(String),
}

/// A prediction waiting for its measurement: it belongs to the setup it was made for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prediction {
    pub value: f64,
    pub exp: Experiment,
    /// An exercise's prediction is of its goal's metric, which only its check measures.
    pub by_check: bool,
}

/// `R`: the same setup run several times, one after another.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Repeat {
    pub exp: Experiment,
    pub want: usize,
    /// Wall times of the runs that succeeded so far.
    pub walls_ns: Vec<u64>,
    /// A run failed or was cancelled: no more are started.
    pub stopped: bool,
}

impl Repeat {
    pub(crate) fn done(&self) -> bool {
        self.walls_ns.len() >= self.want
    }

    /// (median, min, max) wall in ns, once every run is in.
    pub(crate) fn spread(&self) -> Option<(u64, u64, u64)> {
        if !self.done() {
            return None;
        }
        let v: Vec<f64> = self.walls_ns.iter().map(|w| *w as f64).collect();
        let med = median(&v) as u64;
        Some((med, *self.walls_ns.iter().min()?, *self.walls_ns.iter().max()?))
    }
}

/// The right-hand panel of the lesson view.
#[derive(Clone, Debug, Default)]
pub(crate) struct Panel {
    pub setup: Option<Setup>,
    pub run: Option<Run>,
    /// The learner's prediction, waiting for a measurement of its setup.
    pub prediction: Option<Prediction>,
    /// (predicted, measured) of the last prediction that met its measurement.
    pub predicted: Option<(f64, f64)>,
    pub check: Option<Check>,
    pub repeat: Option<Repeat>,
}

/// A compare in progress or done: modes run one after another.
#[derive(Clone, Debug)]
pub(crate) struct Compare {
    pub exps: Vec<Experiment>,
    /// Runs started so far, in order; the last one may be live.
    pub runs: Vec<Run>,
    pub cancelled: bool,
}

impl Compare {
    pub(crate) fn live(&self) -> bool {
        self.runs.last().is_some_and(|r| r.live)
    }

    pub(crate) fn done(&self) -> bool {
        !self.live() && (self.cancelled || self.runs.len() == self.exps.len())
    }

    /// Speedup of run `i` against the sequential run of this compare.
    pub(crate) fn speedup(&self, i: usize) -> Option<f64> {
        let r = self.runs.get(i).filter(|r| r.succeeded())?;
        // Against the sequential run of its own engine.
        let engine = r.exp().map(|e| e.engine);
        let base = self.runs.iter().find(|b| {
            b.exp().is_some_and(|e| e.mode == Mode::Sequential && Some(e.engine) == engine) && b.succeeded()
        })?;
        (r.wall_ms() > 0.0).then(|| base.wall_ms() / r.wall_ms())
    }
}

/// The lesson being read.
#[derive(Clone, Debug, Default)]
pub(crate) struct LessonView {
    pub lesson: usize,
    pub section: usize,
    pub scroll: u16,
    /// The selected block of the section (an index into its blocks: an experiment, exercise or quiz).
    pub block: Option<usize>,
    /// Quiz answers given this session, by quiz number within the lesson.
    pub answers: HashMap<usize, usize>,
    /// Hints revealed, by exercise id.
    pub hints: HashMap<String, usize>,
}

/// The lesson list.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListState {
    /// Index into the visible (filtered) lessons.
    pub selected: usize,
    pub query: String,
    pub searching: bool,
}

/// A text prompt (the prediction).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prompt {
    pub label: String,
    pub text: String,
}

/// Samples of system-wide per-core utilization.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoreSamples {
    pub latest: Vec<f32>,
    pub history: std::collections::VecDeque<Vec<f32>>,
}

/// The blocks of a section a learner can select (experiments, demos, exercises, quizzes), by index.
pub(crate) fn selectable(section: &Section) -> Vec<usize> {
    section
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, Block::Experiment(_) | Block::Exercise(_) | Block::Quiz(_)))
        .map(|(i, _)| i)
        .collect()
}

/// The blocks of a section the panel can show (experiments, demos, exercises), by index.
pub(crate) fn panel_blocks(section: &Section) -> Vec<usize> {
    section
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, Block::Experiment(_) | Block::Exercise(_)))
        .map(|(i, _)| i)
        .collect()
}

/// How a run's experiment differs from another (the current knobs), in the run's own values: ["processes",
/// "2 workers"]. Empty when they are the same.
pub(crate) fn differences(run: &Experiment, now: &Experiment) -> Vec<String> {
    let mut out = Vec::new();
    if run.mode != now.mode {
        out.push(run.mode.name().to_string());
    }
    if run.workload != now.workload {
        out.push(run.workload.to_string());
    }
    if run.tasks != now.tasks {
        out.push(plural(run.tasks, "task"));
    }
    if run.workers != now.workers {
        out.push(plural(u64::from(run.workers), "worker"));
    }
    if run.chunksize != now.chunksize {
        out.push(format!("chunksize {}", run.chunksize));
    }
    if run.start != now.start {
        out.push(run.start.name().to_string());
    }
    if run.switch_interval_us != now.switch_interval_us {
        out.push(format!("switch interval {}", format_interval_us(run.switch_interval_us)));
    }
    if run.payload != now.payload {
        out.push(if run.payload == 0 { "no payload".into() } else { format!("payload {}", format_bytes(run.payload)) });
    }
    if run.warm != now.warm {
        out.push(if run.warm { "warm pool".into() } else { "cold pool".into() });
    }
    out
}

pub(crate) struct App {
    pub lessons: Vec<Lesson>,
    /// One line per lesson file that failed to load.
    pub broken: Vec<String>,
    pub progress: Progress,
    pub cores: u32,
    pub theme: Theme,
    pub screen: Screen,
    pub help: bool,
    pub size: (u16, u16),
    pub list: ListState,
    pub view: LessonView,
    pub panel: Panel,
    /// Panels of the lesson's other blocks, by setup id: knobs, runs and predictions wait there while the
    /// learner looks at another block.
    pub stash: HashMap<String, Panel>,
    pub compare: Option<Compare>,
    pub sys: CoreSamples,
    pub status: Option<(StatusKind, String)>,
    pub prompt: Option<Prompt>,
    /// The latest Tick: the "now" of live Gantts (0 until the first tick).
    pub now_ns: u64,
    next_run: u64,
    monitor: MonitorRate,
    quitting: bool,
    /// Wall times of sequential runs, by (workload, tasks, payload), for single-run speedups.
    baselines: Vec<((Workload, u64, u64), u64)>,
    /// The timeline's zoom, pan, cursor and pause (see `view`).
    pub tl: crate::view::TimelineView,
    /// A recording being replayed.
    pub replay: Option<crate::view::Replay>,
    /// The presenter layout (`--present`, `P`).
    pub present: bool,
    /// Which engine runs experiments (`e`), and the python engine's interpreter.
    pub engine: crate::engine::state::EngineState,
}

impl App {
    pub(crate) fn new(lessons: Vec<Lesson>, broken: Vec<String>, progress: Progress, theme: Theme, cores: u32) -> App {
        let mut app = App {
            lessons,
            broken,
            progress,
            cores: cores.max(1),
            theme,
            screen: Screen::List,
            help: false,
            size: (MIN_W, MIN_H),
            list: ListState::default(),
            view: LessonView::default(),
            panel: Panel::default(),
            stash: HashMap::new(),
            compare: None,
            sys: CoreSamples::default(),
            status: None,
            prompt: None,
            now_ns: 0,
            next_run: 1,
            monitor: MonitorRate::Off,
            engine: Default::default(),
            quitting: false,
            baselines: Vec::new(),
            tl: Default::default(),
            replay: None,
            present: false,
        };
        // Resume: select the lesson the learner was last in.
        if let Some((id, _)) = app.progress.last_position()
            && let Some(i) = app.lessons.iter().position(|l| l.id == id)
        {
            app.list.selected = i;
        }
        app
    }

    /// Opens a lesson by id directly (`--lesson ID`); false when there is no such lesson.
    pub(crate) fn open_by_id(&mut self, id: &str) -> Vec<Effect> {
        match self.lessons.iter().position(|l| l.id == id) {
            Some(i) => {
                let mut fx = self.open_lesson(i);
                self.finish_update(&mut fx);
                fx
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn quitting(&self) -> bool {
        self.quitting
    }

    /// Whether anything is running: then `tui` ticks and redraws at a steady rate.
    pub(crate) fn is_live(&self) -> bool {
        self.panel.run.as_ref().is_some_and(|r| r.live)
            || self.compare.as_ref().is_some_and(Compare::live)
            || matches!(self.panel.check, Some(Check::Running { .. }))
    }

    pub(crate) fn too_small(&self) -> bool {
        self.size.0 < MIN_W || self.size.1 < MIN_H
    }

    pub(crate) fn lesson(&self) -> Option<&Lesson> {
        self.lessons.get(self.view.lesson)
    }

    /// The section being read.
    pub(crate) fn section(&self) -> Option<&Section> {
        self.lesson()?.sections.get(self.view.section)
    }

    /// Which of the section's panel blocks the panel shows, and how many there are: (1-based, of).
    pub(crate) fn panel_position(&self) -> Option<(usize, usize)> {
        let setup = self.panel.setup.as_ref()?;
        if setup.section != self.view.section {
            return None;
        }
        let blocks = panel_blocks(self.section()?);
        let i = blocks.iter().position(|b| *b == setup.block)?;
        Some((i + 1, blocks.len()))
    }

    /// The experiment the panel's knobs describe now.
    pub(crate) fn current_experiment(&self) -> Option<Experiment> {
        let s = self.panel.setup.as_ref().filter(|s| s.demo.is_none())?;
        self.on_engine(s.experiment(s.mode, self.cores).ok()?).ok()
    }

    /// An experiment set on the chosen engine (with both chosen, the panel's own runs are native's; `r` and `c`
    /// then run both side by side).
    pub(crate) fn on_engine(&self, exp: Experiment) -> Result<Experiment, String> {
        let mut on = self.engine.apply(std::slice::from_ref(&exp))?;
        Ok(on.swap_remove(0))
    }

    /// The engines for `setup`: the learner's choice (`e`), or, while that is the native engine and python works,
    /// the engines its lesson names (`engines = ["native", "python"]` compares both).
    fn engine_for(&self, setup: &Setup) -> crate::engine::state::EngineState {
        use crate::engine::Choice;
        use crate::experiment::Engine;
        let mut st = self.engine.clone();
        let wants = &setup.knobs.engines;
        if st.choice == Choice::One(Engine::Native) && st.interpreter().is_some() && wants.contains(&Engine::Python) {
            st.choice = if wants.contains(&Engine::Native) { Choice::Both } else { Choice::One(Engine::Python) };
        }
        st
    }

    /// `e`: the next engine, or why the python engine is unavailable.
    fn cycle_engine(&mut self) {
        match self.engine.cycle() {
            Ok(msg) => self.info(msg),
            Err(why) => self.error(why),
        }
    }

    /// When the panel shows a run of another setup than its knobs describe now: how that run differed, in its own
    /// values (["processes", "2 workers"]).
    pub(crate) fn stale_run(&self) -> Option<Vec<String>> {
        let run = self.panel.run.as_ref()?.exp()?;
        let now = self.current_experiment()?;
        let d = differences(run, &now);
        (!d.is_empty()).then_some(d)
    }

    /// Indices of the lessons the search shows, in order.
    pub(crate) fn visible(&self) -> Vec<usize> {
        let q = self.list.query.trim().to_lowercase();
        (0..self.lessons.len())
            .filter(|&i| {
                if q.is_empty() {
                    return true;
                }
                let l = &self.lessons[i];
                l.title.to_lowercase().contains(&q)
                    || l.id.contains(&q)
                    || l.summary.to_lowercase().contains(&q)
                    || l.covers.iter().any(|c| c.to_lowercase().contains(&q))
            })
            .collect()
    }

    pub(crate) fn lesson_mark(&self, i: usize) -> LessonMark {
        self.progress.lesson_mark(&self.lessons[i].id)
    }

    /// The saved resume point, if it names a lesson we have: (lesson index, section).
    pub(crate) fn resume(&self) -> Option<(usize, usize)> {
        let (id, section) = self.progress.last_position()?;
        let i = self.lessons.iter().position(|l| l.id == id)?;
        Some((i, section.min(self.lessons[i].sections.len().saturating_sub(1))))
    }

    /// The wall time a run's speedup is taken from: the median of a repeat it ended, else its own.
    pub(crate) fn wall_for(&self, run: &Run) -> u64 {
        match &self.panel.repeat {
            Some(rep) if self.panel.run.as_ref().is_some_and(|r| r.id == run.id) && run.exp() == Some(&rep.exp) => {
                rep.spread().map_or(run.wall_ns(), |(m, _, _)| m)
            }
            _ => run.wall_ns(),
        }
    }

    /// The speedup of a single run against the last sequential run of the same workload, when one is known.
    pub(crate) fn speedup_of(&self, run: &Run) -> Option<f64> {
        let exp = run.exp()?;
        if !run.succeeded() || exp.mode == Mode::Sequential {
            return None;
        }
        let base = self.baseline(exp)?;
        let wall = self.wall_for(run);
        (wall > 0).then(|| base as f64 / wall as f64)
    }

    fn baseline(&self, exp: &Experiment) -> Option<u64> {
        let key = (exp.workload, exp.tasks, exp.payload);
        self.baselines.iter().rev().find(|(k, _)| *k == key).map(|(_, w)| *w)
    }

    fn remember_baseline(&mut self, key: (Workload, u64, u64), wall_ns: u64) {
        self.baselines.retain(|(k, _)| *k != key);
        self.baselines.push((key, wall_ns));
    }

    /// Quiz number (within the lesson) of the first quiz of section `s`.
    pub(crate) fn quiz_base(lesson: &Lesson, s: usize) -> usize {
        lesson.sections[..s.min(lesson.sections.len())]
            .iter()
            .flat_map(|sec| &sec.blocks)
            .filter(|b| matches!(b, Block::Quiz(_)))
            .count()
    }

    pub(crate) fn hints_shown(&self, exercise: &str) -> usize {
        self.view.hints.get(exercise).copied().unwrap_or(0)
    }

    pub(crate) fn update(&mut self, event: AppEvent) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            AppEvent::Key(key) => self.on_key(key, &mut fx),
            AppEvent::Scroll { up, column } => self.on_scroll(up, column),
            AppEvent::Resize(w, h) => self.size = (w, h),
            AppEvent::Tick(now) => {
                self.now_ns = now;
                self.view_tick(now);
            }
            AppEvent::Cores(v) => {
                self.sys.history.push_back(v.clone());
                while self.sys.history.len() > HISTORY {
                    self.sys.history.pop_front();
                }
                self.sys.latest = v;
            }
            AppEvent::Others(cores) => self.on_others(cores),
            AppEvent::RunCpu { run, per_core_ns, interval_ns, at_ns } => {
                if let Some(r) = self.any_run_mut(run) {
                    r.cpu.add(CpuSample { at_ns, interval_ns, per_core_ns });
                }
            }
            AppEvent::Lab(id, ev) => self.on_lab(id, ev),
            AppEvent::LabExited { run, error, now_ns } => self.on_lab_exit(run, error, now_ns, &mut fx),
            AppEvent::CheckDone { run, result } => self.on_check_done(run, result, &mut fx),
            AppEvent::Signal => self.quit(&mut fx),
            AppEvent::Python(found) => {
                self.engine.python = match found {
                    Ok(py) => crate::engine::state::PythonStatus::Ready(py),
                    Err(why) => crate::engine::state::PythonStatus::Unavailable(why),
                };
            }
        }
        self.finish_update(&mut fx);
        fx
    }

    fn finish_update(&mut self, fx: &mut Vec<Effect>) {
        let want = if self.is_live() {
            MonitorRate::Fast
        } else if self.screen == Screen::List || self.quitting {
            MonitorRate::Off
        } else {
            MonitorRate::Slow
        };
        if want != self.monitor {
            self.monitor = want;
            fx.push(Effect::Monitor(want));
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some((StatusKind::Info, text.into()));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some((StatusKind::Error, text.into()));
    }

    fn quit(&mut self, fx: &mut Vec<Effect>) {
        self.cancel_all(fx);
        self.quitting = true;
        fx.push(Effect::Quit);
    }

    fn cancel_all(&mut self, fx: &mut Vec<Effect>) {
        if let Some(r) = self.panel.run.as_mut().filter(|r| r.live) {
            r.live = false;
            r.cancelled = true;
            fx.push(Effect::Cancel { run: r.id });
        }
        if let Some(rep) = self.panel.repeat.as_mut() {
            rep.stopped = rep.stopped || !rep.done();
        }
        if let Some(c) = self.compare.as_mut() {
            if let Some(r) = c.runs.last_mut().filter(|r| r.live) {
                r.live = false;
                r.cancelled = true;
                fx.push(Effect::Cancel { run: r.id });
            }
            c.cancelled = !c.done() || c.cancelled;
        }
        if let Some(Check::Running { run, .. }) = self.panel.check {
            fx.push(Effect::CancelCheck { run });
            self.panel.check = Some(Check::Failed("cancelled".into()));
        }
    }

    fn on_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        if key == Key::CtrlC {
            return self.quit(fx);
        }
        self.status = None;
        if self.help {
            if matches!(key, Key::Esc | Key::Char('?') | Key::Char('q') | Key::Enter) {
                self.help = false;
            }
            return;
        }
        if self.prompt.is_some() {
            return self.on_prompt_key(key);
        }
        if self.screen == Screen::List && self.list.searching {
            return self.on_search_key(key, fx);
        }
        match key {
            Key::Char('q') => return self.quit(fx),
            Key::Char('?') => {
                self.help = true;
                return;
            }
            Key::Char('t') => {
                let i = Palette::ALL.iter().position(|p| *p == self.theme.palette).unwrap_or(0);
                self.theme.palette = Palette::ALL[(i + 1) % Palette::ALL.len()];
                let name = self.theme.palette.name();
                self.progress.set_theme(name);
                fx.push(Effect::SaveProgress);
                let note = if self.theme.color { "" } else { " (colours are off: NO_COLOR is set)" };
                self.info(format!("theme: {name}{note}; remembered for next time (--theme overrides it)"));
                return;
            }
            _ => {}
        }
        if self.on_view_key(key) {
            return;
        }
        match self.screen {
            Screen::List => self.on_list_key(key, fx),
            Screen::Lesson => self.on_lesson_key(key, fx),
            Screen::Compare => self.on_compare_key(key, fx),
            Screen::Replay => {}
        }
    }

    fn on_prompt_key(&mut self, key: Key) {
        let Some(p) = self.prompt.as_mut() else {
            return;
        };
        match key {
            Key::Char(c) if (c.is_ascii_digit() || c == '.') && p.text.len() < 8 => p.text.push(c),
            Key::Backspace => {
                p.text.pop();
            }
            Key::Esc => self.prompt = None,
            Key::Enter => {
                let text = p.text.clone();
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => {
                        self.prompt = None;
                        let Some(exp) = self.current_experiment() else {
                            return self.error("these knobs do not make a valid experiment: change them first");
                        };
                        let by_check = self.panel.setup.as_ref().is_some_and(|s| s.exercise.is_some());
                        self.panel.prediction = Some(Prediction { value: v, exp, by_check });
                        self.panel.predicted = None;
                        let what = if by_check {
                            "x checks the exercise with these knobs"
                        } else {
                            "r runs this setup (the speedup needs a sequential run of the same workload: c compares)"
                        };
                        self.info(format!("prediction {} noted; {what}", fmt_num(v)));
                    }
                    _ => self.error(format!("'{text}' is not a positive number (type e.g. 1.8, then Enter)")),
                }
            }
            _ => {}
        }
    }

    fn on_search_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        match key {
            Key::Char(c) => {
                self.list.query.push(c);
                self.list.selected = 0;
            }
            Key::Backspace => {
                self.list.query.pop();
                self.list.selected = 0;
            }
            Key::Esc => {
                self.list.searching = false;
                self.list.query.clear();
                self.list.selected = 0;
            }
            Key::Enter => {
                self.list.searching = false;
                self.on_list_key(Key::Enter, fx);
            }
            Key::Up | Key::Down | Key::PageUp | Key::PageDown | Key::Home | Key::End => self.on_list_key(key, fx),
            _ => {}
        }
    }

    fn on_list_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        let n = self.visible().len();
        let sel = &mut self.list.selected;
        match key {
            Key::Up | Key::Char('k') => *sel = sel.saturating_sub(1),
            Key::Down | Key::Char('j') => *sel = (*sel + 1).min(n.saturating_sub(1)),
            Key::PageUp => *sel = sel.saturating_sub(10),
            Key::PageDown => *sel = (*sel + 10).min(n.saturating_sub(1)),
            Key::Home => *sel = 0,
            Key::End => *sel = n.saturating_sub(1),
            Key::Char('/') => {
                self.list.searching = true;
            }
            Key::Esc if !self.list.query.is_empty() => {
                self.list.query.clear();
                self.list.selected = 0;
            }
            Key::Enter | Key::Right => {
                if let Some(&i) = self.visible().get(self.list.selected) {
                    fx.extend(self.open_lesson(i));
                }
            }
            _ => {}
        }
    }

    fn open_lesson(&mut self, i: usize) -> Vec<Effect> {
        let section = match self.resume() {
            Some((l, s)) if l == i => s,
            _ => 0,
        };
        if self.view.lesson != i {
            self.view = LessonView { lesson: i, ..LessonView::default() };
            // Another lesson's blocks share no panels with this one (ids may repeat across lessons).
            self.switch_panel(None);
            self.stash.clear();
        }
        self.screen = Screen::Lesson;
        if let Some(pos) = self.visible().iter().position(|&v| v == i) {
            self.list.selected = pos;
        }
        self.goto_section(section)
    }

    fn goto_section(&mut self, section: usize) -> Vec<Effect> {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return Vec::new();
        };
        let last = lesson.sections.len().saturating_sub(1);
        let section = section.min(last);
        let id = lesson.id.clone();
        let changed = self.view.section != section || self.view.block.is_none();
        self.view.section = section;
        self.view.scroll = 0;
        if changed {
            self.view.block = lesson.sections.get(section).and_then(|s| selectable(s).first().copied());
        }
        self.progress.mark_section(&id, section);
        if section == last {
            self.progress.lesson_done(&id);
        }
        self.pick_setup();
        vec![Effect::SaveProgress]
    }

    /// Chooses what the panel shows: the selected block when it is an experiment or exercise; with a quiz
    /// selected, the section's panel block already shown, else its first; a section without any shows none (never
    /// another section's). Knobs the learner turned are kept per block while they stay in the lesson.
    fn pick_setup(&mut self) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let s = self.view.section;
        let Some(section) = lesson.sections.get(s) else {
            return;
        };
        let setup_of = |b: usize| -> Option<Setup> {
            match section.blocks.get(b)? {
                Block::Exercise(e) => Some(exercise_setup(e, s, b)),
                Block::Experiment(e) => Some(experiment_setup(lesson, s, b, e)),
                _ => None,
            }
        };
        let here = self.panel.setup.as_ref().filter(|p| p.section == s).map(|p| p.block);
        let chosen = self
            .view
            .block
            .and_then(setup_of)
            .or_else(|| here.and_then(setup_of))
            .or_else(|| panel_blocks(section).first().copied().and_then(setup_of));
        self.switch_panel(chosen);
    }

    /// Shows another setup in the panel. The panel it leaves waits in the stash; a live run or a running check
    /// goes on and stays in view; a finished run shown away from its own setup goes back to it.
    fn switch_panel(&mut self, chosen: Option<Setup>) {
        let same = match (&chosen, &self.panel.setup) {
            (Some(a), Some(b)) => a.id == b.id,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        let mut old = std::mem::take(&mut self.panel);
        let carried = old.run.take_if(|r| r.live);
        let repeat = if carried.is_some() { old.repeat.take() } else { None };
        let check = old.check.take_if(|c| matches!(c, Check::Running { .. }));
        let old_id = old.setup.as_ref().map(|s| s.id.clone());
        let away = old.run.take_if(|r| old_id.as_deref() != Some(r.origin.as_str()));
        if let Some(id) = old_id {
            self.stash.insert(id, old);
        }
        let mut panel = match &chosen {
            Some(s) => self.stash.remove(&s.id).unwrap_or_else(|| Panel { setup: chosen.clone(), ..Panel::default() }),
            None => Panel::default(),
        };
        if let Some(r) = away {
            if panel.setup.as_ref().is_some_and(|s| s.id == r.origin) {
                if panel.run.as_ref().is_none_or(|p| p.id < r.id) {
                    panel.run = Some(r);
                }
            } else if let Some(home) = self.stash.get_mut(&r.origin)
                && home.run.as_ref().is_none_or(|p| p.id < r.id)
            {
                home.run = Some(r);
            }
        }
        if let Some(r) = carried {
            panel.run = Some(r);
            panel.repeat = repeat;
        }
        if check.is_some() {
            panel.check = check;
        }
        self.panel = panel;
    }

    /// Tab / Shift-Tab: the next or previous selectable block of the section (round the end).
    fn step_block(&mut self, forward: bool) {
        let Some(section) = self.section() else { return };
        let blocks = selectable(section);
        if blocks.is_empty() {
            return self.info("this section has no experiment, exercise or quiz to select");
        }
        let n = blocks.len();
        let at = self.view.block.and_then(|b| blocks.iter().position(|x| *x == b));
        let next = match (at, forward) {
            (None, true) => 0,
            (None, false) => n - 1,
            (Some(i), true) => (i + 1) % n,
            (Some(i), false) => (i + n - 1) % n,
        };
        let block = blocks[next];
        let what = match &section.blocks[block] {
            Block::Quiz(_) => {
                let quizzes: Vec<usize> = section
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| matches!(b, Block::Quiz(_)))
                    .map(|x| x.0)
                    .collect();
                let k = quizzes.iter().position(|q| *q == block).unwrap_or(0);
                let of = if quizzes.len() > 1 { format!(" {} of {}", k + 1, quizzes.len()) } else { String::new() };
                format!("quiz{of} selected: 1-9 answers it")
            }
            _ => String::new(),
        };
        self.view.block = Some(block);
        self.pick_setup();
        self.scroll_to_block(block);
        if what.is_empty() {
            if let (Some(s), Some((i, of))) = (self.panel.setup.as_ref(), self.panel_position()) {
                let text = format!("{} {i} of {of}: {}", s.kind(), s.id);
                self.info(text);
            }
        } else {
            self.info(what);
        }
    }

    /// Scrolls the prose so the block's first lines are in view.
    fn scroll_to_block(&mut self, block: usize) {
        let Some(range) = crate::ui::lesson::block_range(self, block) else { return };
        let h = crate::ui::lesson::prose_height(self) as usize;
        let top = self.view.scroll as usize;
        let max = crate::ui::lesson::max_scroll(self) as usize;
        let want = if range.start < top {
            range.start.saturating_sub(1)
        } else if range.end > top + h {
            // Its end into view, but never its start out of it.
            (range.end - h).min(range.start.saturating_sub(1))
        } else {
            top
        };
        self.view.scroll = want.min(max) as u16;
    }

    fn on_scroll(&mut self, up: bool, _column: u16) {
        if self.help || self.too_small() {
            return;
        }
        match self.screen {
            Screen::List => {
                let n = self.visible().len();
                let sel = &mut self.list.selected;
                *sel = if up { sel.saturating_sub(1) } else { (*sel + 1).min(n.saturating_sub(1)) };
            }
            Screen::Lesson => self.scroll_by(if up { -3 } else { 3 }),
            Screen::Compare | Screen::Replay => {}
        }
    }

    fn scroll_by(&mut self, delta: i32) {
        let max = crate::ui::lesson::max_scroll(self) as i32;
        self.view.scroll = (self.view.scroll as i32 + delta).clamp(0, max.max(0)) as u16;
    }

    fn on_lesson_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        let page = self.size.1.saturating_sub(8).max(1) as i32;
        match key {
            Key::Up => self.scroll_by(-1),
            Key::Down => self.scroll_by(1),
            Key::PageUp => self.scroll_by(-page),
            Key::PageDown | Key::Char(' ') => self.scroll_by(page),
            Key::Home => self.view.scroll = 0,
            Key::End => self.scroll_by(i32::MAX / 2),
            Key::Tab => self.step_block(true),
            Key::BackTab => self.step_block(false),
            Key::Left if self.view.section > 0 => fx.extend(self.goto_section(self.view.section - 1)),
            Key::Right => {
                let n = self.lesson().map_or(0, |l| l.sections.len());
                if self.view.section + 1 < n {
                    fx.extend(self.goto_section(self.view.section + 1));
                } else {
                    self.info("this is the last section (Esc: back to the lesson list)");
                }
            }
            Key::Esc => {
                let cancelled = self.cancel_runs(fx);
                if !cancelled {
                    self.screen = Screen::List;
                }
            }
            Key::Char('r') => self.run(fx),
            Key::Char('e') => self.cycle_engine(),
            Key::Char('R') => self.repeat(fx),
            Key::Char('c') => self.start_compare(fx),
            Key::Char('x') => self.check(fx),
            Key::Char('h') => self.hint(fx),
            Key::Char('p') => self.predict(),
            Key::Char(c @ '1'..='9') => self.answer(c as usize - '1' as usize, fx),
            Key::Char(c) => self.knob(c),
            _ => {}
        }
    }

    fn on_compare_key(&mut self, key: Key, fx: &mut Vec<Effect>) {
        match key {
            Key::Esc => {
                let cancelled = self.cancel_runs(fx);
                if !cancelled {
                    self.adopt_compare_run();
                    self.screen = Screen::Lesson;
                }
            }
            Key::Char('c') => self.start_compare(fx),
            Key::Char('e') => self.cycle_engine(),
            Key::Char('r') => {
                self.adopt_compare_run();
                self.screen = Screen::Lesson;
                self.run(fx);
            }
            Key::Char(c) if knob_of(c).is_some() => self.knob(c),
            _ => {}
        }
    }

    /// Back from a compare: its run of the panel's current setup becomes the panel's run, so the panel's title,
    /// lanes and figures all describe one run.
    fn adopt_compare_run(&mut self) {
        let Some(exp) = self.current_experiment() else { return };
        let Some(c) = &self.compare else { return };
        let Some(r) = c.runs.iter().rev().find(|r| r.succeeded() && r.exp() == Some(&exp)) else { return };
        if self.panel.run.as_ref().is_none_or(|p| !p.live && p.id < r.id) {
            let mut r = r.clone();
            if let Some(s) = &self.panel.setup {
                r.origin = s.id.clone();
            }
            self.panel.run = Some(r);
            self.panel.repeat = None;
        }
    }

    /// Cancels whatever is running; false when nothing was.
    fn cancel_runs(&mut self, fx: &mut Vec<Effect>) -> bool {
        if !self.is_live() {
            return false;
        }
        self.cancel_all(fx);
        self.info("cancelled: the lab and all its workers were stopped");
        true
    }

    fn busy_message(&self) -> Option<&'static str> {
        if matches!(self.panel.check, Some(Check::Running { .. })) {
            Some("an exercise check is running (Esc cancels it)")
        } else if self.is_live() {
            Some("a run is going (Esc cancels it)")
        } else {
            None
        }
    }

    fn runnable_setup(&mut self) -> Option<Setup> {
        let Some(setup) = self.panel.setup.clone() else {
            self.error("this section has no experiment to run");
            return None;
        };
        if let Some(m) = self.busy_message() {
            self.error(m);
            return None;
        }
        Some(setup)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        id
    }

    fn run(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if let Some(name) = &setup.demo {
            // At its default size, which finishes in a few seconds (`parlab demo NAME --size N` for others).
            match DemoSpec::new(name, None) {
                Ok(demo) => {
                    let id = self.next_id();
                    self.panel.run = Some(Run::new(id, Job::Demo(demo.clone()), &setup.id));
                    fx.push(Effect::StartDemo { run: id, demo });
                }
                Err(e) => self.error(e),
            }
            return;
        }
        if self.engine.choice == crate::engine::Choice::Both {
            // Both engines: the setup's mode on each, side by side in the compare view.
            return self.compare_these(&setup, vec![setup.mode], fx);
        }
        match setup.experiment(setup.mode, self.cores).and_then(|e| self.on_engine(e)) {
            Ok(exp) => {
                self.panel.repeat = None;
                self.start_panel_run(exp, &setup.id, fx);
            }
            Err(e) => self.error(e),
        }
    }

    fn start_panel_run(&mut self, exp: Experiment, origin: &str, fx: &mut Vec<Effect>) {
        let id = self.next_id();
        self.panel.run = Some(Run::new(id, Job::Experiment(exp.clone()), origin));
        fx.push(Effect::Start { run: id, exp });
    }

    /// `R`: the setup `REPEATS` times, one run after another; the panel then shows their median with min and max.
    fn repeat(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if setup.demo.is_some() {
            return self.info("a demo repeats its own measurements: r runs it");
        }
        if self.engine.choice == crate::engine::Choice::Both {
            return self.error("R repeats on one engine: e chooses native or python");
        }
        match setup.experiment(setup.mode, self.cores).and_then(|e| self.on_engine(e)) {
            Ok(exp) => {
                self.panel.repeat =
                    Some(Repeat { exp: exp.clone(), want: REPEATS, walls_ns: Vec::new(), stopped: false });
                self.info(format!("running this setup {REPEATS} times, one after another (Esc cancels)"));
                self.start_panel_run(exp, &setup.id, fx);
            }
            Err(e) => self.error(e),
        }
    }

    /// The modes `c` compares: the lesson's, the current one, and the sequential baseline; 2 to 4 of them.
    pub(crate) fn compare_modes(setup: &Setup) -> Vec<Mode> {
        let mut modes = vec![Mode::Sequential];
        for m in std::iter::once(setup.mode).chain(setup.modes.iter().copied()) {
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
        if modes.len() == 1 {
            modes.extend([Mode::Threads, Mode::Processes]);
        }
        modes.truncate(MAX_COMPARE);
        modes
    }

    fn start_compare(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.runnable_setup() else {
            return;
        };
        if let Some(name) = &setup.demo {
            return self.info(format!("the {name} demo compares its own cases in one run: r runs it"));
        }
        let mut modes = App::compare_modes(&setup);
        if self.engine_for(&setup).choice == crate::engine::Choice::Both {
            // Each mode runs on both engines: half as many modes keep the view at most MAX_COMPARE runs.
            modes.truncate(MAX_COMPARE / 2);
        }
        self.compare_these(&setup, modes, fx);
    }

    /// Compares `modes` of `setup` on the chosen engines (each mode's engines together).
    fn compare_these(&mut self, setup: &Setup, modes: Vec<Mode>, fx: &mut Vec<Effect>) {
        let engines = self.engine_for(setup);
        // A mode the chosen engines cannot run here (dask not installed, ...) is left out, saying why.
        let (modes, left): (Vec<Mode>, Vec<Mode>) = modes.into_iter().partition(|m| engines.offers(*m));
        let why: Vec<String> = left.iter().map(|m| engines.why_not(*m)).collect();
        if modes.is_empty() {
            return self.error(why.join("; "));
        }
        let exps: Result<Vec<Experiment>, String> = modes
            .into_iter()
            .map(|m| setup.experiment(m, self.cores))
            .collect::<Result<Vec<_>, String>>()
            .and_then(|e| engines.apply(&e));
        match exps {
            Ok(exps) => {
                let id = self.next_id();
                let first = exps[0].clone();
                self.compare = Some(Compare {
                    exps,
                    runs: vec![Run::new(id, Job::Experiment(first.clone()), &setup.id)],
                    cancelled: false,
                });
                self.screen = Screen::Compare;
                fx.push(Effect::Start { run: id, exp: first });
                if !why.is_empty() {
                    self.info(format!("left out: {}", why.join("; ")));
                }
            }
            Err(e) => self.error(e),
        }
    }

    fn run_mut(&mut self, id: u64) -> Option<&mut Run> {
        if let Some(r) = self.panel.run.as_mut().filter(|r| r.id == id) {
            return Some(r);
        }
        self.compare.as_mut()?.runs.iter_mut().find(|r| r.id == id)
    }

    /// A run wherever it is now: the panel, the compare, or a panel waiting in the stash.
    fn any_run_mut(&mut self, id: u64) -> Option<&mut Run> {
        let here = self.panel.run.as_ref().is_some_and(|r| r.id == id)
            || self.compare.as_ref().is_some_and(|c| c.runs.iter().any(|r| r.id == id));
        if here {
            return self.run_mut(id);
        }
        self.stash.values_mut().filter_map(|p| p.run.as_mut()).find(|r| r.id == id)
    }

    fn on_others(&mut self, cores: f32) {
        let v = f64::from(cores.max(0.0));
        if let Some(r) = self.panel.run.as_mut().filter(|r| r.live) {
            r.others.0 += v;
            r.others.1 += 1;
        }
        if let Some(r) = self.compare.as_mut().and_then(|c| c.runs.last_mut()).filter(|r| r.live) {
            r.others.0 += v;
            r.others.1 += 1;
        }
    }

    fn on_lab(&mut self, id: u64, ev: LabEvent) {
        if let Some(r) = self.run_mut(id).filter(|r| r.live) {
            // The lab client's watchdog: stopped processes stall the run; say so on the status line.
            let stalled = if let LabEvent::Stalled(msg) = &ev { Some(msg.clone()) } else { None };
            r.ingest(ev);
            if let Some(msg) = stalled {
                self.status = Some((StatusKind::Error, msg));
            }
        }
    }

    fn on_lab_exit(&mut self, id: u64, error: Option<String>, now_ns: u64, fx: &mut Vec<Effect>) {
        let Some(r) = self.run_mut(id).filter(|r| r.live) else {
            return;
        };
        r.live = false;
        let mut error = error;
        if error.is_none()
            && r.demo().is_some()
            && r.timeline.is_finished()
            && r.timeline.demo.is_none()
            && r.error().is_none()
        {
            error = Some("the demo ended without its report".into());
        }
        if !r.timeline.is_finished() || error.is_some() {
            let t0 = r.timeline.t0_ns;
            let msg = error.unwrap_or_else(|| "the lab ended before the run finished".into());
            if let Some(end) = r.timeline.end.as_mut() {
                end.error.get_or_insert(msg);
            } else {
                r.timeline.ingest(LabEvent::Finished(RunEnd {
                    t0_ns: t0,
                    t_end_ns: now_ns.max(t0),
                    checksum: 0,
                    tasks_done: 0,
                    error: Some(msg),
                }));
            }
        }
        // What follows needs a few figures of the run, not a copy of its (possibly huge) timeline.
        let failed = r.error().map(|e| format!("the {} failed: {e}", r.what()));
        let succeeded = r.succeeded();
        let wall = r.wall_ns();
        let exp = r.exp().cloned();
        let origin = r.origin.clone();
        let in_compare = self.compare.as_ref().is_some_and(|c| c.runs.iter().any(|x| x.id == id));
        let in_panel = self.panel.run.as_ref().is_some_and(|r| r.id == id);

        // A repeat goes on with its next run, or ends with the median.
        let mut next_repeat = None;
        if in_panel
            && let Some(rep) = self.panel.repeat.as_mut()
            && exp.as_ref() == Some(&rep.exp)
        {
            if succeeded {
                rep.walls_ns.push(wall);
            } else {
                rep.stopped = true;
            }
            if !rep.stopped && !rep.done() {
                next_repeat = Some(rep.exp.clone());
            }
            if rep.done() && succeeded {
                let n = rep.walls_ns.len();
                self.info(format!("{n} runs of this setup done: the panel shows their median"));
            }
        }
        let repeat_median = self.panel.repeat.as_ref().filter(|_| in_panel).and_then(Repeat::spread).map(|s| s.0);
        if let Some(e) = exp.as_ref().filter(|e| e.mode == Mode::Sequential && succeeded) {
            self.remember_baseline((e.workload, e.tasks, e.payload), repeat_median.unwrap_or(wall));
        }
        if let Some(msg) = failed {
            self.error(msg);
        }
        if let Some(exp) = next_repeat {
            let n = self.panel.repeat.as_ref().map_or(0, |r| r.walls_ns.len());
            self.info(format!("run {} of {REPEATS} of this setup (Esc cancels)", n + 1));
            return self.start_panel_run(exp, &origin, fx);
        }
        if in_compare {
            self.compare_next(fx);
        } else if in_panel
            && self.panel.repeat.as_ref().is_none_or(|r| r.done() && Some(&r.exp) == exp.as_ref())
            && let Some(sp) = self.panel.run.as_ref().and_then(|r| self.speedup_of(r))
            && let Some(exp) = exp
        {
            self.prediction_met(sp, &exp, false);
        }
    }

    fn compare_next(&mut self, fx: &mut Vec<Effect>) {
        let id = self.next_run;
        let Some(c) = self.compare.as_mut() else {
            return;
        };
        if c.cancelled || c.live() {
            return;
        }
        if c.runs.len() < c.exps.len() {
            let exp = c.exps[c.runs.len()].clone();
            let origin = c.runs[0].origin.clone();
            c.runs.push(Run::new(id, Job::Experiment(exp.clone()), &origin));
            self.next_run += 1;
            fx.push(Effect::Start { run: id, exp });
            return;
        }
        // All done: the run of the predicted setup meets a waiting prediction.
        let Some(want) = self.panel.prediction.as_ref().map(|p| p.exp.clone()) else { return };
        let sp = self
            .compare
            .as_ref()
            .and_then(|c| c.runs.iter().position(|r| r.exp() == Some(&want)).and_then(|i| c.speedup(i)));
        if let Some(sp) = sp {
            self.prediction_met(sp, &want, false);
        }
    }

    /// A measurement of `exp`: it meets the waiting prediction only if that was made for this very setup.
    fn prediction_met(&mut self, measured: f64, exp: &Experiment, by_check: bool) {
        if !self.panel.prediction.as_ref().is_some_and(|p| p.exp == *exp && p.by_check == by_check) {
            return;
        }
        let Some(p) = self.panel.prediction.take() else {
            return;
        };
        self.panel.predicted = Some((p.value, measured));
        if let Some(setup) = &self.panel.setup {
            let id = setup.id.clone();
            self.progress.record_prediction(&id, p.value, measured);
        }
    }

    fn check(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.panel.setup.clone() else {
            return self.info("x checks an exercise; this section has none");
        };
        let Some(spec) = setup.exercise.clone() else {
            self.info("x checks an exercise; the selected block is not one (Tab selects another)");
            return;
        };
        if let Some(m) = self.busy_message() {
            return self.error(m);
        }
        let engines = self.engine_for(&setup);
        match setup.experiment(setup.mode, self.cores).and_then(|e| engines.apply(&[e])).map(|mut e| e.swap_remove(0)) {
            Ok(exp) => {
                let id = self.next_id();
                self.panel.check = Some(Check::Running { run: id, exercise: spec.id.clone(), setup: exp.clone() });
                fx.push(Effect::Check { run: id, spec: Box::new(spec), setup: exp });
            }
            Err(e) => self.error(e),
        }
    }

    fn on_check_done(&mut self, run: u64, result: Result<CheckOutcome, String>, fx: &mut Vec<Effect>) {
        let Some(Check::Running { run: r, exercise, setup }) = self.panel.check.clone() else {
            return;
        };
        if r != run {
            return;
        }
        match result {
            Ok(outcome) => {
                self.progress.record_exercise(&exercise, outcome.passed, outcome.measured);
                fx.push(Effect::SaveProgress);
                let measured = outcome.measured;
                let here = self.panel.setup.as_ref().is_some_and(|s| s.id == exercise);
                if here {
                    self.panel.check = Some(Check::Done(outcome));
                    self.prediction_met(measured, &setup, true);
                } else {
                    // The learner moved on: the verdict waits with its exercise.
                    self.panel.check = None;
                    if let Some(p) = self.stash.get_mut(&exercise) {
                        p.check = Some(Check::Done(outcome));
                    }
                    let verdict = if self.progress.exercise_passed(&exercise) { "passed" } else { "not passed yet" };
                    self.info(format!("the check of {exercise} is done: {verdict}"));
                }
            }
            Err(e) => self.panel.check = Some(Check::Failed(e)),
        }
    }

    fn hint(&mut self, fx: &mut Vec<Effect>) {
        let Some(spec) = self.panel.setup.as_ref().and_then(|s| s.exercise.clone()) else {
            self.info("h shows hints of an exercise; the panel shows none (Tab selects another block)");
            return;
        };
        let shown = self.hints_shown(&spec.id);
        if shown >= spec.hints.len() {
            self.info("no more hints");
            return;
        }
        self.view.hints.insert(spec.id.clone(), shown + 1);
        self.progress.hint_used(&spec.id, shown + 1);
        fx.push(Effect::SaveProgress);
    }

    fn predict(&mut self) {
        let Some(setup) = &self.panel.setup else {
            return self.info("nothing to predict here: this section has no experiment");
        };
        if setup.demo.is_some() {
            return self.info("demos measure several things; predictions are for experiments and exercises");
        }
        let label = match setup.exercise.as_ref().map(|e| e.goal.metric) {
            Some(Metric::WallMs) => "predict the wall time in ms",
            Some(Metric::Efficiency) => "predict the efficiency (0..1)",
            Some(Metric::OverheadShare) => "predict the overhead share (0..1)",
            _ => "predict the speedup (×)",
        };
        self.prompt = Some(Prompt { label: label.into(), text: String::new() });
    }

    /// A number key answers the selected quiz; with another block selected, the section's first unanswered quiz,
    /// which becomes the selected one (so the next number re-answers it, and Tab moves to the next quiz).
    fn answer(&mut self, choice: usize, fx: &mut Vec<Effect>) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let Some(section) = lesson.sections.get(self.view.section) else { return };
        let base = App::quiz_base(lesson, self.view.section);
        let quizzes: Vec<(usize, &Quiz)> = section
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| if let Block::Quiz(q) = b { Some((i, q)) } else { None })
            .collect();
        if quizzes.is_empty() {
            return self.info("number keys answer a quiz; this section has none");
        }
        let k = match self.view.block.and_then(|b| quizzes.iter().position(|(i, _)| *i == b)) {
            Some(k) => k,
            None => (0..quizzes.len()).find(|k| !self.view.answers.contains_key(&(base + k))).unwrap_or(0),
        };
        let (block, quiz) = quizzes[k];
        if choice >= quiz.choices.len() {
            return self.error(format!("choose 1 to {}", quiz.choices.len()));
        }
        let correct = choice == quiz.answer;
        let id = lesson.id.clone();
        let n = quizzes.len();
        self.view.answers.insert(base + k, choice);
        self.progress.record_quiz(&id, base + k, choice, correct);
        fx.push(Effect::SaveProgress);
        if self.view.block != Some(block) {
            self.view.block = Some(block);
            self.scroll_to_block(block);
        }
        if n > 1 {
            let verdict = if correct { "right" } else { "not quite" };
            self.info(format!(
                "quiz {} of {n}: {verdict} (a number answers it again; Tab selects the next block)",
                k + 1
            ));
        }
    }

    fn knob(&mut self, c: char) {
        let Some(mut setup) = self.panel.setup.clone() else {
            return;
        };
        let Some(row) = knob_of(c) else { return };
        let knob = row.knob;
        if let Some(name) = &setup.demo {
            return self.info(format!(
                "a demo has no knobs here: r runs {name} at its default size (`parlab demo {name} --size N` for others)"
            ));
        }
        if !setup.may_change(knob) {
            let allowed: Vec<&str> = setup
                .exercise
                .as_ref()
                .map(|e| e.may_change.iter().map(|k| knob_label(*k)).collect())
                .unwrap_or_default();
            return self.error(format!(
                "this exercise fixes the {} (you may change: {})",
                knob_label(knob),
                allowed.join(", ")
            ));
        }
        let cores = self.cores;
        let current = setup.experiment(setup.mode, cores).ok();
        let mode = setup.mode;
        match knob {
            Knob::Mode => {
                // Only the modes the chosen engines run (gil is native's, dask and ray python's when installed).
                let i = MODES.iter().position(|(_, m)| *m == mode).unwrap_or(0);
                setup.mode = (1..=MODES.len())
                    .map(|k| MODES[(i + k) % MODES.len()].1)
                    .find(|m| self.engine.offers(*m))
                    .unwrap_or(mode);
            }
            Knob::Workers => {
                if !mode.uses_workers() {
                    return self.error(format!("{mode} runs on one thread: workers apply to other modes (m)"));
                }
                let w = current.as_ref().map_or(cores, |e| e.workers);
                let w = if c == 'w' { w.saturating_sub(1).max(1) } else { (w + 1).min(MAX_WORKERS.min(64)) };
                setup.knobs.workers = Some(w);
            }
            Knob::Chunksize => {
                if !matches!(mode, Mode::Processes | Mode::Threads) {
                    return self.error("chunksize applies to processes and threads (m changes the mode)");
                }
                let k = current.as_ref().map_or(1, |e| e.chunksize);
                let k = if c == 'k' { (k / 2).max(1) } else { (k * 2).min(setup.tasks) };
                setup.knobs.chunksize = Some(k);
            }
            Knob::Start => {
                if mode != Mode::Processes {
                    return self.error("the start method applies to processes (m changes the mode)");
                }
                let now = current.as_ref().map(|e| e.start);
                let i = START_METHODS.iter().position(|(_, s)| Some(*s) == now).unwrap_or(0);
                setup.knobs.start = Some(START_METHODS[(i + 1) % START_METHODS.len()].1);
            }
            Knob::Warm => {
                if mode != Mode::Processes {
                    return self.error("a warm pool applies to processes (m changes the mode)");
                }
                setup.knobs.warm = !setup.knobs.warm;
            }
            Knob::SwitchInterval => {
                if mode != Mode::Gil {
                    return self.error("the switch interval applies to gil (m changes the mode)");
                }
                let now = current.as_ref().map_or(5_000, |e| e.switch_interval_us);
                let next = INTERVALS_US.iter().copied().find(|v| *v > now).unwrap_or(INTERVALS_US[0]);
                setup.knobs.switch_interval_us = Some(next);
            }
            Knob::Payload => {
                let now = setup.knobs.payload.unwrap_or(0);
                let next = if c == 'b' {
                    PAYLOADS.iter().rev().copied().find(|p| *p < now)
                } else {
                    PAYLOADS.iter().copied().find(|p| *p > now)
                };
                let Some(next) = next else {
                    let end = if c == 'b' { "no payload is the least" } else { "that is the largest payload" };
                    return self.info(end);
                };
                setup.knobs.payload = (next > 0).then_some(next);
            }
            Knob::Size => {
                let up = matches!(c, '+' | '=');
                let w = setup.workload.step_size(up);
                if w == setup.workload {
                    return self.info(format!("{} is as {} as it goes", w, if up { "large" } else { "small" }));
                }
                setup.workload = w;
            }
            Knob::Tasks => {
                let t = if c == 'n' { (setup.tasks / 2).max(1) } else { setup.tasks.saturating_mul(2).min(MAX_TASKS) };
                if t == setup.tasks {
                    return self.info(format!(
                        "{} is as {} as it goes",
                        plural(t, "task"),
                        if c == 'n' { "few" } else { "many" }
                    ));
                }
                setup.tasks = t;
            }
        }
        match setup.experiment(setup.mode, cores) {
            Ok(exp) => {
                let mut msg = knob_message(knob, &exp);
                if self.panel.run.as_ref().is_some_and(|r| !r.live && r.exp().is_some_and(|e| *e != exp)) {
                    msg.push_str(" · the run shown is of the previous setup: r runs this one");
                }
                self.info(msg);
                self.panel.setup = Some(setup);
            }
            Err(e) => self.error(e),
        }
    }
}

fn knob_message(knob: Knob, exp: &Experiment) -> String {
    match knob {
        Knob::Mode => format!("mode {} ({})", exp.mode, exp.mode.python()),
        Knob::Workers => plural(u64::from(exp.workers), "worker"),
        Knob::Chunksize => format!("chunksize {}", exp.chunksize),
        Knob::Start => format!("start method {}", exp.start),
        Knob::Warm if exp.warm => "warm pool: the workers start before the clock".into(),
        Knob::Warm => "cold pool: starting the workers is part of the measured time".into(),
        Knob::SwitchInterval => format!("switch interval {}", format_interval_us(exp.switch_interval_us)),
        Knob::Payload if exp.payload == 0 => "no payload".into(),
        Knob::Payload => format!("payload {} per task, there and back", format_bytes(exp.payload)),
        Knob::Size => format!("workload {}", exp.workload),
        Knob::Tasks => plural(exp.tasks, "task"),
    }
}

pub(crate) fn knob_label(k: Knob) -> &'static str {
    match k {
        Knob::Mode => "mode",
        Knob::Workers => "workers",
        Knob::Chunksize => "chunksize",
        Knob::Start => "start method",
        Knob::SwitchInterval => "switch interval",
        Knob::Payload => "payload",
        Knob::Warm => "warm",
        Knob::Size => "workload size",
        Knob::Tasks => "tasks",
    }
}

fn experiment_setup(lesson: &Lesson, section: usize, block: usize, e: &crate::lesson::ExperimentSpec) -> Setup {
    let id = e.id.clone().unwrap_or_else(|| format!("{}#{section}.{block}", lesson.id));
    match &e.kind {
        ExperimentKind::Run { workload, tasks, modes, knobs } => Setup {
            id,
            section,
            block,
            workload: *workload,
            tasks: *tasks,
            mode: modes.first().copied().unwrap_or(Mode::Sequential),
            modes: modes.clone(),
            knobs: knobs.clone(),
            note: e.note.clone(),
            demo: None,
            exercise: None,
        },
        ExperimentKind::Demo(name) => Setup {
            id,
            section,
            block,
            workload: Workload::Tiny,
            tasks: 1,
            mode: Mode::Sequential,
            modes: Vec::new(),
            knobs: Knobs::default(),
            note: e.note.clone(),
            demo: Some(name.clone()),
            exercise: None,
        },
    }
}

fn exercise_setup(e: &ExerciseSpec, section: usize, block: usize) -> Setup {
    let mut modes = vec![e.baseline];
    if !modes.contains(&e.mode) {
        modes.push(e.mode);
    }
    Setup {
        id: e.id.clone(),
        section,
        block,
        workload: e.workload,
        tasks: e.tasks,
        mode: e.mode,
        modes,
        knobs: e.knobs.clone(),
        note: None,
        demo: None,
        exercise: Some(e.clone()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lesson::{ExperimentSpec, Goal, Op, Section, Solution};
    use crate::timeline::{Lane, Span, SpanKind};

    pub(crate) fn quiz() -> Quiz {
        Quiz {
            question: "Two CPU-bound threads under the GIL on 2 cores: how much faster than one?".into(),
            choices: vec!["2x".into(), "About the same".into(), "Half as fast".into()],
            answer: 1,
            why: "Only the thread holding the GIL runs bytecode.".into(),
        }
    }

    pub(crate) fn exercise() -> ExerciseSpec {
        ExerciseSpec {
            id: "beat-the-gil".into(),
            title: "Beat the GIL on CPU work".into(),
            workload: "fib:20".parse().unwrap(),
            tasks: 8,
            baseline: Mode::Sequential,
            mode: Mode::Gil,
            knobs: Knobs { workers: Some(2), ..Knobs::default() },
            may_change: vec![Knob::Mode, Knob::Workers],
            goal: Goal {
                metric: Metric::Speedup,
                op: Op::AtLeast,
                value: 0.75,
                per_core: true,
                text: "speedup >= 0.75 * cores".into(),
            },
            hints: vec!["Which mode is not bound by the GIL?".into(), "Processes each have their own GIL.".into()],
            explain: "Each process has its own interpreter and GIL.".into(),
            python: None,
            solution: Box::new(Solution { mode: Some(Mode::Processes), ..Solution::default() }),
        }
    }

    /// Two synthetic lessons: one with prose, code, an experiment and a quiz; one with an exercise.
    pub(crate) fn lessons() -> Vec<Lesson> {
        let gil = Lesson {
            id: "gil".into(),
            title: "The GIL: why threads don't speed up Python".into(),
            minutes: 12,
            summary: "One lock, many threads: measured.".into(),
            covers: vec!["GIL".into(), "switch interval".into()],
            path: "lessons/03-the-gil.md".into(),
            sections: vec![
                Section {
                    title: "The GIL: why threads don't speed up Python".into(),
                    blocks: vec![Block::Markdown(
                        "CPython lets **one thread** run Python bytecode at a time. This lesson shows *why*.\n\n\
                         - threads share one lock\n- processes each have their own\n"
                            .into(),
                    )],
                },
                Section {
                    title: "Two threads, one lock".into(),
                    blocks: vec![
                        Block::Markdown(
                            "## Two threads, one lock\n\nEvery 5 ms a waiting thread asks for the lock with \
                             a `drop request`.\n\n| mode | speedup |\n|---|---|\n| threads | 1.9x |\n| gil | 1.0x |\n"
                                .into(),
                        ),
                        Block::Code {
                            lang: "python".into(),
                            text: "with ThreadPoolExecutor(2) as pool:\n    pool.map(fib, [32] * 8)\n".into(),
                            runnable: false,
                        },
                        Block::Experiment(ExperimentSpec {
                            id: Some("gil-threads".into()),
                            kind: ExperimentKind::Run {
                                workload: "fib:20".parse().unwrap(),
                                tasks: 8,
                                modes: vec![Mode::Gil, Mode::Threads, Mode::Sequential],
                                knobs: Knobs { workers: Some(2), ..Knobs::default() },
                            },
                            expect: Vec::new(),
                            note: Some("Watch the gil lanes take turns.".into()),
                        }),
                        Block::Quiz(quiz()),
                    ],
                },
            ],
        };
        let procs = Lesson {
            id: "multiprocessing".into(),
            title: "Multiprocessing".into(),
            minutes: 15,
            summary: "Worker processes, their start-up and their messages.".into(),
            covers: vec!["Pool".into()],
            path: "lessons/04-multiprocessing.md".into(),
            sections: vec![Section {
                title: "Beat the GIL".into(),
                blocks: vec![Block::Markdown("Make it faster.".into()), Block::Exercise(exercise())],
            }],
        };
        vec![gil, procs]
    }

    /// Fresh progress that is never saved (the folder is gone before the test uses it).
    pub(crate) fn progress() -> Progress {
        let dir = tempfile::tempdir().unwrap();
        let (p, warning) = Progress::load_from(dir.path());
        assert_eq!(warning, None);
        p
    }

    pub(crate) fn app() -> App {
        let mut app = App::new(lessons(), Vec::new(), progress(), Theme::plain(false), 2);
        app.update(AppEvent::Resize(100, 30));
        app
    }

    /// The app with a third lesson whose experiment is the `cow` demo, opened.
    pub(crate) fn app_on_a_demo() -> App {
        let mut app = app();
        app.lessons.push(Lesson {
            id: "start-methods".into(),
            title: "Start methods".into(),
            minutes: 10,
            summary: "spawn, fork, forkserver.".into(),
            covers: vec!["copy-on-write".into()],
            path: "lessons/05-start-methods.md".into(),
            sections: vec![Section {
                title: "Copy-on-write".into(),
                blocks: vec![
                    Block::Markdown("A forked child shares its parent's pages until it writes.".into()),
                    Block::Experiment(ExperimentSpec {
                        id: Some("cow".into()),
                        kind: ExperimentKind::Demo("cow".into()),
                        expect: Vec::new(),
                        note: Some("Only written pages are copied.".into()),
                    }),
                ],
            }],
        });
        key(&mut app, Key::End);
        key(&mut app, Key::Enter);
        assert_eq!(app.panel.setup.as_ref().unwrap().demo.as_deref(), Some("cow"));
        app
    }

    /// Feeds a demo's lanes (a parent and three forked children) and spans; with `report`, its report and the end.
    pub(crate) fn feed_demo(app: &mut App, id: u64, report: bool) {
        let ms = 1_000_000;
        let t0 = 2_000 * ms;
        let ev = |app: &mut App, e: LabEvent| {
            app.update(AppEvent::Lab(id, e));
        };
        ev(app, LabEvent::Started { lab_pid: 700, t0_ns: t0, cores: 2 });
        let lanes = ["parent", "child does nothing", "child reads all 64 MiB", "child writes 1 byte per page"];
        for (i, label) in lanes.iter().enumerate() {
            let i = i as u32;
            let pid = 700 + i * 11;
            ev(app, LabEvent::Lane(Lane { id: i, pid, tid: pid, label: label.to_string() }));
            let (a, b) = if i == 0 { (0, 30) } else { (30 + 20 * u64::from(i - 1), 45 + 20 * u64::from(i - 1)) };
            if i > 0 {
                let sp = Span {
                    lane: i,
                    task: 0,
                    count: 0,
                    kind: SpanKind::Startup,
                    start_ns: t0 + a * ms,
                    end_ns: t0 + (a + 1) * ms,
                    cpu_start: 1,
                    cpu_end: 1,
                };
                ev(app, LabEvent::Span(sp));
            }
            let sp = Span {
                lane: i,
                task: 0,
                count: 0,
                kind: SpanKind::Run,
                start_ns: t0 + (a + u64::from(i > 0)) * ms,
                end_ns: t0 + b * ms,
                cpu_start: (i % 2) as i32,
                cpu_end: (i % 2) as i32,
            };
            ev(app, LabEvent::Span(sp));
        }
        app.update(AppEvent::Tick(t0 + 60 * ms));
        if !report {
            return;
        }
        let row = |a: &str, b: &str, c: &str, d: &str| vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()];
        ev(
            app,
            LabEvent::Demo(crate::timeline::DemoReport {
                name: "cow".into(),
                title: "copy-on-write after fork, 64 MiB".into(),
                columns: vec!["child".into(), "minor faults".into(), "time".into(), "private memory".into()],
                rows: vec![
                    row("does nothing", "12 faults", "0.01 ms", "0.1 MiB"),
                    row("reads all 64 MiB", "16,390 faults", "14.2 ms", "0.2 MiB"),
                    row("writes 1 byte per page", "16,402 faults", "21.7 ms", "64.1 MiB"),
                ],
                reading: "Reading shared pages copies nothing; each written page is copied once, so the writer \
                          ends up with its own 64 MiB."
                    .into(),
                figures: Vec::new(),
            }),
        );
        ev(
            app,
            LabEvent::Finished(RunEnd { t0_ns: t0, t_end_ns: t0 + 66 * ms, checksum: 0, tasks_done: 0, error: None }),
        );
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: t0 + 66 * ms });
    }

    fn started_demo(fx: &[Effect]) -> Option<(u64, DemoSpec)> {
        fx.iter().find_map(|e| match e {
            Effect::StartDemo { run, demo } => Some((*run, demo.clone())),
            _ => None,
        })
    }

    fn key(app: &mut App, k: Key) -> Vec<Effect> {
        app.update(AppEvent::Key(k))
    }

    fn ch(app: &mut App, c: char) -> Vec<Effect> {
        key(app, Key::Char(c))
    }

    fn started(fx: &[Effect]) -> Vec<(u64, Experiment)> {
        fx.iter()
            .filter_map(|e| if let Effect::Start { run, exp } = e { Some((*run, exp.clone())) } else { None })
            .collect()
    }

    pub(crate) fn outcome(passed: bool, measured: f64) -> CheckOutcome {
        CheckOutcome {
            passed,
            measured,
            threshold: 1.5,
            summary: format!("speedup {measured:.2}× against a threshold of 1.50×"),
            details: vec!["sequential 200 ms, your setup 105 ms (median of 3)".into()],
            metric: Metric::Speedup,
            higher_is_better: true,
            cores: 2,
            baseline_ms: 200.0,
            setup_ms: 105.0,
            reps: 3,
        }
    }

    /// Feeds a finished two-lane run to the app.
    pub(crate) fn feed_run(app: &mut App, id: u64, wall_ms: u64) {
        let ms = 1_000_000;
        app.update(AppEvent::Lab(id, LabEvent::Started { lab_pid: 500, t0_ns: 0, cores: 2 }));
        for lane in 0..2u32 {
            app.update(AppEvent::Lab(
                id,
                LabEvent::Lane(Lane { id: lane, pid: 500, tid: 501 + lane, label: format!("t{}", lane + 1) }),
            ));
            app.update(AppEvent::Lab(
                id,
                LabEvent::Span(Span {
                    lane,
                    task: lane as u64,
                    count: 4,
                    kind: SpanKind::Run,
                    start_ns: 0,
                    end_ns: wall_ms * ms,
                    cpu_start: lane as i32,
                    cpu_end: lane as i32,
                }),
            ));
        }
        app.update(AppEvent::Lab(
            id,
            LabEvent::Finished(RunEnd { t0_ns: 0, t_end_ns: wall_ms * ms, checksum: 9, tasks_done: 8, error: None }),
        ));
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: wall_ms * ms });
    }

    #[test]
    fn enter_opens_the_selected_lesson_and_marks_the_section() {
        let mut app = app();
        assert_eq!(app.screen, Screen::List);
        let fx = key(&mut app, Key::Enter);
        assert_eq!(app.screen, Screen::Lesson);
        assert!(fx.contains(&Effect::SaveProgress));
        assert_eq!(app.progress.lesson_mark("gil"), LessonMark::Started);
        // The introduction has no experiment: the panel shows none, not another section's.
        assert!(app.panel.setup.is_none());
        assert!(fx.contains(&Effect::Monitor(MonitorRate::Slow)));
        key(&mut app, Key::Right);
        assert_eq!(app.panel.setup.as_ref().unwrap().id, "gil-threads");
    }

    #[test]
    fn arrows_step_through_sections_and_the_last_one_completes_the_lesson() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        assert_eq!(app.view.section, 1);
        assert_eq!(app.progress.lesson_mark("gil"), LessonMark::Done);
        key(&mut app, Key::Right);
        assert_eq!(app.view.section, 1, "no section after the last");
        key(&mut app, Key::Left);
        assert_eq!(app.view.section, 0);
        key(&mut app, Key::Esc);
        assert_eq!(app.screen, Screen::List);
    }

    #[test]
    fn search_filters_the_list_and_typing_q_does_not_quit() {
        let mut app = app();
        ch(&mut app, '/');
        for c in "multiq".chars() {
            assert!(!ch(&mut app, c).contains(&Effect::Quit));
        }
        assert!(app.visible().is_empty());
        key(&mut app, Key::Backspace);
        assert_eq!(app.visible(), vec![1]);
        key(&mut app, Key::Enter);
        assert_eq!(app.screen, Screen::Lesson);
        assert_eq!(app.view.lesson, 1);
    }

    #[test]
    fn r_starts_a_run_whose_events_build_the_timeline() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let fx = ch(&mut app, 'r');
        let runs = started(&fx);
        assert_eq!(runs.len(), 1);
        let (id, exp) = &runs[0];
        assert_eq!(exp.mode, Mode::Gil);
        assert_eq!(exp.workers, 2);
        assert!(app.is_live());
        assert!(fx.contains(&Effect::Monitor(MonitorRate::Fast)));
        // A second r while live is refused, not queued.
        assert!(started(&ch(&mut app, 'r')).is_empty());
        assert!(app.status.as_ref().unwrap().1.contains("Esc cancels"));
        feed_run(&mut app, *id, 100);
        let run = app.panel.run.as_ref().unwrap();
        assert!(run.succeeded());
        assert_eq!(run.timeline.lanes.len(), 2);
        assert!(!app.is_live());
        assert_eq!(app.speedup_of(run), None, "no sequential baseline yet");
    }

    #[test]
    fn a_stalled_run_is_shown_on_the_status_line_and_goes_on() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        app.update(AppEvent::Lab(id, LabEvent::Stalled("the lab 7 is stopped".into())));
        assert_eq!(app.status, Some((StatusKind::Error, "the lab 7 is stopped".to_string())));
        assert!(app.is_live(), "the run goes on when the process is continued");
    }

    #[test]
    fn esc_cancels_a_live_run_and_late_events_are_ignored() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        let fx = key(&mut app, Key::Esc);
        assert!(fx.contains(&Effect::Cancel { run: id }));
        assert_eq!(app.screen, Screen::Lesson, "the first Esc only cancels");
        assert!(!app.is_live());
        app.update(AppEvent::Lab(id, LabEvent::Note("late".into())));
        assert!(app.panel.run.as_ref().unwrap().timeline.notes.is_empty());
        assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("cancelled"));
    }

    #[test]
    fn knobs_change_the_next_run_and_respect_the_mode() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        ch(&mut app, 'W');
        ch(&mut app, 'i');
        ch(&mut app, '+');
        let setup = app.panel.setup.clone().unwrap();
        assert_eq!(setup.knobs.workers, Some(3));
        assert_eq!(setup.knobs.switch_interval_us, Some(10_000));
        assert_eq!(setup.workload.to_string(), "fib:21");
        ch(&mut app, 's');
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error, "start method needs processes");
        ch(&mut app, 'm');
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Processes);
        ch(&mut app, 's');
        let (_, exp) = started(&ch(&mut app, 'r'))[0].clone();
        assert_eq!(exp.mode, Mode::Processes);
        assert_eq!(exp.start, crate::experiment::StartMethod::Fork);
        assert_eq!(exp.workers, 3);
    }

    #[test]
    fn compare_runs_modes_one_after_another_with_a_sequential_baseline() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let fx = ch(&mut app, 'c');
        assert_eq!(app.screen, Screen::Compare);
        let first = started(&fx);
        assert_eq!(first.len(), 1, "one run at a time");
        assert_eq!(first[0].1.mode, Mode::Sequential);
        let c = app.compare.as_ref().unwrap();
        let modes: Vec<Mode> = c.exps.iter().map(|e| e.mode).collect();
        assert_eq!(modes, vec![Mode::Sequential, Mode::Gil, Mode::Threads]);
        let mut id = first[0].0;
        for (i, wall) in [(0, 200), (1, 190), (2, 100)] {
            let _ = i;
            feed_run(&mut app, id, wall);
            let next = app.compare.as_ref().unwrap().runs.last().unwrap().clone();
            if next.live {
                id = next.id;
            }
        }
        let c = app.compare.as_ref().unwrap();
        assert!(c.done());
        assert_eq!(c.runs.len(), 3);
        let sp = c.speedup(2).unwrap();
        assert!((sp - 2.0).abs() < 1e-9);
        // The sequential run is now the baseline for single runs of the same workload.
        key(&mut app, Key::Esc);
        assert_eq!(app.screen, Screen::Lesson);
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        feed_run(&mut app, id, 50);
        let run = app.panel.run.clone().unwrap();
        assert!((app.speedup_of(&run).unwrap() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_lab_that_dies_early_shows_as_a_failed_run_and_the_next_run_works() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        app.update(AppEvent::LabExited { run: id, error: Some("worker killed (signal 9)".into()), now_ns: 5 });
        let run = app.panel.run.as_ref().unwrap();
        assert_eq!(run.error(), Some("worker killed (signal 9)"));
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error);
        assert_eq!(started(&ch(&mut app, 'r')).len(), 1);
    }

    #[test]
    fn r_runs_a_demo_in_a_lab_and_keeps_its_report() {
        let mut app = app_on_a_demo();
        let fx = ch(&mut app, 'r');
        let (id, demo) = started_demo(&fx).expect("r starts the demo in a lab");
        assert!(started(&fx).is_empty(), "a demo is not an experiment run");
        assert_eq!(demo, DemoSpec::new("cow", None).unwrap());
        assert!(app.is_live());
        assert!(fx.contains(&Effect::Monitor(MonitorRate::Fast)));
        // While it runs: no second run, no compare, no knobs.
        assert!(started_demo(&ch(&mut app, 'r')).is_none());
        assert!(app.status.as_ref().unwrap().1.contains("Esc cancels"));
        feed_demo(&mut app, id, false);
        let run = app.panel.run.as_ref().unwrap();
        assert_eq!(run.timeline.lanes.len(), 4, "lanes stream in while it runs");
        assert!(run.live);
        feed_demo(&mut app, id, true);
        let run = app.panel.run.as_ref().unwrap();
        assert!(run.succeeded(), "{:?}", run.error());
        assert_eq!(run.timeline.demo.as_ref().unwrap().rows.len(), 3);
        assert!(!app.is_live());
        assert_eq!(app.speedup_of(run), None);
        assert!(ch(&mut app, 'c').is_empty());
        assert!(app.status.as_ref().unwrap().1.contains("r runs it"));
        ch(&mut app, '+');
        assert!(app.status.as_ref().unwrap().1.contains("--size"));
        // And it runs again.
        assert!(started_demo(&ch(&mut app, 'r')).is_some());
    }

    #[test]
    fn a_demo_that_ends_in_another_section_is_shown_back_in_its_own() {
        let mut app = app_on_a_demo();
        let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
        // A second section with an experiment: the learner moves on while the demo runs, and back once it ended.
        app.lessons[2].sections.push(Section {
            title: "After".into(),
            blocks: vec![Block::Experiment(ExperimentSpec {
                id: Some("after".into()),
                kind: ExperimentKind::Run {
                    workload: "fib:20".parse().unwrap(),
                    tasks: 4,
                    modes: vec![Mode::Threads],
                    knobs: Knobs::default(),
                },
                expect: Vec::new(),
                note: None,
            })],
        });
        key(&mut app, Key::Right);
        assert_eq!(app.panel.setup.as_ref().unwrap().id, "after");
        assert!(app.panel.run.as_ref().is_some_and(|r| r.live), "the live demo goes on");
        feed_demo(&mut app, id, true);
        key(&mut app, Key::Left);
        let run = app.panel.run.as_ref().expect("the demo's run is back with its section");
        assert!(run.timeline.demo.is_some());
        key(&mut app, Key::Right);
        assert!(app.panel.run.is_none(), "a finished demo is not carried to another experiment");
    }

    #[test]
    fn esc_cancels_a_live_demo_and_a_demo_without_its_report_fails() {
        let mut app = app_on_a_demo();
        let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
        feed_demo(&mut app, id, false);
        let fx = key(&mut app, Key::Esc);
        assert!(fx.contains(&Effect::Cancel { run: id }));
        assert_eq!(app.screen, Screen::Lesson, "the first Esc only cancels");
        assert!(!app.is_live());
        assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("cancelled"));
        feed_demo(&mut app, id, true);
        assert!(app.panel.run.as_ref().unwrap().timeline.demo.is_none(), "late events are ignored");

        let (id, _) = started_demo(&ch(&mut app, 'r')).unwrap();
        app.update(AppEvent::Lab(
            id,
            LabEvent::Finished(RunEnd { t0_ns: 1, t_end_ns: 2, checksum: 0, tasks_done: 0, error: None }),
        ));
        app.update(AppEvent::LabExited { run: id, error: None, now_ns: 3 });
        assert_eq!(app.panel.run.as_ref().unwrap().error(), Some("the demo ended without its report"));
        let (kind, msg) = app.status.clone().unwrap();
        assert_eq!(kind, StatusKind::Error);
        assert!(msg.contains("the cow demo failed"), "{msg}");
    }

    #[test]
    fn quiz_answers_are_recorded_with_their_correctness() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let fx = ch(&mut app, '1');
        assert!(fx.contains(&Effect::SaveProgress));
        assert_eq!(app.view.answers.get(&0), Some(&0));
        ch(&mut app, '2');
        assert_eq!(app.view.answers.get(&0), Some(&1), "the learner may answer again");
        ch(&mut app, '7');
        assert_eq!(app.status.as_ref().unwrap().1, "choose 1 to 3");
    }

    #[test]
    fn exercises_limit_knobs_reveal_hints_and_check_in_the_background() {
        let mut app = app();
        key(&mut app, Key::Down);
        key(&mut app, Key::Enter);
        assert_eq!(app.panel.setup.as_ref().unwrap().id, "beat-the-gil");
        ch(&mut app, '+');
        assert!(app.status.as_ref().unwrap().1.contains("fixes the workload size"));
        ch(&mut app, 'h');
        ch(&mut app, 'h');
        ch(&mut app, 'h');
        assert_eq!(app.hints_shown("beat-the-gil"), 2);
        ch(&mut app, 'm');
        ch(&mut app, 'p');
        for c in "1.8".chars() {
            ch(&mut app, c);
        }
        key(&mut app, Key::Enter);
        assert_eq!(app.panel.prediction.as_ref().map(|p| p.value), Some(1.8));
        let fx = ch(&mut app, 'x');
        let Some(Effect::Check { run, setup, .. }) = fx.iter().find(|e| matches!(e, Effect::Check { .. })).cloned()
        else {
            panic!("x must start a check: {fx:?}")
        };
        assert_eq!(setup.mode, Mode::Processes);
        assert!(app.is_live());
        let outcome = outcome(true, 1.9);
        let fx = app.update(AppEvent::CheckDone { run, result: Ok(outcome) });
        assert!(fx.contains(&Effect::SaveProgress));
        assert!(app.progress.exercise_passed("beat-the-gil"));
        assert_eq!(app.panel.predicted, Some((1.8, 1.9)));
    }

    #[test]
    fn quit_cancels_live_runs_and_signals_quit() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        let fx = app.update(AppEvent::Signal);
        assert!(fx.contains(&Effect::Cancel { run: id }));
        assert!(fx.contains(&Effect::Quit));
        assert!(app.quitting());
        let mut app2 = self::app();
        assert!(app2.update(AppEvent::Key(Key::CtrlC)).contains(&Effect::Quit));
    }

    #[test]
    fn help_opens_and_closes_and_swallows_other_keys() {
        let mut app = app();
        ch(&mut app, '?');
        assert!(app.help);
        assert!(!ch(&mut app, 'r').iter().any(|e| matches!(e, Effect::Start { .. })));
        key(&mut app, Key::Esc);
        assert!(!app.help);
    }

    #[test]
    fn compare_modes_are_two_to_four_with_sequential_first() {
        let app = app();
        let mut setup = experiment_setup(
            &app.lessons[0],
            1,
            2,
            match &app.lessons[0].sections[1].blocks[2] {
                Block::Experiment(e) => e,
                _ => unreachable!(),
            },
        );
        setup.modes = vec![Mode::Sequential];
        setup.mode = Mode::Sequential;
        assert_eq!(App::compare_modes(&setup), vec![Mode::Sequential, Mode::Threads, Mode::Processes]);
        setup.modes = MODES.iter().map(|m| m.1).collect();
        assert_eq!(App::compare_modes(&setup).len(), MAX_COMPARE);
    }
}

/// Tests of block stepping, per-block panels, quizzes, knob keys, repeats, stale runs and predictions.
#[cfg(test)]
pub(crate) mod block_tests {
    use super::tests::{feed_run, outcome, progress, quiz};
    use super::*;
    use crate::lesson::{ExperimentSpec, Section};

    fn experiment(id: Option<&str>, workload: &str, modes: Vec<Mode>) -> Block {
        Block::Experiment(ExperimentSpec {
            id: id.map(String::from),
            kind: ExperimentKind::Run {
                workload: workload.parse().unwrap(),
                tasks: 8,
                modes,
                knobs: Knobs { workers: Some(2), ..Knobs::default() },
            },
            expect: Vec::new(),
            note: Some(format!("note of {}", id.unwrap_or("the second"))),
        })
    }

    /// A lesson whose second section has two experiments (one without an id), two quizzes and an exercise, between
    /// two sections of prose only.
    fn blocks_lesson() -> Lesson {
        let mut ex = super::tests::exercise();
        ex.id = "warm-it".into();
        ex.mode = Mode::Processes;
        ex.may_change = vec![Knob::Warm, Knob::Payload, Knob::Tasks];
        let mut q2 = quiz();
        q2.question = "Second question?".into();
        q2.answer = 0;
        Lesson {
            id: "blocks".into(),
            title: "Blocks".into(),
            minutes: 5,
            summary: "Many blocks in one section.".into(),
            covers: vec!["tab".into()],
            path: "lessons/99-blocks.md".into(),
            sections: vec![
                Section { title: "Blocks".into(), blocks: vec![Block::Markdown("Intro.".into())] },
                Section {
                    title: "See it live".into(),
                    blocks: vec![
                        Block::Markdown("First the waits.".into()),
                        experiment(Some("waits"), "sleep:100", vec![Mode::Sequential, Mode::Threads]),
                        Block::Markdown("Then the work.".into()),
                        experiment(None, "fib:20", vec![Mode::Threads, Mode::Sequential]),
                        Block::Quiz(quiz()),
                        Block::Quiz(q2),
                        Block::Exercise(ex),
                    ],
                },
                Section { title: "Summing up".into(), blocks: vec![Block::Markdown("Done.".into())] },
            ],
        }
    }

    /// The app on the blocks lesson's second section.
    pub(crate) fn on_blocks() -> App {
        let mut app = App::new(vec![blocks_lesson()], Vec::new(), progress(), Theme::plain(false), 2);
        app.update(AppEvent::Resize(100, 30));
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        app
    }

    fn key(app: &mut App, k: Key) -> Vec<Effect> {
        app.update(AppEvent::Key(k))
    }

    fn ch(app: &mut App, c: char) -> Vec<Effect> {
        key(app, Key::Char(c))
    }

    fn started(fx: &[Effect]) -> Option<(u64, Experiment)> {
        fx.iter().find_map(|e| if let Effect::Start { run, exp } = e { Some((*run, exp.clone())) } else { None })
    }

    fn panel_id(app: &App) -> Option<String> {
        app.panel.setup.as_ref().map(|s| s.id.clone())
    }

    #[test]
    fn tab_steps_through_every_block_of_a_section_and_the_panel_shows_each_experiment() {
        let mut app = on_blocks();
        assert_eq!(app.view.block, Some(1), "the section opens on its first block");
        assert_eq!(panel_id(&app).as_deref(), Some("waits"));
        assert_eq!(app.panel_position(), Some((1, 3)));
        key(&mut app, Key::Tab);
        assert_eq!(panel_id(&app).as_deref(), Some("blocks#1.3"), "the second experiment, which has no id");
        assert_eq!(app.panel_position(), Some((2, 3)));
        assert_eq!(app.status.as_ref().unwrap().1, "experiment 2 of 3: blocks#1.3");
        // A quiz is selected in the prose; the panel keeps the experiment it showed.
        key(&mut app, Key::Tab);
        assert_eq!(app.view.block, Some(4));
        assert_eq!(panel_id(&app).as_deref(), Some("blocks#1.3"));
        key(&mut app, Key::Tab);
        assert_eq!(app.view.block, Some(5));
        key(&mut app, Key::Tab);
        assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
        assert_eq!(app.panel_position(), Some((3, 3)));
        // Round the end, and back.
        key(&mut app, Key::Tab);
        assert_eq!(panel_id(&app).as_deref(), Some("waits"));
        key(&mut app, Key::BackTab);
        assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
    }

    #[test]
    fn a_section_without_an_experiment_shows_none_of_another_sections() {
        let mut app = on_blocks();
        key(&mut app, Key::Right);
        assert_eq!(app.view.section, 2);
        assert!(app.panel.setup.is_none(), "no experiment and no note of section 2");
        key(&mut app, Key::Tab);
        assert!(app.status.as_ref().unwrap().1.contains("no experiment, exercise or quiz"));
        assert!(ch(&mut app, 'r').is_empty());
        assert_eq!(app.status.as_ref().unwrap().1, "this section has no experiment to run");
    }

    #[test]
    fn a_live_run_stays_in_view_in_a_section_without_an_experiment() {
        let mut app = on_blocks();
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        key(&mut app, Key::Right);
        assert!(app.panel.setup.is_none());
        assert!(app.panel.run.as_ref().is_some_and(|r| r.id == id && r.live), "the run goes on and is shown");
        assert!(key(&mut app, Key::Esc).contains(&Effect::Cancel { run: id }), "and Esc still cancels it");
    }

    #[test]
    fn each_block_keeps_its_knobs_and_its_last_run_while_another_is_shown() {
        let mut app = on_blocks();
        ch(&mut app, 'm');
        let (id, exp) = started(&ch(&mut app, 'r')).unwrap();
        assert_eq!(exp.workload.to_string(), "sleep:100");
        feed_run(&mut app, id, 50);
        key(&mut app, Key::Tab);
        assert!(app.panel.run.is_none(), "the second experiment has no run yet");
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads, "its own first mode");
        key(&mut app, Key::BackTab);
        let setup = app.panel.setup.as_ref().unwrap();
        assert_eq!(setup.mode, Mode::Threads, "the first experiment's turned knob came back");
        assert_eq!(app.panel.run.as_ref().map(|r| r.id), Some(id), "with its run");
    }

    #[test]
    fn number_keys_answer_the_selected_quiz_so_each_can_be_answered_again() {
        let mut app = on_blocks();
        // With an experiment selected, a number answers the first quiz not answered yet and selects it.
        ch(&mut app, '1');
        assert_eq!(app.view.answers.get(&0), Some(&0), "quiz 1 answered wrong");
        assert_eq!(app.view.block, Some(4));
        ch(&mut app, '2');
        assert_eq!(app.view.answers.get(&0), Some(&1), "the wrong first answer is corrected");
        assert_eq!(app.view.answers.get(&1), None, "quiz 2 was not answered by the correction");
        key(&mut app, Key::Tab);
        ch(&mut app, '2');
        assert_eq!(app.view.answers.get(&1), Some(&1));
        ch(&mut app, '1');
        assert_eq!(app.view.answers.get(&1), Some(&0), "quiz 2 answered again");
        assert_eq!(app.view.answers.get(&0), Some(&1), "quiz 1 keeps its answer");
        let saved = app.progress.data().lessons["blocks"].quizzes.clone();
        assert!(saved[&0].correct && saved[&1].correct);
    }

    #[test]
    fn warm_payload_and_tasks_have_keys_and_an_exercise_still_limits_knobs() {
        let mut app = on_blocks();
        // The first experiment: no limits.
        ch(&mut app, 'u');
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error, "warm needs processes");
        while app.panel.setup.as_ref().unwrap().mode != Mode::Processes {
            ch(&mut app, 'm');
        }
        ch(&mut app, 'u');
        ch(&mut app, 'B');
        ch(&mut app, 'B');
        ch(&mut app, 'N');
        let (_, exp) = started(&ch(&mut app, 'r')).unwrap();
        assert!(exp.warm);
        assert_eq!(exp.payload, 64 << 10);
        assert_eq!(exp.tasks, 16);
        ch(&mut app, 'b');
        assert_eq!(app.panel.setup.as_ref().unwrap().knobs.payload, Some(1 << 10));
        ch(&mut app, 'n');
        assert_eq!(app.panel.setup.as_ref().unwrap().tasks, 8);
        // The exercise allows warm, payload and tasks, and nothing else.
        for _ in 0..4 {
            key(&mut app, Key::Tab);
        }
        assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
        app.update(AppEvent::LabExited { run: 1, error: Some("stop".into()), now_ns: 1 });
        ch(&mut app, 'u');
        assert!(app.panel.setup.as_ref().unwrap().knobs.warm);
        ch(&mut app, 'N');
        assert_eq!(app.panel.setup.as_ref().unwrap().tasks, 16);
        ch(&mut app, 'W');
        let (kind, msg) = app.status.clone().unwrap();
        assert_eq!(kind, StatusKind::Error);
        assert_eq!(msg, "this exercise fixes the workers (you may change: warm, payload, tasks)");
    }

    /// Every knob, spelled out so a new one fails to compile here until it has a key.
    fn every_knob() -> Vec<Knob> {
        let all = [
            Knob::Mode,
            Knob::Workers,
            Knob::Chunksize,
            Knob::Start,
            Knob::SwitchInterval,
            Knob::Payload,
            Knob::Warm,
            Knob::Size,
            Knob::Tasks,
        ];
        for k in all {
            match k {
                Knob::Mode
                | Knob::Workers
                | Knob::Chunksize
                | Knob::Start
                | Knob::SwitchInterval
                | Knob::Payload
                | Knob::Warm
                | Knob::Size
                | Knob::Tasks => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn every_knob_an_exercise_may_allow_is_turned_by_a_key_the_help_lists() {
        let help = crate::ui::help_rows();
        for knob in every_knob() {
            let row = KNOB_KEYS.iter().find(|k| k.knob == knob).unwrap_or_else(|| panic!("{knob:?} has no key"));
            assert!(help.iter().any(|h| h.0 == row.keys), "{knob:?}'s keys are in the help");
            // An exercise that allows only this knob, in the mode the knob applies to.
            let mut app = on_blocks();
            for _ in 0..4 {
                key(&mut app, Key::Tab);
            }
            let setup = app.panel.setup.as_mut().unwrap();
            setup.exercise.as_mut().unwrap().may_change = vec![knob];
            setup.mode = if knob == Knob::SwitchInterval { Mode::Gil } else { Mode::Processes };
            let before = app.panel.setup.clone().unwrap();
            // The last key of a row turns its knob up (or round).
            ch(&mut app, *row.chars.last().unwrap());
            assert_ne!(app.panel.setup.clone().unwrap(), before, "{knob:?}: the keys {} change it", row.keys);
            assert_ne!(app.status.as_ref().map(|s| s.0), Some(StatusKind::Error), "{knob:?}: {:?}", app.status);
        }
    }

    #[test]
    fn a_knob_turned_after_a_run_marks_that_run_as_the_previous_setup() {
        let mut app = on_blocks();
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        feed_run(&mut app, id, 40);
        assert_eq!(app.stale_run(), None);
        ch(&mut app, 'm');
        assert_eq!(app.stale_run(), Some(vec!["sequential".to_string(), "1 worker".to_string()]));
        assert!(app.status.as_ref().unwrap().1.contains("the run shown is of the previous setup"));
        ch(&mut app, '+');
        assert_eq!(app.stale_run().unwrap().len(), 3, "mode, workers and workload differ now");
    }

    #[test]
    fn back_from_a_compare_the_panel_shows_the_compare_run_of_its_setup() {
        let mut app = on_blocks();
        key(&mut app, Key::Tab);
        // A gil run first, then the knobs say threads and a compare runs sequential and threads.
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        feed_run(&mut app, id, 90);
        ch(&mut app, 'm');
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Gil);
        let mut fx = ch(&mut app, 'c');
        while let Some((id, _)) = started(&fx) {
            feed_run(&mut app, id, 30);
            fx = Vec::new();
            if let Some(r) = app.compare.as_ref().and_then(|c| c.runs.last()).filter(|r| r.live) {
                fx.push(Effect::Start { run: r.id, exp: r.exp().unwrap().clone() });
            }
        }
        assert!(app.compare.as_ref().unwrap().done());
        key(&mut app, Key::Esc);
        assert_eq!(app.screen, Screen::Lesson);
        let run = app.panel.run.as_ref().unwrap();
        assert_eq!(run.exp().unwrap().mode, Mode::Gil, "the lanes are the gil run's, like the knobs");
        assert_eq!(app.stale_run(), None);
        assert!(app.speedup_of(run).is_some(), "and its speedup comes from the compare's sequential run");
    }

    #[test]
    fn a_prediction_is_scored_only_against_a_run_of_the_setup_it_was_made_for() {
        let mut app = on_blocks();
        key(&mut app, Key::Tab);
        // A sequential baseline, then a prediction for threads.
        while app.panel.setup.as_ref().unwrap().mode != Mode::Sequential {
            ch(&mut app, 'm');
        }
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        feed_run(&mut app, id, 100);
        ch(&mut app, 'm');
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
        ch(&mut app, 'p');
        ch(&mut app, '2');
        key(&mut app, Key::Enter);
        // A gil run is not the threads setup: the prediction waits.
        ch(&mut app, 'm');
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        feed_run(&mut app, id, 100);
        assert!(app.panel.predicted.is_none(), "a gil run does not score a threads prediction");
        assert!(app.panel.prediction.is_some());
        // Back to threads: its run scores it.
        for _ in 0..5 {
            ch(&mut app, 'm');
        }
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        feed_run(&mut app, id, 50);
        assert_eq!(app.panel.predicted, Some((2.0, 2.0)));
    }

    #[test]
    fn capital_r_runs_the_setup_three_times_and_keeps_the_median_with_min_and_max() {
        let mut app = on_blocks();
        ch(&mut app, 'm');
        ch(&mut app, 'm');
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Gil);
        let mut fx = ch(&mut app, 'R');
        let mut exps = Vec::new();
        for wall in [100, 300, 200] {
            let (id, exp) = started(&fx).expect("the next run of the repeat starts");
            exps.push(exp);
            assert!(app.is_live());
            feed_run(&mut app, id, wall);
            fx = app.update(AppEvent::Tick(0));
            // The next run was started by the last run's exit: find it in the panel.
            if let Some(r) = app.panel.run.as_ref().filter(|r| r.live) {
                fx.push(Effect::Start { run: r.id, exp: r.exp().unwrap().clone() });
            }
        }
        assert!(started(&fx).is_none(), "three runs, then it stops");
        assert!(exps.windows(2).all(|w| w[0] == w[1]), "all of the same setup");
        let rep = app.panel.repeat.as_ref().unwrap();
        assert_eq!(rep.spread(), Some((200_000_000, 100_000_000, 300_000_000)));
        assert!(!app.is_live());
    }

    #[test]
    fn esc_stops_a_repeat_and_a_single_run_leaves_it() {
        let mut app = on_blocks();
        let (id, _) = started(&ch(&mut app, 'R')).unwrap();
        feed_run(&mut app, id, 100);
        let live = app.panel.run.as_ref().unwrap();
        assert!(live.live, "the second run started");
        let second = live.id;
        assert!(key(&mut app, Key::Esc).contains(&Effect::Cancel { run: second }));
        assert!(app.panel.repeat.as_ref().unwrap().stopped);
        app.update(AppEvent::LabExited { run: second, error: None, now_ns: 1 });
        assert!(!app.is_live(), "no third run after a cancel");
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        assert!(app.panel.repeat.is_none(), "r is one run again");
        feed_run(&mut app, id, 100);
    }

    #[test]
    fn measured_cpu_and_other_programs_load_reach_the_run_they_belong_to() {
        let mut app = on_blocks();
        let (id, _) = started(&ch(&mut app, 'r')).unwrap();
        app.update(AppEvent::Others(0.8));
        app.update(AppEvent::Others(0.4));
        app.update(AppEvent::RunCpu { run: id, per_core_ns: vec![10, 20], interval_ns: 100, at_ns: 1_000 });
        feed_run(&mut app, id, 50);
        // A sample that arrives after the end still belongs to the run (the last reading comes late).
        app.update(AppEvent::RunCpu { run: id, per_core_ns: vec![0, 0, 5], interval_ns: 100, at_ns: 2_000 });
        app.update(AppEvent::Others(3.0));
        let r = app.panel.run.as_ref().unwrap();
        assert_eq!(r.cpu.per_core_ns, vec![10, 20, 5]);
        assert_eq!(r.cpu.samples.len(), 2);
        assert!((r.others_cores().unwrap() - 0.6).abs() < 1e-6, "only samples taken while it ran");
    }

    #[test]
    fn a_block_id_used_in_two_lessons_does_not_bring_one_lessons_knobs_into_the_other() {
        let mut other = blocks_lesson();
        other.id = "blocks-again".into();
        let mut app = App::new(vec![blocks_lesson(), other], Vec::new(), progress(), Theme::plain(false), 2);
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        ch(&mut app, 'm');
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Threads);
        key(&mut app, Key::Esc);
        key(&mut app, Key::Down);
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        assert_eq!(panel_id(&app).as_deref(), Some("waits"));
        assert_eq!(app.panel.setup.as_ref().unwrap().mode, Mode::Sequential, "the other lesson's own knobs");
    }

    #[test]
    fn t_cycles_the_theme_and_remembers_it_in_the_progress_file() {
        let mut app = on_blocks();
        assert_eq!(app.progress.theme(), None);
        let fx = ch(&mut app, 't');
        assert_eq!(app.theme.palette, Palette::Light);
        assert!(fx.contains(&Effect::SaveProgress));
        assert_eq!(app.progress.theme().as_deref(), Some("light"));
        assert!(app.status.as_ref().unwrap().1.contains("remembered"));
    }

    #[test]
    fn a_check_that_ends_after_the_learner_moved_on_is_recorded_for_its_own_exercise() {
        let mut app = on_blocks();
        key(&mut app, Key::BackTab);
        assert_eq!(panel_id(&app).as_deref(), Some("warm-it"));
        let fx = ch(&mut app, 'x');
        let run = fx.iter().find_map(|e| if let Effect::Check { run, .. } = e { Some(*run) } else { None }).unwrap();
        key(&mut app, Key::Tab);
        assert_eq!(panel_id(&app).as_deref(), Some("waits"));
        app.update(AppEvent::CheckDone { run, result: Ok(outcome(true, 1.9)) });
        assert!(app.progress.exercise_passed("warm-it"));
        assert!(app.status.as_ref().unwrap().1.contains("warm-it"));
        key(&mut app, Key::BackTab);
        assert!(matches!(app.panel.check, Some(Check::Done(_))), "its verdict waits with it");
    }
}
