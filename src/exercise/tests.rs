use super::python::{FileRun, Timings, judge_timings};
use super::*;
use crate::cli::CheckArgs;
use crate::experiment::{Knobs, StartMethod};
use crate::lesson::{Knob, Solution};

fn goal(metric: Metric, op: Op, value: f64, per_core: bool, text: &str) -> Goal {
    Goal { metric, op, value, per_core, text: text.to_string() }
}

fn speedup_goal(value: f64) -> Goal {
    goal(Metric::Speedup, Op::AtLeast, value, true, &format!("speedup >= {value} * cores"))
}

fn spec() -> ExerciseSpec {
    ExerciseSpec {
        id: "beat-the-gil".into(),
        title: "Beat the GIL".into(),
        workload: "fib:30".parse().unwrap(),
        tasks: 16,
        baseline: Mode::Sequential,
        mode: Mode::Gil,
        knobs: Knobs { workers: Some(2), ..Knobs::default() },
        may_change: vec![Knob::Mode, Knob::Workers],
        goal: speedup_goal(0.7),
        hints: vec!["one".into(), "two".into()],
        explain: "Each process has its own GIL.".into(),
        python: Some("fib_pool.py".into()),
        solution: Box::new(Solution { mode: Some(Mode::Processes), ..Solution::default() }),
    }
}

fn sides(base: &[f64], mine: &[f64]) -> Sides {
    Sides {
        baseline: "sequential (baseline)".into(),
        setup: "your setup: processes".into(),
        baseline_walls_ms: base.to_vec(),
        setup_walls_ms: mine.to_vec(),
    }
}

#[test]
fn thresholds_scale_with_the_cores_a_check_can_use() {
    let s = spec();
    // The same measured speedup of 1.5x passes on 2 cores (needs 1.4x) and fails on 4 (needs 2.8x).
    for (cores, threshold, passes) in [(1, 0.7, true), (2, 1.4, true), (4, 2.8, false), (8, 5.6, false)] {
        let o = judge(&s, 1.5, cores, &sides(&[300.0], &[200.0]), vec![]);
        assert!((o.threshold - threshold).abs() < 1e-9, "{cores} cores: {}", o.threshold);
        assert_eq!(o.passed, passes, "{cores} cores");
        assert_eq!(o.cores, cores);
    }
    let summary = judge(&s, 1.5, 2, &sides(&[300.0], &[200.0]), vec![]).summary;
    assert_eq!(summary, "speedup 1.50× ≥ 1.40× (0.7 × 2 cores)");
}

#[test]
fn goals_without_cores_do_not_scale() {
    let mut s = spec();
    s.goal = goal(Metric::Speedup, Op::AtLeast, 1.4, false, "speedup >= 1.4");
    for cores in [1, 2, 16] {
        assert_eq!(judge(&s, 1.3, cores, &sides(&[1.0], &[1.0]), vec![]).threshold, 1.4);
    }
}

#[test]
fn at_most_goals_pass_below_the_threshold_and_keep_the_lowest_as_best() {
    let mut s = spec();
    s.goal = goal(Metric::OverheadShare, Op::AtMost, 0.5, false, "overhead_share <= 0.5");
    let pass = judge(&s, 0.2, 2, &sides(&[10.0], &[12.0]), vec![]);
    assert!(pass.passed && !pass.higher_is_better);
    assert_eq!(pass.summary, "overhead share 20% ≤ 50%");
    let fail = judge(&s, 0.8, 2, &sides(&[10.0], &[12.0]), vec!["why not: ipc".into()]);
    assert!(!fail.passed);
    assert_eq!(fail.summary, "overhead share 80% > 50%");
}

#[test]
fn the_outcome_carries_the_medians_the_figures_and_why() {
    let s = spec();
    let pass = judge(&s, 1.9, 2, &sides(&[900.0, 950.0, 1000.0], &[480.0, 500.0, 700.0]), vec![]);
    assert_eq!((pass.baseline_ms, pass.setup_ms, pass.reps), (950.0, 500.0, 3));
    let text = pass.text("beat-the-gil");
    assert!(text.contains("sequential (baseline): median 950 ms of 3 runs (900 ms–1000 ms)"), "{text}");
    assert!(text.contains("your setup: processes: median 500 ms of 3 runs"), "{text}");
    assert!(text.contains("goal: speedup >= 0.7 * cores with 2 cores (yours"), "{text}");
    assert!(text.contains("why: Each process has its own GIL."), "{text}");
    let fail = judge(&s, 1.0, 2, &sides(&[900.0], &[900.0]), vec!["why not: the GIL".into()]);
    assert!(fail.text("beat-the-gil").contains("why not: the GIL"));
    assert!(!fail.text("beat-the-gil").contains("why: Each process"), "the explanation is the reward for passing");
}

