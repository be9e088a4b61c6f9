//! `parlab lint` and `parlab lessons` on the real binary: the shipped lessons pass; every fixture under
//! tests/fixtures/lint/ (one per kind of error) fails with its own message at its own `file:line:col`; a broken file
//! never stops the others from loading; `lint --verify` checks claims by running them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{bin, parlab_bounded, stderr, stdout};

const DIR: &str = "tests/fixtures/lint";

/// Runs parlab from the package root, so fixture paths print as written here (with an empty progress folder of its
/// own, never the user's or another test's).
#[track_caller]
fn parlab_here(args: &[&str]) -> Output {
    let data = tempfile::tempdir().expect("a temporary folder");
    Command::new(bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PARLAB_DATA_DIR", data.path())
        .stdin(Stdio::null())
        .output()
        .expect("parlab runs")
}

/// Each fixture (a file, or a folder linted as a whole), the one error it must produce (`line:col: message`, after
/// the path), and the note under the caret when there is one.
const CASES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "front-matter-missing.md",
        "",
        "1:1: a lesson must start with TOML front matter: a '+++' line, the fields, and another '+++' line",
        None,
    ),
    ("front-matter-unclosed.md", "", "1:1: the front matter opened here is never closed with a '+++' line", None),
    ("front-matter-missing-field.md", "", "1:1: the front matter is missing the required field 'minutes'", None),
    (
        "front-matter-unknown-field.md",
        "",
        "5:1: unknown field 'author' in the front matter",
        Some("expected one of: id, title, minutes, summary, covers"),
    ),
    ("bad-toml.md", "", "16:9: bad TOML: extra `=`, expected nothing", None),
    (
        "unknown-block-field.md",
        "",
        "17:1: unknown field 'repeat' in the experiment block",
        Some("expected one of: id, demo,"),
    ),
    ("wrong-type.md", "", "16:9: 'tasks' must be a whole number (found a string)", None),
    ("missing-block-field.md", "", "13:1: the experiment block is missing the required field 'tasks'", None),
    (
        "unknown-workload.md",
        "",
        "15:12: unknown workload 'fibb' (expected one of: fib, squares, count, pi, primes, tiny, sleep, logs)",
        Some("did you mean 'fib'?"),
    ),
    ("size-out-of-range.md", "", "15:12: workload size 99 for fib is out of range (allowed 1..=42)", None),
    ("tasks-out-of-range.md", "", "16:9: tasks 0 is out of range (allowed 1..=10000000)", None),
    (
        "unknown-mode.md",
        "",
        "17:24: unknown mode 'thread' (expected one of: sequential, threads, gil, processes, async, async-offload, \
         interpreters, dask, ray)",
        Some("did you mean 'threads'?"),
    ),
    (
        "knob-does-not-fit.md",
        "",
        "18:1: 'start' has no effect here: it applies to processes, and the modes are sequential, threads",
        None,
    ),
    ("bad-expect.md", "", "18:28: 'threads.speedup > 0.5 * cores' compares with '>'", Some("use '>=' or '<='")),
    (
        "expect-mode-not-in-modes.md",
        "",
        "18:12: expect names mode 'processes', which is not in this experiment's modes (sequential, threads)",
        None,
    ),
    (
        "quiz-answer-out-of-range.md",
        "",
        "24:10: answer 2 is out of range: choices are numbered from 0, so allowed 0..=1",
        None,
    ),
    ("duplicate-experiment-id.md", "", "22:6: experiment id 'compare' is used twice in this lesson", None),
    (
        "unknown-demo.md",
        "",
        "15:8: unknown demo 'coww' (expected one of: start-cost, isolation, cow, ipc, queue-batching, race, \
         shared-memory, convoy)",
        Some("did you mean 'cow'?"),
    ),
    ("bad-goal.md", "", "38:17: 'speedup => 1.5' compares with '='", Some("use '>=' or '<='")),
    (
        "goal-names-a-mode.md",
        "",
        "38:9: an exercise goal must not name a mode ('gil.speedup >= 1.5')",
        Some("the goal is measured on the learner's setup"),
    ),
    (
        "unknown-knob.md",
        "",
        "37:10: unknown knob 'workrs' (expected one of: mode, workers, chunksize, start, switch_interval, payload, \
         warm, size, tasks)",
        Some("did you mean 'workers'?"),
    ),
    (
        "exercise-knob-does-not-fit.md",
        "",
        "37:21: 'chunksize' has no effect here: it applies to processes and threads, and the modes are gil",
        None,
    ),
    (
        "no-sections.md",
        "",
        "9:1: the lesson has no section: start each one with a '## ' heading",
        Some("the learner steps through sections"),
    ),
    (
        "nested-block.md",
        "",
        "23:3: a 'quiz' block must start at the left margin, outside lists and quotes",
        Some("otherwise it would be shown as plain code"),
    ),
    ("unknown-fence-option.md", "", "28:11: unknown option 'runable' on a 'python' fence (expected: runnable)", None),
    ("title-too-long.md", "", "3:9: 'title' is 101 characters long; the limit is 100", None),
    ("heading-too-long.md", "", "11:1: this section heading is 101 characters long; the limit is 100", None),
    ("too-many-choices.md", "", "23:11: 'choices' lists 11 items; the limit is 10", None),
    (
        "line-too-long.md",
        "",
        "9:10001: this line is 10001 characters long; the limit is 10000",
        Some("break it into shorter lines"),
    ),
    (
        "raw-control-character.md",
        "",
        "9:25: control character \\x1b (U+001B) in the text: it would act on the learner's terminal",
        Some("remove it"),
    ),
    (
        "control-in-toml-string.md",
        "",
        "3:9: 'title' contains the control character \\x1b (U+001B), which would act on the terminal",
        None,
    ),
    (
        "control-in-markdown-entity.md",
        "",
        "9:25: this text decodes to the control character \\x1b (U+001B), which would act on the learner's terminal",
        None,
    ),
    (
        "experiment-runs-for-years.md",
        "",
        "13:1: this experiment would take at least 19 years to run sequentially (sleep:60000 × 10000000, about 60 s a \
         task on a 2-core x86-64 machine); the limit is 10 minutes: use fewer tasks or a smaller size",
        None,
    ),
    (
        "exercise-runs-for-years.md",
        "",
        "30:1: this exercise would take at least 36.1 hours to run sequentially (fib:42 × 100000, about 1.3 s a task \
         on a 2-core x86-64 machine); the limit is 10 minutes: use fewer tasks or a smaller size",
        None,
    ),
    (
        "press-key-without-block.md",
        "",
        "13:7: this section says press `c` (compare), but it has no workload experiment or exercise",
        Some("the panel shows only the blocks of the section being read"),
    ),
    (
        "press-x-without-exercise.md",
        "",
        "28:27: this section says press `x` (check), but it has no exercise",
        Some("the panel shows only the blocks of the section being read"),
    ),
    (
        "nth-experiment-missing.md",
        "",
        "28:14: 'the second experiment', but this section has only 1 experiment",
        Some("the panel shows only the blocks of the section being read"),
    ),
    (
        "solution-missing.md",
        "",
        "30:1: the exercise block is missing the required field 'solution': the intended fix, e.g. solution = { mode = \
         \"processes\", workers = 2 } (lint --verify checks that the start fails and it passes)",
        None,
    ),
    (
        "solution-knob-not-allowed.md",
        "",
        "41:27: the solution changes 'start', which this exercise does not let the learner change (knobs: workers)",
        None,
    ),
    (
        "duplicate-lesson-id",
        "02-second.md",
        "2:6: lesson id 'same-lesson' is already used by tests/fixtures/lint/duplicate-lesson-id/01-first.md",
        None,
    ),
    (
        "duplicate-exercise-id",
        "02-second.md",
        "31:6: exercise id 'same-exercise' is already used by tests/fixtures/lint/duplicate-exercise-id/01-first.md",
        Some("exercise ids are unique across all lessons"),
    ),
];

