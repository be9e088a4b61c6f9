//! The python engine's `dask` and `ray` modes, run directly with the harness (as tests/pyharness.rs does) in a
//! virtualenv that has the engines: `.ci/run` creates it and sets `PARLAB_TEST_VENV`; without that variable the
//! tests look for `.ci/venv` in the repository. Without dask the dask tests skip with a note (under CI they fail:
//! CI installs it); without ray the ray tests skip with a note (under CI too when `.ci/run` said that ray did not
//! install, `PARLAB_TEST_NO_RAY=1`). The missing-engine tests use the plain `python3`, which has neither.
//!
//! Every run here starts its own cluster (a Dask LocalCluster takes about a second, a local Ray about three to
//! five on this 2-core machine); the module takes about a minute. No test asserts a duration.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{
    TAG_ENV, assert_none_left, descendants, json as parlab_json, python3_or_skip, shared, unique_tag, wait_for,
};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/harness.py");
/// A cluster's start-up, the run and its records take seconds; a hang is killed and fails the test.
const DEADLINE: Duration = Duration::from_secs(120);
const KINDS: [&str; 6] = ["startup", "run", "serialize", "ipc", "idle", "failed"];

/// The virtualenv's interpreter.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("PARLAB_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv")));
    venv.join("bin/python")
}

/// What the venv's harness probe says of each engine (probed once per test binary), `None` without a venv.
fn engines() -> Option<&'static Value> {
    static PROBE: OnceLock<Option<Value>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let python = venv_python();
            if !python.exists() {
                return None;
            }
            let r = start_with(python.to_str()?, &json!({"probe": true}), &unique_tag("distributed-probe")).finish();
            Some(r.events.first()?["hello"]["engines"].clone())
        })
        .as_ref()
}

/// Whether `engine` ("dask" or "ray") runs in the venv; otherwise a note, or a failure where CI promised it.
fn have(engine: &str) -> bool {
    let report = engines().map(|e| e[engine].clone()).unwrap_or(Value::Null);
    if report["available"] == true {
        return true;
    }
    let why = report["error"].as_str().map(str::to_string).unwrap_or_else(|| {
        format!("no virtualenv at {} (.ci/run creates it; or set PARLAB_TEST_VENV)", venv_python().display())
    });
    let excused = engine == "ray" && std::env::var_os("PARLAB_TEST_NO_RAY").is_some();
    assert!(std::env::var_os("CI").is_none() || excused, "{engine} is required on CI: {why}");
    eprintln!("note: skipping a {engine} test: {why}");
    false
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

/// Starts `python -I -u harness.py` with `request` (results on fd 3), its environment tagged with `tag`.
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

    /// Reads events until the cluster has started (the client's startup span), returning them.
    fn until_started(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let ev =
                self.next(deadline).unwrap_or_else(|| panic!("the run ended before its cluster started: {seen:?}"));
            let started = ev["span"]["kind"] == "startup";
            seen.push(ev);
            if started {
                return seen;
            }
        }
    }

    /// The harness and every process below it now: the cluster (scheduler side, workers, Ray's daemons and
    /// agents) and the guard.
    fn tree(&self) -> Vec<u32> {
        let mut pids = descendants(self.child.id());
        pids.push(self.child.id());
        pids
    }

    fn finish(self) -> Run {
        self.finish_after(Vec::new())
    }

    /// Reads every event (after those already read), then closes stdin and waits for the harness.
    fn finish_after(mut self, mut events: Vec<Value>) -> Run {
        let deadline = Instant::now() + DEADLINE;
        while let Some(ev) = self.next(deadline) {
            events.push(ev);
        }
        drop(self.stdin.take());
        let status = self.child.wait().expect("the harness is reaped");
        Run { events, status, stdout: self.out.join().unwrap_or_default(), stderr: self.err.join().unwrap_or_default() }
    }
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
    fn spans_of(&self, kind: &str) -> Vec<&Value> {
        self.all("span").into_iter().filter(|s| s["kind"] == kind).collect()
    }
    fn lane(&self, id: &Value) -> &Value {
        self.all("lane").into_iter().find(|l| l["id"] == *id).expect("the span's lane is declared")
    }
    /// The worker lanes (every lane but the client's or driver's).
    fn worker_lanes(&self) -> Vec<&Value> {
        self.all("lane").into_iter().filter(|l| l["label"] != "client" && l["label"] != "driver").collect()
    }
    fn notes(&self) -> Vec<&str> {
        self.all("note").into_iter().filter_map(Value::as_str).collect()
    }
}