#[test]
fn the_starting_setup_is_valid_and_allowed_knobs_may_change() {
    let s = spec();
    let start = setup_from_spec(&s, 2).unwrap();
    assert_eq!((start.mode, start.workers), (Mode::Gil, 2));
    assert_eq!(validate_setup(&s, &start, 2), Ok(()));
    let k = Knobs { workers: Some(4), ..Knobs::default() };
    let mine = Experiment::build(s.workload, s.tasks, Mode::Processes, &k, Fit::Lenient, 2).unwrap();
    assert_eq!(validate_setup(&s, &mine, 2), Ok(()));
}

#[test]
fn a_knob_the_exercise_does_not_allow_is_refused_by_name() {
    let s = spec();
    let k = Knobs { workers: Some(2), chunksize: Some(4), ..Knobs::default() };
    let mine = Experiment::build(s.workload, s.tasks, Mode::Processes, &k, Fit::Lenient, 2).unwrap();
    assert_eq!(
        validate_setup(&s, &mine, 2).unwrap_err(),
        "exercise 'beat-the-gil' does not let you change chunksize (it stays 2, you have 4; you may change: mode, workers)"
    );
    let k = Knobs { workers: Some(2), start: Some(StartMethod::Fork), ..Knobs::default() };
    let mine = Experiment::build(s.workload, s.tasks, Mode::Processes, &k, Fit::Lenient, 2).unwrap();
    assert!(validate_setup(&s, &mine, 2).unwrap_err().contains("does not let you change start"));
    let bigger = Experiment::build("fib:31".parse().unwrap(), s.tasks, Mode::Gil, &s.knobs, Fit::Lenient, 2).unwrap();
    assert!(validate_setup(&s, &bigger, 2).unwrap_err().contains("does not let you change size (it stays fib:30"));
    let other = Experiment::build("pi:1000".parse().unwrap(), s.tasks, Mode::Gil, &s.knobs, Fit::Lenient, 2).unwrap();
    assert!(validate_setup(&s, &other, 2).unwrap_err().contains("its kind cannot change"));
}

#[test]
fn a_mode_change_is_refused_when_mode_is_not_a_knob() {
    let mut s = spec();
    s.may_change = vec![Knob::Workers];
    let mine = Experiment::build(s.workload, s.tasks, Mode::Threads, &s.knobs, Fit::Lenient, 2).unwrap();
    assert!(validate_setup(&s, &mine, 2).unwrap_err().contains("change mode (it stays gil, you have threads"));
}

#[test]
fn changing_workers_moves_the_default_chunksize_without_counting_as_a_chunksize_change() {
    let mut s = spec();
    s.mode = Mode::Processes;
    s.tasks = 64;
    s.knobs = Knobs::default();
    s.may_change = vec![Knob::Workers];
    let k = Knobs { workers: Some(4), ..Knobs::default() };
    let mine = Experiment::build(s.workload, s.tasks, Mode::Processes, &k, Fit::Lenient, 2).unwrap();
    assert_eq!(mine.chunksize, 4);
    assert_eq!(validate_setup(&s, &mine, 2), Ok(()));
}

#[test]
fn the_baseline_does_the_same_work_as_the_setup() {
    let mut s = spec();
    s.may_change.push(Knob::Size);
    let mine =
        Experiment::build("fib:33".parse().unwrap(), 16, Mode::Processes, &Knobs::default(), Fit::Lenient, 2).unwrap();
    let base = baseline_for(&s, &mine, 2).unwrap();
    assert_eq!((base.mode, base.workload, base.tasks), (Mode::Sequential, mine.workload, 16));
}

#[test]
fn knob_flags_build_the_learners_setup() {
    let s = spec();
    let args = CheckArgs {
        mode: Some("processes".into()),
        knobs: crate::cli::KnobArgs { workers: Some(3), ..Default::default() },
        ..CheckArgs::default()
    };
    let e = commands::setup_from_args(&s, &args, 2).unwrap();
    assert_eq!((e.mode, e.workers, e.workload, e.tasks), (Mode::Processes, 3, s.workload, 16));
    let none = commands::setup_from_args(&s, &CheckArgs::default(), 2).unwrap();
    assert_eq!(none, setup_from_spec(&s, 2).unwrap());
}

