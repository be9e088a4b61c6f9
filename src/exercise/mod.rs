//! Exercises: checking a learner's setup (native, through the lab) or a learner's own Python file against an
//! exercise's goal, with real timing on this machine.
//!
//! The rule is the same for both: one warm-up run of the baseline and of the learner's setup, then the median of N
//! alternating repetitions of each (N = 3, or `PARLAB_CHECK_REPS`), and the goal's threshold scaled by the cores the
//! check can use (`lesson::goal_cores`: the available cores, but no more than the exercise has tasks).
//! `python` runs a learner's file (under `guard`, with its words made safe by `text`); `commands` holds
//! `parlab exercises`, `check` and `progress`.
//!
//! Never imports: the headless printing; a check reaches the lab through its client (`lab::client::measure`).

pub mod commands;
pub mod guard;
pub(crate) mod python;
pub(crate) mod text;
pub(crate) mod verify;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow, bail};

use crate::experiment::{Experiment, Fit, Knobs, Mode, Workload, available_cores};
use crate::lab::client;
use crate::lesson::{ExerciseSpec, Goal, Knob, Metric, Op, goal_cores, metric_value};
use crate::timeline::{RunReport, median};
use crate::units::{fmt_ms, format_interval_us, plural};

/// Lowers the number of timed repetitions (tests); 1..=`MAX_REPS`.
pub(crate) const REPS_ENV: &str = "PARLAB_CHECK_REPS";
pub(crate) const DEFAULT_REPS: u32 = 3;
pub(crate) const MAX_REPS: u32 = 15;

/// What a check found: the verdict, the figures, and why.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckOutcome {
    pub passed: bool,
    /// The goal's metric, measured (a speedup, a share, milliseconds).
    pub measured: f64,
    /// The goal's threshold on this machine.
    pub threshold: f64,
    /// One line: the measured figure against the threshold (`speedup 0.93× < 1.40× (0.7 × 2 cores)`). It holds
    /// no verdict: `passed` is the verdict, and each screen puts it in its own words once.
    pub summary: String,
    /// The figures behind the verdict and, for a failed check, what the measurement points at.
    pub details: Vec<String>,
    pub metric: Metric,
    /// Whether a higher figure is better (the goal says `>=`).
    pub higher_is_better: bool,
    /// The cores the threshold was scaled by.
    pub cores: u32,
    pub baseline_ms: f64,
    pub setup_ms: f64,
    pub reps: u32,
}

impl CheckOutcome {
    /// The verdict as the headless check prints it.
    pub(crate) fn verdict(&self) -> &'static str {
        if self.passed { "PASSED" } else { "NOT YET" }
    }

    /// The verdict line (`NOT YET beat-the-gil: speedup ...`) and the details, as lines of text.
    pub(crate) fn text(&self, id: &str) -> String {
        let mut s = format!("{} {id}: {}\n", self.verdict(), self.summary);
        for d in &self.details {
            s.push_str("  ");
            s.push_str(d);
            s.push('\n');
        }
        s
    }
}

/// The number of timed repetitions: `PARLAB_CHECK_REPS` if set, else 3.
pub(crate) fn check_reps() -> Result<u32> {
    parse_reps(std::env::var(REPS_ENV).ok().as_deref())
}

fn parse_reps(value: Option<&str>) -> Result<u32> {
    match value {
        None => Ok(DEFAULT_REPS),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_REPS).contains(&n) => Ok(n),
            _ => bail!("{REPS_ENV}='{v}' is not a number of repetitions (allowed 1..={MAX_REPS})"),
        },
    }
}

fn allowed_list(spec: &ExerciseSpec) -> String {
    if spec.may_change.is_empty() {
        "nothing".to_string()
    } else {
        spec.may_change.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }
}

/// The learner's starting setup.
#[cfg(test)]
pub(crate) fn setup_from_spec(spec: &ExerciseSpec, cores: u32) -> Result<Experiment, String> {
    Ok(Experiment::build(spec.workload, spec.tasks, spec.mode, &spec.knobs, Fit::Lenient, cores)?)
}

