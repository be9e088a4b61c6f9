//! `lint --verify` for exercises: every exercise's starting setup must fail its goal and its intended fix (the
//! block's `solution`, and for a Python exercise the file in assets/exercises/solutions/) must pass it, on this
//! machine, checked by the very code `parlab check` uses. Each line says which figures were measured.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::commands::{engine_setups, setup_from_args};
use super::python::{self, DEFAULT_TIMEOUT_S};
use super::{CheckOutcome, check_native, fmt_figure, threshold_text};
use crate::cli::{CheckArgs, KnobArgs};
use crate::experiment::{Experiment, available_cores};
use crate::lesson::{self, ExerciseSpec, LessonSet, Op, Solution, goal_cores};
use crate::scratch::Scratch;
use crate::units::{format_interval_us, plural};

/// Writes to stdout; a closed pipe (`| head`) is not an error, any other write error is.
fn print(text: &str) -> Result<()> {
    crate::stdout::print(text).context("cannot write to stdout")
}

/// The `parlab check` flags a solution stands for (`--mode processes --workers 2`): what a learner would type.
pub(crate) fn solution_args(s: &Solution) -> CheckArgs {
    CheckArgs {
        mode: s.mode.map(|m| m.name().to_string()),
        knobs: KnobArgs {
            workers: s.knobs.workers,
            chunksize: s.knobs.chunksize,
            start: s.knobs.start.map(|m| m.name().to_string()),
            switch_interval: s.knobs.switch_interval_us.map(format_interval_us),
            payload: s.knobs.payload.map(|p| p.to_string()),
            warm: s.knobs.warm,
        },
        tasks: s.tasks,
        size: s.size,
        timeout: None,
        engine: None,
        python: None,
    }
}

/// The same flags as text, as a learner would type them (`--mode processes --workers 2 --warm`).
pub(crate) fn solution_flags(s: &Solution) -> String {
    let a = solution_args(s);
    let mut flags: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            flags.push(format!("--{name} {v}"));
        }
    };
    flag("mode", a.mode);
    flag("workers", a.knobs.workers.map(|w| w.to_string()));
    flag("chunksize", a.knobs.chunksize.map(|c| c.to_string()));
    flag("start", a.knobs.start);
    flag("switch-interval", a.knobs.switch_interval);
    flag("payload", a.knobs.payload);
    flag("tasks", a.tasks.map(|t| t.to_string()));
    flag("size", a.size.map(|s| s.to_string()));
    if a.knobs.warm {
        flags.push("--warm".to_string());
    }
    flags.join(" ")
}

/// The learner's starting setup (`parlab check ID` without flags) and the solution's (`parlab check ID FLAGS`).
pub(crate) fn setups(spec: &ExerciseSpec, cores: u32) -> Result<(Experiment, Experiment)> {
    let start = setup_from_args(spec, &CheckArgs::default(), cores)?;
    let solution = setup_from_args(spec, &solution_args(&spec.solution), cores)
        .with_context(|| format!("the solution of '{}' ({})", spec.id, solution_flags(&spec.solution)))?;
    super::validate_setup(spec, &solution, cores).map_err(|e| anyhow!("the solution of '{}': {e}", spec.id))?;
    Ok((start, solution))
}

/// One side of an exercise as verified: the measured figures and verdicts (one per engine the check runs on), or the
/// problem that stopped the check.
enum Side {
    Checked(Vec<CheckOutcome>),
    /// A Python file that did not time cleanly (it raised, returned a wrong result, ...): a failed check, as
    /// `parlab check` reports it to the learner.
    Problem(String),
    /// The check itself could not finish (a run failed, a file too quick to judge): wrong on either side.
    Broken(String),
}

impl Side {
    fn passed(&self) -> bool {
        // As `parlab check` judges it: every engine must pass.
        matches!(self, Side::Checked(o) if !o.is_empty() && o.iter().all(|o| o.passed))
    }

    /// Whether the side came out as wanted: a start fails (or its file is wrong), a solution passes.
    fn as_wanted(&self, want_pass: bool) -> bool {
        !matches!(self, Side::Broken(_)) && self.passed() == want_pass
    }
}

/// How one side reads in the verify line: `start 0.98× (fail ✓)`; `✗` marks the unexpected.
fn side_text(what: &str, side: &Side, want_pass: bool, spec: &ExerciseSpec, twice: bool) -> String {
    let verdict = match side {
        Side::Broken(_) => "not checked",
        _ if side.passed() => "pass",
        _ => "fail",
    };
    let mark = if side.as_wanted(want_pass) { "✓" } else { "✗" };
    let again = if twice { ", measured twice" } else { "" };
    match side {
        Side::Checked(o) => {
            let figures: Vec<String> = o.iter().map(|o| fmt_figure(spec.goal.metric, o.measured)).collect();
            format!("{what} {} ({verdict} {mark}{again})", figures.join(" / "))
        }
        Side::Problem(_) | Side::Broken(_) => format!("{what} — ({verdict} {mark}{again})"),
    }
}