/// Whether a process has ended (a zombie has: only its reaping is left, to whoever inherited it).
fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_none_or(|r| r.1.trim_start().starts_with('Z'))
}

/// Nothing of the run is left: no process carrying its tag, and none of the pids seen under the harness while
/// the cluster ran (so also none that dropped the tag from its environment, as Ray's agents do).
#[track_caller]
fn assert_nothing_left(tag: &str, tree: &[u32], what: &str) {
    assert_none_left(tag);
    let ok = wait_for(5.0, || tree.iter().all(|p| gone(*p)));
    let left: Vec<String> = tree
        .iter()
        .filter(|p| !gone(**p))
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p} {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect();
    assert!(ok, "{what}: processes of the cluster outlived the harness: {left:?}");
}

/// The stream's shape: hello first, finished last, spans on declared lanes, of known kinds, inside the run
/// (only a start-up may begin before the clock: a warm cluster's), and for a successful run run spans that
/// cover every task.
#[track_caller]
fn well_formed(r: &Run, request: &Value) {
    assert!(r.events[0].get("hello").is_some(), "the first event is hello: {}", r.events[0]);
    assert!(r.events.last().unwrap().get("finished").is_some(), "the last event is finished");
    let end = r.end();
    let (t0, t_end) = (end["t0_ns"].as_u64().unwrap(), end["t_end_ns"].as_u64().unwrap());
    let mut lanes = BTreeSet::new();
    let mut covered = Vec::new();
    for ev in &r.events[1..] {
        if let Some(l) = ev.get("lane") {
            assert!(lanes.insert(l["id"].as_u64().unwrap()), "lane declared twice: {l}");
            assert!(l["pid"].as_u64().unwrap() > 0 && l["tid"].as_u64().unwrap() > 0, "{l}");
        }
        if let Some(s) = ev.get("span") {
            assert!(lanes.contains(&s["lane"].as_u64().unwrap()), "span on an undeclared lane: {s}");
            let kind = s["kind"].as_str().unwrap();
            assert!(KINDS.contains(&kind), "unknown span kind {kind}");
            let (a, b) = (s["start_ns"].as_u64().unwrap(), s["end_ns"].as_u64().unwrap());
            assert!(a <= b && b <= t_end, "a span outside the run (t_end {t_end}): {s}");
            assert!(kind == "startup" || a >= t0, "a {kind} span before the clock started (t0 {t0}): {s}");
            if kind == "run" || kind == "idle" {
                covered.push((s["task"].as_u64().unwrap(), s["count"].as_u64().unwrap()));
            }
        }
    }
    if r.error().is_none() {
        let tasks = request["tasks"].as_u64().unwrap();
        assert_eq!(end["tasks_done"].as_u64(), Some(tasks), "every task done: {end}");
        let mut done = vec![false; tasks as usize];
        for (task, count) in covered {
            for t in task..task + count {
                done[t as usize] = true;
            }
        }
        assert!(done.iter().all(|d| *d), "the engine's records leave tasks out: {request}");
    }
}

fn native(workload: &str, tasks: u64) -> u64 {
    parlab_json(&["run", "--json", "--workload", workload, "--tasks", &tasks.to_string()])["checksum"]
        .as_u64()
        .expect("native checksum")
}

/// Runs `request` in the venv to its end, checking the stream's shape and that nothing of the cluster is left.
#[track_caller]
fn run(request: Value) -> Run {
    let _machine = shared();
    let tag = unique_tag("distributed");
    let python = venv_python();
    let mut h = start_with(python.to_str().unwrap(), &request, &tag);
    let first = h.until_started();
    let tree = h.tree();
    let r = h.finish_after(first);
    assert!(r.status.success(), "the harness exited with {:?} for {request}; stderr: {}", r.status, r.stderr);
    assert!(r.stdout.is_empty(), "the harness wrote to stdout: {}", r.stdout);
    well_formed(&r, &request);
    if r.error().is_none() {
        assert!(r.stderr.is_empty(), "stderr of {request}: {}", r.stderr);
    }
    assert_nothing_left(&tag, &tree, &request.to_string());
    r
}

