//! Start methods of the processes mode through the real binary: `fork` and `forkserver` give the same results as
//! `spawn`, forkserver workers really come from the server, failures are reported with the worker's status, and
//! no process outlives parlab.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    json(&all)
}

/// The parent pid of a process (0 when it is gone).
fn ppid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|r| r.1.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

/// Tagged processes `depth` generations below the tagged process that has no tagged parent (`parlab run`).
fn at_depth(tag: &str, depth: usize) -> Vec<u32> {
    let procs: Vec<u32> = tagged_processes(tag).into_iter().map(|p| p.0).collect();
    procs
        .iter()
        .copied()
        .filter(|p| {
            let mut d = 0;
            let mut cur = *p;
            while procs.contains(&ppid(cur)) {
                cur = ppid(cur);
                d += 1;
            }
            d == depth
        })
        .collect()
}

/// Starts a long forkserver run and waits until its two workers exist; returns the child and the worker pids.
fn start_long_forkserver_run(tag: &str) -> (std::process::Child, Vec<u32>) {
    let child = tagged(
        &[
            "run",
            "--json",
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
            "--start",
            "forkserver",
        ],
        tag,
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // parlab run -> lab -> forkserver -> workers
    assert!(wait_for(10.0, || at_depth(tag, 3).len() == 2), "workers never started: {:?}", tagged_processes(tag));
    (child, at_depth(tag, 3))
}

#[test]
fn fork_and_forkserver_compute_what_spawn_computes_with_one_pid_per_worker() {
    let base = ["--workload", "fib:18", "--tasks", "8", "--mode", "processes", "--workers", "2"];
    let mut sums = BTreeSet::new();
    for start in ["spawn", "fork", "forkserver"] {
        let mut args = base.to_vec();
        args.extend(["--start", start]);
        let run = run_json(&args);
        assert_eq!(run["start"], start);
        let lanes = run["lanes"].as_array().unwrap();
        let labels: BTreeSet<&str> = lanes.iter().map(|l| l["label"].as_str().unwrap()).collect();
        assert_eq!(labels, BTreeSet::from(["p1", "p2"]), "{start}");
        let pids: BTreeSet<u64> = lanes.iter().map(|l| l["pid"].as_u64().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{start}: {pids:?}");
        assert!(!pids.contains(&run["lab_pid"].as_u64().unwrap()), "{start}: a worker is the lab");
        let spans = run["spans"].as_array().unwrap();
        for kind in ["startup", "run"] {
            assert!(spans.iter().any(|s| s["kind"] == kind), "{start}: no {kind} span");
        }
        sums.insert(run["checksum"].as_u64().unwrap());
    }
    let seq = run_json(&["--workload", "fib:18", "--tasks", "8"]);
    sums.insert(seq["checksum"].as_u64().unwrap());
    assert_eq!(sums.len(), 1, "checksums differ across start methods: {sums:?}");
}

#[test]
fn forkserver_payloads_go_to_the_workers_and_back() {
    let run = run_json(&[
        "--workload",
        "fib:10",
        "--tasks",
        "4",
        "--mode",
        "processes",
        "--workers",
        "2",
        "--start",
        "forkserver",
        "--payload",
        "256KiB",
    ]);
    let ipc = run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "ipc").count();
    assert!(ipc >= 4, "expected ipc spans for the payloads, got {ipc}");
    let notes = run["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("forkserver")), "{notes:?}");
}

#[test]
fn a_warm_forkserver_pool_starts_before_the_clock() {
    let run = run_json(&[
        "--workload",
        "fib:12",
        "--tasks",
        "4",
        "--mode",
        "processes",
        "--workers",
        "2",
        "--start",
        "forkserver",
        "--warm",
    ]);
    let startups: Vec<f64> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "startup")
        .map(|s| s["end_us"].as_f64().unwrap())
        .collect();
    assert_eq!(startups.len(), 2);
    assert!(startups.iter().all(|end| *end <= 0.0), "start-up ended after the clock started: {startups:?}");
}

#[test]
fn forkserver_workers_are_children_of_the_server_not_of_the_lab() {
    let tag = unique_tag("fs-tree");
    let (mut child, workers) = start_long_forkserver_run(&tag);
    let labs = at_depth(&tag, 1);
    let servers = at_depth(&tag, 2);
    assert_eq!(labs.len(), 1, "{:?}", tagged_processes(&tag));
    assert_eq!(servers.len(), 1, "one forkserver expected: {:?}", tagged_processes(&tag));
    for w in &workers {
        assert_eq!(ppid(*w), servers[0], "worker {w} is not the server's child");
    }
    assert_eq!(ppid(servers[0]), labs[0]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

#[test]
fn a_killed_forkserver_worker_shows_as_a_failed_lane_with_its_signal() {
    let tag = unique_tag("fs-kill");
    let (child, workers) = start_long_forkserver_run(&tag);
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let run: Value = serde_json::from_slice(&out.stdout).expect("the failed run still prints its JSON");
    let err = run["error"].as_str().unwrap();
    assert!(err.contains(&format!("(pid {}) was killed by signal 9 (SIGKILL)", workers[0])), "{err}");
    assert!(err.ends_with("the run was stopped"), "{err}");
    let failed: Vec<&Value> = run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "failed").collect();
    assert_eq!(failed.len(), 1, "one failed span expected");
    let lane = run["lanes"].as_array().unwrap().iter().find(|l| l["id"] == failed[0]["lane"]).unwrap();
    assert_eq!(lane["pid"].as_u64().unwrap(), u64::from(workers[0]));
    assert_none_left(&tag);
}

#[test]
fn a_panicking_forkserver_worker_fails_the_run_with_status_101() {
    let tag = unique_tag("fs-panic");
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
            "forkserver",
        ],
        &tag,
    )
    .env("PARLAB_TEST_PANIC_AT_TASK", "3")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let run: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(run["error"].as_str().unwrap().contains("exited with status 101 (it panicked)"), "{}", run["error"]);
    assert_eq!(run["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "failed").count(), 1);
    assert_none_left(&tag);
}

#[test]
fn killing_parlab_takes_the_forkserver_and_its_workers_with_it() {
    let tag = unique_tag("fs-sigkill");
    let (mut child, _) = start_long_forkserver_run(&tag);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_none_left(&tag);
}

#[test]
fn sigterm_during_a_forkserver_run_stops_every_process() {
    let tag = unique_tag("fs-sigterm");
    let (child, _) = start_long_forkserver_run(&tag);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_none_left(&tag);
}

#[test]
fn finished_fork_and_forkserver_runs_leave_no_process_behind() {
    let tag = unique_tag("fs-finished");
    for start in ["fork", "forkserver"] {
        let o = tagged(
            &["run", "--workload", "fib:14", "--tasks", "6", "--mode", "processes", "--workers", "3", "--start", start],
            &tag,
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_none_left(&tag);
}
