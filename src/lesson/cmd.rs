//! `parlab lessons` and `parlab lint [--verify]`: list the lessons, report every error in lesson files
//! compiler-style, and (with `--verify`) run each experiment that makes claims and check them on this machine.
//! Running experiments is handed in by the caller (`main` wires in the lab), so this module stays free of it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use super::{Expect, ExperimentKind, LessonSet, goal_cores, load, load_paths, metric_value};
use crate::experiment::{Experiment, Fit, Mode, available_cores};
use crate::timeline::RunReport;
use crate::units::plural;

/// Runs each experiment once, one after another, and returns their reports in the same order.
pub(crate) type Measure<'a> = &'a mut dyn FnMut(&[Experiment]) -> Result<Vec<RunReport>>;

/// Checks every exercise of a set (its start fails, its solution passes), printing a line each; whether all held.
pub(crate) type VerifyExercises<'a> = &'a mut dyn FnMut(&LessonSet) -> Result<bool>;

/// Writes to stdout; a closed pipe (`| head`) is not an error, any other write error is.
fn print(text: &str) -> Result<()> {
    crate::stdout::print(text).context("cannot write to stdout")
}

fn warn_broken(set: &LessonSet) {
    warn_skipped(set);
    for b in &set.broken {
        eprintln!(
            "warning: {} did not load ({}); run 'parlab lint' to see where",
            b.path,
            plural(b.count() as u64, "error")
        );
    }
}

/// One warning line for each entry of a lesson folder that was not read (a directory or FIFO named `*.md`, ...).
fn warn_skipped(set: &LessonSet) {
    for s in &set.skipped {
        eprintln!("warning: {s}");
    }
}

/// `parlab lessons [--json]`. `progress` names a lesson's state ("not started", "started", "done").
pub(crate) fn lessons(dir: Option<&Path>, as_json: bool, progress: &dyn Fn(&str) -> &'static str) -> Result<u8> {
    let set = load(dir)?;
    if as_json {
        let list: Vec<_> = set
            .lessons
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "title": l.title,
                    "minutes": l.minutes,
                    "summary": l.summary,
                    "file": l.path,
                    "progress": progress(&l.id),
                })
            })
            .collect();
        print(&(serde_json::to_string_pretty(&list)? + "\n"))?;
    } else {
        let id_width = set.lessons.iter().map(|l| l.id.len()).max().unwrap_or(2).max(2);
        let mut text = format!("{:>3}  {:id_width$}  {:>3}  {:<11}  title\n", "#", "id", "min", "progress");
        for (i, l) in set.lessons.iter().enumerate() {
            text.push_str(&format!(
                "{:>3}  {:id_width$}  {:>3}  {:<11}  {}\n",
                i + 1,
                l.id,
                l.minutes,
                progress(&l.id),
                l.title
            ));
        }
        print(&text)?;
    }
    warn_broken(&set);
    Ok(0)
}

/// `parlab lint [PATH...] [--verify]`: exit 1 when a file has errors, a claim does not hold, or an exercise's start
/// passes or its solution fails.
pub(crate) fn lint(
    dir: Option<&Path>,
    paths: &[PathBuf],
    verify: bool,
    measure: Measure,
    exercises: VerifyExercises,
) -> Result<u8> {
    let set = if paths.is_empty() { load(dir)? } else { load_paths(paths)? };
    warn_skipped(&set);
    let mut text = String::new();
    for b in &set.broken {
        for error in &b.errors {
            text.push_str(&format!("{error}\n\n"));
        }
        if b.more > 0 {
            let errors = if b.more == 1 { "error" } else { "errors" };
            text.push_str(&format!("and {} more {errors} in {}\n\n", b.more, b.path));
        }
    }
    let files = set.lessons.len() + set.broken.len();
    let errors = set.error_count();
    if errors == 0 {
        text.push_str(&format!("{}, 0 errors\n", plural(set.lessons.len() as u64, "lesson")));
    } else {
        text.push_str(&format!(
            "{} in {} of {}\n",
            plural(errors as u64, "error"),
            set.broken.len(),
            plural(files as u64, "file")
        ));
    }
    print(&text)?;
    if errors > 0 {
        if verify {
            eprintln!("not verifying: fix the errors first");
        }
        return Ok(1);
    }
    if verify {
        let claims = verify_claims(&set, measure)?;
        let held = exercises(&set)?;
        return Ok(if claims == 0 && held { 0 } else { 1 });
    }
    Ok(0)
}

