//! `parlab exercises`, `parlab check` and `parlab progress`: the headless faces of exercises and progress.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use super::python::{self, DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S};
use super::text::terminal_safe;
use super::{CheckOutcome, check_native, check_reps, fmt_figure, resize, threshold_text};
use crate::cli::CheckArgs;
use crate::experiment::{Experiment, Fit, Mode, available_cores, suggest};
use crate::lesson::{self, ExerciseSpec, Lesson, LessonSet, Op, goal_cores};
use crate::progress::{LessonMark, Progress};

fn load_lessons(dir: Option<&Path>) -> Result<LessonSet> {
    let set = lesson::load(dir)?;
    if !set.broken.is_empty() {
        eprintln!(
            "warning: {} lesson file(s) did not load, so their exercises are missing (run `parlab lint` to see why)",
            set.broken.len()
        );
    }
    Ok(set)
}

fn find<'a>(set: &'a LessonSet, id: &str) -> Result<(&'a Lesson, &'a ExerciseSpec)> {
    if let Some(found) = set.exercises().find(|(_, e)| e.id == id) {
        return Ok(found);
    }
    let ids: Vec<&str> = set.exercises().map(|(_, e)| e.id.as_str()).collect();
    let hint = suggest(id, ids.iter().copied()).map_or(String::new(), |s| format!(" (did you mean '{s}'?)"));
    bail!("unknown exercise '{id}' (expected one of: {}){hint}", ids.join(", "))
}

fn load_progress() -> Progress {
    let (progress, warning) = Progress::load();
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    progress
}

fn save_progress(progress: &mut Progress) {
    if let Err(e) = progress.save() {
        eprintln!("warning: progress not saved: {e:#}");
    }
    if let Some(w) = progress.take_warning() {
        eprintln!("warning: {w}");
    }
}

/// `parlab exercises [--json]` and `parlab exercises --copy ID [DIR]`.
pub fn exercises_cmd(dir: Option<&Path>, as_json: bool, copy: Option<&str>, to: Option<&Path>) -> Result<u8> {
    let set = load_lessons(dir)?;
    if let Some(id) = copy {
        return copy_starter(&set, id, to.unwrap_or(Path::new(".")));
    }
    let progress = load_progress();
    let rows: Vec<(&Lesson, &ExerciseSpec)> = set.exercises().collect();
    if as_json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(l, e)| {
                let cores = goal_cores(e.tasks);
                let higher = e.goal.op == Op::AtLeast;
                let state = progress.exercise(&e.id);
                json!({
                    "id": e.id,
                    "title": e.title,
                    "lesson": l.id,
                    "goal": e.goal.text,
                    "cores": cores,
                    "threshold": e.goal.threshold(cores),
                    "knobs": e.may_change.iter().map(|k| k.name()).collect::<Vec<_>>(),
                    "passed": progress.exercise_passed(&e.id),
                    "best": progress.best_figure(&e.id, higher),
                    "attempts": state.map_or(0, |s| s.attempts),
                    "hints_used": progress.hints_used(&e.id),
                    "python": e.python,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "exercises": list }))?);
        return Ok(0);
    }
    let mut s = format!(
        "parlab exercises · {} · goals scaled to the cores a check can use ({} here)\n\n",
        crate::units::plural(rows.len() as u64, "exercise"),
        available_cores()
    );
    let mut table: Vec<[String; 6]> = vec![[
        "exercise".into(),
        "lesson".into(),
        "goal".into(),
        "here".into(),
        "state".into(),
        "python starter".into(),
    ]];
    for (l, e) in &rows {
        let cores = goal_cores(e.tasks);
        let sym = if e.goal.op == Op::AtLeast { "≥" } else { "≤" };
        let state = match progress.best_figure(&e.id, e.goal.op == Op::AtLeast) {
            Some(best) if progress.exercise_passed(&e.id) => {
                format!("passed (best {})", fmt_figure(e.goal.metric, best))
            }
            _ if progress.exercise_passed(&e.id) => "passed".to_string(),
            _ => "not yet".to_string(),
        };
        table.push([
            e.id.clone(),
            l.id.clone(),
            e.goal.text.clone(),
            format!("{sym} {}", fmt_figure(e.goal.metric, e.goal.threshold(cores))),
            state,
            e.python.clone().unwrap_or_else(|| "—".into()),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &table {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push_str(
        "\nCheck one on this machine:  parlab check ID [--mode M --workers N ...]\n\
         Python exercises:           parlab exercises --copy ID [DIR], edit the file, then parlab check ID FILE.py\n",
    );
    print!("{s}");
    Ok(0)
}

fn with_python(set: &LessonSet) -> String {
    let ids: Vec<&str> = set.exercises().filter(|(_, e)| e.python.is_some()).map(|(_, e)| e.id.as_str()).collect();
    if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
}

fn copy_starter(set: &LessonSet, id: &str, to: &Path) -> Result<u8> {
    let (_, spec) = find(set, id)?;
    let Some(name) = &spec.python else {
        bail!("exercise '{id}' has no Python starter (these do: {})", with_python(set));
    };
    let text = lesson::starter(name).ok_or_else(|| anyhow!("the starter '{name}' is missing from this build"))?;
    let shown = python::shown_path(to);
    match std::fs::metadata(to) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("'{shown}' is a file, not a folder: name a folder to copy the starter into"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Like `mkdir -p`: the learner named where the exercise should live.
            std::fs::create_dir_all(to).with_context(|| format!("cannot create the folder '{shown}'"))?;
            println!("created folder {shown}");
        }
        Err(e) => bail!("cannot use the folder '{shown}': {e}"),
    }
    let dest = to.join(name);
    let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).open(&dest) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "'{}' already exists; parlab never overwrites your work (move it, or copy into another folder: \
             parlab exercises --copy {id} DIR)",
            python::shown_path(&dest)
        ),
        Err(e) => bail!("cannot write '{}': {e}", python::shown_path(&dest)),
    };
    f.write_all(text.as_bytes()).with_context(|| format!("cannot write '{}'", python::shown_path(&dest)))?;
    let dest = python::shown_path(&dest);
    println!("wrote {dest}");
    println!("edit it (the docstring at the top says what to do), then run: parlab check {id} {dest}");
    Ok(0)
}

