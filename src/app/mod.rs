//! The TUI's state machine: every piece of state the screens show lives in `App`, and `App::update` is the only
//! place it changes. Events come in (keys, lab events, core samples, ticks); effects go out (start or cancel a
//! run, check an exercise, save progress, quit) for `tui` to perform. No terminal, no processes, no clock here,
//! so tests drive it with synthetic events.
//!
//! Never imports: the drawing code (`ui`), the terminal, the lab or its client (the face hands it its prose measure;
//! the runs it asks for are effects). Per screen: `list`, `lesson`, `compare` (runs and compares), `exercise`.

mod compare;
mod exercise;
mod lesson;
mod list;

pub(crate) use lesson::{differences, panel_blocks, selectable};

use std::collections::HashMap;

use crate::exercise::CheckOutcome;
use crate::units::fmt_num;
use crate::units::{format_bytes, format_interval_us, plural};

use crate::digest::Digest;
use crate::experiment::demo::DemoSpec;
use crate::experiment::{Experiment, Fit, Job, Knobs, Mode, Workload};
use crate::lesson::{Block, ExerciseSpec, ExperimentKind, Knob, Lesson, Metric, Quiz, Section};
use crate::monitor::MonitorRate;
use crate::progress::{LessonMark, Progress};
use crate::theme::{Palette, Theme};
use crate::timeline::{LabEvent, RunEnd, Timeline, median};

/// The smallest terminal the screens are laid out for.
pub(crate) const MIN_W: u16 = 80;
pub(crate) const MIN_H: u16 = 24;
/// Most modes a compare view shows.
pub(crate) const MAX_COMPARE: usize = 4;
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
    Python(Result<Box<crate::engine::detect::Interpreter>, String>),
    /// Working free-threaded builds found on PATH (python3.13t, ...), which `e` offers after the default.
    FreeThreaded(Vec<crate::engine::detect::Interpreter>),
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
/// `experiment::knob::KNOBS`.
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

/// What the face measured of the lesson prose at the current size: how many lines show, how many there are, and
/// where a block sits among them. The app scrolls by it and never lays text out itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ProseMeasure {
    pub height: u16,
    pub lines: usize,
    pub block: Option<std::ops::Range<usize>>,
}

/// How the face measures the prose (`ui::lesson::measure` in the TUI), handed to the app with `with_prose_layout`.
/// Without one, the prose measures empty and does not scroll.
pub(crate) type ProseLayout = fn(&App, Option<usize>) -> ProseMeasure;

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
    prose_layout: ProseLayout,
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
            prose_layout: |_, _| ProseMeasure::default(),
        };
        // Resume: select the lesson the learner was last in.
        if let Some((id, _)) = app.progress.last_position()
            && let Some(i) = app.lessons.iter().position(|l| l.id == id)
        {
            app.list.selected = i;
        }
        app
    }

    /// The face's measure of the lesson prose, which scrolling follows.
    pub(crate) fn with_prose_layout(mut self, layout: ProseLayout) -> App {
        self.prose_layout = layout;
        self
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
            AppEvent::FreeThreaded(found) => self.engine.free_threaded = found,
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
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
pub(crate) mod block_tests;