/// Runs every experiment with `expect` lines (and a sequential baseline) and checks each claim. An experiment with
/// a failed claim is measured once more (a busy machine can make one measurement low); the second result counts.
fn verify_claims(set: &LessonSet, measure: Measure) -> Result<u8> {
    let cores = available_cores();
    if let Some(load) = load_average()
        && load > f64::from(cores)
    {
        eprintln!(
            "warning: this machine is busy (load {load:.1} on {}); figures may come out low",
            plural(u64::from(cores), "core")
        );
    }
    let (mut claims, mut failed, mut experiments) = (0usize, 0usize, 0usize);
    for lesson in &set.lessons {
        for (n, spec) in lesson.experiments().enumerate() {
            let ExperimentKind::Run { workload, tasks, modes, knobs } = &spec.kind else {
                continue;
            };
            if spec.expect.is_empty() {
                continue;
            }
            experiments += 1;
            let name =
                format!("{} {}", lesson.path, spec.id.clone().unwrap_or_else(|| format!("experiment {}", n + 1)));
            let mut run_modes = modes.clone();
            if !run_modes.contains(&Mode::Sequential) {
                run_modes.insert(0, Mode::Sequential);
            }
            let built: Vec<Experiment> = run_modes
                .iter()
                .map(|m| Experiment::build(*workload, *tasks, *m, knobs, Fit::Lenient, cores))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("{name}: {e}"))?;
            let names: Vec<&str> = run_modes.iter().map(Mode::name).collect();
            // Each engine the experiment names checks its claims (the python one where python3 works).
            for (engine, exps) in crate::engine::verify_engines(&built, &knobs.engines) {
                let name = if knobs.engines.len() > 1 { format!("{name} ({engine})") } else { name.clone() };
                let exps = match exps {
                    Ok(exps) => exps,
                    Err(why) => {
                        eprintln!("skipping {name}: {why}");
                        continue;
                    }
                };
                // A claim about a mode this engine does not run (gil on python) is the other engine's.
                let expects: Vec<Expect> = spec.expect.iter().filter(|e| e.mode.runs_on(engine)).cloned().collect();
                eprintln!("running {name}: {workload} × {tasks} in {} ...", names.join(", "));
                let mut results = check(&expects, &measure_rounds(&exps, measure)?, goal_cores(*tasks));
                if results.iter().any(|(ok, _)| !ok) {
                    eprintln!("running {name} again: a claim did not hold");
                    results = check(&expects, &measure_rounds(&exps, measure)?, goal_cores(*tasks));
                }
                let mut text = String::new();
                for (expect, (ok, detail)) in expects.iter().zip(results) {
                    claims += 1;
                    failed += usize::from(!ok);
                    let mark = if ok { "ok    " } else { "FAILED" };
                    text.push_str(&format!("{mark}  {name}: {}  ({detail})\n", expect.goal.text));
                }
                print(&text)?;
            }
        }
    }
    let on = format!("on {}", plural(u64::from(cores), "core"));
    if failed == 0 {
        print(&format!(
            "verify: {} in {} hold {on}\n",
            plural(claims as u64, "claim"),
            plural(experiments as u64, "experiment")
        ))?;
        Ok(0)
    } else {
        print(&format!("verify: {failed} of {} FAILED {on}\n", plural(claims as u64, "claim")))?;
        Ok(1)
    }
}

/// How many times each mode runs; the median counts.
const ROUNDS: usize = 3;

