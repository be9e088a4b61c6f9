//! The TUI's state machine: every piece of state the screens show lives in `App`, and `App::update` is the only
//! place it changes. Events come in (keys, lab events, core samples, ticks); effects go out (start or cancel a
//! run, check an exercise, save progress, quit) for `tui` to perform. No terminal, no processes, no clock here,
//! so tests drive it with synthetic events.

use std::collections::HashMap;

use crate::exercise::CheckOutcome;

use crate::experiment::{
    Experiment, Fit, Knobs, MAX_WORKERS, MODES, Mode, START_METHODS, Workload, format_interval_us,
};
use crate::lab::demos::DemoSpec;
use crate::lesson::{Block, ExerciseSpec, ExperimentKind, Knob, Lesson, Metric, Quiz};
use crate::progress::{Mark, Progress};
use crate::timeline::{LabEvent, RunEnd, Timeline};
use crate::ui::digest::Digest;
use crate::ui::theme::{Palette, Theme};

/// The smallest terminal the screens are laid out for.
pub(crate) const MIN_W: u16 = 80;
pub(crate) const MIN_H: u16 = 24;
/// Most modes a compare view shows.
pub(crate) const MAX_COMPARE: usize = 4;
/// Switch intervals the `i` key steps through, in microseconds.
const INTERVALS_US: [u64; 7] = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
/// System core samples kept for the history sparklines.
pub(crate) const HISTORY: usize = 120;

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
    Lab(u64, LabEvent),
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusKind {
    Info,
    Error,
}

/// Keys and what they do, for the help overlay: (keys, ASCII spelling, meaning).
pub(crate) const KEYS: &[(&str, &str, &str)] = &[
    ("↑/↓", "Up/Down", "move, scroll the lesson"),
    ("PgUp/PgDn", "PgUp/PgDn", "scroll a page"),
    ("Enter", "Enter", "open (resumes a lesson)"),
    ("←/→", "Left/Right", "previous / next section"),
    ("/", "/", "search the lessons"),
    ("r", "r", "run the experiment"),
    ("c", "c", "compare modes"),
    ("Esc", "Esc", "cancel a run, or go back"),
    ("m", "m", "mode"),
    ("w / W", "w / W", "workers - / +"),
    ("k / K", "k / K", "chunksize - / +"),
    ("s", "s", "start method"),
    ("i", "i", "GIL switch interval"),
    ("- / +", "- / +", "workload size - / +"),
    ("1-9", "1-9", "answer the quiz"),
    ("p", "p", "predict, then measure"),
    ("h", "h", "next hint"),
    ("x", "x", "check the exercise"),
    ("t", "t", "theme"),
    ("?", "?", "this help"),
    ("q / Ctrl-C", "q / Ctrl-C", "quit"),
];

/// What a run runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Job {
    Experiment(Experiment),
    Demo(DemoSpec),
}

/// One run the app started: what it runs and what the lab has told us so far.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub id: u64,
    pub job: Job,
    pub timeline: Timeline,
    /// The timeline's totals and bins, kept up to date by `ingest` so drawing never walks every span.
    pub digest: Digest,
    pub live: bool,
    pub cancelled: bool,
}

impl Run {
    fn new(id: u64, job: Job) -> Run {
        Run { id, job, timeline: Timeline::new(), digest: Digest::default(), live: true, cancelled: false }
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
            _ => self.digest.run_tasks(),
        }
    }
}

/// What the experiment panel is set up to run: a lesson's experiment or exercise, with the learner's knobs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Setup {
    /// The experiment's id (or `lesson#N`), or the exercise id.
    pub id: String,
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
    fn may_change(&self, knob: Knob) -> bool {
        self.exercise.as_ref().is_none_or(|e| e.may_change.contains(&knob))
    }

    /// The experiment these knobs describe, validated.
    pub(crate) fn experiment(&self, mode: Mode, cores: u32) -> Result<Experiment, String> {
        Experiment::build(self.workload, self.tasks, mode, &self.knobs, Fit::Lenient, cores)
    }
}

/// The state of an exercise check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Check {
    Running { run: u64 },
    Done(CheckOutcome),
    Failed(String),
}

