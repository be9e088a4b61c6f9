//! `parlab watch`: the learner's own program drawn from the thread sampler alone (lanes per thread and process,
//! gil-wait where threads take turns on the GIL), stopped whole at its timeout, and its bad input refused.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{assert_none_left, python3_or_skip, stderr, stdout, tagged, unique_tag};

const THREADS: &str = "\
import threading
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
ts = [threading.Thread(target=fib, args=(27,)) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
";

const POOL: &str = "\
import multiprocessing as mp, time
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
def work(n):
    time.sleep(0.05)
    return fib(n)
if __name__ == '__main__':
    with mp.get_context('fork').Pool(2) as p:
        print(p.map(work, [22] * 4))
";

const FORKS: &str = "\
import os, time
for _ in range(200):
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
print('forked', flush=True)
time.sleep(600)
";

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `parlab watch ARGS` tagged, and parses its JSON.
#[track_caller]
fn watch_json(args: &[&str], tag: &str) -> (Value, std::process::Output) {
    let _machine = crate::util::shared();
    let o = tagged(&[&["watch", "--json"], args].concat(), tag).output().expect("parlab runs");
    let v =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}{}", stdout(&o), stderr(&o)));
    (v, o)
}

fn spans<'a>(v: &'a Value, lane: u64, kind: &str) -> Vec<&'a Value> {
    v["spans"].as_array().unwrap().iter().filter(|s| s["lane"] == lane && s["kind"] == kind).collect()
}

fn lane_id(v: &Value, label: &str) -> u64 {
    let lanes = v["lanes"].as_array().unwrap();
    let l = lanes.iter().find(|l| l["label"] == label).unwrap_or_else(|| panic!("no lane '{label}' in {lanes:?}"));
    l["id"].as_u64().unwrap()
}

#[track_caller]
fn assert_spans_within_the_run(v: &Value) {
    let wall_us = v["wall_ms"].as_f64().unwrap() * 1e3;
    for s in v["spans"].as_array().unwrap() {
        let (a, b) = (s["start_us"].as_f64().unwrap(), s["end_us"].as_f64().unwrap());
        assert!(0.0 <= a && a <= b && b <= wall_us + 1.0, "span outside the run (0..{wall_us} us): {s}");
    }
}

#[test]
fn watch_draws_two_threads_of_one_process_taking_turns_on_the_gil() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), "two_threads.py", THREADS);
    let tag = unique_tag("watch-threads");
    let (v, o) = watch_json(&[file.to_str().unwrap()], &tag);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["processes"].as_array().unwrap().len(), 1, "{}", v["processes"]);
    let pid = v["processes"][0]["pid"].as_u64().unwrap();
    let lanes = v["lanes"].as_array().unwrap();
    assert!(lanes.iter().all(|l| l["pid"] == pid), "one pid: {lanes:?}");
    let mut tids: Vec<u64> = lanes.iter().map(|l| l["tid"].as_u64().unwrap()).collect();
    tids.sort_unstable();
    tids.dedup();
    assert_eq!(tids.len(), 3, "main, t1, t2: {lanes:?}");
    let (t1, t2) = (lane_id(&v, "t1"), lane_id(&v, "t2"));
    for t in [t1, t2] {
        assert!(!spans(&v, t, "run").is_empty(), "lane {t} ran");
        assert!(!spans(&v, t, "gil-wait").is_empty(), "lane {t} waited for the GIL: {}", v["spans"]);
    }
    // The waits alternate between the two threads, and while one waits the other runs.
    let mut waits: Vec<&Value> = [spans(&v, t1, "gil-wait"), spans(&v, t2, "gil-wait")].concat();
    waits.sort_by(|a, b| a["start_us"].as_f64().unwrap().total_cmp(&b["start_us"].as_f64().unwrap()));
    let switches = waits.windows(2).filter(|w| w[0]["lane"] != w[1]["lane"]).count();
    assert!(switches >= 2, "the waits alternate between t1 and t2: {waits:?}");
    for w in &waits {
        // Another thread of the process (the other worker, or main) is on a CPU while this one waits.
        let (a, b) = (w["start_us"].as_f64().unwrap(), w["end_us"].as_f64().unwrap());
        let overlaps = v["spans"].as_array().unwrap().iter().any(|r| {
            r["kind"] == "run"
                && r["lane"] != w["lane"]
                && r["start_us"].as_f64().unwrap() < b
                && r["end_us"].as_f64().unwrap() > a
        });
        assert!(overlaps, "another thread runs while {w} waits");
    }
    assert_spans_within_the_run(&v);
    assert!(v["sampler"]["ticks"].as_u64().unwrap() > 10, "{}", v["sampler"]);
    assert_none_left(&tag);
}

