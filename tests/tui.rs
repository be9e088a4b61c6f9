//! End to end: the real binary's TUI driven in tmux — open a lesson, run, see lanes and core bars, compare,
//! cancel a run, resize below the minimum, quit with q and with SIGTERM (also while a frame is slow), step through
//! every block of every embedded lesson — and afterwards the terminal is restored and no parlab process is left.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{TAG_ENV, Tmux, assert_none_left, bin, no_tmux, tagged_processes, unique_tag, wait_for};

fn skip() -> bool {
    no_tmux("the TUI end-to-end test")
}

const LESSON: &str = r#"+++
id = "e2e"
title = "End to end"
minutes = 1
summary = "A lesson for the end-to-end test."
covers = ["testing"]
+++

Intro text for the **test**.

## Run it

Two modes on small work.

```experiment
workload = "fib:20"
tasks = 4
modes = ["gil", "threads"]
workers = 2
```

## Wait

```experiment
workload = "sleep:20000"
tasks = 4
modes = ["processes"]
workers = 2
```
"#;

fn lesson_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("01-e2e.md"), LESSON).unwrap();
    dir
}

fn command(tag: &str, lessons: &Path, data: &Path) -> String {
    format!(
        "env {TAG_ENV}={tag} PARLAB_DATA_DIR='{}' TERM=xterm-256color '{}' --lessons '{}'",
        data.display(),
        bin().display(),
        lessons.display()
    )
}

/// The pid of the parlab TUI itself (tagged, not a lab or worker).
fn tui_pid(tag: &str) -> u32 {
    let mut pid = None;
    wait_for(5.0, || {
        pid = tagged_processes(tag).into_iter().find(|(_, cmd)| !cmd.contains("__")).map(|p| p.0);
        pid.is_some()
    });
    pid.expect("the TUI process is running")
}

#[track_caller]
fn assert_restored(t: &Tmux) {
    t.wait(10.0, "parlab to exit", |s| s.contains("EXITED 0"));
    assert_eq!(t.flag("alternate_on"), "0", "the alternate screen was left");
    assert_eq!(t.flag("cursor_flag"), "1", "the cursor is visible again");
    assert_eq!(t.flag("mouse_any_flag"), "0", "mouse capture is off");
    // Raw mode is off: the terminal echoes typed text again.
    t.tmux(&["send-keys", "-l", "echo-check"]);
    t.wait(5.0, "the terminal to echo typed text", |s| s.contains("echo-check"));
}