/// Refuses a setup that changes a knob the exercise does not let the learner change. The rule: the setup must be
/// what the exercise's own setup becomes when only the allowed knobs take the learner's values.
pub(crate) fn validate_setup(spec: &ExerciseSpec, setup: &Experiment, cores: u32) -> Result<(), String> {
    let may = |k: Knob| spec.may_change.contains(&k);
    let refuse = |k: Knob, fixed: String, yours: String| {
        Err(format!(
            "exercise '{}' does not let you change {} (it stays {fixed}, you have {yours}; you may change: {})",
            spec.id,
            k.name(),
            allowed_list(spec)
        ))
    };
    if setup.workload.name() != spec.workload.name() {
        return Err(format!(
            "exercise '{}' runs the workload {}; its kind cannot change (you have {})",
            spec.id, spec.workload, setup.workload
        ));
    }
    let mut knobs = spec.knobs.clone();
    if may(Knob::Workers) {
        knobs.workers = Some(setup.workers);
    }
    if may(Knob::Chunksize) {
        knobs.chunksize = setup.chunksize_given.then_some(setup.chunksize);
    }
    if may(Knob::Start) {
        knobs.start = Some(setup.start);
    }
    if may(Knob::SwitchInterval) {
        knobs.switch_interval_us = Some(setup.switch_interval_us);
    }
    if may(Knob::Payload) {
        knobs.payload = Some(setup.payload);
    }
    if may(Knob::Warm) {
        knobs.warm = setup.warm;
    }
    let mode = if may(Knob::Mode) { setup.mode } else { spec.mode };
    let workload = if may(Knob::Size) { setup.workload } else { spec.workload };
    let tasks = if may(Knob::Tasks) { setup.tasks } else { spec.tasks };
    let reference = Experiment::build(workload, tasks, mode, &knobs, Fit::Lenient, cores)?;
    if setup.mode != reference.mode {
        return refuse(Knob::Mode, reference.mode.to_string(), setup.mode.to_string());
    }
    if setup.workload != reference.workload {
        return refuse(Knob::Size, reference.workload.to_string(), setup.workload.to_string());
    }
    if setup.tasks != reference.tasks {
        return refuse(Knob::Tasks, reference.tasks.to_string(), setup.tasks.to_string());
    }
    if setup.workers != reference.workers {
        return refuse(Knob::Workers, reference.workers.to_string(), setup.workers.to_string());
    }
    if setup.chunksize != reference.chunksize && matches!(setup.mode, Mode::Processes | Mode::Threads) {
        return refuse(Knob::Chunksize, reference.chunksize.to_string(), setup.chunksize.to_string());
    }
    if setup.start != reference.start {
        return refuse(Knob::Start, reference.start.to_string(), setup.start.to_string());
    }
    if setup.switch_interval_us != reference.switch_interval_us && setup.mode == Mode::Gil {
        return refuse(
            Knob::SwitchInterval,
            format_interval_us(reference.switch_interval_us),
            format_interval_us(setup.switch_interval_us),
        );
    }
    if setup.payload != reference.payload {
        return refuse(Knob::Payload, reference.payload.to_string(), setup.payload.to_string());
    }
    if setup.warm != reference.warm {
        let word = |w: bool| if w { "warm" } else { "cold" }.to_string();
        return refuse(Knob::Warm, word(reference.warm), word(setup.warm));
    }
    Ok(())
}

/// The baseline run for a setup: the exercise's baseline mode on the setup's workload and tasks (so a learner who
/// makes tasks bigger is compared with a baseline doing the same work).
pub(crate) fn baseline_for(spec: &ExerciseSpec, setup: &Experiment, cores: u32) -> Result<Experiment, String> {
    // The payload is part of the work too (every task sums its bytes): a learner who shrinks it is compared with a
    // baseline that handles the same bytes.
    let knobs = Knobs { payload: Some(setup.payload), ..spec.knobs.clone() };
    let mut base = Experiment::build(setup.workload, setup.tasks, spec.baseline, &knobs, Fit::Lenient, cores)?;
    // The same engine (and interpreter) as the setup: a python setup is measured against a python baseline.
    if !base.mode.runs_on(setup.engine) {
        return Err(format!("the baseline mode '{}' does not run on the {} engine", base.mode, setup.engine));
    }
    base.engine = setup.engine;
    base.python = setup.python.clone();
    Ok(base)
}