/// Runs every mode once per round, round after round, so a change in the machine's load hits every mode alike;
/// each mode's report is its median round, carrying the wall times of all rounds.
fn measure_rounds(exps: &[Experiment], measure: Measure) -> Result<Vec<RunReport>> {
    let mut rounds: Vec<Vec<RunReport>> = vec![Vec::new(); exps.len()];
    for _ in 0..ROUNDS {
        let reports = measure(exps)?;
        if reports.len() != exps.len() {
            bail!("expected {} runs, got {}", exps.len(), reports.len());
        }
        for (runs, report) in rounds.iter_mut().zip(reports) {
            runs.push(report);
        }
    }
    Ok(rounds
        .into_iter()
        .map(|mut runs| {
            let walls: Vec<u64> = runs.iter().flat_map(|r| r.walls_ns.iter().copied()).collect();
            let pick = match runs.iter().position(|r| r.error().is_some()) {
                Some(failed) => failed,
                None => {
                    let mut order: Vec<usize> = (0..runs.len()).collect();
                    order.sort_by(|a, b| runs[*a].wall_ms().total_cmp(&runs[*b].wall_ms()));
                    order[order.len() / 2]
                }
            };
            let mut report = runs.swap_remove(pick);
            report.walls_ns = walls;
            report
        })
        .collect())
}

/// Each claim against the reports: whether it holds, and the measured figure or why there is none.
fn check(expects: &[Expect], reports: &[RunReport], goal_cores: u32) -> Vec<(bool, String)> {
    let baseline = reports.iter().find(|r| r.experiment.mode == Mode::Sequential && r.error().is_none());
    expects
        .iter()
        .map(|expect| match (reports.iter().find(|r| r.experiment.mode == expect.mode), baseline) {
            (Some(r), _) if r.error().is_some() => {
                (false, format!("the {} run failed: {}", r.experiment.mode, r.error().unwrap_or("")))
            }
            (Some(r), Some(b)) => {
                let value = metric_value(expect.goal.metric, r, b.wall_ms());
                let needs = format!("{} {:.2}", expect.goal.op.symbol(), expect.goal.threshold(goal_cores));
                (expect.goal.holds(value, goal_cores), format!("measured {value:.2}, needs {needs}"))
            }
            (Some(_), None) => (false, "the sequential baseline failed".to_string()),
            (None, _) => (false, format!("no {} run", expect.mode)),
        })
        .collect()
}

/// The 1-minute load average (Linux), to warn that figures taken on a busy machine may be low.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Knobs;
    use crate::timeline::Timeline;

    fn report(exp: &Experiment, wall_ms: u64) -> RunReport {
        RunReport {
            experiment: exp.clone(),
            timeline: Timeline { cores: 2, ..Timeline::default() },
            parent_pid: 1,
            walls_ns: vec![wall_ms * 1_000_000],
            speedup: None,
        }
    }

    #[test]
    fn rounds_interleave_the_modes_and_keep_each_modes_median() {
        let build = |m| Experiment::build("fib:20".parse().unwrap(), 4, m, &Knobs::default(), Fit::Lenient, 2);
        let exps = [build(Mode::Sequential).unwrap(), build(Mode::Threads).unwrap()];
        let walls = [[100, 50], [300, 40], [200, 60]];
        let mut calls = Vec::new();
        let mut round = 0;
        let mut fake = |exps: &[Experiment]| -> Result<Vec<RunReport>> {
            calls.push(exps.iter().map(|e| e.mode).collect::<Vec<_>>());
            let r = exps.iter().zip(walls[round]).map(|(e, w)| report(e, w)).collect();
            round += 1;
            Ok(r)
        };
        let reports = measure_rounds(&exps, &mut fake).unwrap();
        assert_eq!(calls.len(), ROUNDS, "every round runs every mode");
        assert_eq!(reports[0].wall_ms(), 200.0);
        assert_eq!(reports[0].walls_ns.len(), 3);
        assert_eq!(reports[1].wall_ms(), 50.0);
        let expects = [Expect {
            mode: Mode::Threads,
            goal: crate::lesson::goal::parse_claim("threads.speedup >= 0.9 * cores").unwrap().goal,
        }];
        let results = check(&expects, &reports, 2);
        assert_eq!(results, [(true, "measured 4.00, needs >= 1.80".to_string())]);
    }
}
