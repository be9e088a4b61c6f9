//! The python engine's harness (`src/engine/harness.py`) run directly with python3, the way the lab will run it:
//! `python3 -I -u harness.py`, one JSON request on stdin (kept open), events as JSON lines on an inherited fd 3.
//! Every workload in every mode gives the native engine's checksum; lanes and spans are well formed; bad requests,
//! failing tasks and dying workers end in clear errors; no worker outlives the harness. No test asserts a duration.
//!
//! `python3` comes from PATH; `PARLAB_TEST_PYTHON=/path/to/python3` runs the same tests against another
//! interpreter (e.g. `~/.pyenv/versions/3.13.0/bin/python3`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    TAG_ENV, assert_none_left, json as parlab_json, parlab, python3_or_skip, shared, stderr, unique_tag, wait_for,
};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/harness.py");
/// No run here takes more than a few seconds; a hang is killed and fails the test.
const DEADLINE: Duration = Duration::from_secs(90);
const KINDS: [&str; 5] = ["startup", "run", "serialize", "idle", "failed"];

fn python() -> String {
    std::env::var("PARLAB_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the interpreter under test runs (skips, or fails under CI, like the Python exercise tests).
fn have_python() -> bool {
    if std::env::var_os("PARLAB_TEST_PYTHON").is_some() {
        return true;
    }
    python3_or_skip()
}

/// A running harness: its stdin (held open: closing it cancels the run) and its event lines.
struct Harness {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

/// What a finished harness gave.
struct Run {
    events: Vec<Value>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

/// Starts the harness with `request` (results_fd is added), its environment tagged with `tag`.
fn start(request: &Value, tag: &str) -> Harness {
    start_with(&python(), request, tag)
}

fn start_with(python: &str, request: &Value, tag: &str) -> Harness {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let w = write_end.as_raw_fd();
    let mut cmd = Command::new(python);
    cmd.args(["-I", "-u", HARNESS])
        .env(TAG_ENV, tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only dup2 and fcntl are called (async-signal-safe), on descriptors we own.
    unsafe {
        cmd.pre_exec(move || {
            // The results pipe becomes fd 3, without close-on-exec (dup2 clears it; fd 3 itself needs fcntl).
            let ok = if w == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(w, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    drop(write_end);
    let mut request = request.clone();
    request["results_fd"] = json!(3);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    writeln!(stdin, "{request}").expect("the request is written");
    stdin.flush().expect("the request is sent");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(std::fs::File::from(read_end)).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    Harness { child, stdin: Some(stdin), lines, out, err }
}

impl Harness {
    /// The next event line (None at the end of the stream); a hang past the deadline kills the harness and fails.
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("an event line is not JSON ({e}): {line}")))
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the harness hung (killed after {} s)", DEADLINE.as_secs());
            }
        }
    }

    /// Reads every event, then closes stdin and waits for the harness.
    fn finish(mut self) -> Run {
        let deadline = Instant::now() + DEADLINE;
        let mut events = Vec::new();
        while let Some(ev) = self.next(deadline) {
            events.push(ev);
        }
        drop(self.stdin.take());
        let status = self.child.wait().expect("the harness is reaped");
        Run { events, status, stdout: self.out.join().unwrap_or_default(), stderr: self.err.join().unwrap_or_default() }
    }
}

/// Runs one request to its end and checks the stream's shape (whatever the run's outcome).
#[track_caller]
fn run(request: Value) -> Run {
    let _machine = shared();
    let tag = unique_tag("pyharness");
    let r = start(&request, &tag).finish();
    assert!(r.status.success(), "the harness exited with {:?} for {request}; stderr: {}", r.status, r.stderr);
    assert!(r.stdout.is_empty(), "the harness wrote to stdout: {}", r.stdout);
    if request.get("probe").is_none() {
        well_formed(&r, &request);
        if r.error().is_none() {
            // A clean run leaves nothing behind to warn about (leaked semaphores, a worker's traceback).
            assert!(r.stderr.is_empty(), "stderr of {request}: {}", r.stderr);
        }
    }
    assert_none_left(&tag);
    r
}

fn key(ev: &Value) -> &str {
    let obj = ev.as_object().unwrap_or_else(|| panic!("an event is not an object: {ev}"));
    assert_eq!(obj.len(), 1, "an event has one key: {ev}");
    obj.keys().next().map(String::as_str).unwrap_or("")
}

impl Run {
    fn all(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e.get(name).is_some()).map(|e| &e[name]).collect()
    }
    fn hello(&self) -> &Value {
        &self.events[0]["hello"]
    }
    fn end(&self) -> &Value {
        &self.events.last().expect("events")["finished"]
    }
    fn error(&self) -> Option<&str> {
        self.end()["error"].as_str()
    }
    fn checksum(&self) -> u64 {
        self.end()["checksum"].as_u64().expect("a u64 checksum")
    }
    fn lanes(&self) -> Vec<&Value> {
        self.all("lane")
    }
    fn spans(&self) -> Vec<&Value> {
        self.all("span")
    }
    fn spans_of(&self, kind: &str) -> Vec<&Value> {
        self.spans().into_iter().filter(|s| s["kind"] == kind).collect()
    }
    fn label_of(&self, lane: &Value) -> String {
        let lane = self.lanes().into_iter().find(|l| l["id"] == *lane).expect("the span's lane");
        lane["label"].as_str().unwrap_or("").to_string()
    }
}

/// The stream's shape: hello first and finished last, known events only, every span on a lane declared before it,
/// inside the run (a warm pool's start-up may begin before the clock), and a successful run's run spans covering
/// every task.
#[track_caller]
fn well_formed(r: &Run, request: &Value) {
    assert!(!r.events.is_empty(), "no events for {request}");
    assert_eq!(key(&r.events[0]), "hello", "the first event is hello: {}", r.events[0]);
    assert_eq!(key(r.events.last().unwrap()), "finished", "the last event is finished");
    let end = r.end();
    let (t0, t_end) = (end["t0_ns"].as_u64().unwrap(), end["t_end_ns"].as_u64().unwrap());
    assert!(t0 <= t_end, "t0 {t0} after t_end {t_end}");
    let mut lanes = BTreeSet::new();
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for ev in &r.events[1..] {
        match key(ev) {
            "started" => assert_eq!(ev["started"]["lab_pid"], r.hello()["pid"]),
            "lane" => {
                let l = &ev["lane"];
                let id = l["id"].as_u64().expect("lane id");
                assert!(lanes.insert(id), "lane {id} declared twice");
                assert!(l["pid"].as_u64().unwrap() > 0 && l["tid"].as_u64().unwrap() > 0, "{l}");
                assert!(!l["label"].as_str().unwrap().is_empty(), "{l}");
            }
            "span" => {
                let s = &ev["span"];
                let lane = s["lane"].as_u64().expect("span lane");
                assert!(lanes.contains(&lane), "span on undeclared lane {lane}: {s}");
                let kind = s["kind"].as_str().expect("kind");
                assert!(KINDS.contains(&kind), "unknown span kind {kind}");
                let (a, b) = (s["start_ns"].as_u64().unwrap(), s["end_ns"].as_u64().unwrap());
                assert!(a <= b, "span ends before it starts: {s}");
                assert!(b <= t_end, "span ends after the run: {s} (t_end {t_end})");
                if kind != "startup" {
                    assert!(a >= t0, "{kind} span before the clock started: {s} (t0 {t0})");
                }
                for cpu in [&s["cpu_start"], &s["cpu_end"]] {
                    assert!(cpu.as_i64().unwrap() >= -1, "{s}");
                }
                // Task work: computing, or (async sleep) awaiting.
                if kind == "run" || kind == "idle" {
                    covered.push((s["task"].as_u64().unwrap(), s["count"].as_u64().unwrap()));
                }
            }
            "note" => assert!(ev["note"].is_string()),
            "finished" => {}
            other => panic!("unknown event '{other}': {ev}"),
        }
    }
    assert_eq!(r.all("finished").len(), 1, "one finished event");
    let records = request.get("record").and_then(Value::as_bool).unwrap_or(true);
    if r.error().is_none() && records {
        let tasks = request["tasks"].as_u64().unwrap();
        assert_eq!(end["tasks_done"].as_u64(), Some(tasks), "every task done: {end}");
        let mut done = vec![false; tasks as usize];
        for (task, count) in covered {
            for t in task..task + count {
                done[t as usize] = true;
            }
        }
        assert!(done.iter().all(|d| *d), "the spans leave tasks out: {request}");
    }
}

/// The native engine's checksum for the same experiment (sequential: every mode gives the same).
fn native(workload: &str, tasks: u64, payload: u64) -> u64 {
    let v = parlab_json(&[
        "run",
        "--json",
        "--workload",
        workload,
        "--tasks",
        &tasks.to_string(),
        "--payload",
        &payload.to_string(),
    ]);
    v["checksum"].as_u64().expect("native checksum")
}

/// Small sizes of every workload: `logs:50001` needs two simulated reads per task.
const WORKLOADS: [&str; 8] =
    ["fib:10..14", "squares:1000", "count:1000", "pi:1000", "primes:500", "tiny", "sleep:2", "logs:50001"];

fn tasks_for(workload: &str) -> u64 {
    if workload.starts_with("logs") { 3 } else { 5 }
}

#[test]
fn in_process_modes_give_the_native_checksum_for_every_workload() {
    if !have_python() {
        return;
    }
    for w in WORKLOADS {
        let tasks = tasks_for(w);
        for payload in [0, 1001] {
            let expected = native(w, tasks, payload);
            for mode in ["sequential", "threads", "async", "async-offload"] {
                let r = run(json!({"workload": w, "tasks": tasks, "mode": mode, "workers": 2, "payload": payload}));
                assert_eq!(r.error(), None, "{w} {mode}");
                assert_eq!(r.checksum(), expected, "{w} × {tasks} in {mode} with payload {payload}");
            }
        }
    }
}

#[test]
fn processes_mode_gives_the_native_checksum_for_every_workload() {
    if !have_python() {
        return;
    }
    for w in WORKLOADS {
        let tasks = tasks_for(w);
        let expected = native(w, tasks, 0);
        let r = run(json!({"workload": w, "tasks": tasks, "mode": "processes", "workers": 2, "start": "fork"}));
        assert_eq!(r.error(), None, "{w}");
        assert_eq!(r.checksum(), expected, "{w} × {tasks} in processes");
    }
}

#[test]
fn every_pool_api_and_start_method_gives_the_native_checksum_with_a_payload() {
    if !have_python() {
        return;
    }
    let expected = native("fib:10..14", 6, 1001);
    for api in ["map", "imap", "imap_unordered", "executor"] {
        for start in ["spawn", "fork", "forkserver"] {
            let r = run(json!({"workload": "fib:10..14", "tasks": 6, "mode": "processes", "workers": 2,
                               "start": start, "api": api, "chunksize": 2, "payload": 1001}));
            assert_eq!(r.error(), None, "{api} {start}");
            assert_eq!(r.checksum(), expected, "{api} {start}");
            // Each task's payload is pickled in the parent and unpickled in a worker, both timed.
            let serialize = r.spans_of("serialize");
            assert!(serialize.iter().any(|s| r.label_of(&s["lane"]).starts_with('p')), "{api} {start}");
            assert!(serialize.iter().any(|s| !r.label_of(&s["lane"]).starts_with('p')), "{api} {start}");
        }
    }
}

#[test]
fn large_payloads_match_the_native_bytes_and_checksum() {
    if !have_python() {
        return;
    }
    // Above 32 KiB the harness builds the payload many xorshift lanes at a time; the bytes must not change.
    for payload in [32_768, 1_000_003] {
        let expected = native("tiny", 3, payload);
        for mode in ["sequential", "processes"] {
            let r = run(json!({"workload": "tiny", "tasks": 3, "mode": mode, "workers": 2, "start": "fork",
                               "payload": payload}));
            assert_eq!(r.checksum(), expected, "payload {payload} in {mode}");
        }
    }
}

#[test]
fn threads_mode_shows_one_pid_and_a_tid_per_worker() {
    if !have_python() {
        return;
    }
    let r = run(json!({"workload": "fib:20", "tasks": 9, "mode": "threads", "workers": 3}));
    let pid = r.hello()["pid"].as_u64().unwrap();
    let lanes = r.lanes();
    let labels: Vec<&str> = lanes.iter().map(|l| l["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["t1", "t2", "t3"]);
    assert!(lanes.iter().all(|l| l["pid"] == pid), "every thread is in the harness process: {lanes:?}");
    let tids: BTreeSet<u64> = lanes.iter().map(|l| l["tid"].as_u64().unwrap()).collect();
    assert_eq!(tids.len(), 3, "three threads: {lanes:?}");
    assert!(!tids.contains(&pid), "pool threads are not the main thread");
    assert_eq!(r.spans_of("startup").len(), 3);
}

#[test]
fn processes_mode_shows_a_worker_pid_per_worker_with_each_start_method() {
    if !have_python() {
        return;
    }
    for start in ["spawn", "fork", "forkserver"] {
        let r = run(json!({"workload": "fib:18", "tasks": 6, "mode": "processes", "workers": 2, "start": start,
                           "chunksize": 1}));
        let harness = r.hello()["pid"].as_u64().unwrap();
        let lanes = r.lanes();
        let mut labels: Vec<&str> = lanes.iter().map(|l| l["label"].as_str().unwrap()).collect();
        labels.sort();
        assert_eq!(labels, ["p1", "p2"], "{start}");
        let pids: BTreeSet<u64> = lanes.iter().map(|l| l["pid"].as_u64().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{start}: two worker processes");
        assert!(!pids.contains(&harness), "{start}: workers are not the harness");
        assert!(lanes.iter().all(|l| l["pid"] == l["tid"]), "{start}: a worker runs tasks on its main thread");
        assert_eq!(r.spans_of("startup").len(), 2, "{start}: one start-up span per worker");
        assert_eq!(r.spans_of("run").len(), 6, "{start}: a run span per chunk");
    }
}

#[test]
fn chunks_follow_the_api_default_rule_and_the_chunksize_given() {
    if !have_python() {
        return;
    }
    let counts = |r: &Run| -> Vec<u64> {
        let mut c: Vec<u64> = r.spans_of("run").iter().map(|s| s["count"].as_u64().unwrap()).collect();
        c.sort();
        c
    };
    // Pool.map: ceil(20 / (4 * 2)) = 3 tasks per chunk; imap and the executor: 1; a given chunksize: itself.
    let base = json!({"workload": "tiny", "tasks": 20, "mode": "processes", "workers": 2, "start": "fork"});
    let with = |extra: Value| {
        let mut req = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        run(req)
    };
    assert_eq!(counts(&with(json!({"api": "map"}))), [2, 3, 3, 3, 3, 3, 3]);
    assert_eq!(counts(&with(json!({"api": "imap"}))), vec![1; 20]);
    assert_eq!(counts(&with(json!({"api": "executor"}))), vec![1; 20]);
    assert_eq!(counts(&with(json!({"api": "imap_unordered", "chunksize": 7}))), [6, 7, 7]);
}

#[test]
fn many_tiny_tasks_are_recorded_in_a_few_thousand_spans() {
    if !have_python() {
        return;
    }
    let expected = native("tiny", 100_000, 0);
    for mode in ["sequential", "threads", "async"] {
        let r = run(json!({"workload": "tiny", "tasks": 100_000, "mode": mode, "workers": 2}));
        assert_eq!(r.checksum(), expected, "{mode}");
        let spans = r.spans_of("run").len();
        assert!(spans <= 4096, "{mode}: {spans} run spans for 100000 tiny tasks");
    }
}

#[test]
fn warm_pools_start_before_the_clock() {
    if !have_python() {
        return;
    }
    for api in ["map", "executor"] {
        let r = run(json!({"workload": "fib:15", "tasks": 4, "mode": "processes", "workers": 2, "start": "spawn",
                           "api": api, "warm": true}));
        let t0 = r.end()["t0_ns"].as_u64().unwrap();
        let startups = r.spans_of("startup");
        assert_eq!(startups.len(), 2, "{api}");
        assert!(startups.iter().all(|s| s["end_ns"].as_u64().unwrap() <= t0), "{api}: workers ready before t0");
        assert!(r.all("note").iter().any(|n| n.as_str().unwrap().contains("warm pool")), "{api}");
    }
}

#[test]
fn without_recording_a_run_has_lanes_but_no_spans() {
    if !have_python() {
        return;
    }
    let expected = native("fib:12", 4, 0);
    for mode in ["sequential", "threads", "processes"] {
        let r = run(json!({"workload": "fib:12", "tasks": 4, "mode": mode, "workers": 2, "start": "fork",
                           "record": false}));
        assert_eq!(r.checksum(), expected, "{mode}");
        assert!(!r.lanes().is_empty(), "{mode}");
        assert!(r.spans().is_empty(), "{mode}: {:?}", r.spans());
    }
}

#[test]
fn hello_describes_the_interpreter() {
    if !have_python() {
        return;
    }
    let r = run(json!({"probe": true}));
    assert_eq!(r.events.len(), 1, "a probe writes hello only");
    let py = &r.hello()["python"];
    let version = Command::new(python()).arg("--version").output().expect("python runs");
    let version = String::from_utf8_lossy(&version.stdout).trim().replace("Python ", "");
    assert_eq!(py["version"], version.as_str());
    assert_eq!(py["implementation"], "cpython");
    assert!(py["gil_enabled"].is_boolean());
    assert!(py["has_interpreter_pool"].is_boolean());
    assert!(std::path::Path::new(py["path"].as_str().unwrap()).is_absolute(), "{py}");
    let methods: Vec<&str> = py["start_methods"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(methods.contains(&"fork") && methods.contains(&"spawn"), "{methods:?}");
    assert!(r.hello()["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn a_bad_workload_is_refused_with_the_native_engines_message() {
    if !have_python() {
        return;
    }
    for w in ["fibb:3", "fib:99", "tiny:3", "fib:30..27", "squares:lots"] {
        let r = run(json!({"workload": w, "tasks": 2, "mode": "sequential"}));
        let native = parlab(&["run", "--workload", w, "--tasks", "2"]);
        let message = stderr(&native).trim().trim_start_matches("error: ").to_string();
        assert_eq!(r.error(), Some(message.as_str()), "{w}");
        assert!(r.lanes().is_empty(), "{w}: nothing ran");
    }
}

#[test]
fn bad_request_values_are_refused_naming_the_value() {
    if !have_python() {
        return;
    }
    let cases = [
        (
            json!({"workload": "tiny", "tasks": 0, "mode": "sequential"}),
            "tasks '0' is out of range (allowed 1..=10000000)",
        ),
        (
            json!({"workload": "tiny", "tasks": "3", "mode": "sequential"}),
            "request field 'tasks' must be a whole number (got '\"3\"')",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "thread"}),
            "unknown mode 'thread' (expected one of: sequential, threads, processes, async, async-offload, interpreters, dask, ray) (did you mean 'threads'?)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "processes", "start": "vfork"}),
            "unknown start 'vfork' (expected one of: spawn, fork, forkserver) (did you mean 'fork'?)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "processes", "api": "starmap"}),
            "unknown api 'starmap' (expected one of: map, imap, imap_unordered, executor)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "threads", "workers": 999}),
            "workers '999' is out of range (allowed 1..=256)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "sequential", "colour": "red"}),
            "unknown request field 'colour'",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "threads", "crash_task": 1}),
            "crash_task applies only to mode processes (it kills a worker process)",
        ),
    ];
    for (req, message) in cases {
        let r = run(req.clone());
        let got = r.error().unwrap_or_else(|| panic!("{req} was accepted"));
        assert!(got.starts_with(message), "{req}: got {got:?}, expected {message:?}");
    }
}

#[test]
fn gil_mode_is_refused_because_threads_already_run_under_the_real_gil() {
    if !have_python() {
        return;
    }
    let r = run(json!({"workload": "fib:20", "tasks": 2, "mode": "gil"}));
    assert_eq!(r.error(), Some("the python engine has no gil mode: its threads mode runs under CPython's real GIL"));
}

#[test]
fn interpreters_mode_needs_python_3_14() {
    if !have_python() {
        return;
    }
    let r = run(json!({"workload": "fib:20", "tasks": 2, "mode": "interpreters", "workers": 2}));
    let version = r.hello()["python"]["version"].as_str().unwrap().to_string();
    let minor: u32 = version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap();
    if minor >= 14 {
        eprintln!("note: {version} has InterpreterPoolExecutor; the version refusal is not tested here");
        return;
    }
    assert_eq!(r.error(), Some(format!("the interpreters mode needs Python 3.14 (this is {version})").as_str()));
}

#[test]
fn interpreters_older_than_3_9_are_told_what_is_needed() {
    // Only where pyenv has one (CI does not): the harness must parse on old Pythons to say so.
    let home = std::env::var("HOME").unwrap_or_default();
    let Some(old) = ["3.8.18", "3.7.16", "3.6.15"]
        .iter()
        .map(|v| format!("{home}/.pyenv/versions/{v}/bin/python3"))
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("note: no Python older than 3.9 here; skipping the too-old interpreter test");
        return;
    };
    let _machine = shared();
    let tag = unique_tag("pyharness-old");
    let r = start_with(&old, &json!({"workload": "tiny", "tasks": 2, "mode": "sequential"}), &tag).finish();
    assert!(r.status.success(), "{}", r.stderr);
    let version = r.events[0]["hello"]["python"]["version"].as_str().unwrap().to_string();
    let expected = format!("the python engine needs Python 3.9 or newer ({old} is {version})");
    assert_eq!(r.error(), Some(expected.as_str()));
}

#[test]
fn a_task_that_raises_ends_the_run_with_its_error_in_every_mode() {
    if !have_python() {
        return;
    }
    let mut cases: Vec<Value> = ["sequential", "threads", "async", "async-offload"]
        .iter()
        .map(|m| json!({"workload": "fib:12", "tasks": 6, "mode": m, "workers": 2}))
        .collect();
    cases.push(json!({"workload": "sleep:1", "tasks": 6, "mode": "async"}));
    for api in ["map", "imap", "imap_unordered", "executor"] {
        cases.push(json!({"workload": "fib:12", "tasks": 6, "mode": "processes", "workers": 2, "start": "fork",
                          "api": api, "chunksize": 1}));
    }
    for mut req in cases {
        req["fail_task"] = json!(3);
        let r = run(req.clone());
        let error = r.error().unwrap_or_else(|| panic!("{req}: the run did not fail"));
        assert!(
            error.starts_with(
                "task 3 raised RuntimeError: task 3 failed on purpose (fail_task in the request) (harness.py:"
            ),
            "{req}: {error}"
        );
        assert!(!r.spans_of("failed").is_empty(), "{req}: a failed span");
    }
}

#[test]
fn a_worker_that_dies_is_a_failed_span_and_an_error_never_a_hang() {
    if !have_python() {
        return;
    }
    let mut cases = Vec::new();
    for api in ["map", "imap", "imap_unordered", "executor"] {
        cases.push((api, "fork"));
    }
    cases.push(("map", "spawn"));
    cases.push(("executor", "forkserver"));
    for (api, start) in cases {
        let req = json!({"workload": "fib:15", "tasks": 6, "mode": "processes", "workers": 2, "start": start,
                         "api": api, "chunksize": 1, "crash_task": 3});
        let r = run(req.clone());
        let error = r.error().unwrap_or_else(|| panic!("{req}: the run did not fail"));
        assert!(error.starts_with("worker p"), "{req}: {error}");
        assert!(
            error.ends_with("was killed by signal 9 (SIGKILL) while running chunk 3 (tasks 3..4); the run was stopped"),
            "{req}: {error}"
        );
        let failed = r.spans_of("failed");
        assert_eq!(failed.len(), 1, "{req}");
        assert_eq!(failed[0]["task"], 3, "{req}");
        let label = r.label_of(&failed[0]["lane"]);
        assert!(error.starts_with(&format!("worker {label} ")), "{req}: the failed span is on {label}: {error}");
    }
}

/// Starts a long processes run and waits until both workers have said hello.
fn start_long_run(start_method: &str, tag: &str) -> (Harness, Vec<u32>) {
    let mut h = start(
        &json!({"workload": "sleep:4000", "tasks": 4, "mode": "processes", "workers": 2, "start": start_method,
                "chunksize": 1}),
        tag,
    );
    let deadline = Instant::now() + DEADLINE;
    let mut pids = Vec::new();
    while pids.len() < 2 {
        let ev = h.next(deadline).expect("the run goes on until its workers start");
        if let Some(pid) = ev.get("lane").and_then(|l| l["pid"].as_u64()) {
            pids.push(pid as u32);
        }
    }
    (h, pids)
}

/// Whether a process has ended (a zombie has: only its reaping is left, to whoever inherited it).
fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_none_or(|r| r.1.trim_start().starts_with('Z'))
}

#[test]
fn killing_the_harness_leaves_no_worker_behind() {
    if !have_python() {
        return;
    }
    for method in ["spawn", "fork", "forkserver"] {
        let _machine = shared();
        let tag = unique_tag("pyharness-kill");
        let (mut h, pids) = start_long_run(method, &tag);
        h.child.kill().expect("SIGKILL the harness");
        let _ = h.child.wait();
        drop(h.stdin.take());
        assert_none_left(&tag);
        assert!(wait_for(3.0, || pids.iter().all(|p| gone(*p))), "{method}: workers {pids:?} outlived the harness");
    }
}

#[test]
fn closing_stdin_or_sigterm_stops_the_run_and_its_workers() {
    if !have_python() {
        return;
    }
    for (method, how) in [("fork", "stdin"), ("forkserver", "stdin"), ("spawn", "sigterm"), ("forkserver", "sigterm")] {
        let _machine = shared();
        let tag = unique_tag("pyharness-stop");
        let (mut h, _) = start_long_run(method, &tag);
        let begun = Instant::now();
        if how == "stdin" {
            drop(h.stdin.take());
        } else {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(h.child.id() as i32, libc::SIGTERM) };
        }
        let status = h.child.wait().expect("the harness ends");
        assert_eq!(status.code(), Some(if how == "stdin" { 4 } else { 143 }), "{method} {how}");
        assert!(begun.elapsed() < Duration::from_secs(3), "{method} {how}: the 4 s tasks were not waited for");
        assert_none_left(&tag);
    }
}

#[test]
fn a_request_without_a_results_fd_is_a_usage_error_on_stderr() {
    if !have_python() {
        return;
    }
    let _machine = shared();
    let mut child = Command::new(python())
        .args(["-I", "-u", HARNESS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", json!({"workload": "tiny", "tasks": 1, "mode": "sequential"})).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the request names no results_fd"));
}