/// Runs the exercise's check on `setup`: a warm-up of each, then the median of N alternating repetitions.
pub(crate) fn check_native(spec: &ExerciseSpec, setup: &Experiment, stop: &AtomicBool) -> Result<CheckOutcome> {
    let avail = available_cores();
    validate_setup(spec, setup, avail).map_err(|e| anyhow!(e))?;
    let baseline = baseline_for(spec, setup, avail).map_err(|e| anyhow!(e))?;
    let reps = check_reps()?;
    once(&baseline, "baseline", stop)?;
    once(setup, "your", stop)?;
    let mut base_runs = Vec::new();
    let mut setup_runs = Vec::new();
    for _ in 0..reps {
        base_runs.push(once(&baseline, "baseline", stop)?);
        setup_runs.push(once(setup, "your", stop)?);
    }
    let base = median_report(base_runs);
    let mine = median_report(setup_runs);
    if base.checksum() != mine.checksum() {
        bail!(
            "the baseline and your setup computed different checksums ({:#x} and {:#x}); this is a bug in parlab",
            base.checksum(),
            mine.checksum()
        );
    }
    let cores = goal_cores(setup.tasks);
    let measured = metric_value(spec.goal.metric, &mine, base.wall_ms());
    let sides = Sides {
        baseline: format!("{} (baseline)", baseline.mode),
        setup: format!("your setup: {}", setup_label(setup)),
        baseline_walls_ms: base.walls_ns.iter().map(|w| *w as f64 / 1e6).collect(),
        setup_walls_ms: mine.walls_ns.iter().map(|w| *w as f64 / 1e6).collect(),
    };
    let diagnosis =
        if spec.goal.holds(measured, cores) { Vec::new() } else { diagnose(&mine, &spec.goal, measured, cores) };
    Ok(judge(spec, measured, cores, &sides, diagnosis))
}

fn once(exp: &Experiment, which: &str, stop: &AtomicBool) -> Result<RunReport> {
    if stop.load(Ordering::Relaxed) {
        bail!("check cancelled");
    }
    let report = client::measure(exp, 1, stop)?;
    if let Some(err) = report.error() {
        bail!("the {which} run ({}) failed: {err}", exp.title());
    }
    Ok(report)
}

/// One report whose timeline is the median run's and whose walls are every run's.
fn median_report(mut runs: Vec<RunReport>) -> RunReport {
    let walls: Vec<u64> = runs.iter().flat_map(|r| r.walls_ns.iter().copied()).collect();
    runs.sort_by(|a, b| a.wall_ms().total_cmp(&b.wall_ms()));
    let mut pick = runs.swap_remove((runs.len() - 1) / 2);
    pick.walls_ns = walls;
    pick
}

fn setup_label(e: &Experiment) -> String {
    let title = e.title();
    // `fib:32 × 8 · processes (spawn, ...)`: the part after the workload is the setup.
    title.split_once(" · ").map_or(title.clone(), |x| x.1.to_string())
}

/// Both sides of a check, for the figures line.
pub(crate) struct Sides {
    pub baseline: String,
    pub setup: String,
    pub baseline_walls_ms: Vec<f64>,
    pub setup_walls_ms: Vec<f64>,
}

fn spread(walls: &[f64]) -> String {
    let mut v = walls.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let med = median(&v);
    if v.len() <= 1 {
        return format!("{} (1 run)", fmt_ms(med));
    }
    format!("median {} of {} runs ({}–{})", fmt_ms(med), v.len(), fmt_ms(v[0]), fmt_ms(v[v.len() - 1]))
}

/// A figure of a metric as people read it: `1.86×`, `93%`, `412 ms`.
pub(crate) fn fmt_figure(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Speedup => format!("{value:.2}×"),
        Metric::Efficiency | Metric::OverheadShare => format!("{:.0}%", value * 100.0),
        Metric::WallMs => fmt_ms(value),
    }
}

pub(crate) fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Speedup => "speedup",
        Metric::Efficiency => "efficiency",
        Metric::WallMs => "wall time",
        Metric::OverheadShare => "overhead share",
    }
}

/// The threshold as a sentence: `1.40× (0.7 × 2 cores)`.
pub(crate) fn threshold_text(goal: &Goal, cores: u32) -> String {
    let t = fmt_figure(goal.metric, goal.threshold(cores));
    if goal.per_core { format!("{t} ({} × {})", goal.value, plural(u64::from(cores), "core")) } else { t }
}

/// The verdict from a measured figure: pure, so it is tested without running anything.
pub(crate) fn judge(spec: &ExerciseSpec, measured: f64, cores: u32, sides: &Sides, why: Vec<String>) -> CheckOutcome {
    let goal = &spec.goal;
    let passed = goal.holds(measured, cores);
    let threshold = goal.threshold(cores);
    let (sym, miss) = match goal.op {
        Op::AtLeast => ("≥", "<"),
        Op::AtMost => ("≤", ">"),
    };
    let summary = format!(
        "{} {} {} {}",
        metric_name(goal.metric),
        fmt_figure(goal.metric, measured),
        if passed { sym } else { miss },
        threshold_text(goal, cores),
    );
    let base = sides.baseline_walls_ms.clone();
    let mine = sides.setup_walls_ms.clone();
    let mut details = vec![
        format!("{}: {}", sides.baseline, spread(&base)),
        format!("{}: {}", sides.setup, spread(&mine)),
        format!(
            "goal: {} with {} (yours, at most one per task), after a warm-up run of each",
            goal.text,
            plural(u64::from(cores), "core")
        ),
    ];
    if passed {
        details.push(format!("why: {}", spec.explain));
    } else {
        details.extend(why);
    }
    CheckOutcome {
        passed,
        measured,
        threshold,
        summary,
        details,
        metric: goal.metric,
        higher_is_better: goal.op == Op::AtLeast,
        cores,
        baseline_ms: median(&base),
        setup_ms: median(&mine),
        reps: sides.setup_walls_ms.len() as u32,
    }
}