#[test]
fn knob_flags_that_do_not_fit_the_mode_or_range_are_refused() {
    let s = spec();
    let start = CheckArgs {
        mode: Some("threads".into()),
        knobs: crate::cli::KnobArgs { start: Some("fork".into()), ..Default::default() },
        ..CheckArgs::default()
    };
    let err = commands::setup_from_args(&s, &start, 2).unwrap_err().to_string();
    assert_eq!(err, "--start applies only to --mode processes, not threads");
    let bad = CheckArgs { mode: Some("thread".into()), ..CheckArgs::default() };
    assert!(commands::setup_from_args(&s, &bad, 2).unwrap_err().to_string().contains("did you mean 'threads'"));
    let big = CheckArgs { size: Some(99), ..CheckArgs::default() };
    let err = commands::setup_from_args(&s, &big, 2).unwrap_err().to_string();
    assert_eq!(err, "workload size 99 for fib is out of range (allowed 1..=42)");
}

#[test]
fn resizing_keeps_a_fib_range_and_refuses_tiny() {
    let w: Workload = "fib:30..33".parse().unwrap();
    assert_eq!(resize(w, 35).unwrap().to_string(), "fib:32..35");
    assert!(resize(w, 2).unwrap_err().contains("too small"));
    assert!(resize(Workload::Tiny, 3).is_err());
}

#[test]
fn reps_come_from_the_environment_within_a_range() {
    assert_eq!(parse_reps(None).unwrap(), 3);
    assert_eq!(parse_reps(Some("1")).unwrap(), 1);
    for bad in ["0", "99", "three"] {
        let err = parse_reps(Some(bad)).unwrap_err().to_string();
        assert!(err.contains(&format!("'{bad}'")) && err.contains("1..=15"), "{err}");
    }
}

fn timings(seq: &[f64], par: &[f64]) -> Timings {
    Timings {
        sequential_ms: seq.to_vec(),
        parallel_ms: par.to_vec(),
        python: "3.11.7".into(),
        parallel_ns: Vec::new(),
        sampled: None,
    }
}

#[test]
fn python_timings_are_judged_by_their_medians_and_scaled_cores() {
    let s = spec();
    let t = timings(&[500.0, 520.0, 900.0], &[260.0, 280.0, 300.0]);
    let two = judge_timings(&s, &t, 2);
    assert!((two.measured - 520.0 / 280.0).abs() < 1e-9);
    assert!(two.passed, "{}", two.text("beat-the-gil"));
    assert!(two.text("beat-the-gil").contains("sequential() (Python 3.11.7): median 520 ms of 3 runs"));
    let four = judge_timings(&s, &t, 4);
    assert!(!four.passed);
    assert!(four.text("beat-the-gil").contains("not enough for 4 cores"), "{}", four.text("beat-the-gil"));
    let slower = judge_timings(&s, &timings(&[500.0], &[510.0]), 2);
    assert!(
        slower.text("beat-the-gil").contains("parallel() was slower than sequential()"),
        "{}",
        slower.text("beat-the-gil")
    );
}

fn problem(json: &str) -> String {
    match python::interpret_json(json, "my.py") {
        FileRun::Problem(p) => p,
        FileRun::Timed(t) => panic!("expected a problem, got {t:?}"),
    }
}

