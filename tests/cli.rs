//! The lab engine through the real binary: `run`, `compare`, JSON, traces, bad input, and cleanup.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    json(&all)
}

fn pids_of_run_lanes(run: &Value) -> BTreeSet<u64> {
    let lanes = run["lanes"].as_array().expect("lanes");
    let spans = run["spans"].as_array().expect("spans");
    lanes
        .iter()
        .filter(|l| spans.iter().any(|s| s["lane"] == l["id"] && s["kind"] == "run"))
        .map(|l| l["pid"].as_u64().unwrap())
        .collect()
}

#[track_caller]
fn assert_spans_well_formed(run: &Value) {
    let lanes: BTreeSet<u64> = run["lanes"].as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    let spans = run["spans"].as_array().unwrap();
    assert!(!spans.is_empty(), "no spans in {}", run["mode"]);
    for s in spans {
        let (a, b) = (s["start_us"].as_f64().unwrap(), s["end_us"].as_f64().unwrap());
        assert!(a <= b, "span ends before it starts: {s}");
        assert!(lanes.contains(&s["lane"].as_u64().unwrap()), "span on an unknown lane: {s}");
        let kind = s["kind"].as_str().unwrap();
        assert!(
            ["startup", "run", "gil-wait", "ipc", "serialize", "idle", "failed"].contains(&kind),
            "unknown kind {kind}"
        );
        assert!(s["cpu_start"].as_i64().unwrap() >= -1);
    }
}

#[test]
fn processes_mode_reports_one_pid_per_worker_distinct_from_the_parent() {
    // Warm: idle workers pull chunks from one shared queue, so in a cold pool the first worker up may take every
    // short task before the second has started (as in CPython). Even warm, fib(24) tasks (~0.1 ms) once all went to
    // one worker on a loaded machine: fib(30) takes a few ms, so the other worker is free for the next chunk.
    let run = run_json(&["--workload", "fib:30", "--tasks", "8", "--mode", "processes", "--workers", "2", "--warm"]);
    let pids = pids_of_run_lanes(&run);
    assert_eq!(pids.len(), 2, "expected two worker pids, got {pids:?}");
    let parent = run["parent_pid"].as_u64().unwrap();
    let lab = run["lab_pid"].as_u64().unwrap();
    assert!(!pids.contains(&parent) && !pids.contains(&lab), "workers share a pid with parlab or the lab");
    assert_ne!(parent, lab, "the run happened in the caller's process");
    assert_spans_well_formed(&run);
}

#[test]
fn in_process_modes_run_in_one_lab_pid_that_is_not_the_callers() {
    for mode in ["sequential", "threads", "gil", "async", "async-offload"] {
        let mut args = vec!["--workload", "fib:18", "--tasks", "6", "--mode", mode];
        if !matches!(mode, "sequential" | "async") {
            args.extend(["--workers", "2"]);
        }
        let run = run_json(&args);
        let pids = pids_of_run_lanes(&run);
        assert_eq!(pids.len(), 1, "{mode}: {pids:?}");
        let lab = run["lab_pid"].as_u64().unwrap();
        assert!(pids.contains(&lab), "{mode}: work ran outside the lab");
        assert_ne!(lab, run["parent_pid"].as_u64().unwrap(), "{mode}: work ran in the caller");
        assert_spans_well_formed(&run);
        if mode == "threads" || mode == "gil" {
            let tids: BTreeSet<u64> =
                run["lanes"].as_array().unwrap().iter().map(|l| l["tid"].as_u64().unwrap()).collect();
            assert_eq!(tids.len(), 2, "{mode}: two workers should be two threads");
        }
    }
}

#[test]
fn gil_run_spans_never_overlap_across_threads() {
    let run = run_json(&[
        "--workload",
        "fib:27",
        "--tasks",
        "6",
        "--mode",
        "gil",
        "--workers",
        "3",
        "--switch-interval",
        "1ms",
    ]);
    let mut runs: Vec<(f64, f64, u64)> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run")
        .map(|s| (s["start_us"].as_f64().unwrap(), s["end_us"].as_f64().unwrap(), s["lane"].as_u64().unwrap()))
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let lanes: BTreeSet<u64> = runs.iter().map(|r| r.2).collect();
    assert!(lanes.len() >= 2, "only one thread ever held the GIL: {lanes:?}");
    for w in runs.windows(2) {
        // Recorded times are rounded to the nanosecond; holders never overlap.
        assert!(w[1].0 >= w[0].1 - 0.001, "two threads held the GIL at once: {:?} and {:?}", w[0], w[1]);
    }
    let waits = run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "gil-wait").count();
    assert!(waits > 0, "no thread ever waited for the GIL");
}

