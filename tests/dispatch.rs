//! How the processes mode hands out chunks (one shared queue that idle workers pull from, as CPython's pools do),
//! the `--api` knob, and what every mode records: comparable span counts for the baseline and one worker, message
//! cost on screen, and exercises that one worker cannot pass.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::util::*;

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    json(&all)
}

/// `run_json` for a test that holds the machine alone (`exclusive`; `parlab` would wait for it forever).
fn run_json_alone(args: &[&str]) -> Value {
    let o = std::process::Command::new(bin())
        .args(["run", "--json"])
        .args(args)
        .env("PARLAB_DATA_DIR", scratch_data_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "parlab run {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Run spans as (lane, first task, count, start, end), in start order.
fn runs(run: &Value) -> Vec<(u64, u64, u64, f64, f64)> {
    let mut v: Vec<_> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run")
        .map(|s| {
            (
                s["lane"].as_u64().unwrap(),
                s["task"].as_u64().unwrap(),
                s["count"].as_u64().unwrap(),
                s["start_us"].as_f64().unwrap(),
                s["end_us"].as_f64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.3.total_cmp(&b.3));
    v
}

/// Which tasks each lane ran, the lanes named in the order their first task comes (A ran task 0).
fn assignment(run: &Value) -> Vec<BTreeSet<u64>> {
    let mut by_lane: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (lane, task, count, _, _) in runs(run) {
        by_lane.entry(lane).or_default().extend(task..task + count);
    }
    let mut lanes: Vec<BTreeSet<u64>> = by_lane.into_values().collect();
    lanes.sort_by_key(|tasks| tasks.first().copied());
    lanes
}

/// Retries a scheduling-dependent structure up to three times (a loaded machine can delay one worker's wake-up by
/// more than a task takes); a dispatch rule that gives the wrong structure never passes.
#[track_caller]
fn within_three_tries(what: &str, mut attempt: impl FnMut() -> Result<(), String>) {
    let mut why = Vec::new();
    for _ in 0..3 {
        match attempt() {
            Ok(()) => return,
            Err(e) => why.push(e),
        }
    }
    panic!("{what}: {why:#?}");
}

#[test]
fn fib_27_to_30_in_chunks_of_1_goes_to_workers_as_cpython_hands_it_out() {
    let _machine = exclusive();
    let args =
        ["--workload", "fib:27..30", "--tasks", "4", "--mode", "processes", "--workers", "2", "--warm", "--chunksize"];
    within_three_tries("chunksize 1 must give A {0, 2} and B {1, 3}", || {
        let run = run_json_alone(&[&args[..], &["1"]].concat());
        let got = assignment(&run);
        let want = vec![BTreeSet::from([0, 2]), BTreeSet::from([1, 3])];
        if got == want { Ok(()) } else { Err(format!("got {got:?}")) }
    });
    // chunksize 2: two chunks, one per idle worker.
    let run = run_json_alone(&[&args[..], &["2"]].concat());
    assert_eq!(assignment(&run), vec![BTreeSet::from([0, 1]), BTreeSet::from([2, 3])]);
    // chunksize 4: one chunk, one worker does everything.
    let run = run_json_alone(&[&args[..], &["4"]].concat());
    assert_eq!(assignment(&run), vec![BTreeSet::from([0, 1, 2, 3])]);
}

/// Checks that each chunk went to the worker that was idle first: the first `workers` chunks to distinct workers,
/// then each next chunk to the lane whose previous chunk ended earliest among those not yet given a new one.
fn pulled_by_idle_workers(run: &Value, workers: usize) -> Result<(), String> {
    let spans = runs(run);
    let mut starts: Vec<(u64, u64)> = spans.iter().map(|s| (s.1, s.0)).collect();
    starts.sort();
    let first: BTreeSet<u64> = starts.iter().take(workers).map(|s| s.1).collect();
    if first.len() != workers {
        return Err(format!("the first {workers} chunks did not go to {workers} workers: {starts:?}"));
    }
    let mut by_lane: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &spans {
        by_lane.entry(s.0).or_default().push((s.3, s.4));
    }
    let mut idle: Vec<(f64, u64)> = Vec::new();
    for (lane, list) in &by_lane {
        for w in list.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(format!("lane {lane} ran two chunks at once: {list:?}"));
            }
        }
        // Every chunk but the lane's last one ended with the lane going back to the queue.
        idle.extend(list.iter().take(list.len() - 1).map(|r| (r.1, *lane)));
    }
    idle.sort_by(|a, b| a.0.total_cmp(&b.0));
    let expected: Vec<u64> = idle.iter().map(|i| i.1).collect();
    let got: Vec<u64> = starts.iter().skip(workers).map(|s| s.1).collect();
    if got == expected {
        Ok(())
    } else {
        Err(format!("chunks {workers}.. ran on lanes {got:?}, idle order {expected:?}"))
    }
}

#[test]
fn every_task_runs_once_and_idle_workers_pull_the_next_chunk_with_every_start_method() {
    let _machine = exclusive();
    for start in ["spawn", "fork", "forkserver"] {
        within_three_tries(start, || {
            // Tasks of 10-50 ms (debug build), so the order in which workers go idle is clear on a loaded machine.
            let run = run_json_alone(&[
                "--workload",
                "fib:30..33",
                "--tasks",
                "8",
                "--mode",
                "processes",
                "--workers",
                "2",
                "--warm",
                "--chunksize",
                "1",
                "--start",
                start,
            ]);
            let mut tasks: Vec<u64> = Vec::new();
            for (_, task, count, _, _) in runs(&run) {
                tasks.extend(task..task + count);
            }
            tasks.sort_unstable();
            assert_eq!(tasks, (0..8).collect::<Vec<_>>(), "{start}: every task must run exactly once");
            let seq = run_json_alone(&["--workload", "fib:30..33", "--tasks", "8"]);
            assert_eq!(run["checksum"], seq["checksum"], "{start}");
            pulled_by_idle_workers(&run, 2)
        });
    }
}

#[test]
fn the_executor_api_runs_every_chunk_through_its_small_call_queue() {
    let run = run_json(&[
        "--workload",
        "fib:15",
        "--tasks",
        "50",
        "--mode",
        "processes",
        "--workers",
        "2",
        "--api",
        "executor",
        "--start",
        "fork",
    ]);
    assert_eq!(run["api"], "executor");
    assert_eq!(run["chunksize"], 1, "ProcessPoolExecutor.map defaults to chunksize 1");
    // Short chunks may be recorded summed (`lab::record`): count the tasks rather than name them.
    assert_eq!(runs(&run).iter().map(|r| r.2).sum::<u64>(), 50);
    let seq = run_json(&["--workload", "fib:15", "--tasks", "50"]);
    assert_eq!(run["checksum"], seq["checksum"], "every task ran exactly once");
    let notes = run["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("at most 3 chunks")), "{notes:?}");
}

#[test]
fn api_sets_python_s_default_chunksize() {
    let base = ["--workload", "tiny", "--tasks", "1000", "--mode", "processes", "--workers", "2", "--api"];
    for (api, chunksize) in [("map", 125), ("imap", 1), ("imap_unordered", 1), ("executor", 1)] {
        let run = run_json(&[&base[..], &[api]].concat());
        assert_eq!(run["api"], api);
        assert_eq!(run["chunksize"], chunksize, "{api}");
    }
    let plain = run_json(&["--workload", "tiny", "--tasks", "1000", "--mode", "processes", "--workers", "2"]);
    assert_eq!((plain["api"].as_str(), plain["chunksize"].as_u64()), (Some("map"), Some(125)), "map is the default");
    let o = parlab(&["run", "--workload", "tiny", "--tasks", "10", "--mode", "processes", "--api", "imap"]);
    assert!(stdout(&o).contains("api imap, chunksize 1"), "the title names the api: {}", stdout(&o));
}

#[test]
fn a_bad_api_is_refused_with_the_names_allowed() {
    let o = parlab(&["run", "--workload", "tiny", "--tasks", "10", "--mode", "processes", "--api", "mapp"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: unknown api 'mapp' (expected one of: map, imap, imap_unordered, executor) (did you mean 'map'?)"
    );
    let o = parlab(&["run", "--workload", "tiny", "--tasks", "10", "--mode", "threads", "--api", "imap"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim(), "error: --api applies only to --mode processes, not threads");
}

#[test]
fn lint_refuses_a_bad_api_and_an_api_no_mode_uses() {
    let dir = tempfile::tempdir().unwrap();
    let head =
        "+++\nid = \"t\"\ntitle = \"T\"\nminutes = 1\nsummary = \"S.\"\ncovers = [\"x\"]\n+++\n\nText.\n\n## S\n\n";
    let good = format!(
        "{head}```experiment\nworkload = \"tiny\"\ntasks = 10\nmodes = [\"sequential\", \"processes\"]\napi = \"imap\"\n```\n"
    );
    std::fs::write(dir.path().join("01-good.md"), good).unwrap();
    let o = parlab(&["lint", dir.path().join("01-good.md").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    let bad = format!(
        "{head}```experiment\nworkload = \"tiny\"\ntasks = 10\nmodes = [\"processes\"]\napi = \"imapp\"\n```\n\n\
         ```experiment\nworkload = \"tiny\"\ntasks = 10\nmodes = [\"threads\"]\napi = \"map\"\n```\n"
    );
    std::fs::write(dir.path().join("02-bad.md"), bad).unwrap();
    let o = parlab(&["lint", dir.path().join("02-bad.md").to_str().unwrap()]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("02-bad.md:17:7: unknown api 'imapp' (expected one of: map, imap, imap_unordered, executor)"),
        "{text}"
    );
    assert!(text.contains("did you mean 'imap'?"), "{text}");
    assert!(
        text.contains("02-bad.md:24:1: 'api' has no effect here: it applies to processes, and the modes are threads"),
        "{text}"
    );
}

/// The run spans of one run of a compare, and the tasks they cover.
fn run_spans(run: &Value) -> (usize, u64) {
    let r = runs(run);
    (r.len(), r.iter().map(|s| s.2).sum())
}

#[test]
fn the_baseline_and_one_worker_record_comparably_many_spans() {
    // The rule: an in-process lane records one run span per chunk of about 100 µs of (estimated) work, at most 4096
    // per run; a worker records one per chunk it is sent. So for the same tiny tasks the loop and one worker record
    // run spans within a factor of two of each other (here 4 and 8), never thousands against eight.
    let cmp = json(&[
        "compare",
        "--json",
        "--workload",
        "tiny",
        "--tasks",
        "200000",
        "--modes",
        "processes",
        "--workers",
        "1",
        "--chunksize",
        "25000",
        "--warm",
    ]);
    let list = cmp["runs"].as_array().unwrap();
    let (seq, seq_tasks) = run_spans(&list[0]);
    let (pro, pro_tasks) = run_spans(&list[1]);
    assert_eq!((list[0]["mode"].as_str(), list[1]["mode"].as_str()), (Some("sequential"), Some("processes")));
    assert_eq!((seq_tasks, pro_tasks), (200_000, 200_000), "every task is in a recorded span");
    assert!(seq >= 1 && pro >= 1 && seq <= 2 * pro && pro <= 2 * seq, "sequential {seq} vs processes {pro} run spans");
    for mode in ["threads", "gil", "async", "async-offload"] {
        let mut args = vec!["--workload", "tiny", "--tasks", "200000", "--mode", mode];
        if mode != "async" {
            args.extend(["--workers", "1"]);
        }
        let (n, tasks) = run_spans(&run_json(&args));
        assert_eq!(tasks, 200_000, "{mode}");
        assert!(n <= 2 * pro, "{mode}: {n} run spans against {pro} for one worker process");
    }
}

#[test]
fn message_cost_shows_as_ipc_and_serialize_spans_inside_the_run() {
    let run = run_json(&["--workload", "tiny", "--tasks", "100000", "--mode", "processes", "--chunksize", "1"]);
    let wall_us = run["wall_ms"].as_f64().unwrap() * 1000.0;
    let spans = run["spans"].as_array().unwrap();
    for kind in ["ipc", "serialize"] {
        let inside: Vec<&Value> = spans
            .iter()
            .filter(|s| s["kind"] == kind)
            .filter(|s| s["start_us"].as_f64().unwrap() >= 0.0 && s["end_us"].as_f64().unwrap() <= wall_us)
            .collect();
        assert!(!inside.is_empty(), "no {kind} span inside the run window");
        let tasks: u64 = inside.iter().map(|s| s["count"].as_u64().unwrap()).sum();
        assert!(tasks >= 100_000, "{kind} spans cover {tasks} tasks of 100000");
    }
    assert!(run["overhead_ms"]["ipc"].as_f64().unwrap() > 0.0, "{}", run["overhead_ms"]);
    assert!(run["overhead_ms"]["serialize"].as_f64().unwrap() > 0.0, "{}", run["overhead_ms"]);
    assert!(spans.len() < 100_000, "100000 chunks must not become {} spans", spans.len());
}

/// `parlab check` with the given knobs: its exit code and output.
fn check(id: &str, reps: u32, knobs: &[&str]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let mut args = vec!["check", id];
    args.extend_from_slice(knobs);
    let o = std::process::Command::new(bin())
        .args(&args)
        .env("PARLAB_DATA_DIR", data.path())
        .env("PARLAB_CHECK_REPS", reps.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn one_worker_does_not_pass_million_tiny_or_chunk_the_imap() {
    let _machine = exclusive();
    let (code, out) = check("million-tiny", 1, &["--workers", "1"]);
    assert_eq!(code, 1, "million-tiny with one worker must be 'not yet':\n{out}");
    assert!(out.contains("NOT YET million-tiny"), "{out}");
    // chunk-the-imap lets the learner change chunksize and workers: one worker with the best chunk still fails
    // (it does the loop's work plus the messages; the median of 5 keeps a burst of outside load from deciding).
    for chunksize in ["1000", "200000"] {
        let (code, out) = check("chunk-the-imap", 5, &["--workers", "1", "--chunksize", chunksize]);
        assert_eq!(code, 1, "chunk-the-imap with one worker (chunksize {chunksize}) must be 'not yet':\n{out}");
        assert!(out.contains("NOT YET chunk-the-imap"), "{out}");
    }
}