#[test]
fn tui_runs_compares_cancels_and_quits_cleanly() {
    if skip() {
        return;
    }
    let tag = unique_tag("tui");
    let lessons = lesson_dir();
    let data = tempfile::tempdir().unwrap();
    let t = Tmux::start(&tag, &command(&tag, lessons.path(), data.path()));

    // The list, then the lesson.
    t.wait(10.0, "the lesson list", |s| s.contains("End to end") && s.contains("1 min"));
    assert_eq!(t.flag("alternate_on"), "1");
    t.keys(&["Enter"]);
    // The introduction has no experiment, and the panel says so rather than show another section's.
    t.wait(5.0, "the lesson view", |s| s.contains("Intro text for the test") && s.contains("no experiment"));
    t.keys(&["Right"]);
    t.wait(5.0, "section 2", |s| s.contains("Two modes on small work"));

    // A run: lanes with thread ids, core bars, then the summary.
    t.keys(&["r"]);
    let s = t.wait(30.0, "the run's summary", |s| s.contains("wall ") && s.contains("overhead"));
    assert!(s.contains("cpu0"), "core bars are drawn:\n{s}");
    assert!(s.contains("t1 ") && s.contains("t2 "), "one lane per worker:\n{s}");
    assert!(s.contains("gil-wait"), "the legend names the span kinds:\n{s}");

    // Compare: sequential, gil, threads one after another, then the table.
    t.keys(&["c"]);
    let s = t.wait(60.0, "the comparison table", |s| s.contains("· done ·"));
    for mode in ["sequential", "gil", "threads"] {
        assert!(s.contains(mode), "{mode} is in the compare view:\n{s}");
    }
    assert!(s.contains("speedup") && s.contains("efficiency"), "{s}");
    assert!(s.contains("checksums equal"), "{s}");

    // A long run in worker processes, cancelled with Esc: every lab and worker goes at once.
    t.keys(&["Escape"]);
    t.wait(5.0, "the lesson view again", |s| s.contains("r run"));
    t.keys(&["Right"]);
    t.wait(5.0, "section 3", |s| s.contains("sleep:20000"));
    t.keys(&["r"]);
    t.wait(20.0, "worker lanes", |s| s.contains("running") && s.contains("p1 "));
    let ui = tui_pid(&tag);
    assert!(tagged_processes(&tag).len() >= 3, "the UI, the lab and workers: {:?}", tagged_processes(&tag));
    t.keys(&["Escape"]);
    t.wait(5.0, "the cancel message", |s| s.contains("cancelled"));
    let only_ui = wait_for(3.0, || tagged_processes(&tag).iter().all(|(p, _)| *p == ui));
    assert!(only_ui, "after Esc only the UI is left: {:?}", tagged_processes(&tag));

    // Too small, then back.
    t.tmux(&["resize-window", "-x", "70", "-y", "20"]);
    t.wait(5.0, "the too-small screen", |s| s.contains("terminal too small (need 80x24, have 70x20)"));
    t.tmux(&["resize-window", "-x", "100", "-y", "30"]);
    t.wait(5.0, "the lesson again", |s| s.contains("sleep:20000"));

    // Help, then quit.
    t.keys(&["?"]);
    t.wait(5.0, "the help overlay", |s| s.contains("keys (any of Esc ? q closes)"));
    t.keys(&["Escape", "q"]);
    assert_restored(&t);
    assert_none_left(&tag);
    let progress = std::fs::read_to_string(data.path().join("progress.json")).unwrap_or_default();
    assert!(progress.contains("e2e"), "the position was saved: {progress}");
    // `parlab lessons` reads the same progress: both sections were seen, so the lesson is done.
    let o = std::process::Command::new(bin())
        .args(["lessons", "--json", "--lessons"])
        .arg(lessons.path())
        .env("PARLAB_DATA_DIR", data.path())
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["progress"], "done", "{list}");
}

#[test]
fn sigterm_during_a_run_restores_the_terminal_and_stops_every_process() {
    if skip() {
        return;
    }
    let tag = unique_tag("tui-term");
    let lessons = lesson_dir();
    let data = tempfile::tempdir().unwrap();
    let t = Tmux::start(&tag, &command(&tag, lessons.path(), data.path()));
    t.wait(10.0, "the lesson list", |s| s.contains("End to end"));
    t.keys(&["Enter", "Right", "Right"]);
    t.wait(5.0, "section 3", |s| s.contains("sleep:20000"));
    t.keys(&["r"]);
    t.wait(20.0, "worker lanes", |s| s.contains("p1 "));
    let ui = tui_pid(&tag);
    // SAFETY: signalling a process this test started (found by its tag).
    unsafe { libc::kill(ui as i32, libc::SIGTERM) };
    assert_restored(&t);
    assert_none_left(&tag);
}

const DEMO_LESSON: &str = r#"+++
id = "e2e-demo"
title = "A demo in the panel"
minutes = 1
summary = "A lesson whose experiment is a process-internals demo."
covers = ["testing"]
+++

Intro.

## Isolation

```experiment
demo = "isolation"
```
"#;

#[test]
fn a_demo_runs_in_a_lab_from_the_panel_and_shows_its_table() {
    if skip() {
        return;
    }
    let tag = unique_tag("tui-demo");
    let lessons = tempfile::tempdir().unwrap();
    std::fs::write(lessons.path().join("01-demo.md"), DEMO_LESSON).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cmd = format!("{} --lesson e2e-demo", command(&tag, lessons.path(), data.path()));
    let t = Tmux::start(&tag, &cmd);
    // Wide enough for the demo's table, its reading and its lanes.
    t.tmux(&["resize-window", "-x", "200", "-y", "50"]);
    t.wait(10.0, "the introduction", |s| s.contains("1 of 2 sections"));
    t.keys(&["Right"]);
    t.wait(10.0, "the demo panel", |s| s.contains("r runs the isolation demo in a lab process"));
    t.keys(&["r"]);
    let s = t.wait(30.0, "the demo's table and reading", |s| s.contains("reading:"));
    assert!(s.contains("list address"), "the demo's table is drawn:\n{s}");
    assert!(s.contains("fork 1 "), "its lanes are drawn:\n{s}");
    let ui = tui_pid(&tag);
    let only_ui = wait_for(5.0, || tagged_processes(&tag).iter().all(|(p, _)| *p == ui));
    assert!(only_ui, "the demo's lab and children are gone: {:?}", tagged_processes(&tag));
    t.keys(&["q"]);
    assert_restored(&t);
    assert_none_left(&tag);
}

