//! `parlab progress` and the progress file seen from outside: shown, reset after confirmation, a corrupt file moved
//! aside, and several parlab processes saving at once without losing each other's updates.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::exercises::{command, exercise_block, run};
use crate::util::{stderr, stdout};

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn saved(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("progress.json")).expect("a progress file");
    serde_json::from_str(&text).expect("the progress file is whole, valid JSON")
}

#[test]
fn progress_on_a_fresh_folder_shows_a_fresh_start() {
    let data = tempfile::tempdir().unwrap();
    let o = run(data.path(), 1, &["progress"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&data.path().join("progress.json").display().to_string()), "{out}");
    assert!(out.contains("resume at     the beginning"), "{out}");
    assert!(out.contains("exercises     0 of "), "{out}");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn a_corrupt_progress_file_is_moved_aside_with_a_warning() {
    let data = tempfile::tempdir().unwrap();
    let garbage = "{\"lessons\": {\"gil\": tru";
    std::fs::write(data.path().join("progress.json"), garbage).unwrap();
    let o = run(data.path(), 1, &["progress"]);
    assert!(o.status.success(), "a damaged file is a warning, not an error: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("warning: the progress file") && err.contains("was damaged"), "{err}");
    let names = files_in(data.path());
    let aside: Vec<&String> = names.iter().filter(|n| n.starts_with("progress.json.corrupt-")).collect();
    assert_eq!(aside.len(), 1, "{names:?}");
    assert_eq!(std::fs::read_to_string(data.path().join(aside[0])).unwrap(), garbage, "kept as it was");
    assert!(!names.contains(&"progress.json".to_string()), "{names:?}");
    // The next run starts fresh and quietly.
    let again = run(data.path(), 1, &["progress"]);
    assert!(stderr(&again).is_empty(), "{}", stderr(&again));
}

#[test]
fn reset_clears_only_after_confirmation() {
    let lessons = crate::exercises::fixture_lessons();
    let l = lessons.path().to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = run(data.path(), 1, &["--lessons", l, "check", "quick-pass"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(saved(data.path())["exercises"]["quick-pass"]["passed"], true);

    let mut child = command(data.path(), 1, &["progress", "--reset"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("Clear all progress in"), "{}", stderr(&o));
    assert!(stdout(&o).contains("Nothing cleared."), "{}", stdout(&o));
    assert_eq!(saved(data.path())["exercises"]["quick-pass"]["passed"], true);

    let o = run(data.path(), 1, &["progress", "--reset", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Progress cleared"), "{}", stdout(&o));
    assert_eq!(saved(data.path())["exercises"], serde_json::json!({}));

    let o = run(data.path(), 1, &["progress", "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--yes only goes with --reset"));
}

#[test]
fn several_parlab_processes_saving_at_once_lose_no_update() {
    // Six exercises, each checked by its own parlab process, all started together: every process loads the
    // file before the others have saved, so a plain overwrite would keep only the last one.
    let lessons = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..6).map(|i| format!("writer-{i}")).collect();
    let mut text = String::from(
        "+++\nid = \"writers\"\ntitle = \"Writers\"\nminutes = 1\nsummary = \"Six quick exercises.\"\n\
         covers = [\"tests\"]\n+++\n\nSix at once.\n\n## All\n",
    );
    for id in &ids {
        text.push_str(&exercise_block(id, "wall_ms <= 60000"));
    }
    std::fs::write(lessons.path().join("01-writers.md"), text).unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("quick.py");
    // Long enough to time (a check refuses timings under 5 ms); sleeping keeps six at once cheap.
    std::fs::write(
        &file,
        "import time\n\ndef sequential():\n    time.sleep(0.01)\n    return 1\n\n\
         def parallel():\n    time.sleep(0.01)\n    return 1\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let l = lessons.path().to_str().unwrap();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            command(data.path(), 1, &["--lessons", l, "check", id])
                .arg(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    }
    let progress = saved(data.path());
    for id in &ids {
        assert_eq!(progress["exercises"][id]["passed"], true, "{id} was lost: {progress}");
    }
    let names = files_in(data.path());
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "no temp file left: {names:?}");
}

#[test]
fn a_progress_file_from_a_newer_parlab_is_shown_and_never_overwritten() {
    let lessons = crate::exercises::fixture_lessons();
    let l = lessons.path().to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let newer = r#"{"version": 99, "exercises": {"quick-fail": {"passed": true}}, "theme": "contrast"}"#;
    std::fs::write(data.path().join("progress.json"), newer).unwrap();
    let o = run(data.path(), 1, &["--lessons", l, "check", "quick-pass"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("warning: ").count(), 1, "said once: {err}");
    assert!(err.contains("is in format 99, newer than this parlab's (1)"), "{err}");
    assert_eq!(std::fs::read_to_string(data.path().join("progress.json")).unwrap(), newer);
    let shown = run(data.path(), 1, &["--lessons", l, "progress"]);
    assert!(stdout(&shown).contains("quick-fail") && stdout(&shown).contains("read-only"), "{}", stdout(&shown));
    let reset = run(data.path(), 1, &["progress", "--reset", "--yes"]);
    assert_eq!(reset.status.code(), Some(2));
    assert!(stderr(&reset).contains("nothing was cleared"), "{}", stderr(&reset));
    assert_eq!(std::fs::read_to_string(data.path().join("progress.json")).unwrap(), newer);
    assert!(!files_in(data.path()).iter().any(|n| n.contains("corrupt")), "{:?}", files_in(data.path()));
}

#[test]
fn a_data_folder_that_is_a_file_is_said_once_and_the_check_still_runs() {
    let lessons = crate::exercises::fixture_lessons();
    let l = lessons.path().to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("data");
    std::fs::write(&file, "not a folder").unwrap();
    let o = run(&file, 1, &["--lessons", l, "check", "quick-pass"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("PASSED quick-pass: "), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("warning: ").count(), 1, "said once: {err}");
    assert!(err.contains("is not a folder") && err.contains("progress will not be saved"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

#[test]
fn a_huge_section_number_is_dropped_with_a_warning_not_shown_wrapped() {
    let data = tempfile::tempdir().unwrap();
    let max = u64::MAX;
    std::fs::write(
        data.path().join("progress.json"),
        format!(r#"{{"lessons": {{"gil": {{"section": {max}}}}}, "last": {{"lesson": "gil", "section": {max}}}}}"#),
    )
    .unwrap();
    let o = run(data.path(), 1, &["progress"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("held values out of range"), "{}", stderr(&o));
    assert!(stdout(&o).contains("resume at     the beginning"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("section 0"), "{}", stdout(&o));
}