/// Checks one fixture (and that linting it stays under the memory bound); returns what was wrong, if anything.
fn check_case(fixture: &str, inner: &str, headline: &str, label: Option<&str>) -> Option<String> {
    let target = format!("{DIR}/{fixture}");
    let o = parlab_bounded(Path::new(env!("CARGO_MANIFEST_DIR")), &["lint", &target]);
    let out = stdout(&o);
    let file = if inner.is_empty() { target.clone() } else { format!("{target}/{inner}") };
    let expected = format!("error: {file}:{headline}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    if o.status.code() != Some(1) || errors != [expected.as_str()] {
        return Some(format!(
            "{fixture}: expected exit 1 and exactly\n  {expected}\ngot {:?}:\n{out}",
            o.status.code()
        ));
    }
    if let Some(label) = label {
        let caret_line = out.lines().find(|l| l.contains('^')).unwrap_or("");
        if !caret_line.contains(label) {
            return Some(format!("{fixture}: expected '{label}' under the caret, got:\n{out}"));
        }
    }
    let files = if inner.is_empty() { 1 } else { 2 };
    let summary = format!("1 error in 1 of {files} file{}", if files == 1 { "" } else { "s" });
    if out.lines().last() != Some(summary.as_str()) {
        return Some(format!("{fixture}: expected the summary '{summary}', got:\n{out}"));
    }
    None
}