/// How near a figure that missed the goal came to it: within `CLOSE_BAND` of the threshold (relative) is close.
pub(crate) const CLOSE_BAND: f64 = 0.10;

/// The last word on a failed check when its spans point at nothing: close to the goal, or far from it.
pub(crate) fn how_near(goal: &Goal, measured: f64, cores: u32) -> String {
    let threshold = goal.threshold(cores);
    let figures = format!("{} against {}", fmt_figure(goal.metric, measured), fmt_figure(goal.metric, threshold));
    let off =
        if threshold.abs() > f64::EPSILON { (measured - threshold).abs() / threshold.abs() } else { f64::INFINITY };
    if off <= CLOSE_BAND {
        format!(
            "the figures are close to the goal ({figures}): a quieter machine may tip it; look at the lanes, or take a hint"
        )
    } else {
        format!(
            "the figures are far from the goal ({figures}): the setup itself has to change; look at the lanes, or take a hint"
        )
    }
}

/// What the learner's (failed) run points at, from its own spans.
fn diagnose(r: &RunReport, goal: &Goal, measured: f64, cores: u32) -> Vec<String> {
    let t = &r.timeline;
    let e = &r.experiment;
    let o = t.overhead_ms();
    let run = t.cpu_ns() as f64 / 1e6;
    let lane_total = run + o.startup + o.ipc + o.serialize + o.gil_wait;
    let share = |ms: f64| {
        if lane_total > 0.0 { ms / lane_total } else { 0.0 }
    };
    let wall = r.wall_ms();
    let mut why = Vec::new();
    match e.mode {
        Mode::Sequential => why.push("sequential runs one task after another on one core".to_string()),
        Mode::Async if !e.workload.is_io() => {
            why.push("async runs every task on one thread: CPU work never awaits, so the tasks take turns".to_string())
        }
        _ => {}
    }
    if share(o.gil_wait) > 0.2 {
        why.push(format!(
            "the workers spent {:.0}% of their time waiting for the GIL ({}): only the holder runs",
            share(o.gil_wait) * 100.0,
            fmt_ms(o.gil_wait)
        ));
    }
    // A warm pool started before the clock: its start-up is drawn, but it is not what the run paid for.
    if !e.warm && wall > 0.0 && o.startup / f64::from(e.workers.max(1)) > 0.15 * wall {
        why.push(format!(
            "starting workers took {} in all, {:.0}% of the wall time per worker",
            fmt_ms(o.startup),
            o.startup / f64::from(e.workers.max(1)) / wall * 100.0
        ));
    }
    if share(o.ipc + o.serialize) > 0.2 {
        why.push(format!(
            "moving data between processes took {:.0}% of the workers' time ({})",
            share(o.ipc + o.serialize) * 100.0,
            fmt_ms(o.ipc + o.serialize)
        ));
    }
    if why.is_empty() && e.mode.uses_workers() && e.workers > 1 && !e.workload.is_io() && t.parallelism() < 1.3 {
        why.push(format!(
            "on average only {:.1} lanes were running work at once (of {})",
            t.parallelism(),
            plural(u64::from(e.workers), "worker")
        ));
    }
    if e.mode == Mode::Processes && e.chunks() < u64::from(e.workers) {
        why.push(format!(
            "{} for {}: some workers get nothing to do",
            plural(e.chunks(), "chunk"),
            plural(u64::from(e.workers), "worker")
        ));
    }
    if why.is_empty() {
        why.push(how_near(goal, measured, cores));
    }
    why.into_iter().map(|w| format!("why not: {w}")).collect()
}

/// The workload with a new size, refused (not clamped) when the size is out of its range.
pub(crate) fn resize(workload: Workload, size: u64) -> Result<Workload, String> {
    if workload == Workload::Tiny {
        return Err("the workload 'tiny' has no size to change".to_string());
    }
    // Parsing `name:size` gives the range check and its message.
    format!("{}:{size}", workload.name()).parse::<Workload>()?;
    let resized = workload.with_size(size);
    if resized.size() != size {
        return Err(format!("size {size} is too small for the workload {workload}"));
    }
    Ok(resized)
}

#[cfg(test)]
mod tests;