/// A block the panel or the prose can select, as a lesson file spells it.
#[derive(Debug)]
enum Selectable {
    /// `experiment` (or `demo`) / `exercise`, with its id when it has one.
    Panel {
        kind: &'static str,
        id: Option<String>,
        run: bool,
    },
    Quiz,
}

/// Sections of a lesson file (the introduction first), each with its selectable blocks in order. A plain reading
/// of the format (front matter, `## ` headings outside fences, fenced blocks), so lesson edits need no test edits.
fn lesson_blocks(text: &str) -> Vec<Vec<Selectable>> {
    let body = text.splitn(3, "+++").nth(2).expect("front matter between +++ lines");
    let mut sections: Vec<Vec<Selectable>> = vec![Vec::new()];
    let mut fence: Option<(String, String, Vec<String>)> = None;
    for line in body.lines() {
        match &mut fence {
            None => {
                let t = line.trim_start();
                let marker: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
                if marker.len() >= 3 {
                    let info = t[marker.len()..].trim().to_string();
                    fence = Some((marker, info, Vec::new()));
                } else if line.starts_with("## ") {
                    sections.push(Vec::new());
                }
            }
            Some((marker, info, lines)) => {
                if line.trim() == marker.as_str() {
                    let field = |name: &str| {
                        lines.iter().find_map(|l| {
                            let (k, v) = l.split_once('=')?;
                            (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
                        })
                    };
                    let block = match info.as_str() {
                        "experiment" => {
                            let demo = field("demo").is_some();
                            let kind = if demo { "demo" } else { "experiment" };
                            Some(Selectable::Panel { kind, id: field("id"), run: !demo })
                        }
                        "exercise" => Some(Selectable::Panel { kind: "exercise", id: field("id"), run: false }),
                        "quiz" => Some(Selectable::Quiz),
                        _ => None,
                    };
                    sections.last_mut().unwrap().extend(block);
                    fence = None;
                } else {
                    lines.push(line.to_string());
                }
            }
        }
    }
    sections
}

#[test]
fn every_block_of_every_embedded_lesson_can_be_reached_in_the_panel() {
    if skip() {
        return;
    }
    let tag = unique_tag("tui-walk");
    let data = tempfile::tempdir().unwrap();
    let list = std::process::Command::new(bin())
        .args(["lessons", "--json"])
        .env("PARLAB_DATA_DIR", data.path())
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let lessons = list.as_array().expect("a list of lessons");
    assert!(lessons.len() >= 2, "{list}");
    let cmd = format!(
        "env {TAG_ENV}={tag} PARLAB_DATA_DIR='{}' TERM=xterm-256color '{}'",
        data.path().display(),
        bin().display()
    );
    // Wide enough for every panel title.
    let t = Tmux::start_sized(&tag, &cmd, 160, 45);
    t.wait(10.0, "the lesson list", |s| s.contains("lessons ("));
    let mut blocks_seen = 0;
    let mut ran = false;
    for (i, lesson) in lessons.iter().enumerate() {
        let file = lesson["file"].as_str().unwrap();
        let title = lesson["title"].as_str().unwrap();
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let sections = lesson_blocks(&text);
        t.keys(&["Home"]);
        for _ in 0..i {
            t.keys(&["Down"]);
        }
        t.keys(&["Enter"]);
        let header = format!("{}/{} ", i + 1, lessons.len());
        t.wait(5.0, &format!("lesson {title}"), |s| s.lines().next().is_some_and(|l| l.contains(&header)));
        for (si, blocks) in sections.iter().enumerate() {
            if si > 0 {
                t.keys(&["Right"]);
            }
            let marker = format!("{} of {} sections", si + 1, sections.len());
            t.wait(5.0, &format!("{title}: section {}", si + 1), |s| s.contains(&marker));
            if blocks.is_empty() {
                t.wait(5.0, "an empty panel", |s| s.contains("This section has no experiment."));
                continue;
            }
            let panels: Vec<usize> =
                blocks.iter().enumerate().filter(|b| matches!(b.1, Selectable::Panel { .. })).map(|b| b.0).collect();
            for (bi, block) in blocks.iter().enumerate() {
                if bi > 0 {
                    t.keys(&["Tab"]);
                }
                let what = format!("{title}: section {}, block {}", si + 1, bi + 1);
                match block {
                    Selectable::Panel { kind, id, run } => {
                        let k = panels.iter().position(|p| *p == bi).unwrap() + 1;
                        let at = if panels.len() > 1 { format!(" {k} of {}", panels.len()) } else { String::new() };
                        let want = format!("{kind}{at}: {}", id.as_deref().unwrap_or(""));
                        let s = t.wait(5.0, &what, |s| s.contains(&want));
                        blocks_seen += 1;
                        // Run one experiment that only Tab reaches (shrunk, so it takes moments).
                        if !ran && *run && k > 1 {
                            t.keys(&["-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "r"]);
                            let s = t.wait(60.0, "the stepped-to experiment's run", |s| {
                                s.contains("wall ") && s.contains("overhead")
                            });
                            assert!(s.contains(&want), "the run is shown under its own block:\n{s}");
                            ran = true;
                        }
                        let _ = s;
                    }
                    Selectable::Quiz => {
                        let _ = t.wait(5.0, &what, |s| s.contains("selected: 1-9 answers it") || bi == 0);
                        blocks_seen += 1;
                    }
                }
            }
        }
        t.keys(&["Escape"]);
        t.wait(5.0, "the lesson list again", |s| s.contains("lessons ("));
    }
    assert!(blocks_seen > 20, "only {blocks_seen} blocks walked");
    assert!(ran, "no lesson has a second runnable experiment in a section to run");
    t.keys(&["q"]);
    assert_restored(&t);
    assert_none_left(&tag);
}

#[test]
fn sigterm_while_a_frame_is_slow_restores_the_terminal_at_once() {
    if skip() {
        return;
    }
    // A section with one unbroken megabyte-long word: wrapping it makes the first frame slow.
    let lessons = tempfile::tempdir().unwrap();
    let word = "a".repeat(1 << 20);
    let text = format!(
        "+++\nid = \"slow\"\ntitle = \"Slow\"\nminutes = 1\nsummary = \"A slow frame.\"\ncovers = [\"x\"]\n+++\n\n{word}\n\n## Next\n\nMore.\n"
    );
    std::fs::write(lessons.path().join("01-slow.md"), text).unwrap();
    let lint = std::process::Command::new(bin()).arg("lint").arg(lessons.path()).output().unwrap();
    if !lint.status.success() {
        // The only acceptable reason: a size limit on lesson files that keeps such a word out altogether.
        let out = String::from_utf8_lossy(&lint.stdout).to_string() + &String::from_utf8_lossy(&lint.stderr);
        let first: String = out.chars().take(300).collect();
        assert!(out.contains("large") || out.contains("MiB") || out.contains("long"), "lint refused: {first}");
        eprintln!("note: the lesson loader refuses the slow lesson now; nothing to draw slowly");
        return;
    }
    let tag = unique_tag("tui-slow");
    let data = tempfile::tempdir().unwrap();
    let cmd = format!("{} --lesson slow", command(&tag, lessons.path(), data.path()));
    let t = Tmux::start(&tag, &cmd);
    let ui = tui_pid(&tag);
    t.wait(5.0, "the alternate screen", |_| t.flag("alternate_on") == "1");
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    // SAFETY: signalling a process this test started (found by its tag).
    unsafe { libc::kill(ui as i32, libc::SIGTERM) };
    assert_restored(&t);
    assert!(sent.elapsed() < Duration::from_secs(8), "the signal waited for drawing: {:?}", sent.elapsed());
    assert_none_left(&tag);
    drop(t);

    // Ctrl-C in the terminal, during the same slow first frame.
    let tag = unique_tag("tui-slow-c");
    let cmd = format!("{} --lesson slow", command(&tag, lessons.path(), data.path()));
    let t = Tmux::start(&tag, &cmd);
    tui_pid(&tag);
    t.wait(5.0, "the alternate screen", |_| t.flag("alternate_on") == "1");
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    t.keys(&["C-c"]);
    assert_restored(&t);
    assert!(sent.elapsed() < Duration::from_secs(8), "Ctrl-C waited for drawing: {:?}", sent.elapsed());
    assert_none_left(&tag);
}