#[test]
fn checksums_match_across_all_six_modes_and_compare_adds_sequential() {
    let out = json(&[
        "compare",
        "--json",
        "--workload",
        "pi:20000",
        "--tasks",
        "6",
        "--workers",
        "2",
        "--modes",
        "threads,gil,processes,async,async-offload",
    ]);
    let runs = out["runs"].as_array().unwrap();
    let modes: Vec<&str> = runs.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, vec!["sequential", "threads", "gil", "processes", "async", "async-offload"]);
    let sums: BTreeSet<u64> = runs.iter().map(|r| r["checksum"].as_u64().unwrap()).collect();
    assert_eq!(sums.len(), 1, "checksums differ: {sums:?}");
    assert!(out["cores"].as_u64().unwrap() >= 1);
    for r in runs {
        assert!(r["speedup"].as_f64().is_some(), "{} has no speedup", r["mode"]);
        assert_spans_well_formed(r);
    }
}

#[test]
fn every_workload_gives_the_same_checksum_in_processes_and_sequential() {
    for w in ["fib:15", "fib:10..14", "squares:5000", "count:5000", "primes:2000", "tiny", "sleep:1", "logs:2000"] {
        let seq = run_json(&["--workload", w, "--tasks", "5", "--mode", "sequential"]);
        let pro =
            run_json(&["--workload", w, "--tasks", "5", "--mode", "processes", "--workers", "2", "--chunksize", "2"]);
        assert_eq!(seq["checksum"], pro["checksum"], "{w}");
    }
}

#[test]
fn payloads_travel_to_workers_and_back_with_ipc_spans() {
    let seq = run_json(&["--workload", "tiny", "--tasks", "4", "--mode", "sequential", "--payload", "200000"]);
    for start in ["spawn", "fork"] {
        let run = run_json(&[
            "--workload",
            "tiny",
            "--tasks",
            "4",
            "--mode",
            "processes",
            "--workers",
            "2",
            "--payload",
            "200000",
            "--start",
            start,
        ]);
        assert_eq!(run["checksum"], seq["checksum"], "{start}: payload checksum differs");
        let ipc = run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "ipc").count();
        assert!(ipc >= 4, "{start}: expected ipc spans for payloads, got {ipc}");
    }
}

#[test]
fn tiny_tasks_are_recorded_per_chunk() {
    let run = run_json(&["--workload", "tiny", "--tasks", "200000", "--mode", "processes", "--workers", "2"]);
    let spans = run["spans"].as_array().unwrap();
    let counted: u64 = spans.iter().filter(|s| s["kind"] == "run").map(|s| s["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 200_000);
    assert!(spans.len() < 100, "{} spans for 200000 tiny tasks", spans.len());
    let seq = run_json(&["--workload", "tiny", "--tasks", "200000", "--mode", "sequential"]);
    assert!(seq["spans"].as_array().unwrap().len() <= 4096);
    assert_eq!(seq["checksum"], run["checksum"]);
}

#[test]
fn warm_pools_start_their_workers_before_the_clock() {
    let run = run_json(&["--workload", "fib:18", "--tasks", "4", "--mode", "processes", "--workers", "2", "--warm"]);
    let startups: Vec<f64> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "startup")
        .map(|s| s["end_us"].as_f64().unwrap())
        .collect();
    assert_eq!(startups.len(), 2);
    assert!(startups.iter().all(|end| *end <= 0.0), "a warm pool started after t0: {startups:?}");
}

#[test]
fn repeat_reports_every_wall_time_and_the_median() {
    let run = run_json(&["--workload", "fib:15", "--tasks", "2", "--repeat", "3"]);
    let walls: Vec<f64> = run["walls_ms"].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).collect();
    assert_eq!(walls.len(), 3);
    let mut sorted = walls.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(run["wall_ms"].as_f64().unwrap(), sorted[1]);
}

#[test]
fn the_trace_file_opens_as_chrome_trace_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.trace.json");
    let o = parlab(&[
        "compare",
        "--workload",
        "fib:16",
        "--tasks",
        "4",
        "--workers",
        "2",
        "--modes",
        "processes,gil",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let mut phases: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *phases.entry(e["ph"].as_str().unwrap()).or_default() += 1;
        if e["ph"] == "X" {
            for field in ["pid", "tid", "ts", "dur"] {
                assert!(e[field].is_number(), "X event without {field}: {e}");
            }
            assert!(e["dur"].as_f64().unwrap() >= 0.0);
        }
    }
    assert!(phases.get("X").copied().unwrap_or(0) > 0);
    assert!(phases.get("M").copied().unwrap_or(0) > 0, "no process/thread names");
    assert!(phases.get("C").copied().unwrap_or(0) > 0, "no per-core counters");
}