/// The done-when of issue 13: two or more worker pids, all 8 tasks done, the native checksum.
#[track_caller]
fn runs_fib_on_two_worker_processes(mode: &str) {
    let request = json!({"workload": "fib:25", "tasks": 8, "mode": mode, "workers": 2});
    let r = run(request.clone());
    assert_eq!(r.error(), None, "{request}");
    assert_eq!(r.end()["tasks_done"], 8);
    assert_eq!(r.end()["checksum"].as_u64(), Some(native("fib:25", 8)), "{mode}");
    let harness = r.hello()["pid"].as_u64().unwrap();
    let pids: BTreeSet<u64> = r.worker_lanes().iter().map(|l| l["pid"].as_u64().unwrap()).collect();
    assert!(pids.len() >= 2, "{mode}: worker pids {pids:?}");
    assert!(!pids.contains(&harness), "{mode}: the workers are processes of their own");
    // The startup span is the cluster's, on the client's lane; the tasks run on the workers' lanes.
    let startups = r.spans_of("startup");
    assert_eq!(startups.len(), 1, "{mode}");
    assert_eq!(r.lane(&startups[0]["lane"])["pid"].as_u64(), Some(harness), "{mode}");
    let runs = r.spans_of("run");
    assert!(runs.iter().all(|s| pids.contains(&r.lane(&s["lane"])["pid"].as_u64().unwrap())), "{mode}");
    // Pool.map's rule: ceil(8 / (4 * 2)) = 1 task per batch.
    assert!(runs.iter().all(|s| s["count"] == 1), "{mode}: {runs:?}");
    assert!(r.notes().iter().any(|n| n.contains("after the clock stopped")), "{mode}: {:?}", r.notes());
}

#[test]
fn dask_runs_fib_on_two_worker_processes_with_the_native_checksum() {
    if have("dask") {
        runs_fib_on_two_worker_processes("dask");
    }
}

#[test]
fn ray_runs_fib_on_two_worker_processes_with_the_native_checksum() {
    if have("ray") {
        runs_fib_on_two_worker_processes("ray");
    }
}

#[test]
fn a_warm_dask_cluster_starts_before_the_clock_and_runs_batches_of_chunksize_tasks() {
    if !have("dask") {
        return;
    }
    let request =
        json!({"workload": "sleep:30", "tasks": 6, "mode": "dask", "workers": 2, "chunksize": 3, "warm": true});
    let r = run(request.clone());
    assert_eq!(r.error(), None);
    assert_eq!(r.end()["checksum"].as_u64(), Some(native("sleep:30", 6)));
    let t0 = r.end()["t0_ns"].as_u64().unwrap();
    let startup = r.spans_of("startup");
    assert!(startup[0]["end_ns"].as_u64().unwrap() <= t0, "the cluster was ready before the clock: {startup:?}");
    assert!(r.notes().iter().any(|n| n.contains("warm cluster")), "{:?}", r.notes());
    let mut firsts: Vec<(u64, u64)> =
        r.spans_of("run").iter().map(|s| (s["task"].as_u64().unwrap(), s["count"].as_u64().unwrap())).collect();
    firsts.dedup();
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts, [(0, 3), (3, 3)], "two batches of three tasks");
    // Each task's sleep is an idle piece of its batch, cut out of the engine's compute record.
    let idle = r.spans_of("idle");
    assert_eq!(idle.len(), 6, "{idle:?}");
    assert!(idle.iter().all(|s| r.lane(&s["lane"])["label"] != "client"), "{idle:?}");
}

#[track_caller]
fn a_task_that_raises_is_a_failed_span(mode: &str) {
    let request = json!({"workload": "fib:15", "tasks": 6, "mode": mode, "workers": 2, "chunksize": 1, "fail_task": 3});
    let r = run(request.clone());
    let error = r.error().unwrap_or_else(|| panic!("{request}: the run did not fail"));
    assert!(
        error.starts_with(
            "task 3 raised RuntimeError: task 3 failed on purpose (fail_task in the request) (harness.py:"
        ),
        "{mode}: {error}"
    );
    let failed = r.spans_of("failed");
    assert_eq!(failed.len(), 1, "{mode}: {failed:?}");
    assert_eq!(failed[0]["task"], 3, "{mode}");
    assert_ne!(r.lane(&failed[0]["lane"])["label"], if mode == "dask" { "client" } else { "driver" });
}