/// The right-hand panel of the lesson view.
#[derive(Clone, Debug, Default)]
pub(crate) struct Panel {
    pub setup: Option<Setup>,
    pub run: Option<Run>,
    /// The learner's prediction for the next measurement, waiting for it.
    pub prediction: Option<f64>,
    /// (predicted, measured) of the last prediction that met its measurement.
    pub predicted: Option<(f64, f64)>,
    pub check: Option<Check>,
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
        let base = self.runs.iter().find(|r| r.exp().is_some_and(|e| e.mode == Mode::Sequential) && r.succeeded())?;
        let r = self.runs.get(i).filter(|r| r.succeeded())?;
        (r.wall_ms() > 0.0).then(|| base.wall_ms() / r.wall_ms())
    }
}

/// The lesson being read.
#[derive(Clone, Debug, Default)]
pub(crate) struct LessonView {
    pub lesson: usize,
    pub section: usize,
    pub scroll: u16,
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
            compare: None,
            sys: CoreSamples::default(),
            status: None,
            prompt: None,
            now_ns: 0,
            next_run: 1,
            monitor: MonitorRate::Off,
            quitting: false,
            baselines: Vec::new(),
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

    pub(crate) fn lesson_mark(&self, i: usize) -> Mark {
        self.progress.lesson_mark(&self.lessons[i].id)
    }

    /// The saved resume point, if it names a lesson we have: (lesson index, section).
    pub(crate) fn resume(&self) -> Option<(usize, usize)> {
        let (id, section) = self.progress.last_position()?;
        let i = self.lessons.iter().position(|l| l.id == id)?;
        Some((i, section.min(self.lessons[i].sections.len().saturating_sub(1))))
    }

