//! Recordings end to end: `run --record` then `parlab replay` (its trace, its SVG, and the TUI in tmux: the same
//! lanes and figures, labelled as a replay; `]` zooms and the axis relabels; playback at 1/100x advances), `parlab
//! runs` over a history with a corrupt file in it, `--gantt-window`, and every kind of bad recording.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{TAG_ENV, Tmux, assert_none_left, bin, json, no_tmux, parlab, stderr, stdout, unique_tag};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[track_caller]
fn assert_one_line_error(args: &[&str], needles: &[&str]) {
    let o = parlab(args);
    assert_eq!(o.status.code(), Some(2), "parlab {args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line, not:\n{err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_recorded_run_replays_its_spans_into_a_trace_and_an_svg_with_a_lane_per_worker() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("gil.parlab");
    let run = json(&[
        "run",
        "--workload",
        "fib:18",
        "--tasks",
        "4",
        "--mode",
        "processes",
        "--workers",
        "2",
        "--json",
        "--record",
        path(&rec),
    ]);
    let (trace, svg) = (dir.path().join("t.json"), dir.path().join("g.svg"));
    let o = parlab(&["replay", path(&rec), "--trace", path(&trace), "--svg", path(&svg)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Spans equal after write + read: the same lanes, kinds and durations (to the nanosecond), and start times
    // the same distances apart.
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let x: Vec<&Value> = t["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X").collect();
    let spans = run["spans"].as_array().unwrap();
    assert_eq!(x.len(), spans.len());
    // The trace counts from the run's first moment: its t0 (0 here) or a warm pool's earlier start-up.
    let mut first_start = 0.0f64;
    for s in spans {
        first_start = first_start.min(s["start_us"].as_f64().unwrap());
    }
    let key = |kind: &str, start: f64, dur: f64| format!("{kind} {:.3} {:.3}", start, dur);
    let mut want: Vec<String> = spans
        .iter()
        .map(|s| {
            let (a, b) = (s["start_us"].as_f64().unwrap(), s["end_us"].as_f64().unwrap());
            key(s["kind"].as_str().unwrap(), a - first_start, b - a)
        })
        .collect();
    let mut got: Vec<String> = x
        .iter()
        .map(|e| key(e["name"].as_str().unwrap(), e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(want, got);
    let pids: Vec<u64> = run["lanes"].as_array().unwrap().iter().map(|l| l["pid"].as_u64().unwrap()).collect();
    for e in &x {
        assert!(pids.contains(&e["pid"].as_u64().unwrap()), "{e}");
    }

    // The SVG parses as XML and holds a lane group per worker, labelled with its pid.
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lanes: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.attribute("class") == Some("lane")).collect();
    assert_eq!(lanes.len(), 2, "a lane per worker");
    let mut seen: Vec<u64> = lanes.iter().map(|n| n.attribute("data-pid").unwrap().parse().unwrap()).collect();
    seen.sort();
    let mut want_pids = pids.clone();
    want_pids.sort();
    assert_eq!(seen, want_pids);
}

#[test]
fn a_compare_records_every_mode_and_its_trace_lays_them_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("c.parlab");
    let trace = dir.path().join("live.json");
    let o = parlab(&[
        "compare",
        "--workload",
        "fib:16",
        "--tasks",
        "2",
        "--modes",
        "threads",
        "--record",
        path(&rec),
        "--trace",
        path(&trace),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The live --trace and the replayed one come from one writer: the same processes, spans and shape.
    let again = dir.path().join("again.json");
    assert!(parlab(&["replay", path(&rec), "--trace", path(&again)]).status.success());
    let load = |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (a, b) = (load(&trace), load(&again));
    let count = |v: &Value| {
        let mut m: HashMap<String, usize> = HashMap::new();
        for e in v["traceEvents"].as_array().unwrap() {
            *m.entry(format!("{} {}", e["ph"], e["name"])).or_default() += 1;
        }
        m
    };
    assert_eq!(count(&a), count(&b));
    let procs: Vec<String> = b["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(procs.iter().any(|p| p.starts_with("run 1 · sequential")), "{procs:?}");
    assert!(procs.iter().any(|p| p.starts_with("run 2 · threads")), "{procs:?}");
}

#[test]
fn bad_recordings_get_one_line_naming_the_file_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.parlab");
    assert_one_line_error(&["replay", path(&missing)], &["none.parlab: no such file"]);
    let rec = dir.path().join("ok.parlab");
    assert!(parlab(&["run", "--workload", "fib:10", "--tasks", "1", "--record", path(&rec)]).status.success());
    let bytes = std::fs::read(&rec).unwrap();
    let cut = dir.path().join("cut.parlab");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_one_line_error(
        &["replay", path(&cut), "--svg", path(&dir.path().join("x.svg"))],
        &["cut.parlab: truncated"],
    );
    let foreign = dir.path().join("package.json");
    std::fs::write(&foreign, "{\"name\": \"left-pad\"}\n").unwrap();
    assert_one_line_error(&["replay", path(&foreign)], &["package.json: not a parlab recording"]);
    let newer = dir.path().join("newer.parlab");
    std::fs::write(&newer, "{\"format\": \"parlab-recording\", \"version\": 99}\n{\"runs\": []}\n").unwrap();
    assert_one_line_error(&["replay", path(&newer)], &["newer.parlab: recording format 99 is newer", "update parlab"]);
    // A path that cannot take the recording fails before the run, not after it.
    assert_one_line_error(
        &["run", "--workload", "fib:10", "--tasks", "1", "--record", "/no/such/folder/r.parlab"],
        &["cannot record to '/no/such/folder/r.parlab'", "no folder '/no/such/folder'"],
    );
    // Exports without a TUI do not take the TUI's flags.
    assert_one_line_error(
        &["replay", path(&rec), "--svg", path(&dir.path().join("y.svg")), "--present"],
        &["--present"],
    );
}

#[test]
fn runs_lists_the_history_and_skips_a_corrupt_file_with_a_warning() {
    let data = tempfile::tempdir().unwrap();
    let runs = data.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let rec = data.path().join("r.parlab");
    assert!(
        parlab(&["run", "--workload", "fib:12", "--tasks", "2", "--mode", "threads", "--record", path(&rec)])
            .status
            .success()
    );
    std::fs::copy(&rec, runs.join("1700000000001-10-0.parlab")).unwrap();
    std::fs::write(runs.join("1700000000002-10-1.parlab"), b"\x1f\x8bnot really gzip").unwrap();
    let with_data = |args: &[&str]| {
        Command::new(bin()).args(args).env("PARLAB_DATA_DIR", data.path()).output().expect("parlab runs")
    };
    let o = with_data(&["runs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("warning: skipped") && err.contains("1700000000002-10-1.parlab"), "{err}");
    assert!(out.contains("fib:12 × 2 · threads") && out.contains("threads") && out.contains("2 cores"), "{out}");
    assert!(out.lines().nth(1).is_some_and(|l| l.trim_start().starts_with("1 ")), "{out}");
    let o = with_data(&["runs", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["modes"][0], "threads");
    // `last` and `1` name it; `2` does not exist.
    let svg = data.path().join("last.svg");
    assert!(with_data(&["replay", "last", "--svg", path(&svg)]).status.success());
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg") || svg.exists());
    let o = with_data(&["replay", "2", "--svg", path(&svg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("there is no run 2 in the history (it holds 1 run"), "{}", stderr(&o));
}

#[test]
fn a_gantt_window_prints_that_window_and_a_bad_one_is_refused() {
    let o =
        parlab(&["run", "--workload", "sleep:30", "--tasks", "2", "--mode", "threads", "--gantt-window", "10ms..20ms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("window 10ms..20ms of"), "{text}");
    let axis = text.lines().find(|l| l.contains("ms")).unwrap_or_default().to_string();
    assert!(text.lines().any(|l| l.contains("12ms") || l.contains("14ms")), "ticks inside the window:\n{text}");
    assert!(!axis.contains(" 0ms "), "{text}");
    assert_one_line_error(
        &["run", "--workload", "fib:5", "--tasks", "1", "--gantt-window", "40ms-60ms"],
        &["--gantt-window '40ms-60ms' is not a window", "e.g. 40ms..60ms"],
    );
    assert_one_line_error(
        &["run", "--workload", "fib:5", "--tasks", "1", "--gantt-window", "60ms..40ms"],
        &["'60ms..40ms' does not end after it starts"],
    );
}

/// "12.3" from a `wall 12.3 ms` (replay) or `wall         12.3 ms` (run) line.
fn wall(text: &str) -> String {
    let l = text.lines().find(|l| l.contains("wall ")).unwrap_or_default();
    let rest = l.split("wall").nth(1).unwrap_or_default().trim_start();
    rest.split(" ms").next().unwrap_or_default().to_string()
}

/// The playhead of `⏸ replay paused at 1x · 12.3ms of 40ms`.
fn playhead(screen: &str) -> Option<String> {
    let l = screen.lines().find(|l| l.contains("replay playing") || l.contains("replay paused"))?;
    Some(l.split(" · ").nth(1)?.split(" of ").next()?.to_string())
}

#[test]
fn replay_in_tmux_shows_the_recorded_lanes_and_figures_zooms_and_plays_slowly() {
    if no_tmux("the replay end-to-end test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("gil.parlab");
    // About 60 ms of GIL hand-offs: 6 s at 1/100x.
    let o = parlab(&[
        "run",
        "--workload",
        "sleep:30",
        "--tasks",
        "4",
        "--mode",
        "threads",
        "--workers",
        "2",
        "--record",
        path(&rec),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lanes: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('t') && l.contains('/'))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lanes.len(), 2, "{text}");

    let tag = unique_tag("replay");
    let cmd = format!(
        "env {TAG_ENV}={tag} PARLAB_DATA_DIR='{}' TERM=xterm-256color '{}' replay '{}'",
        dir.path().display(),
        bin().display(),
        rec.display()
    );
    let t = Tmux::start(&tag, &cmd);
    let s = t.wait(10.0, "the replay", |s| s.contains("replay ·") && s.contains("recorded "));
    for lane in &lanes {
        assert!(s.contains(lane.as_str()), "lane '{lane}' missing:\n{s}");
    }
    assert!(s.contains("on ") && s.contains("2 cores") || s.contains(" core"), "{s}");
    assert_eq!(wall(&s), wall(&text), "the same wall time:\n{s}\n{text}");
    let axis = |s: &str| s.lines().find(|l| l.contains("0ms ")).unwrap_or_default().to_string();
    let before = axis(&s);
    t.tmux(&["send-keys", "]", "]"]);
    let zoomed = t.wait(5.0, "the zoom", |s| s.contains("window ") && axis(s) != before);
    assert!(zoomed.contains("a cell"), "{zoomed}");
    // Back to the whole run, from the start, at 1/100x.
    t.tmux(&["send-keys", "[", "[", "[", "Home", ",", ",", "Space"]);
    let first = t.wait(5.0, "playback", |s| s.contains("replay playing at 1/100x"));
    let a = playhead(&first).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let second = t.screen();
    let b = playhead(&second).unwrap();
    assert_ne!(a, b, "the playhead moved:\n{first}\n{second}");
    assert!(second.contains("replay playing at 1/100x"), "still playing after 1.5 s:\n{second}");
    t.tmux(&["send-keys", "q"]);
    t.wait(10.0, "parlab to exit", |s| s.contains("EXITED 0"));
    assert_none_left(&tag);
}

const LESSON: &str = r#"+++
id = "keep"
title = "Kept runs"
minutes = 1
summary = "A lesson whose run the history keeps."
covers = ["testing"]
+++

Intro.

## Run it

```experiment
workload = "fib:18"
tasks = 2
modes = ["gil"]
workers = 2
```
"#;

#[test]
fn a_run_made_in_the_tui_is_kept_in_the_history_and_replays_from_last() {
    if no_tmux("the replay end-to-end test") {
        return;
    }
    let lessons = tempfile::tempdir().unwrap();
    std::fs::write(lessons.path().join("01-keep.md"), LESSON).unwrap();
    let data = tempfile::tempdir().unwrap();
    let tag = unique_tag("keep");
    let cmd = format!(
        "env {TAG_ENV}={tag} PARLAB_DATA_DIR='{}' TERM=xterm-256color '{}' --lessons '{}' --lesson keep",
        data.path().display(),
        bin().display(),
        lessons.path().display()
    );
    let t = Tmux::start(&tag, &cmd);
    t.wait(10.0, "the lesson", |s| s.contains("Kept runs"));
    t.tmux(&["send-keys", "Right"]);
    t.wait(5.0, "the experiment", |s| s.contains("r run"));
    t.tmux(&["send-keys", "r"]);
    t.wait(20.0, "the run's figures", |s| s.contains("wall ") && s.contains("overhead"));
    // The save happens off the UI thread: give it a moment before quitting.
    let runs = || {
        let o = Command::new(bin()).args(["runs", "--json"]).env("PARLAB_DATA_DIR", data.path()).output().unwrap();
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs()["runs"].as_array().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    t.tmux(&["send-keys", "q"]);
    t.wait(10.0, "parlab to exit", |s| s.contains("EXITED 0"));
    assert_none_left(&tag);
    let v = runs();
    let kept = v["runs"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{v}");
    assert_eq!(kept[0]["modes"][0], "gil");
    assert!(kept[0]["title"].as_str().unwrap().starts_with("fib:18 × 2 · gil"), "{v}");
    let svg = data.path().join("kept.svg");
    let o = Command::new(bin())
        .args(["replay", "last", "--svg", path(&svg)])
        .env("PARLAB_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("lane")).count(), 2);
}