#[test]
fn watch_draws_each_pool_worker_process_as_its_own_lane() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), "pool.py", POOL);
    let tag = unique_tag("watch-pool");
    let trace = dir.path().join("pool.trace.json");
    let (v, o) = watch_json(&["--trace", trace.to_str().unwrap(), file.to_str().unwrap()], &tag);
    assert!(o.status.success(), "{}", stderr(&o));
    let procs = v["processes"].as_array().unwrap();
    let main = procs[0]["pid"].as_u64().unwrap();
    let workers: Vec<&Value> = procs.iter().filter(|p| p["ppid"] == main).collect();
    assert!(workers.len() >= 2, "two pool workers below the main process: {procs:?}");
    for w in &workers {
        let pid = w["pid"].as_u64().unwrap();
        assert_ne!(pid, main);
        let lane = v["lanes"].as_array().unwrap().iter().find(|l| l["pid"] == pid && l["tid"] == pid).unwrap();
        assert!(lane["label"].as_str().unwrap().starts_with('p'), "{lane}");
    }
    let busy = workers.iter().filter(|w| {
        let lane = v["lanes"].as_array().unwrap().iter().find(|l| l["pid"] == w["pid"]).unwrap();
        !spans(&v, lane["id"].as_u64().unwrap(), "run").is_empty()
    });
    assert!(busy.count() >= 1, "a worker ran: {}", v["spans"]);
    assert_spans_within_the_run(&v);
    // The trace names every process and has the workers' spans on their own pids.
    let t: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap();
    for w in &workers {
        assert!(events.iter().any(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == w["pid"]));
    }
    assert!(events.iter().any(|e| e["ph"] == "X" && workers.iter().any(|w| e["pid"] == w["pid"])), "{t}");
    assert!(events.iter().any(|e| e["ph"] == "C"), "per-core counters");
    assert_none_left(&tag);
}

#[test]
fn a_script_that_forks_200_children_is_stopped_whole_at_its_timeout() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), "forks.py", FORKS);
    let tag = unique_tag("watch-forks");
    let (v, o) = watch_json(&["--timeout", "3", file.to_str().unwrap()], &tag);
    assert_eq!(o.status.code(), Some(1), "a timeout is no success: {}", stderr(&o));
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["ended"], "stopped at the timeout (3 s), with every process it started");
    assert!(v["processes"].as_array().unwrap().len() > 1, "children were seen");
    assert_none_left(&tag);
}

#[test]
fn watch_refuses_what_is_not_a_python_file_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.py");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let missing = dir.path().join("nothere.py");
    let non_utf8 = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.py"));
    let cases: Vec<(std::ffi::OsString, String)> = vec![
        (missing.clone().into(), format!("error: no such file '{}'\n", missing.display())),
        (
            dir.path().into(),
            format!(
                "error: '{}' is a folder; name a Python file (e.g. parlab watch my_threads.py)\n",
                dir.path().display()
            ),
        ),
        (
            fifo.clone().into(),
            format!(
                "error: '{}' is not a regular file (a device, FIFO or socket); name a Python file\n",
                fifo.display()
            ),
        ),
        (non_utf8.clone().into(), format!("error: no such file '{}/caf\\xe9.py'\n", dir.path().display())),
        ("notes.txt".into(), "error: no such file 'notes.txt'\n".to_string()),
    ];
    let _machine = crate::util::shared();
    for (arg, want) in cases {
        let o = std::process::Command::new(crate::util::bin())
            .arg("watch")
            .arg("--table")
            .arg(&arg)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{arg:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), want, "{arg:?}");
        assert!(o.stdout.is_empty());
    }
    let o = crate::util::parlab(&["watch", "--timeout", "0", "x.py"]);
    assert_eq!(stderr(&o), "error: --timeout 0 is out of range (allowed 1..=3600 seconds)\n");
}

#[test]
fn a_non_utf8_file_name_runs_and_is_shown_escaped() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.py"));
    std::fs::write(&file, "print('hi')\n").unwrap();
    let _machine = crate::util::shared();
    let o = std::process::Command::new(crate::util::bin())
        .arg("watch")
        .arg("--table")
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("parlab watch · caf\\xe9.py · Python 3."), "{}", stdout(&o));
    assert_eq!(stderr(&o), "hi\n", "the program's own output goes to stderr");
}