/// The learner's setup for a native check: the exercise's own, with the knob flags applied.
pub(crate) fn setup_from_args(spec: &ExerciseSpec, args: &CheckArgs, cores: u32) -> Result<Experiment> {
    let mode = match &args.mode {
        Some(m) => m.parse::<Mode>().map_err(|e| anyhow!(e))?,
        None => spec.mode,
    };
    let workload = match args.size {
        Some(size) => resize(spec.workload, size).map_err(|e| anyhow!(e))?,
        None => spec.workload,
    };
    let tasks = args.tasks.unwrap_or(spec.tasks);
    let given = args.knobs.knobs().map_err(|e| anyhow!(e))?;
    // The flags themselves must fit the mode (`--start` with threads means nothing).
    Experiment::build(workload, tasks, mode, &given, Fit::Strict, cores).map_err(|e| anyhow!(e))?;
    let mut knobs = spec.knobs.clone();
    knobs.workers = given.workers.or(knobs.workers);
    knobs.chunksize = given.chunksize.or(knobs.chunksize);
    knobs.start = given.start.or(knobs.start);
    knobs.switch_interval_us = given.switch_interval_us.or(knobs.switch_interval_us);
    knobs.payload = given.payload.or(knobs.payload);
    knobs.warm |= given.warm;
    Experiment::build(workload, tasks, mode, &knobs, Fit::Lenient, cores).map_err(|e| anyhow!(e))
}

fn knob_flags_given(a: &CheckArgs) -> bool {
    a.mode.is_some() || a.knobs.any() || a.tasks.is_some() || a.size.is_some()
}

/// The setup once per engine the check runs it on: `--engine` if given, else the engines the exercise names
/// (`engines = ["python"]`), else native.
pub(crate) fn engine_setups(spec: &ExerciseSpec, setup: &Experiment, args: &CheckArgs) -> Result<Vec<Experiment>> {
    let named = match spec.knobs.engines.as_slice() {
        [] => None,
        [one] => Some(one.name()),
        _ => Some("both"),
    };
    let engines =
        crate::engine::Selection::from_flags(args.engine.as_deref().or(named), args.python.as_deref(), None, None)?;
    engines.expand(std::slice::from_ref(setup))
}