    /// The speedup of a single run against the last sequential run of the same workload, when one is known.
    pub(crate) fn speedup_of(&self, run: &Run) -> Option<f64> {
        let exp = run.exp()?;
        if !run.succeeded() || exp.mode == Mode::Sequential {
            return None;
        }
        let base = self.baseline(exp)?;
        let wall = run.wall_ns();
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
            AppEvent::Tick(now) => self.now_ns = now,
            AppEvent::Cores(v) => {
                self.sys.history.push_back(v.clone());
                while self.sys.history.len() > HISTORY {
                    self.sys.history.pop_front();
                }
                self.sys.latest = v;
            }
            AppEvent::Lab(id, ev) => self.on_lab(id, ev),
            AppEvent::LabExited { run, error, now_ns } => self.on_lab_exit(run, error, now_ns, &mut fx),
            AppEvent::CheckDone { run, result } => self.on_check_done(run, result, &mut fx),
            AppEvent::Signal => self.quit(&mut fx),
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
        if let Some(c) = self.compare.as_mut() {
            if let Some(r) = c.runs.last_mut().filter(|r| r.live) {
                r.live = false;
                r.cancelled = true;
                fx.push(Effect::Cancel { run: r.id });
            }
            c.cancelled = !c.done() || c.cancelled;
        }
        if let Some(Check::Running { run }) = self.panel.check {
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
                let note = if self.theme.color { "" } else { " (colours are off: NO_COLOR is set)" };
                self.info(format!("theme: {}{note}", self.theme.palette.name()));
                return;
            }
            _ => {}
        }
        match self.screen {
            Screen::List => self.on_list_key(key, fx),
            Screen::Lesson => self.on_lesson_key(key, fx),
            Screen::Compare => self.on_compare_key(key, fx),
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
                        self.panel.prediction = Some(v);
                        self.panel.predicted = None;
                        let what = if self.panel.setup.as_ref().is_some_and(|s| s.exercise.is_some()) {
                            "x checks the exercise"
                        } else {
                            "r runs it (the speedup needs a sequential run of the same workload: c compares)"
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
        self.view.section = section;
        self.view.scroll = 0;
        self.progress.mark_section(&id, section);
        if section == last {
            self.progress.lesson_done(&id);
        }
        self.pick_setup();
        vec![Effect::SaveProgress]
    }

    /// Chooses what the panel runs: the section's exercise, else its first experiment, else the closest earlier
    /// experiment, else the lesson's first. Knobs the learner turned are kept while the source stays the same.
    fn pick_setup(&mut self) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let s = self.view.section;
        let find_in = |sec: usize| -> Option<Setup> {
            let blocks = &lesson.sections.get(sec)?.blocks;
            blocks.iter().find_map(|b| match b {
                Block::Exercise(e) => Some(exercise_setup(e)),
                _ => None,
            })
        };
        let experiment_in = |sec: usize| -> Option<Setup> {
            lesson.sections.get(sec)?.blocks.iter().find_map(|b| match b {
                Block::Experiment(e) => Some(experiment_setup(lesson, sec, e)),
                _ => None,
            })
        };
        let chosen = find_in(s)
            .or_else(|| experiment_in(s))
            .or_else(|| (0..s).rev().find_map(experiment_in))
            .or_else(|| (s + 1..lesson.sections.len()).find_map(experiment_in));
        let same = match (&chosen, &self.panel.setup) {
            (Some(a), Some(b)) => a.id == b.id,
            (None, None) => true,
            _ => false,
        };
        if !same {
            // A live run goes on across sections; a demo that ended elsewhere is shown again back in its section.
            let demo = chosen.as_ref().and_then(|s| s.demo.as_deref());
            let keep = self
                .panel
                .run
                .as_ref()
                .is_some_and(|r| r.live || (demo.is_some() && r.demo().map(|d| d.name.name()) == demo));
            let checking = matches!(self.panel.check, Some(Check::Running { .. }));
            self.panel = Panel {
                setup: chosen,
                run: if keep { self.panel.run.take() } else { None },
                check: if checking { self.panel.check.take() } else { None },
                ..Panel::default()
            };
        }
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
            Screen::Compare => {}
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
                    self.screen = Screen::Lesson;
                }
            }
            Key::Char('c') => self.start_compare(fx),
            Key::Char('r') => {
                self.screen = Screen::Lesson;
                self.run(fx);
            }
            Key::Char(c) if c != 'p' && c != 'x' && c != 'h' => self.knob(c),
            _ => {}
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
            self.error("this lesson has no experiment to run");
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
                    self.panel.run = Some(Run::new(id, Job::Demo(demo.clone())));
                    fx.push(Effect::StartDemo { run: id, demo });
                }
                Err(e) => self.error(e),
            }
            return;
        }
        match setup.experiment(setup.mode, self.cores) {
            Ok(exp) => {
                let id = self.next_id();
                self.panel.run = Some(Run::new(id, Job::Experiment(exp.clone())));
                fx.push(Effect::Start { run: id, exp });
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
        let exps: Result<Vec<Experiment>, String> =
            App::compare_modes(&setup).into_iter().map(|m| setup.experiment(m, self.cores)).collect();
        match exps {
            Ok(exps) => {
                let id = self.next_id();
                let first = exps[0].clone();
                self.compare =
                    Some(Compare { exps, runs: vec![Run::new(id, Job::Experiment(first.clone()))], cancelled: false });
                self.screen = Screen::Compare;
                fx.push(Effect::Start { run: id, exp: first });
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
        let baseline = r
            .exp()
            .filter(|e| e.mode == Mode::Sequential && r.succeeded())
            .map(|e| ((e.workload, e.tasks, e.payload), r.wall_ns()));
        if let Some((key, wall)) = baseline {
            self.remember_baseline(key, wall);
        }
        if let Some(msg) = failed {
            self.error(msg);
        }
        let in_compare = self.compare.as_ref().is_some_and(|c| c.runs.iter().any(|x| x.id == id));
        if in_compare {
            self.compare_next(fx);
        } else if let Some(sp) = self.panel.run.as_ref().filter(|r| r.id == id).and_then(|r| self.speedup_of(r)) {
            self.prediction_met(sp);
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
            c.runs.push(Run::new(id, Job::Experiment(exp.clone())));
            self.next_run += 1;
            fx.push(Effect::Start { run: id, exp });
            return;
        }
        // All done: the panel's mode's speedup meets a waiting prediction.
        let mode = self.panel.setup.as_ref().map(|s| s.mode);
        let sp = self
            .compare
            .as_ref()
            .and_then(|c| c.runs.iter().position(|r| r.exp().map(|e| e.mode) == mode).and_then(|i| c.speedup(i)));
        if let Some(sp) = sp {
            self.prediction_met(sp);
        }
    }

    fn prediction_met(&mut self, measured: f64) {
        let Some(p) = self.panel.prediction.take() else {
            return;
        };
        self.panel.predicted = Some((p, measured));
        if let Some(setup) = &self.panel.setup {
            let id = setup.id.clone();
            self.progress.record_prediction(&id, p, measured);
        }
    }

    fn check(&mut self, fx: &mut Vec<Effect>) {
        let Some(setup) = self.panel.setup.clone() else {
            return;
        };
        let Some(spec) = setup.exercise.clone() else {
            self.info("x checks an exercise; this section has none");
            return;
        };
        if let Some(m) = self.busy_message() {
            return self.error(m);
        }
        match setup.experiment(setup.mode, self.cores) {
            Ok(exp) => {
                let id = self.next_id();
                self.panel.check = Some(Check::Running { run: id });
                fx.push(Effect::Check { run: id, spec: Box::new(spec), setup: exp });
            }
            Err(e) => self.error(e),
        }
    }

    fn on_check_done(&mut self, run: u64, result: Result<CheckOutcome, String>, fx: &mut Vec<Effect>) {
        if self.panel.check != Some(Check::Running { run }) {
            return;
        }
        let id = self.panel.setup.as_ref().and_then(|s| s.exercise.as_ref()).map(|e| e.id.clone());
        match result {
            Ok(outcome) => {
                if let Some(id) = id {
                    self.progress.record_exercise(&id, outcome.passed, outcome.measured);
                    fx.push(Effect::SaveProgress);
                }
                let measured = outcome.measured;
                self.panel.check = Some(Check::Done(outcome));
                self.prediction_met(measured);
            }
            Err(e) => self.panel.check = Some(Check::Failed(e)),
        }
    }

    fn hint(&mut self, fx: &mut Vec<Effect>) {
        let Some(spec) = self.panel.setup.as_ref().and_then(|s| s.exercise.clone()) else {
            self.info("h shows hints of an exercise; this section has none");
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
            return self.info("nothing to predict here: this lesson has no experiment");
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

    fn answer(&mut self, choice: usize, fx: &mut Vec<Effect>) {
        let Some(lesson) = self.lessons.get(self.view.lesson) else {
            return;
        };
        let base = App::quiz_base(lesson, self.view.section);
        let quizzes: Vec<&Quiz> = lesson.sections[self.view.section]
            .blocks
            .iter()
            .filter_map(|b| if let Block::Quiz(q) = b { Some(q) } else { None })
            .collect();
        if quizzes.is_empty() {
            return self.info("number keys answer a quiz; this section has none");
        }
        let k = (0..quizzes.len()).find(|k| !self.view.answers.contains_key(&(base + k))).unwrap_or(quizzes.len() - 1);
        let quiz = quizzes[k];
        if choice >= quiz.choices.len() {
            return self.error(format!("choose 1 to {}", quiz.choices.len()));
        }
        let correct = choice == quiz.answer;
        let id = lesson.id.clone();
        self.view.answers.insert(base + k, choice);
        self.progress.record_quiz(&id, base + k, choice, correct);
        fx.push(Effect::SaveProgress);
    }

    fn knob(&mut self, c: char) {
        let Some(mut setup) = self.panel.setup.clone() else {
            return;
        };
        let knob = match c {
            'm' => Knob::Mode,
            'w' | 'W' => Knob::Workers,
            'k' | 'K' => Knob::Chunksize,
            's' => Knob::Start,
            'i' => Knob::SwitchInterval,
            '-' | '_' | '+' | '=' => Knob::Size,
            _ => return,
        };
        if let Some(name) = &setup.demo {
            return self.info(format!(
                "a demo has no knobs here: r runs {name} at its default size (`parlab demo {name} --size N` for others)"
            ));
        }
        if !setup.may_change(knob) {
            let allowed: Vec<&str> = setup
                .exercise
                .as_ref()
                .map(|e| e.may_change.iter().map(|k| knob_name(*k)).collect())
                .unwrap_or_default();
            return self.error(format!(
                "this exercise fixes the {} (you may change: {})",
                knob_name(knob),
                allowed.join(", ")
            ));
        }
        let cores = self.cores;
        let current = setup.experiment(setup.mode, cores).ok();
        let mode = setup.mode;
        match c {
            'm' => {
                let i = MODES.iter().position(|(_, m)| *m == mode).unwrap_or(0);
                setup.mode = MODES[(i + 1) % MODES.len()].1;
            }
            'w' | 'W' => {
                if !mode.uses_workers() {
                    return self.error(format!("{mode} runs on one thread: workers apply to other modes (m)"));
                }
                let w = current.as_ref().map_or(cores, |e| e.workers);
                let w = if c == 'w' { w.saturating_sub(1).max(1) } else { (w + 1).min(MAX_WORKERS.min(64)) };
                setup.knobs.workers = Some(w);
            }
            'k' | 'K' => {
                if !matches!(mode, Mode::Processes | Mode::Threads) {
                    return self.error("chunksize applies to processes and threads (m changes the mode)");
                }
                let k = current.as_ref().map_or(1, |e| e.chunksize);
                let k = if c == 'k' { (k / 2).max(1) } else { (k * 2).min(setup.tasks) };
                setup.knobs.chunksize = Some(k);
            }
            's' => {
                if mode != Mode::Processes {
                    return self.error("the start method applies to processes (m changes the mode)");
                }
                let now = current.as_ref().map(|e| e.start);
                let i = START_METHODS.iter().position(|(_, s)| Some(*s) == now).unwrap_or(0);
                setup.knobs.start = Some(START_METHODS[(i + 1) % START_METHODS.len()].1);
            }
            'i' => {
                if mode != Mode::Gil {
                    return self.error("the switch interval applies to gil (m changes the mode)");
                }
                let now = current.as_ref().map_or(5_000, |e| e.switch_interval_us);
                let next = INTERVALS_US.iter().copied().find(|v| *v > now).unwrap_or(INTERVALS_US[0]);
                setup.knobs.switch_interval_us = Some(next);
            }
            _ => {
                let up = matches!(c, '+' | '=');
                let w = setup.workload.step_size(up);
                if w == setup.workload {
                    return self.info(format!("{} is as {} as it goes", w, if up { "large" } else { "small" }));
                }
                setup.workload = w;
            }
        }
        match setup.experiment(setup.mode, cores) {
            Ok(exp) => {
                self.info(knob_message(c, &exp));
                self.panel.setup = Some(setup);
            }
            Err(e) => self.error(e),
        }
    }
}

fn knob_message(c: char, exp: &Experiment) -> String {
    match c {
        'm' => format!("mode {} ({})", exp.mode, exp.mode.python()),
        'w' | 'W' => format!("{} workers", exp.workers),
        'k' | 'K' => format!("chunksize {}", exp.chunksize),
        's' => format!("start method {}", exp.start),
        'i' => format!("switch interval {}", format_interval_us(exp.switch_interval_us)),
        _ => format!("workload {}", exp.workload),
    }
}

pub(crate) fn knob_name(k: Knob) -> &'static str {
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

/// A number for messages: 1.8, 12, 0.25.
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn experiment_setup(lesson: &Lesson, section: usize, e: &crate::lesson::ExperimentSpec) -> Setup {
    let id = e.id.clone().unwrap_or_else(|| format!("{}#{section}", lesson.id));
    match &e.kind {
        ExperimentKind::Run { workload, tasks, modes, knobs } => Setup {
            id,
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

fn exercise_setup(e: &ExerciseSpec) -> Setup {
    let mut modes = vec![e.baseline];
    if !modes.contains(&e.mode) {
        modes.push(e.mode);
    }
    Setup {
        id: e.id.clone(),
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
    use crate::lesson::{ExperimentSpec, Goal, Op, Section};
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
        assert_eq!(app.progress.lesson_mark("gil"), Mark::Started);
        // The panel is set up from the first experiment even in the introduction.
        assert_eq!(app.panel.setup.as_ref().unwrap().id, "gil-threads");
        assert!(fx.contains(&Effect::Monitor(MonitorRate::Slow)));
    }

    #[test]
    fn arrows_step_through_sections_and_the_last_one_completes_the_lesson() {
        let mut app = app();
        key(&mut app, Key::Enter);
        key(&mut app, Key::Right);
        assert_eq!(app.view.section, 1);
        assert_eq!(app.progress.lesson_mark("gil"), Mark::Done);
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
        let (id, _) = started(&ch(&mut app, 'r'))[0].clone();
        app.update(AppEvent::Lab(id, LabEvent::Stalled("the lab 7 is stopped".into())));
        assert_eq!(app.status, Some((StatusKind::Error, "the lab 7 is stopped".to_string())));
        assert!(app.is_live(), "the run goes on when the process is continued");
    }

    #[test]
    fn esc_cancels_a_live_run_and_late_events_are_ignored() {
        let mut app = app();
        key(&mut app, Key::Enter);
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
        ch(&mut app, 'p');
        for c in "1.8".chars() {
            ch(&mut app, c);
        }
        key(&mut app, Key::Enter);
        assert_eq!(app.panel.prediction, Some(1.8));
        ch(&mut app, 'm');
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