#[test]
fn every_bad_file_gets_its_own_message() {
    assert_eq!(
        problem(r#"{"ok": false, "error": "syntax", "line": 12, "message": "'(' was never closed", "text": "def f("}"#),
        "my.py:12: syntax error: '(' was never closed (in `def f(`)"
    );
    assert_eq!(
        problem(
            r#"{"ok": false, "error": "exception", "stage": "parallel", "line": 7, "message": "ZeroDivisionError: division by zero"}"#
        ),
        "my.py:7: parallel() raised ZeroDivisionError: division by zero"
    );
    assert_eq!(
        problem(
            r#"{"ok": false, "error": "exception", "stage": "import", "line": 1, "message": "ModuleNotFoundError: No module named 'nump'"}"#
        ),
        "my.py:1: importing the file raised ModuleNotFoundError: No module named 'nump'"
    );
    assert_eq!(
        problem(r#"{"ok": false, "error": "missing", "name": "parallel"}"#),
        "my.py defines no function parallel(): the check calls sequential() and parallel(), with no arguments"
    );
    assert_eq!(
        problem(r#"{"ok": false, "error": "not-callable", "name": "sequential", "kind": "list"}"#),
        "my.py: sequential is a list, not a function"
    );
    assert!(
        problem(r#"{"ok": false, "error": "unequal", "who": "parallel", "expected": "57176", "got": "55424"}"#)
            .starts_with("parallel() returned 55424 but sequential() returned 57176: the results must be equal")
    );
    assert!(
        problem(r#"{"ok": false, "error": "unequal", "who": "sequential", "expected": "1", "got": "2"}"#)
            .contains("it must give the same answer every time")
    );
    assert!(problem(r#"{"ok": false, "error": "shadows", "name": "json"}"#).contains("rename the file"));
}

#[test]
fn the_verdict_is_data_and_said_once_on_each_screen() {
    let s = spec();
    let fail = judge(&s, 0.93, 2, &sides(&[900.0], &[968.0]), vec![]);
    assert!(!fail.passed);
    for word in ["PASSED", "NOT YET", "not yet", "passed"] {
        assert!(!fail.summary.contains(word), "the summary carries no verdict: {}", fail.summary);
    }
    let text = fail.text("beat-the-gil");
    assert!(text.starts_with("NOT YET beat-the-gil: speedup 0.93× < 1.40× (0.7 × 2 cores)\n"), "{text}");
    assert_eq!(text.matches("NOT YET").count(), 1, "{text}");
    let pass = judge(&s, 1.5, 2, &sides(&[900.0], &[600.0]), vec![]);
    assert!(pass.text("beat-the-gil").starts_with("PASSED beat-the-gil: speedup 1.50×"));
    assert_eq!((pass.verdict(), fail.verdict()), ("PASSED", "NOT YET"));
}

#[test]
fn close_to_the_goal_means_within_ten_percent_of_it() {
    let g = speedup_goal(0.7);
    // On 2 cores the goal is 1.40×: 1.30× is 7% short, 1.25× is 11% short, 0.93× is 34% short.
    assert!(how_near(&g, 1.30, 2).starts_with("the figures are close to the goal (1.30× against 1.40×)"));
    assert!(how_near(&g, 1.25, 2).starts_with("the figures are far from the goal (1.25× against 1.40×)"));
    assert!(how_near(&g, 0.93, 2).starts_with("the figures are far from the goal (0.93× against 1.40×)"));
    // An at-most goal: 105 ms against 100 ms is close, 150 ms is not.
    let wall = goal(Metric::WallMs, Op::AtMost, 100.0, false, "wall_ms <= 100");
    assert!(how_near(&wall, 105.0, 2).contains("close to the goal"));
    assert!(how_near(&wall, 150.0, 2).contains("far from the goal"));
}

#[test]
fn timings_below_the_floor_cannot_be_judged() {
    let noise = python::too_short(&timings(&[0.001, 0.002, 0.001], &[0.001, 0.001, 0.001])).expect("refused");
    assert!(noise.starts_with("sequential() took 0.00 ms (median of 3 runs), too short to judge"), "{noise}");
    assert!(noise.contains("at least 5.00 ms"), "{noise}");
    assert!(python::too_short(&timings(&[4.9], &[1.0])).is_some());
    assert_eq!(python::too_short(&timings(&[5.0, 6.0, 7.0], &[0.5, 0.5, 0.5])), None);
}

#[test]
fn the_files_own_words_are_escaped_in_every_message() {
    let p = problem(
        r#"{"ok": false, "error": "exception", "stage": "parallel", "line": 3, "message": "ValueError: \u001b]0;pwned\u0007\u001b[2J"}"#,
    );
    assert_eq!(p, r"my.py:3: parallel() raised ValueError: \x1b]0;pwned\x07\x1b[2J");
    let p =
        problem(r#"{"ok": false, "error": "unequal", "who": "parallel", "expected": "1", "got": "\u001b[31mred\r"}"#);
    assert!(p.starts_with(r"parallel() returned \x1b[31mred\r but sequential() returned 1"), "{p}");
    let unreadable = problem("not json \u{1b}[2J");
    assert!(unreadable.ends_with(r"not json \x1b[2J"), "{unreadable}");
    assert!(!unreadable.contains('\u{1b}'));
}