/// `parlab check EXERCISE [FILE] [knobs]`: 0 passed, 1 not yet, 2 could not check.
pub fn check_cmd(dir: Option<&Path>, id: &str, file: Option<&Path>, args: &CheckArgs) -> Result<u8> {
    let set = load_lessons(dir)?;
    let (lesson, spec) = find(&set, id)?;
    let reps = check_reps()?;
    let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT_S);
    if !(1..=MAX_TIMEOUT_S).contains(&timeout) {
        bail!("--timeout {timeout} is out of range (allowed 1..={MAX_TIMEOUT_S} seconds)");
    }
    let stop = crate::lab::client::stop_flag()?;
    let mut progress = load_progress();
    let outcome: std::result::Result<CheckOutcome, String> = match file {
        Some(file) => {
            if args.engine.is_some() || args.python.is_some() {
                bail!("--engine and --python apply to the native setup's check; your Python file runs under python3");
            }
            if knob_flags_given(args) {
                bail!(
                    "knob flags (--mode, --workers, ...) apply to the native check; your Python file decides how it runs"
                );
            }
            if spec.python.is_none() {
                bail!(
                    "exercise '{id}' has no Python version (these do: {}); leave out the file to check it natively",
                    with_python(&set)
                );
            }
            python::check_path(file)?;
            eprintln!(
                "checking {id} with {} under python3: 1 warm-up and {reps} timed run(s) each of sequential() and parallel() ...",
                python::shown_path(file)
            );
            python::check_file(spec, file, Duration::from_secs(timeout), &stop)?
        }
        None => {
            let setup = setup_from_args(spec, args, available_cores())?;
            super::validate_setup(spec, &setup, available_cores()).map_err(|e| anyhow!(e))?;
            let mut outcomes = Vec::new();
            for setup in &engine_setups(spec, &setup, args)? {
                eprintln!(
                    "checking {id} ({}): {} against {}, 1 warm-up and {reps} timed run(s) each ...",
                    lesson.id,
                    setup.title(),
                    spec.baseline
                );
                outcomes.push(check_native(spec, setup, &stop)?);
            }
            // With both engines the first is printed here, the last goes on below; both must pass.
            let last = outcomes.pop().ok_or_else(|| anyhow!("no engine to check on"))?;
            for o in &outcomes {
                print!("{}", o.text(id));
            }
            if outcomes.iter().any(|o| !o.passed) {
                print!("{}", last.text(id));
                Err("not every engine passed".to_string())
            } else {
                Ok(last)
            }
        }
    };
    let passed = match &outcome {
        Ok(o) => {
            print!("{}", o.text(id));
            progress.record_exercise(id, o.passed, o.measured);
            o.passed
        }
        Err(problem) => {
            println!("NOT YET {id}: {problem}");
            progress.record_exercise(id, false, f64::NAN);
            false
        }
    };
    if !passed {
        let seen = progress.hints_used(id);
        if let Some(hint) = spec.hints.get(seen) {
            println!("  hint {} of {}: {hint}", seen + 1, spec.hints.len());
            progress.hint_used(id, seen + 1);
        }
    }
    save_progress(&mut progress);
    Ok(if passed { 0 } else { 1 })
}

/// `parlab progress [--reset [--yes]]`.
pub fn progress_cmd(dir: Option<&Path>, reset: bool, yes: bool) -> Result<u8> {
    if yes && !reset {
        bail!("--yes only goes with --reset");
    }
    let mut progress = load_progress();
    let path = progress.path().unwrap_or_else(|| PathBuf::from("(nowhere)"));
    if reset {
        if let Some(why) = progress.not_saved() {
            bail!("nothing was cleared: {why}");
        }
        if !yes && !confirm(&format!("Clear all progress in '{}'? [y/N] ", path.display()))? {
            println!("Nothing cleared.");
            return Ok(0);
        }
        progress.reset()?;
        println!("Progress cleared ({}).", path.display());
        return Ok(0);
    }
    let set = lesson::load(dir).unwrap_or_default();
    print!("{}", progress_text(&progress, &set, &path));
    Ok(0)
}