#[test]
fn a_task_that_raises_on_dask_is_a_failed_span_and_the_tasks_error() {
    if have("dask") {
        a_task_that_raises_is_a_failed_span("dask");
    }
}

#[test]
fn a_task_that_raises_on_ray_is_a_failed_span_and_the_tasks_error() {
    if have("ray") {
        a_task_that_raises_is_a_failed_span("ray");
    }
}

/// Stops a long run in each way and checks that the harness ends at once and leaves nothing.
#[track_caller]
fn stopping_leaves_nothing(mode: &str) {
    for how in ["finished", "stdin", "sigterm", "sigkill"] {
        let _machine = shared();
        let tag = unique_tag("distributed-stop");
        let workload = if how == "finished" { "sleep:200" } else { "sleep:4000" };
        let request = json!({"workload": workload, "tasks": 4, "mode": mode, "workers": 2, "chunksize": 1});
        let mut h = start_with(venv_python().to_str().unwrap(), &request, &tag);
        let first = h.until_started();
        let tree = h.tree();
        assert!(tree.len() >= 4, "{mode}: the harness, its guard and the cluster's processes: {tree:?}");
        let status = match how {
            "finished" => h.finish_after(first).status,
            "stdin" => {
                drop(h.stdin.take());
                h.child.wait().expect("the harness ends")
            }
            "sigterm" => {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(h.child.id() as i32, libc::SIGTERM) };
                h.child.wait().expect("the harness ends")
            }
            _ => {
                h.child.kill().expect("SIGKILL the harness");
                h.child.wait().expect("the harness is reaped")
            }
        };
        let expected = match how {
            "finished" => Some(0),
            "stdin" => Some(4),
            "sigterm" => Some(143),
            _ => None,
        };
        assert_eq!(status.code(), expected, "{mode} {how}: {status:?}");
        assert_nothing_left(&tag, &tree, &format!("{mode} {how}"));
    }
}

#[test]
fn a_finished_cancelled_or_killed_dask_run_leaves_no_process_behind() {
    if have("dask") {
        stopping_leaves_nothing("dask");
    }
}

#[test]
fn a_finished_cancelled_or_killed_ray_run_leaves_no_process_behind() {
    if have("ray") {
        stopping_leaves_nothing("ray");
    }
}

#[test]
fn the_probe_reports_each_engine_with_its_version() {
    if !have("dask") {
        return;
    }
    let e = engines().expect("probed");
    assert_eq!(e["dask"]["available"], true);
    let version = e["dask"]["version"].as_str().expect("dask's version");
    assert!(version.chars().next().is_some_and(|c| c.is_ascii_digit()), "{version}");
    assert!(e["ray"]["available"].is_boolean(), "{e}");
}

#[test]
fn without_dask_or_ray_a_run_ends_at_once_naming_the_interpreter_and_the_pip_command() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let tag = unique_tag("distributed-missing");
    let probe = start_with("python3", &json!({"probe": true}), &tag).finish();
    let path = probe.hello()["python"]["path"].as_str().unwrap().to_string();
    for (mode, hint) in [("dask", "pip install 'dask[distributed]'"), ("ray", "pip install ray")] {
        let report = &probe.hello()["engines"][mode];
        if report["available"] == true {
            eprintln!("note: {path} has {mode}; its missing-engine message is not tested here");
            continue;
        }
        let expected = format!("{mode} is not installed for {path}: {hint}");
        assert_eq!(report["error"].as_str(), Some(expected.as_str()), "the probe says why");
        let r = start_with("python3", &json!({"workload": "fib:25", "tasks": 8, "mode": mode, "workers": 2}), &tag)
            .finish();
        assert!(r.status.success(), "{}", r.stderr);
        assert_eq!(r.error(), Some(expected.as_str()), "{mode}");
        assert!(r.all("lane").is_empty(), "{mode}: nothing ran");
    }
    assert_none_left(&tag);
}