/// What to add under the line: the check's details when a side came out wrong, the problem of a Python file.
fn side_details(what: &str, side: &Side, want_pass: bool) -> String {
    match side {
        Side::Problem(p) | Side::Broken(p) => format!("    {what}: {p}\n"),
        Side::Checked(o) if !side.as_wanted(want_pass) => {
            let why = if want_pass {
                "the solution does not reach the goal"
            } else {
                "the starting setup already meets the goal, so the exercise asks for nothing"
            };
            let mut s = format!("    {what}: {why}\n");
            // The figures and the reasons; the exercise's explanation is for learners, not for this report.
            for d in o.iter().flat_map(|o| &o.details).filter(|d| !d.starts_with("why: ")) {
                s.push_str(&format!("      {d}\n"));
            }
            s
        }
        Side::Checked(_) => String::new(),
    }
}

/// Runs `check` and, when its verdict is not the one wanted, once more (a busy machine can tip one measurement);
/// the second result counts. Returns the side and whether it was measured twice.
fn measured(want_pass: bool, mut check: impl FnMut() -> Result<Side>) -> Result<(Side, bool)> {
    let first = check()?;
    if first.as_wanted(want_pass) {
        return Ok((first, false));
    }
    Ok((check()?, true))
}

/// The goal as the line's last column: `goal speedup ≥ 1.40× (0.7 × 2 cores)`.
fn goal_text(spec: &ExerciseSpec) -> String {
    let sym = if spec.goal.op == Op::AtLeast { "≥" } else { "≤" };
    format!(
        "goal {} {sym} {}",
        super::metric_name(spec.goal.metric),
        threshold_text(&spec.goal, goal_cores(spec.tasks))
    )
}

/// Verifies one exercise natively; returns the text to print and whether it holds.
fn verify_native(spec: &ExerciseSpec, width: usize, stop: &AtomicBool) -> Result<(String, bool)> {
    let (start, solution) = setups(spec, available_cores())?;
    eprintln!("checking {}: start {} · solution {} ...", spec.id, start.title(), solution_flags(&spec.solution));
    // On every engine `parlab check ID` would use (the exercise's `engines`, native by default).
    let native = |setup: &Experiment| {
        let checked = engine_setups(spec, setup, &CheckArgs::default())
            .and_then(|setups| setups.iter().map(|s| check_native(spec, s, stop)).collect::<Result<Vec<_>>>());
        side(checked.map(Ok), stop)
    };
    let (start_side, start_twice) = measured(false, || native(&start))?;
    let (fix_side, fix_twice) = measured(true, || native(&solution))?;
    let ok = start_side.as_wanted(false) && fix_side.as_wanted(true);
    let mut text = format!(
        "{:width$}  {}  {}  {}  (solution: {})\n",
        spec.id,
        side_text("start", &start_side, false, spec, start_twice),
        side_text("solution", &fix_side, true, spec, fix_twice),
        goal_text(spec),
        solution_flags(&spec.solution),
    );
    text.push_str(&side_details("start", &start_side, false));
    text.push_str(&side_details("solution", &fix_side, true));
    Ok((text, ok))
}

/// Checks one Python file (the starter or the solution, written to `dir`) as `parlab check ID FILE` does.
fn python_side(spec: &ExerciseSpec, dir: &Path, name: &str, text: &str, stop: &AtomicBool) -> Result<Side> {
    let file = dir.join(name);
    std::fs::write(&file, text).with_context(|| format!("cannot write '{}'", file.display()))?;
    let checked = python::check_file(spec, &file, Duration::from_secs(DEFAULT_TIMEOUT_S), stop);
    side(checked.map(|r| r.map(|o| vec![o])), stop)
}

/// A check's result as a side: a check that could not finish (a run that failed, a file too quick to judge) is a
/// broken side with its reason, so the other exercises are still verified; only a cancel (Ctrl-C) stops it all.
fn side(result: Result<std::result::Result<Vec<CheckOutcome>, String>>, stop: &AtomicBool) -> Result<Side> {
    match result {
        Ok(Ok(o)) => Ok(Side::Checked(o)),
        Ok(Err(problem)) => Ok(Side::Problem(problem)),
        Err(e) if stop.load(std::sync::atomic::Ordering::Relaxed) => Err(e),
        Err(e) => Ok(Side::Broken(format!("{e:#}"))),
    }
}

/// Verifies one exercise's Python starter and solution; returns the text to print and whether it holds.
fn verify_python(spec: &ExerciseSpec, name: &str, width: usize, stop: &AtomicBool) -> Result<(String, bool)> {
    let starter = lesson::starter(name).ok_or_else(|| anyhow!("the starter '{name}' is missing from this build"))?;
    let fix = lesson::python_solution(name)
        .ok_or_else(|| anyhow!("the solution of the starter '{name}' is missing from this build"))?;
    // Each file in a folder of its own, under its own name (the names are the learner's: fib_pool.py).
    let dirs = (Scratch::create("verify")?, Scratch::create("verify")?);
    eprintln!("checking {} with python3: {name} and {}{name} ...", spec.id, lesson::SOLUTIONS_DIR);
    let (start_side, start_twice) = measured(false, || python_side(spec, dirs.0.path(), name, starter, stop))?;
    let (fix_side, fix_twice) = measured(true, || python_side(spec, dirs.1.path(), name, fix, stop))?;
    let ok = start_side.as_wanted(false) && fix_side.as_wanted(true);
    let mut text = format!(
        "{:width$}  {}  {}  {}  (python: {name} → {}{name})\n",
        format!("{} (py)", spec.id),
        side_text("start", &start_side, false, spec, start_twice),
        side_text("solution", &fix_side, true, spec, fix_twice),
        goal_text(spec),
        lesson::SOLUTIONS_DIR,
    );
    text.push_str(&side_details("start", &start_side, false));
    text.push_str(&side_details("solution", &fix_side, true));
    Ok((text, ok))
}