#[test]
fn python_engine_threads_show_one_pid_two_tids_and_real_gil_waits_cut_out_of_their_runs() {
    if !python3_or_skip() {
        return;
    }
    let tag = unique_tag("watch-engine");
    let _machine = crate::util::shared();
    let args =
        ["run", "--engine", "python", "--mode", "threads", "--workers", "2", "--workload", "fib:28", "--tasks", "6"];
    let o = tagged(&[&args[..], &["--json"]].concat(), &tag).output().expect("parlab runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lanes = v["lanes"].as_array().unwrap();
    let pids: std::collections::BTreeSet<u64> = lanes.iter().map(|l| l["pid"].as_u64().unwrap()).collect();
    let tids: std::collections::BTreeSet<u64> = lanes.iter().map(|l| l["tid"].as_u64().unwrap()).collect();
    assert_eq!((pids.len(), tids.len()), (1, 2), "{lanes:?}");
    let all = v["spans"].as_array().unwrap();
    let waits: Vec<&Value> = all.iter().filter(|s| s["kind"] == "gil-wait").collect();
    let waiting_lanes: std::collections::BTreeSet<u64> = waits.iter().map(|s| s["lane"].as_u64().unwrap()).collect();
    assert_eq!(waiting_lanes.len(), 2, "both threads waited for the GIL: {waits:?}");
    let f = |s: &Value, k: &str| s[k].as_f64().unwrap();
    for w in &waits {
        // The task's run pieces and waits tile one stretch: the waits were cut out of the task's run.
        let mut tiles: Vec<&Value> = all
            .iter()
            .filter(|r| {
                (r["kind"] == "run" || r["kind"] == "gil-wait") && r["lane"] == w["lane"] && r["task"] == w["task"]
            })
            .collect();
        assert!(tiles.iter().any(|r| r["kind"] == "run"), "the task of {w} ran");
        tiles.sort_by(|a, b| f(a, "start_us").total_cmp(&f(b, "start_us")));
        for p in tiles.windows(2) {
            assert!((f(p[1], "start_us") - f(p[0], "end_us")).abs() < 0.01, "a gap or overlap in a task: {p:?}");
        }
        // The run is cut around it: time on a CPU and time waiting never overlap on one lane.
        let lane_runs = all.iter().filter(|r| r["kind"] == "run" && r["lane"] == w["lane"]);
        for r in lane_runs {
            assert!(f(r, "end_us") <= f(w, "start_us") || f(w, "end_us") <= f(r, "start_us"), "{r} overlaps {w}");
        }
    }
    assert!(v["overhead_ms"]["gil_wait"].as_f64().unwrap() > 0.0);
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("gil-wait measured from outside"))
    );
    assert_none_left(&tag);
}

#[test]
fn check_of_a_python_file_shows_its_parallel_lanes_as_the_scheduler_saw_them() {
    if !python3_or_skip() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/exercises/solutions/fib_threads.py");
    let tag = unique_tag("watch-check");
    let _machine = crate::util::shared();
    let o = tagged(&["check", "beat-the-gil", file.to_str().unwrap()], &tag)
        .env("PARLAB_DATA_DIR", data.path())
        .env("PARLAB_CHECK_REPS", "1")
        .output()
        .expect("parlab runs");
    let out = stdout(&o);
    assert!(
        out.contains("  parallel() as the scheduler saw it (run 1 of 1, the median: 1 process, "),
        "{out}{}",
        stderr(&o)
    );
    // The solution's pool threads have lanes of their own, in the file's one process.
    let lanes: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with('t') && l.contains('/')).collect();
    assert!(lanes.len() >= 2, "a lane per pool thread: {out}");
    assert!(out.contains("█ run"), "{out}");
    assert_none_left(&tag);
}

#[test]
fn sigkill_of_parlab_during_watch_leaves_none_of_the_programs_processes() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), "forks.py", FORKS);
    let tag = unique_tag("watch-kill");
    let _machine = crate::util::shared();
    let mut child = tagged(&["watch", "--table", file.to_str().unwrap()], &tag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("parlab runs");
    // The program is running once its children are there.
    assert!(crate::util::wait_for(20.0, || crate::util::tagged_processes(&tag).len() > 20), "the script forked");
    // SAFETY: SIGKILL to the parlab this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert_none_left(&tag);
}