#[test]
fn engine_fields_are_refused_where_they_do_not_apply_naming_the_value() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let cases = [
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "processes", "scheduler": "tcp://127.0.0.1:8786"}),
            "scheduler applies only to mode dask (the address of a running dask scheduler)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "dask", "address": "127.0.0.1:6379"}),
            "address applies only to mode ray (the address of a running ray cluster)",
        ),
        (
            json!({"workload": "tiny", "tasks": 3, "mode": "ray", "address": 6379}),
            "request field 'address' must be the address of a running ray cluster like '127.0.0.1:6379' (got '6379')",
        ),
        (
            json!({"workload": "tiny", "tasks": 1_000_000, "mode": "dask", "chunksize": 1}),
            "tasks 1000000 at chunksize 1 make 1000000 batches; mode dask runs at most 100000 (a chunksize of 10 or more)",
        ),
    ];
    for (req, message) in cases {
        let r = start_with("python3", &req, &unique_tag("distributed-bad")).finish();
        assert_eq!(r.error(), Some(message), "{req}");
    }
}

/// A helper process holding a Dask LocalCluster of two workers; it prints the scheduler's address and the
/// workers' pids, and closes the cluster when its stdin closes.
const EXTERNAL_DASK: &str = r#"
import json, logging, os, sys
if __name__ == "__main__":
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    with Client(cluster) as client:
        client.wait_for_workers(2)
        pids = sorted(client.run(os.getpid).values())
    print(json.dumps({"address": cluster.scheduler_address, "pids": pids}), flush=True)
    sys.stdin.read()
    cluster.close()
"#;

#[test]
fn a_dask_run_on_a_running_scheduler_uses_its_workers_and_leaves_them_running() {
    if !have("dask") {
        return;
    }
    let _machine = shared();
    let tag = unique_tag("distributed-external");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let script = dir.path().join("cluster.py");
    std::fs::write(&script, EXTERNAL_DASK).unwrap();
    let mut cluster = Command::new(venv_python())
        .arg("-I")
        .arg(&script)
        .env(TAG_ENV, &tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the cluster starts");
    let mut line = String::new();
    BufReader::new(cluster.stdout.take().unwrap()).read_line(&mut line).expect("the cluster's address");
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let theirs: BTreeSet<u64> = info["pids"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    let request = json!({"workload": "fib:20", "tasks": 8, "mode": "dask", "scheduler": info["address"]});
    let r = start_with(venv_python().to_str().unwrap(), &request, &tag).finish();
    assert!(r.status.success(), "{}", r.stderr);
    well_formed(&r, &request);
    assert_eq!(r.error(), None);
    assert_eq!(r.end()["checksum"].as_u64(), Some(native("fib:20", 8)));
    let ours: BTreeSet<u64> = r.worker_lanes().iter().map(|l| l["pid"].as_u64().unwrap()).collect();
    assert!(!ours.is_empty() && ours.is_subset(&theirs), "the scheduler's workers {theirs:?} ran it: {ours:?}");
    assert!(r.notes().iter().any(|n| n.contains("2 workers")), "{:?}", r.notes());
    // The harness only disconnected: the cluster it did not start is still there.
    assert!(theirs.iter().all(|p| !gone(*p as u32)), "a worker of the running cluster was stopped");
    drop(cluster.stdin.take());
    let _ = cluster.wait();
    assert_none_left(&tag);
}

#[test]
fn two_dask_clusters_at_once_keep_stderr_clean() {
    // Each scheduler serves HTTP routes even without a dashboard; on one fixed port the second would warn.
    if !have("dask") {
        return;
    }
    let _machine = shared();
    let tag = unique_tag("distributed-two");
    let request = json!({"workload": "fib:15", "tasks": 4, "mode": "dask", "workers": 1});
    let python = venv_python();
    let (a, b) =
        (start_with(python.to_str().unwrap(), &request, &tag), start_with(python.to_str().unwrap(), &request, &tag));
    for r in [a.finish(), b.finish()] {
        assert_eq!(r.error(), None);
        assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
    }
    assert_none_left(&tag);
}
