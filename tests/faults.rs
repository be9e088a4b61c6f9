//! Faults a user can run into: trace outputs that would block, signals while stuck, stopped processes, knobs and
//! flags given where they do nothing, and options without a description. Every test that could hang has a bound.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

/// Waits for `child` up to `secs`; kills it and fails the test if it is still running then.
#[track_caller]
fn wait_bounded(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started (or one of its descendants).
    unsafe { libc::kill(pid as i32, sig) };
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// The first descendant of `root` whose command line contains `needle`, waited for up to 20 s.
#[track_caller]
fn descendant_running(root: u32, needle: &str) -> u32 {
    let mut found = None;
    wait_for(20.0, || {
        found = descendants(root).into_iter().find(|p| cmdline(*p).contains(needle));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no '{needle}' process under {root}"))
}

/// stderr of `child`, line by line, on a channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn trace_to_a_fifo_nobody_reads_is_refused_at_once() {
    let _machine = shared();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trace.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let tag = unique_tag("fifo-trace");
    let mut child = tagged(&["run", "--workload", "fib:5", "--tasks", "1", "--trace", fifo.to_str().unwrap()], &tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, 30, "run --trace FIFO");
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot write the trace to '{}': it is a FIFO that no process is reading",
            fifo.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing was run, so nothing is printed");
    assert_none_left(&tag);
}

#[test]
fn sigterm_ends_a_run_stuck_writing_its_trace_into_a_pipe_nobody_reads() {
    let _machine = shared();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trace.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A reader that never reads: the trace (thousands of spans) fills the pipe and the writer blocks.
    let reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let tag = unique_tag("stuck-trace");
    // Tasks long enough to be recorded one span each (short ones are summed into windows): a trace of ~100 KB.
    let args = ["run", "--workload", "fib:22", "--tasks", "2000", "--mode", "threads", "--chunksize", "1"];
    let mut child = tagged(&args, &tag)
        .args(["--trace", fifo.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let full = wait_for(60.0, || {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a valid pointer, on a descriptor we own.
        unsafe { libc::ioctl(reader.as_raw_fd(), libc::FIONREAD, &mut queued) };
        queued >= 4096 && child.try_wait().ok().flatten().is_none()
    });
    assert!(full, "the run never started writing its trace");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the writer should be blocked on the full pipe");
    signal(child.id(), libc::SIGTERM);
    let status = wait_bounded(&mut child, 20, "a run stuck on its trace after SIGTERM");
    assert_eq!(status.code(), Some(2));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted"), "{err}");
    drop(reader);
    assert_none_left(&tag);
}

/// Starts a 3-second run, stops the process `needle` names once it runs, and returns what the user is told.
fn stall_and_continue(args: &[&str], needle: &str, name: &str) -> (u32, Vec<String>, String) {
    let _machine = shared();
    let tag = unique_tag(name);
    let mut child = tagged(args, &tag).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    let stopped = descendant_running(child.id(), needle);
    std::thread::sleep(Duration::from_millis(200));
    signal(stopped, libc::SIGSTOP);
    let said = lines.recv_timeout(Duration::from_secs(30));
    signal(stopped, libc::SIGCONT);
    let said = said.unwrap_or_else(|_| panic!("no notice of the stopped process {stopped}"));
    let status = wait_bounded(&mut child, 60, "a run continued after a stall");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "the run goes on once continued: {status:?}");
    let mut all = vec![said];
    all.extend(lines.try_iter());
    assert_none_left(&tag);
    (stopped, all.into_iter().filter(|l| l.contains("is stopped")).collect(), out)
}

#[test]
fn a_stopped_lab_is_said_once_on_stderr_and_the_run_finishes_when_continued() {
    let args = ["run", "--workload", "sleep:25", "--tasks", "120", "--mode", "sequential"];
    let (lab, said, out) = stall_and_continue(&args, "__lab", "stopped-lab");
    assert_eq!(said.len(), 1, "said once: {said:?}");
    assert!(
        said[0].starts_with("parlab: the run has sent nothing for 3 s: the lab ")
            && said[0].contains(&format!("the lab {lab} is stopped (SIGSTOP or SIGTSTP)"))
            && said[0].ends_with(&format!("(kill -CONT {lab})")),
        "{}",
        said[0]
    );
    assert!(out.contains("note: this run stalled on a stopped process: its figures include the stall"), "{out}");
}

#[test]
fn a_stopped_worker_process_is_named_by_its_pid() {
    let args = ["run", "--workload", "sleep:25", "--tasks", "120", "--mode", "processes", "--workers", "1"];
    let (worker, said, _) = stall_and_continue(&args, "__worker", "stopped-worker");
    assert_eq!(said.len(), 1, "said once: {said:?}");
    assert!(said[0].contains(&format!("worker {worker} is stopped (SIGSTOP or SIGTSTP)")), "{}", said[0]);
}

#[track_caller]
fn refused(args: &[&str], message: &str) {
    let o = parlab(args);
    assert_eq!(o.status.code(), Some(2), "parlab {args:?} should fail with exit 2: {}", stderr(&o));
    assert!(stderr(&o).contains(message), "parlab {args:?}: expected '{message}' in: {}", stderr(&o));
    assert!(stdout(&o).is_empty() && !stderr(&o).contains("panicked"));
}

#[test]
fn compare_refuses_a_knob_none_of_its_modes_uses_and_keeps_one_that_a_mode_uses() {
    let base = ["compare", "--workload", "fib:5", "--tasks", "2", "--modes", "threads,async"];
    for (knob, message) in [
        (&["--start", "fork"][..], "--start applies only to processes, and none of the compared modes"),
        (&["--warm"][..], "--warm applies only to processes"),
        (&["--switch-interval", "2ms"][..], "--switch-interval applies only to gil"),
    ] {
        refused(&[&base[..], knob].concat(), message);
    }
    refused(
        &["compare", "--workload", "fib:5", "--tasks", "2", "--modes", "gil,async", "--chunksize", "2"],
        "--chunksize applies only to threads, processes, dask, ray, and none of the compared modes (sequential, gil, async)",
    );
    let o = parlab(&[
        "compare",
        "--workload",
        "fib:5",
        "--tasks",
        "2",
        "--modes",
        "threads,gil",
        "--switch-interval",
        "2ms",
    ]);
    assert!(o.status.success(), "gil uses --switch-interval: {}", stderr(&o));
}

#[test]
fn lessons_flag_is_refused_where_no_lessons_are_read() {
    let message = "--lessons does nothing for 'demo': it is taken by the TUI (parlab without a command) and by \
                   lessons, lint, exercises, check, progress and notes";
    refused(&["demo", "x", "--lessons", "d"], message);
    refused(&["--lessons", "d", "demo", "x"], message);
    refused(&["run", "--workload", "fib:5", "--lessons", "d"], "--lessons does nothing for 'run'");
    refused(&["--theme", "dark", "run"], "--theme before a command is the TUI's");
    let run_help = stdout(&parlab(&["run", "--help"]));
    assert!(!run_help.contains("--lessons"), "{run_help}");
    // --engine is real now: it is offered where an experiment runs, and nowhere else.
    assert!(run_help.contains("--engine"), "{run_help}");
    refused(&["demo", "x", "--engine", "python"], "unexpected argument '--engine'");
    // Where lessons are read, both places work.
    for args in [&["lessons", "--lessons", "lessons", "--json"][..], &["--lessons", "lessons", "lessons", "--json"]] {
        let o = Command::new(bin())
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PARLAB_DATA_DIR", scratch_data_dir())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

/// Option and argument entries of a help text that have no description.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    let mut in_list = false;
    for (i, line) in lines.iter().enumerate() {
        if matches!(*line, "Options:" | "Arguments:") {
            in_list = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_list = false;
            continue;
        }
        let entry = line.trim_start();
        if !in_list || !(entry.starts_with('-') || entry.starts_with('<') || entry.starts_with('[')) {
            continue;
        }
        let described = entry.split_once("  ").is_some_and(|(_, rest)| !rest.trim().is_empty());
        let indent = line.len() - entry.len();
        let next_described = lines.get(i + 1).is_some_and(|n| {
            let t = n.trim_start();
            !t.is_empty() && n.len() - t.len() > indent && !t.starts_with('-')
        });
        if !described && !next_described {
            missing.push(entry.trim_end().to_string());
        }
    }
    missing
}

#[test]
fn every_option_of_every_command_is_described_in_help() {
    for cmd in ["", "lessons", "lint", "run", "compare", "demo", "exercises", "check", "bench", "progress"] {
        let args: Vec<&str> = if cmd.is_empty() { vec!["--help"] } else { vec![cmd, "--help"] };
        let help = stdout(&parlab(&args));
        assert!(help.contains("Options:"), "{help}");
        assert_eq!(undescribed(&help), Vec::<String>::new(), "parlab {cmd} --help:\n{help}");
    }
    let undocumented = "Options:\n      --mode <MODE>        \n      --json  Print JSON\n";
    assert_eq!(undescribed(undocumented), vec!["--mode <MODE>".to_string()], "the check itself can fail");
}

#[test]
fn async_fib_through_the_binary_is_one_loop_lane_with_every_task() {
    let run = json(&["run", "--json", "--workload", "fib:15", "--tasks", "5", "--mode", "async"]);
    let lanes = run["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 1, "{lanes:?}");
    assert_eq!(lanes[0]["label"], "loop");
    assert_eq!(lanes[0]["pid"], run["lab_pid"]);
    let mut tasks: Vec<u64> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run")
        .flat_map(|s| {
            let first = s["task"].as_u64().unwrap();
            first..first + s["count"].as_u64().unwrap().max(1)
        })
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, vec![0, 1, 2, 3, 4], "every coroutine ran once, on the loop lane");
}

#[test]
fn headless_output_of_one_worker_says_one_not_ones() {
    for mode in ["gil", "threads", "processes"] {
        let o = parlab(&["run", "--workload", "fib:5", "--tasks", "1", "--mode", mode, "--workers", "1", "--ascii"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        for bad in ["1 workers", "1 threads", "1 distinct pids"] {
            assert!(!out.contains(bad), "'{bad}' in {mode}:\n{out}");
        }
    }
}