#[test]
fn every_broken_fixture_fails_with_its_message_at_its_place() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|(fixture, inner, headline, label)| check_case(fixture, inner, headline, *label))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_fixture_file_has_a_case() {
    let mut listed: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    listed.push("missing-python-starter.md");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(listed.contains(&name.as_str()), "fixture {name} has no expected message in tests/lint.rs");
    }
}

#[test]
fn a_missing_python_starter_is_an_error_once_starters_exist() {
    let starters = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/exercises");
    let have = std::fs::read_dir(starters).map(|d| d.flatten().count()).unwrap_or(0);
    let o = parlab_here(&["lint", &format!("{DIR}/missing-python-starter.md")]);
    if have == 0 {
        assert_eq!(o.status.code(), Some(0), "no starters yet, so not checked: {}", stdout(&o));
        return;
    }
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let expected = format!(
        "error: {DIR}/missing-python-starter.md:40:10: python starter 'no_such_starter.py' is not in assets/exercises/ (have: "
    );
    assert!(out.starts_with(&expected), "expected\n  {expected}...\ngot\n{out}");
}

#[test]
fn errors_show_the_line_and_a_caret_under_the_value() {
    let o = parlab_here(&["lint", &format!("{DIR}/unknown-mode.md")]);
    let out = stdout(&o);
    let expected = "   |\n\
                    17 | modes = [\"sequential\", \"thread\"]\n   \
                    |                        ^^^^^^^^ did you mean 'threads'?\n";
    assert!(out.contains(expected), "expected\n{expected}\nin\n{out}");
}

#[test]
fn one_run_reports_the_errors_of_every_file() {
    let o = parlab_here(&["lint", DIR]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .count();
    let errors = out.lines().filter(|l| l.starts_with("error: ")).count();
    assert!(errors >= files - 1, "{errors} errors for {files} files:\n{out}");
    assert!(out.trim_end().ends_with(&format!("errors in {} of {files} files", errors.min(files))), "{out}");
}

#[test]
fn the_shipped_lessons_lint_clean() {
    for args in [&["lint"][..], &["lint", "lessons"], &["--lessons", "lessons", "lint"]] {
        let o = parlab_here(args);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "parlab {args:?}:\n{out}{}", stderr(&o));
        assert!(out.trim_end().ends_with("lessons, 0 errors"), "{out}");
        assert!(!out.contains("error:"), "{out}");
    }
}