#[test]
fn the_table_shows_figures_and_a_gantt() {
    let o = parlab(&["run", "--workload", "fib:18", "--tasks", "4", "--mode", "processes", "--workers", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in ["wall", "parallelism", "start-up", "checksum", "p1 ", "p2 ", "█ run", "░ startup"] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    let o = parlab(&["compare", "--workload", "fib:16", "--tasks", "4", "--modes", "gil", "--workers", "2"]);
    let text = stdout(&o);
    assert!(text.contains("speedup") && text.contains("sequential") && text.contains("checksums: all equal"), "{text}");
}

#[track_caller]
fn assert_usage_error(args: &[&str], message: &str) {
    let o = parlab(args);
    assert_eq!(o.status.code(), Some(2), "parlab {args:?} should fail with exit 2");
    let err = stderr(&o);
    assert!(err.contains(message), "parlab {args:?}: expected '{message}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(&o).is_empty(), "a failed command printed to stdout");
}

#[test]
fn invalid_arguments_give_the_documented_messages() {
    assert_usage_error(
        &["run", "--workload", "fibb:30"],
        "error: unknown workload 'fibb' (expected one of: fib, squares, count, pi, primes, tiny, sleep, logs) (did you mean 'fib'?)",
    );
    assert_usage_error(&["run", "--workload", "fib:99"], "workload size 99 for fib is out of range (allowed 1..=42)");
    assert_usage_error(&["run", "--mode", "thread"], "unknown mode 'thread'");
    assert_usage_error(&["run", "--mode", "thread"], "did you mean 'threads'?");
    assert_usage_error(
        &["run", "--mode", "threads", "--workers", "0"],
        "--workers 0 is out of range (allowed 1..=256)",
    );
    assert_usage_error(&["run", "--tasks", "1000000000000"], "--tasks 1000000000000 is out of range");
    assert_usage_error(&["run", "--mode", "threads", "--start", "fork"], "--start applies only to --mode processes");
    assert_usage_error(&["run", "--mode", "processes", "--start", "vfork"], "unknown start method 'vfork'");
    assert_usage_error(&["run", "--mode", "gil", "--switch-interval", "5 parsecs"], "switch interval '5 parsecs'");
    assert_usage_error(&["run", "--mode", "processes", "--payload", "100GB"], "is too large");
    assert_usage_error(&["run", "--repeat", "0"], "--repeat 0 is out of range");
    assert_usage_error(
        &["run", "--engine", "cpython"],
        "unknown engine 'cpython' (expected one of: native, python, both)",
    );
    assert_usage_error(&["compare", "--modes", "gil,gil"], "named twice");
    assert_usage_error(&["run", "--bogus"], "--bogus");
}

#[test]
fn no_process_survives_a_finished_run() {
    let tag = unique_tag("finished");
    for start in ["spawn", "fork"] {
        let o = tagged(
            &["run", "--workload", "fib:16", "--tasks", "4", "--mode", "processes", "--workers", "3", "--start", start],
            &tag,
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_none_left(&tag);
}

/// Starts a long processes run and waits until its workers exist; returns the child and the worker pids.
fn start_long_run(tag: &str, extra_env: Option<(&str, &str)>) -> (std::process::Child, Vec<u32>) {
    let mut cmd = tagged(
        &[
            "run",
            "--workload",
            "sleep:3000",
            "--tasks",
            "4",
            "--mode",
            "processes",
            "--workers",
            "2",
            "--chunksize",
            "1",
        ],
        tag,
    );
    if let Some((k, v)) = extra_env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let workers = || -> Vec<u32> {
        tagged_processes(tag).into_iter().filter(|(_, c)| c.contains("__worker")).map(|(p, _)| p).collect()
    };
    assert!(wait_for(10.0, || workers().len() == 2), "workers never started: {:?}", tagged_processes(tag));
    (child, workers())
}

#[test]
fn sigterm_during_a_run_stops_every_lab_and_worker_process() {
    let tag = unique_tag("sigterm");
    let (child, _) = start_long_run(&tag, None);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_none_left(&tag);
}

#[test]
fn killing_parlab_itself_takes_the_lab_and_workers_with_it() {
    let tag = unique_tag("sigkill");
    let (mut child, _) = start_long_run(&tag, None);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

#[test]
fn a_killed_worker_shows_as_a_failed_lane_and_the_run_ends_with_an_error() {
    let tag = unique_tag("killworker");
    let (child, workers) = start_long_run(&tag, None);
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was killed by signal 9 (SIGKILL)"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    assert_none_left(&tag);
}

#[test]
fn a_panicking_worker_fails_the_run_without_hanging_and_the_next_run_works() {
    let tag = unique_tag("panic");
    for start in ["spawn", "fork"] {
        let o = tagged(
            &[
                "run",
                "--json",
                "--workload",
                "fib:15",
                "--tasks",
                "6",
                "--mode",
                "processes",
                "--workers",
                "2",
                "--start",
                start,
            ],
            &tag,
        )
        .env("PARLAB_TEST_PANIC_AT_TASK", "3")
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(2), "{start}");
        let run: Value = serde_json::from_slice(&o.stdout).unwrap();
        let failed = run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "failed").count();
        assert_eq!(failed, 1, "{start}: expected one failed span");
        assert!(run["error"].as_str().unwrap().contains("status 101 (it panicked)"), "{}", run["error"]);
    }
    let ok = tagged(&["run", "--workload", "fib:15", "--tasks", "6", "--mode", "processes"], &tag).output().unwrap();
    assert!(ok.status.success());
    assert_none_left(&tag);
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    use std::io::Read;
    let mut child = std::process::Command::new(bin())
        .args(["run", "--workload", "fib:12", "--tasks", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