/// `lint --verify`'s exercise part: prints a line per exercise (and per Python exercise's files) and a summary;
/// returns whether every start failed and every solution passed. Python files are skipped, with a note, when
/// python3 is not on PATH.
pub(crate) fn verify_exercises(set: &LessonSet, stop: &AtomicBool) -> Result<bool> {
    let exercises: Vec<&ExerciseSpec> = set.exercises().map(|(_, e)| e).collect();
    if exercises.is_empty() {
        return Ok(true);
    }
    let python = python::find_python();
    let width = exercises.iter().map(|e| e.id.chars().count() + if e.python.is_some() { 5 } else { 0 }).max();
    let width = width.unwrap_or(0);
    let (mut checked, mut failed) = (0usize, 0usize);
    let mut skipped = Vec::new();
    for spec in exercises {
        let mut report = |(text, ok): (String, bool)| {
            checked += 1;
            failed += usize::from(!ok);
            print(&text)
        };
        report(verify_native(spec, width, stop)?)?;
        if let Some(name) = &spec.python {
            match &python {
                Ok(_) => report(verify_python(spec, name, width, stop)?)?,
                Err(_) => skipped.push(spec.id.as_str()),
            }
        }
    }
    if let Err(why) = &python {
        print(&format!("skipped the Python files of {}: {why:#}\n", skipped.join(", ")))?;
    }
    let on = format!("on {}", plural(u64::from(available_cores()), "core"));
    if failed == 0 {
        print(&format!(
            "verify: {}: every start fails its goal and every solution passes {on}\n",
            plural(checked as u64, "exercise check")
        ))?;
    } else {
        print(&format!("verify: {failed} of {} FAILED {on}\n", plural(checked as u64, "exercise check")))?;
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Mode, StartMethod};

    fn exercise(solution: &str) -> ExerciseSpec {
        let text = format!(
            "+++\nid = \"l\"\ntitle = \"L\"\nminutes = 1\nsummary = \"s\"\ncovers = []\n+++\n\n## S\n\n```exercise\n\
             id = \"e\"\ntitle = \"E\"\nworkload = \"fib:20\"\ntasks = 8\nmode = \"gil\"\nworkers = 2\n\
             knobs = [\"mode\", \"workers\", \"chunksize\", \"start\", \"warm\", \"size\", \"switch_interval\"]\n\
             goal = \"speedup >= 0.7 * cores\"\nexplain = \"E.\"\nsolution = {solution}\n```\n"
        );
        let lesson = crate::lesson::parse_lesson("t.md", &text, &[]).map_err(|b| b.errors).unwrap().lesson;
        lesson.exercises().next().unwrap().clone()
    }

    #[test]
    fn a_solution_is_the_setup_its_check_flags_make() {
        let spec =
            exercise("{ mode = \"processes\", workers = 3, chunksize = 2, start = \"fork\", warm = true, size = 22 }");
        assert_eq!(
            solution_flags(&spec.solution),
            "--mode processes --workers 3 --chunksize 2 --start fork --size 22 --warm"
        );
        let (start, fix) = setups(&spec, 2).unwrap();
        assert_eq!((start.mode, start.workers), (Mode::Gil, 2));
        assert_eq!(
            (fix.mode, fix.workers, fix.chunksize, fix.start, fix.warm),
            (Mode::Processes, 3, 2, StartMethod::Fork, true)
        );
        assert_eq!(fix.workload.to_string(), "fib:22");
        let spec = exercise("{ switch_interval = \"1ms\" }");
        assert_eq!(solution_flags(&spec.solution), "--switch-interval 1ms");
        assert_eq!(setups(&spec, 2).unwrap().1.switch_interval_us, 1000);
    }

    #[test]
    fn only_a_failing_start_and_a_passing_solution_are_as_wanted() {
        let broken = Side::Broken("the run failed".into());
        assert!(!broken.as_wanted(false) && !broken.as_wanted(true), "a check that did not finish proves nothing");
        let wrong = Side::Problem("parallel() returned 3 but sequential() returned 4".into());
        assert!(wrong.as_wanted(false) && !wrong.as_wanted(true), "a wrong starter fails, as the learner sees it");
        let spec = exercise("{ mode = \"processes\" }");
        assert_eq!(side_text("start", &broken, false, &spec, true), "start — (not checked ✗, measured twice)");
        assert_eq!(side_text("start", &wrong, false, &spec, false), "start — (fail ✓)");
    }
}