fn confirm(question: &str) -> Result<bool> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn progress_text(p: &Progress, set: &LessonSet, path: &Path) -> String {
    let d = p.data();
    let mut s = format!("parlab progress · {}\n\n", path.display());
    if p.not_saved().is_some() {
        s.insert_str(s.len() - 1, "  (shown read-only: nothing will be saved)\n");
    }
    // Names and keys below come from the progress file or lesson files: shown terminal-safe and bounded.
    let safe = |t: &str| terminal_safe(t, 80);
    match p.last_position() {
        Some((lesson, section)) => {
            let title = set
                .find(&lesson)
                .and_then(|l| l.sections.get(section))
                .map_or(String::new(), |sec| format!(" ({})", safe(&sec.title)));
            s.push_str(&format!("  resume at     {}, section {}{title}\n", safe(&lesson), section.saturating_add(1)));
        }
        None => s.push_str("  resume at     the beginning (nothing opened yet)\n"),
    }
    let marks: Vec<LessonMark> = set.lessons.iter().map(|l| p.lesson_mark(&l.id)).collect();
    let count = |m: LessonMark| marks.iter().filter(|x| **x == m).count();
    s.push_str(&format!(
        "  lessons       {} done, {} started, {} not started\n",
        count(LessonMark::Done),
        count(LessonMark::Started),
        count(LessonMark::NotStarted)
    ));
    // Bounded: a width beyond u16::MAX panics in format!, and a table that wide helps nobody.
    let id_width = set.lessons.iter().map(|l| l.id.chars().count()).max().unwrap_or(0).min(40);
    for (i, l) in set.lessons.iter().enumerate() {
        let sym = match marks[i] {
            LessonMark::Done => "✓",
            LessonMark::Started => "…",
            LessonMark::NotStarted => " ",
        };
        let quizzes = d
            .lessons
            .get(&l.id)
            .map_or((0, 0), |lp| (lp.quizzes.len(), lp.quizzes.values().filter(|q| q.correct).count()));
        let quiz =
            if quizzes.0 > 0 { format!("  quizzes {} of {} right", quizzes.1, quizzes.0) } else { String::new() };
        s.push_str(&format!("    {sym} {:>2} {:<w$}  {}{quiz}\n", i + 1, safe(&l.id), safe(&l.title), w = id_width));
    }
    let answered: usize = d.lessons.values().map(|l| l.quizzes.len()).sum();
    let right: usize = d.lessons.values().map(|l| l.quizzes.values().filter(|q| q.correct).count()).sum();
    s.push_str(&format!("  quizzes       {right} of {answered} answered right\n"));
    let total = set.exercises().count();
    let passed = set.exercises().filter(|(_, e)| p.exercise_passed(&e.id)).count();
    s.push_str(&format!("  exercises     {passed} of {total} passed\n"));
    for (_, e) in set.exercises() {
        let Some(ep) = p.exercise(&e.id) else {
            continue;
        };
        let higher = e.goal.op == Op::AtLeast;
        let best =
            p.best_figure(&e.id, higher).map_or(String::new(), |b| format!(", best {}", fmt_figure(e.goal.metric, b)));
        s.push_str(&format!(
            "    {:<20} {}{best} ({}, {} used; goal {} here)\n",
            safe(&e.id),
            if ep.passed { "passed" } else { "not yet" },
            crate::units::plural(u64::from(ep.attempts), "attempt"),
            crate::units::plural(ep.hints as u64, "hint"),
            threshold_text(&e.goal, goal_cores(e.tasks)),
        ));
    }
    if !d.predictions.is_empty() {
        let misses: Vec<f64> = d
            .predictions
            .iter()
            .filter(|x| x.measured > 0.0)
            .map(|x| (x.predicted - x.measured).abs() / x.measured)
            .collect();
        let mean = if misses.is_empty() { 0.0 } else { misses.iter().sum::<f64>() / misses.len() as f64 };
        s.push_str(&format!("  predictions   {} made, off by {:.0}% on average\n", d.predictions.len(), mean * 100.0));
        if let Some(last) = d.predictions.last() {
            s.push_str(&format!(
                "    latest: {} predicted {:.2}, measured {:.2}\n",
                safe(&last.key),
                last.predicted,
                last.measured
            ));
        }
    }
    s
}
