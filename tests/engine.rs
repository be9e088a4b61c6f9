//! The python engine as parlab runs it: `--engine python|both` and `--python PATH` on run and compare, interpreter
//! detection (fake interpreters in a temp dir: free-threaded, too old, broken), refusals with their reasons, a
//! failing task and a killed worker, and no Python process left after parlab is killed. Python runs skip with a
//! note where python3 is missing (and fail under CI). No test asserts a duration.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn run_tagged(args: &[&str], envs: &[(&str, &str)]) -> (Output, String) {
    let tag = unique_tag("engine");
    let mut cmd = tagged(args, &tag);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("parlab runs");
    assert_none_left(&tag);
    (out, tag)
}

#[track_caller]
fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

/// A fake interpreter: a shell script in `dir` named `name`.
fn fake(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A fake that answers the probe as `version` (GIL or not) and ends any run at once with an error.
fn fake_python(dir: &Path, name: &str, version: &str, gil: bool) -> PathBuf {
    let hello = format!(
        r#"{{"hello": {{"python": {{"path": "{p}", "version": "{version}", "implementation": "cpython", "gil_enabled": {gil}, "start_methods": ["fork", "spawn", "forkserver"], "has_interpreter_pool": false}}, "engines": {{}}, "pid": 1, "cores": 2}}}}"#,
        p = dir.join(name).display()
    );
    let body = format!(
        "read req\necho '{hello}' >&3\ncase \"$req\" in *probe*) exit 0;; esac\n\
         echo '{{\"started\": {{\"lab_pid\": 1, \"t0_ns\": 1, \"cores\": 2}}}}' >&3\n\
         echo '{{\"finished\": {{\"t0_ns\": 1, \"t_end_ns\": 2, \"checksum\": 0, \"tasks_done\": 0, \"error\": \"fake interpreter: no run\"}}}}' >&3"
    );
    fake(dir, name, &body)
}

#[test]
fn python_threads_run_in_one_pid_on_two_tids_with_the_native_checksum() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let args = ["run", "--mode", "threads", "--workers", "2", "--workload", "fib:18", "--tasks", "4", "--json"];
    let (out, _) = run_tagged(&[&args[..], &["--engine", "python"]].concat(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let py = json_of(&out);
    assert_eq!(py["engine"], "python");
    assert_eq!(py["python"]["gil_enabled"], true, "{}", py["python"]);
    assert!(py["python"]["version"].as_str().unwrap().starts_with("3."), "{}", py["python"]);
    let lanes = py["lanes"].as_array().unwrap();
    let pids: std::collections::BTreeSet<u64> = lanes.iter().map(|l| l["pid"].as_u64().unwrap()).collect();
    let tids: std::collections::BTreeSet<u64> = lanes.iter().map(|l| l["tid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "one interpreter process: {lanes:?}");
    assert_eq!(tids.len(), 2, "two threads: {lanes:?}");
    assert_ne!(pids.iter().next().copied(), Some(u64::from(std::process::id())));
    assert_eq!(py["tasks_done"], 4);
    let (out, _) = run_tagged(&args, &[]);
    let native = json_of(&out);
    assert_eq!(native["engine"], "native");
    assert_eq!(native["python"], Value::Null);
    assert_eq!(py["checksum"], native["checksum"]);
}

#[test]
fn compare_on_both_engines_puts_each_modes_two_rows_together_with_equal_checksums() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let (out, _) = run_tagged(
        &[
            "compare",
            "--engine",
            "both",
            "--modes",
            "threads,gil,processes",
            "--workers",
            "2",
            "--workload",
            "fib:16",
            "--tasks",
            "4",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j = json_of(&out);
    let rows: Vec<(String, String)> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["mode"].as_str().unwrap().to_string(), r["engine"].as_str().unwrap().to_string()))
        .collect();
    let want = [
        ("sequential", "native"),
        ("sequential", "python"),
        ("threads", "native"),
        ("threads", "python"),
        ("gil", "native"),
        ("processes", "native"),
        ("processes", "python"),
    ];
    assert_eq!(rows, want.map(|(m, e)| (m.to_string(), e.to_string())).to_vec(), "gil runs on the native engine only");
    let sums: Vec<&Value> = j["runs"].as_array().unwrap().iter().map(|r| &r["checksum"]).collect();
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
    for r in j["runs"].as_array().unwrap() {
        assert!(r["speedup"].is_number(), "each engine's runs are measured against its own sequential run: {r}");
    }
}

#[test]
fn gil_is_refused_on_the_python_engine_and_python_only_modes_on_the_native_one() {
    if !python3_or_skip() {
        return;
    }
    let (out, _) =
        run_tagged(&["run", "--engine", "python", "--mode", "gil", "--tasks", "2", "--workload", "fib:5"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("its threads ARE the GIL (use --mode threads with --engine python)"),
        "{}",
        stderr(&out)
    );
    let (out, _) = run_tagged(&["run", "--mode", "dask", "--tasks", "2", "--workload", "fib:5"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mode 'dask' runs only on the python engine: add --engine python"),
        "{}",
        stderr(&out)
    );
    let (out, _) = run_tagged(&["run", "--engine", "python", "--mode", "interpreters", "--workload", "fib:5"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mode 'interpreters' needs Python 3.14 (InterpreterPoolExecutor)"),
        "{}",
        stderr(&out)
    );
    let (out, _) = run_tagged(&["run", "--engine", "pyton"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown engine 'pyton' (expected one of: native, python, both)"),
        "{}",
        stderr(&out)
    );
    let (out, _) = run_tagged(&["run", "--engine", "native", "--python", "python3"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--python applies to --engine python or both"), "{}", stderr(&out));
}

#[test]
fn dask_without_dask_installed_ends_at_once_with_the_install_hint() {
    if !python3_or_skip() {
        return;
    }
    let (out, _) =
        run_tagged(&["run", "--engine", "python", "--mode", "dask", "--workload", "fib:5", "--tasks", "2"], &[]);
    if out.status.code() == Some(0) {
        eprintln!("note: python3 has dask installed; the missing-dask message is not tested here");
        return;
    }
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("dask is not installed for ") && err.contains(": pip install 'dask[distributed]'"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn fake_interpreters_are_detected_free_threaded_too_old_broken_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ft = fake_python(dir.path(), "python3.13t", "3.13.0", false);
    let (out, _) = run_tagged(
        &["run", "--engine", "python", "--python", ft.to_str().unwrap(), "--mode", "threads", "--json", "--tasks", "2"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "the fake ends its run with an error");
    let j = json_of(&out);
    assert_eq!(j["python"]["gil_enabled"], false, "{}", j["python"]);
    assert_eq!(j["python"]["version"], "3.13.0");
    assert!(stderr(&out).contains("fake interpreter: no run"), "{}", stderr(&out));

    let old = fake_python(dir.path(), "python-old", "3.8.18", true);
    let (out, _) = run_tagged(&["run", "--engine", "python", "--python", old.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: python interpreter '{}' is Python 3.8.18: the python engine needs Python 3.9 or newer",
            old.display()
        )
    );

    let broken = fake(dir.path(), "python-broken", "echo 'boom: no such library' >&2\nexit 1");
    let (out, _) = run_tagged(&["run", "--engine", "python", "--python", broken.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("python interpreter '{}' is broken", broken.display())), "{err}");
    assert!(err.contains("expected Python 3.9 or newer): boom: no such library"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let missing = dir.path().join("nowhere/python3");
    let (out, _) = run_tagged(&["run", "--engine", "python", "--python", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist (expected Python 3.9 or newer)"), "{}", stderr(&out));
    let (out, _) = run_tagged(&["run", "--engine", "python", "--python", "python-nowhere-3"], &[]);
    assert!(stderr(&out).contains("'python-nowhere-3' was not found on PATH"), "{}", stderr(&out));
}

#[test]
fn a_free_threaded_build_on_path_is_offered_beside_a_gil_build() {
    if !python3_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ft = fake_python(dir.path(), "python3.14t", "3.14.0", false);
    let path = format!("{}:{}", std::env::var("PATH").unwrap_or_default(), dir.path().display());
    let (out, _) = run_tagged(
        &["run", "--engine", "python", "--mode", "sequential", "--workload", "fib:5", "--tasks", "2"],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("a free-threaded build is on PATH: --python {}", ft.display())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_failing_python_task_is_one_line_with_the_tracebacks_last_frame() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let args =
        ["run", "--engine", "python", "--mode", "processes", "--workers", "2", "--workload", "fib:10", "--tasks", "4"];
    let (out, _) = run_tagged(&args, &[("PARLAB_TEST_FAIL_TASK", "2")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("task 2 raised RuntimeError") && err.contains("(harness.py:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_killed_python_worker_is_a_failed_span_and_an_error_never_a_hang() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let args = [
        "run",
        "--engine",
        "python",
        "--mode",
        "processes",
        "--workers",
        "2",
        "--workload",
        "fib:10",
        "--tasks",
        "4",
        "--json",
    ];
    let (out, _) = run_tagged(&args, &[("PARLAB_TEST_CRASH_TASK", "1")]);
    assert_eq!(out.status.code(), Some(2));
    let j = json_of(&out);
    assert!(j["spans"].as_array().unwrap().iter().any(|s| s["kind"] == "failed"), "{}", j["spans"]);
    assert!(j["error"].as_str().unwrap().contains("was killed by signal 9 (SIGKILL)"), "{}", j["error"]);
    // The next run works.
    let (out, _) = run_tagged(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Starts a long python-engine run, waits for its workers, sends `sig` to parlab, and checks nothing is left.
fn killed_mid_run_leaves_no_python(sig: i32, mode: &str) {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let tag = unique_tag("engine-kill");
    // A private temp dir: the harness folder a killed parlab leaves must be swept by the next python-engine run.
    let tmp = tempfile::tempdir().unwrap();
    let mut child = tagged(
        &["run", "--engine", "python", "--mode", mode, "--workers", "2", "--workload", "sleep:20000", "--tasks", "4"],
        &tag,
    )
    .env("TMPDIR", tmp.path())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let root = child.id();
    // The interpreter and its two workers (or threads): at least two python processes below parlab.
    let started = wait_for(30.0, || {
        descendants(root)
            .iter()
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("python")))
            .count()
            >= if mode == "processes" { 3 } else { 1 }
    });
    assert!(started, "the python run did not start: {:?}", tagged_processes(&tag));
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) on the parlab this test started.
    unsafe { libc::kill(root as i32, sig) };
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_none_left(&tag);
    let next = tagged(&["run", "--engine", "python", "--workload", "fib:5", "--tasks", "1"], &tag)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the next run left or did not sweep: {left:?}");
}

#[test]
fn sigkill_of_parlab_leaves_no_python_process() {
    killed_mid_run_leaves_no_python(libc::SIGKILL, "processes");
}

#[test]
fn sigterm_of_parlab_leaves_no_python_process() {
    killed_mid_run_leaves_no_python(libc::SIGTERM, "processes");
    killed_mid_run_leaves_no_python(libc::SIGINT, "threads");
}

/// The virtualenv with dask and ray (`PARLAB_TEST_VENV`, else `.ci/venv`), when there.
fn venv_python(module: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("PARLAB_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv")));
    let python = venv.join("bin/python");
    let ok = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        let excused = module == "ray" && std::env::var_os("PARLAB_TEST_NO_RAY").is_some();
        assert!(std::env::var_os("CI").is_none() || excused, "{module} is required on CI (PARLAB_TEST_VENV)");
        eprintln!("note: skipping a {module} test: no virtualenv with it (set PARLAB_TEST_VENV)");
        return None;
    }
    Some(python)
}

fn distributed_run_has_worker_pids_and_the_native_checksum(mode: &str, module: &str) {
    let Some(python) = venv_python(module) else { return };
    let _machine = exclusive();
    let args = ["run", "--mode", mode, "--workers", "2", "--workload", "fib:25", "--tasks", "8", "--json"];
    let (out, _) =
        run_tagged(&[&args[..], &["--engine", "python", "--python", python.to_str().unwrap()]].concat(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j = json_of(&out);
    assert_eq!(j["tasks_done"], 8);
    let workers: std::collections::BTreeSet<u64> = j["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["label"].as_str().unwrap_or("").starts_with('w'))
        .map(|l| l["pid"].as_u64().unwrap())
        .collect();
    assert!(workers.len() >= 2, "two or more worker pids: {}", j["lanes"]);
    let native = args.iter().map(|a| if *a == mode { "processes" } else { a }).collect::<Vec<_>>();
    let (out, _) = run_tagged(&native, &[]);
    assert_eq!(json_of(&out)["checksum"], j["checksum"]);
}

#[test]
fn dask_on_two_local_workers_runs_every_task_with_the_native_checksum() {
    distributed_run_has_worker_pids_and_the_native_checksum("dask", "distributed");
}

#[test]
fn ray_on_two_local_workers_runs_every_task_with_the_native_checksum() {
    distributed_run_has_worker_pids_and_the_native_checksum("ray", "ray");
}

#[test]
fn run_on_both_engines_prints_both_runs_and_a_free_threaded_note_only_where_one_is() {
    if !python3_or_skip() {
        return;
    }
    let _machine = shared();
    let (out, _) = run_tagged(
        &[
            "run",
            "--engine",
            "both",
            "--mode",
            "processes",
            "--workers",
            "2",
            "--workload",
            "fib:12",
            "--tasks",
            "4",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j = json_of(&out);
    let runs = j["runs"].as_array().unwrap();
    let engines: Vec<&str> = runs.iter().map(|r| r["engine"].as_str().unwrap()).collect();
    assert_eq!(engines, ["native", "python"]);
    assert_eq!(runs[0]["checksum"], runs[1]["checksum"]);
    for r in runs {
        let pids: std::collections::BTreeSet<u64> =
            r["lanes"].as_array().unwrap().iter().map(|l| l["pid"].as_u64().unwrap()).collect();
        assert_eq!(pids.len(), 2, "two worker processes on each engine: {}", r["lanes"]);
    }
}