#[test]
fn lint_of_a_missing_path_is_a_usage_error() {
    let o = parlab_here(&["lint", "no/such/lesson.md"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read 'no/such/lesson.md'"), "{}", stderr(&o));
}

#[test]
fn lessons_json_lists_id_title_minutes_summary_file_and_progress() {
    let o = parlab_here(&["lessons", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().expect("an array");
    assert!(list.len() >= 12);
    for l in list {
        for key in ["id", "title", "summary", "file"] {
            assert!(l[key].as_str().is_some_and(|s| !s.is_empty()), "{key} in {l}");
        }
        assert!(l["minutes"].as_u64().is_some_and(|m| (1..=60).contains(&m)), "{l}");
        assert_eq!(l["progress"], "not started", "{l}");
    }
    assert_eq!(list[2]["id"], "gil");
    assert_eq!(list[2]["file"], "lessons/03-the-gil.md");
    let table = stdout(&parlab_here(&["lessons"]));
    assert!(table.lines().any(|l| l.contains(" gil ") && l.contains("The GIL")), "{table}");
}

#[test]
fn a_broken_lesson_file_does_not_stop_the_others_from_loading() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("lessons/03-the-gil.md"), dir.path().join("03-the-gil.md")).unwrap();
    std::fs::copy(root.join(DIR).join("unknown-mode.md"), dir.path().join("04-broken.md")).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = parlab_here(&["--lessons", d, "lessons", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = list.as_array().unwrap().iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, ["gil"]);
    assert!(stderr(&o).contains("04-broken.md did not load (1 error)"), "{}", stderr(&o));
    let o = parlab_here(&["--lessons", d, "lint"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).trim_end().ends_with("1 error in 1 of 2 files"), "{}", stdout(&o));
}

#[test]
fn verify_runs_the_experiment_and_reports_each_claim() {
    let o = parlab_here(&["lint", "--verify", "tests/fixtures/verify/holds"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let ok: Vec<&str> = out.lines().filter(|l| l.starts_with("ok")).collect();
    assert_eq!(ok.len(), 2, "{out}");
    assert!(ok[0].contains("sequential.speedup >= 1  (measured 1.00, needs >= 1.00)"), "{out}");
    assert!(out.contains("verify: 2 claims in 1 experiment hold"), "{out}");

    let o = parlab_here(&["lint", "--verify", "tests/fixtures/verify/fails"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(failed[0].contains("01-fails.md never: sequential.wall_ms <= 0  (measured "), "{out}");
    assert!(out.contains("verify: 1 of 2 claims FAILED"), "{out}");
}

#[test]
fn verify_reports_an_exercise_whose_start_already_passes() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let o = Command::new(bin())
        .args(["lint", "--verify", "tests/fixtures/verify/trivial-start"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PARLAB_DATA_DIR", data.path())
        .env("PARLAB_CHECK_REPS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("parlab runs");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    let line = out.lines().find(|l| l.starts_with("nothing-to-do ")).unwrap_or_else(|| panic!("no line: {out}"));
    assert!(line.contains("(pass ✗, measured twice)"), "the start passes, which it must not: {line}");
    assert!(line.contains("solution ") && line.contains("(pass ✓"), "{line}");
    assert!(line.contains("goal speedup ≥ 0.00×") && line.ends_with("(solution: --mode threads)"), "{line}");
    assert!(
        out.contains("    start: the starting setup already meets the goal, so the exercise asks for nothing"),
        "{out}"
    );
    assert!(out.contains("verify: 1 of 1 exercise check FAILED"), "{out}");
}

#[test]
fn verify_skips_the_python_files_with_a_note_when_there_is_no_python3() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let empty = tempfile::tempdir().expect("a temporary folder");
    let o = Command::new(bin())
        .args(["lint", "--verify", "tests/fixtures/verify/python-skipped"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PARLAB_DATA_DIR", data.path())
        .env("PARLAB_CHECK_REPS", "1")
        .env("PATH", empty.path())
        .stdin(Stdio::null())
        .output()
        .expect("parlab runs");
    let out = stdout(&o);
    assert!(out.contains("\nno-python-here "), "the native check still runs: {out}\n{}", stderr(&o));
    assert!(!out.contains("no-python-here (py)"), "{out}");
    assert!(out.contains("skipped the Python files of no-python-here: python3 was not found on PATH"), "{out}");
    assert!(out.contains("verify: 1 of 1 exercise check FAILED"), "only the native check counts: {out}");
}
