//! Python exercises: time the learner's own file with python3 through a small harness (`harness.py`, written to a
//! fresh temporary folder): `parlab __guard python3 harness.py FILE REPS`, no shell, in its own process group, with
//! a timeout. The guard (`guard`) makes sure no process the file starts outlives the check. The harness imports only
//! the named file, checks `sequential()` and `parallel()`, runs a warm-up and REPS timed repetitions of each, and
//! reports JSON on a private pipe (never stdout, which the file may write anything to); every way a file can go
//! wrong comes back as a clear one-line problem, with the file's own words made terminal-safe.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::guard::{GUARD_ARG, kill_tree};
use super::text::terminal_safe;
use super::{CheckOutcome, Sides, check_reps, judge};
use crate::lesson::{ExerciseSpec, Metric, goal_cores};
use crate::scratch::Scratch;
use crate::timeline::median;

const HARNESS: &str = include_str!("harness.py");
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 120;
pub(crate) const MAX_TIMEOUT_S: u64 = 3600;
/// Names the file descriptor the harness writes its report to (a pipe only parlab reads).
pub(crate) const RESULT_FD_ENV: &str = "PARLAB_RESULT_FD";
/// How much of the file's own output (stdout, stderr) is kept for messages; the rest is read and dropped, so a
/// file printing gigabytes costs no memory.
const TAIL_BYTES: usize = 64 * 1024;
/// The most a report may be (a real one is well under 1 KiB).
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// The longest piece of the file's own text put into a message.
const MAX_SHOWN_CHARS: usize = 400;
/// Timings shorter than this are timer noise: a sequential() this quick cannot be judged.
pub(crate) const MIN_SEQUENTIAL_MS: f64 = 5.0;
/// How long the guard gets to clean up after being told to stop, before parlab kills its tree itself.
const GUARD_GRACE: Duration = Duration::from_secs(3);

/// What the harness printed.
#[derive(Debug, Deserialize)]
struct Report {
    ok: bool,
    #[serde(default)]
    error: String,
    #[serde(default)]
    sequential_s: Vec<f64>,
    #[serde(default)]
    parallel_s: Vec<f64>,
    #[serde(default)]
    python: String,
    /// When each timed parallel() call began and ended (CLOCK_MONOTONIC ns).
    #[serde(default)]
    parallel_ns: Vec<[u64; 2]>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    got: String,
}

/// The timings of a file that ran cleanly.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Timings {
    pub sequential_ms: Vec<f64>,
    pub parallel_ms: Vec<f64>,
    pub python: String,
    /// When each timed parallel() call began and ended (CLOCK_MONOTONIC ns), to draw what it did.
    pub parallel_ns: Vec<[u64; 2]>,
    /// What the thread sampler saw of the whole run, and the pid of the guard it ran below.
    pub sampled: Option<Box<(crate::engine::sampler::Samples, u32)>>,
}

/// A run of the learner's file: timed, or a problem with the file (a failed check, not a parlab error).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FileRun {
    Timed(Timings),
    Problem(String),
}

/// A path as it may be shown on a terminal.
pub(crate) fn shown_path(file: &Path) -> String {
    terminal_safe(&file.display().to_string(), MAX_SHOWN_CHARS)
}

/// Checks that `file` is there and looks like a Python file (a usage error otherwise).
pub(crate) fn check_path(file: &Path) -> Result<PathBuf> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("no such file '{}'", shown_path(file)),
        Err(e) => bail!("cannot read '{}': {e}", shown_path(file)),
    };
    if meta.is_dir() {
        bail!("'{}' is a folder; name your Python file (e.g. fib_pool.py)", shown_path(file));
    }
    if file.extension().is_none_or(|x| x != "py") {
        bail!("'{}' is not a Python file (expected a name ending in .py)", shown_path(file));
    }
    std::fs::canonicalize(file).with_context(|| format!("cannot resolve '{}'", shown_path(file)))
}

/// python3 as found on PATH (found here, so a missing one is named before anything starts).
pub(crate) fn find_python() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("python3");
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    bail!(
        "python3 was not found on PATH: install Python 3 to check Python exercises \
         (a native check needs no Python: leave out the file)"
    )
}

/// How a run of the guard ended.
pub(crate) enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

/// Runs the learner's file through the harness. `Err` means the check could not run at all (no python3, no
/// temporary folder); a file that is broken, wrong or hangs is `Ok(FileRun::Problem)`. No process the file starts
/// is left when this returns. Only `parlab check` and `lint --verify` (between its runs) call it: every process below
/// this one is the check's.
pub(crate) fn run_file(file: &Path, reps: u32, timeout: Duration, stop: &AtomicBool) -> Result<FileRun> {
    let file = check_path(file)?;
    let shown = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let shown = terminal_safe(&shown, MAX_SHOWN_CHARS);
    let python = find_python()?;
    let exe = std::env::current_exe().context("cannot find the parlab executable")?;
    let dir = HarnessDir::create()?;
    let harness = dir.0.path().join("harness.py");
    std::fs::write(&harness, HARNESS).context("cannot write the check's harness")?;
    let (report_read, report_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe for the check's report")?;
    let parent = std::process::id();
    let mut cmd = Command::new(exe);
    cmd.arg(GUARD_ARG)
        .arg(&python)
        .arg(&harness)
        .arg(&file)
        .arg(reps.to_string())
        .current_dir(file.parent().unwrap_or(Path::new("/")))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env(RESULT_FD_ENV, report_write.as_raw_fd().to_string())
        // The guard's stdin is its lifeline: closed by parlab (stop) or by the kernel (parlab died).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: Ctrl-C in the terminal reaches parlab, which stops the check in order.
        .process_group(0);
    let wfd = report_write.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls are made (fcntl, getppid); nothing allocates.
    // The report pipe keeps its number and loses close-on-exec, so the guard and python3 inherit it (no dup2 onto
    // a fixed number, which could close a descriptor the spawn itself still uses).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(wfd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parlab exited"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the check's guard process")?;
    // Only the guard's tree may hold the writing end now: the report ends when that tree is gone.
    drop(report_write);
    // What the file's threads and processes do, read from outside (drawn for its parallel() afterwards).
    let sampler = crate::engine::sampler::Sampler::start_below(child.id(), crate::engine::sampler::PERIOD, None).ok();
    let lifeline = child.stdin.take();
    let out = keep_tail(child.stdout.take(), TAIL_BYTES);
    let err = keep_tail(child.stderr.take(), TAIL_BYTES);
    let report = keep_head(report_read, MAX_REPORT_BYTES);
    let ended = supervise(&mut child, lifeline, timeout, stop);
    // Whatever escaped the guard (it was killed before it could sweep) was handed to us: sweep it too.
    kill_tree(std::process::id());
    let sampled = sampler.map(|s| Box::new((s.stop(), child.id())));
    let ended = ended?;
    let _ = out.recv_timeout(Duration::from_secs(1));
    let err = err.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let report = report.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let status = match ended {
        Ended::Cancelled => bail!("check cancelled"),
        Ended::TimedOut => {
            return Ok(FileRun::Problem(format!(
                "{shown} took longer than {} s; is something waiting forever? (a join() on a process that never \
                 ends, a queue.get() nobody feeds, a lock never released; --timeout changes the limit)",
                timeout.as_secs()
            )));
        }
        Ended::Exited(status) => status,
    };
    Ok(match interpret_output(&report, &err, status, &shown) {
        FileRun::Timed(t) => FileRun::Timed(Timings { sampled, ..t }),
        problem => problem,
    })
}

/// Waits for the guard to finish, or stops it at the timeout or on a cancel; in every case its tree is gone after.
pub(crate) fn supervise(
    child: &mut Child,
    lifeline: Option<std::process::ChildStdin>,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Ended> {
    let deadline = Instant::now() + timeout;
    let mut lifeline = lifeline;
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Ended::Exited(status)),
            Ok(None) => {}
            Err(e) => {
                stop_guard(child, lifeline.take());
                bail!("cannot wait for the check's guard process: {e}");
            }
        }
        if stop.load(Ordering::Relaxed) {
            break Ended::Cancelled;
        }
        if Instant::now() >= deadline {
            break Ended::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_guard(child, lifeline.take());
    Ok(ended)
}

/// Tells the guard to stop (closing its stdin), gives it a moment to kill its tree, then does it itself.
fn stop_guard(child: &mut Child, lifeline: Option<std::process::ChildStdin>) {
    drop(lifeline);
    let until = Instant::now() + GUARD_GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // While the guard lives its orphans stay below it: sweep its tree first, then the guard.
    kill_tree(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// What the guard's run amounts to: the report on the private pipe, or why there is none.
fn interpret_output(report: &[u8], stderr: &[u8], status: ExitStatus, shown: &str) -> FileRun {
    let text = String::from_utf8_lossy(report);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    if let Some(json) = lines.next() {
        if lines.next().is_some() || report.len() >= MAX_REPORT_BYTES {
            return FileRun::Problem(format!(
                "the check's private report pipe carried more than one report: something in {shown} wrote to it"
            ));
        }
        return interpret_json(json, shown);
    }
    let err = String::from_utf8_lossy(stderr);
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "killed by a signal".to_string(),
    };
    FileRun::Problem(if last.is_empty() {
        format!("python3 ended ({how}) before the check finished: does {shown} call exit() or kill its own process?")
    } else {
        format!("python3 ended ({how}) before the check finished: {}", terminal_safe(last, MAX_SHOWN_CHARS))
    })
}

/// Turns the harness's JSON line into timings or a one-line problem.
pub(super) fn interpret_json(json: &str, shown: &str) -> FileRun {
    match serde_json::from_str::<Report>(json) {
        Ok(report) => interpret(report, shown),
        Err(e) => FileRun::Problem(format!(
            "the check's harness reported something unreadable ({e}): {}",
            terminal_safe(json, MAX_SHOWN_CHARS)
        )),
    }
}

fn interpret(mut r: Report, shown: &str) -> FileRun {
    // Every string here may come from the learner's file (an exception's message, a repr, a line of source).
    for field in [
        &mut r.error,
        &mut r.python,
        &mut r.message,
        &mut r.text,
        &mut r.stage,
        &mut r.name,
        &mut r.kind,
        &mut r.who,
        &mut r.expected,
        &mut r.got,
    ] {
        *field = terminal_safe(field, MAX_SHOWN_CHARS);
    }
    if r.ok {
        let bad = |v: &[f64]| v.is_empty() || v.iter().any(|s| !s.is_finite() || *s < 0.0);
        if bad(&r.sequential_s) || bad(&r.parallel_s) {
            return FileRun::Problem("the check's harness reported no usable timings".to_string());
        }
        let ms = |v: Vec<f64>| v.into_iter().map(|s| s * 1e3).collect();
        return FileRun::Timed(Timings {
            sequential_ms: ms(r.sequential_s),
            parallel_ms: ms(r.parallel_s),
            python: r.python,
            parallel_ns: r.parallel_ns,
            sampled: None,
        });
    }
    let at = |line: Option<u64>| line.map_or_else(|| shown.to_string(), |l| format!("{shown}:{l}"));
    FileRun::Problem(match r.error.as_str() {
        "syntax" => {
            let mut s = format!("{}: syntax error: {}", at(r.line), r.message);
            if !r.text.trim().is_empty() {
                s.push_str(&format!(" (in `{}`)", r.text.trim()));
            }
            s
        }
        "exception" if r.stage == "import" => {
            format!("{}: importing the file raised {}", at(r.line), r.message)
        }
        "exception" => {
            let stage = if r.stage.contains(' ') { r.stage.clone() } else { format!("{}()", r.stage) };
            format!("{}: {stage} raised {}", at(r.line), r.message)
        }
        "missing" => format!(
            "{shown} defines no function {}(): the check calls sequential() and parallel(), with no arguments",
            r.name
        ),
        "not-callable" => format!("{shown}: {} is a {}, not a function", r.name, r.kind),
        "unequal" if r.who == "sequential" => format!(
            "sequential() returned a different result on a later call ({} instead of {}): it must give the same \
             answer every time",
            r.got, r.expected
        ),
        "unequal" => format!(
            "parallel() returned {} but sequential() returned {}: the results must be equal (same values, same \
             order). If it changes from run to run, look for a race.",
            r.got, r.expected
        ),
        "shadows" => {
            format!("{shown} has the name of Python's own module '{}': rename the file (e.g. my_{}.py)", r.name, r.name)
        }
        other => format!("{shown}: the check failed ({other}): {}", r.message),
    })
}

/// The lanes of the learner's median parallel() call, as the scheduler saw them: a Gantt of every thread and
/// process, with a heading. Empty when nothing was sampled.
pub(crate) fn parallel_lanes(t: &Timings, width: u16) -> Vec<String> {
    let Some(sampled) = &t.sampled else { return Vec::new() };
    let (samples, guard) = (&sampled.0, sampled.1);
    let mut order: Vec<usize> = (0..t.parallel_ms.len().min(t.parallel_ns.len())).collect();
    order.sort_by(|a, b| t.parallel_ms[*a].total_cmp(&t.parallel_ms[*b]));
    let Some(&median) = order.get(order.len().saturating_sub(1) / 2) else { return Vec::new() };
    let [from, to] = t.parallel_ns[median];
    if to <= from {
        return Vec::new();
    }
    let window = crate::engine::sampler::clipped(samples, from, to);
    if window.threads.is_empty() {
        return Vec::new();
    }
    let mut tl = crate::watch::live_timeline(&window, guard, from, crate::experiment::available_cores());
    tl.ingest(crate::timeline::LabEvent::Finished(crate::timeline::RunEnd {
        t0_ns: from,
        t_end_ns: to,
        checksum: 0,
        tasks_done: 0,
        error: None,
    }));
    let procs = window.processes.len();
    let mut out = vec![format!(
        "parallel() as the scheduler saw it (run {} of {}, the median: {}, {}; sampled every {} µs, {:.1}% of one core):",
        median + 1,
        order.len(),
        if procs == 1 { "1 process".to_string() } else { format!("{procs} processes") },
        crate::units::plural(window.threads.len() as u64, "thread"),
        samples.cost.period_ns / 1000,
        samples.cost.cpu_pct()
    )];
    out.extend(crate::ui::gantt::to_text(&tl, width, Some((from, to)), false));
    out
}

/// Checks the learner's file against a Python exercise: `Ok(Err(problem))` when the file itself is the problem.
pub(crate) fn check_file(
    spec: &ExerciseSpec,
    file: &Path,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<std::result::Result<CheckOutcome, String>> {
    if spec.goal.metric == Metric::OverheadShare {
        bail!("exercise '{}' has an overhead_share goal, which a Python file cannot measure", spec.id);
    }
    let reps = check_reps()?;
    match run_file(file, reps, timeout, stop)? {
        FileRun::Problem(p) => Ok(Err(p)),
        FileRun::Timed(t) => {
            if let Some(why) = too_short(&t) {
                bail!(why);
            }
            let mut outcome = judge_timings(spec, &t, goal_cores(spec.tasks));
            let width = crossterm::terminal::size().map(|(w, _)| w).unwrap_or(100).clamp(60, 160) - 2;
            outcome.details.extend(parallel_lanes(&t, width));
            Ok(Ok(outcome))
        }
    }
}

/// Why timings are too short to judge, if they are: below `MIN_SEQUENTIAL_MS`, the timer's noise and the cost
/// of calling a function decide the figure, not the work (0.00 ms against 0.00 ms "passes" any goal).
pub(crate) fn too_short(t: &Timings) -> Option<String> {
    let seq = median(&t.sequential_ms);
    (seq < MIN_SEQUENTIAL_MS).then(|| {
        format!(
            "sequential() took {} (median of {}), too short to judge: below {} the timer's noise decides the \
             figure; give sequential() and parallel() more work (e.g. bigger inputs) so sequential() takes at \
             least {}",
            crate::units::fmt_ms(seq),
            crate::units::plural(t.sequential_ms.len() as u64, "run"),
            crate::units::fmt_ms(MIN_SEQUENTIAL_MS),
            crate::units::fmt_ms(MIN_SEQUENTIAL_MS),
        )
    })
}

/// The verdict on a file's timings (pure).
pub(crate) fn judge_timings(spec: &ExerciseSpec, t: &Timings, cores: u32) -> CheckOutcome {
    let seq = median(&t.sequential_ms);
    let par = median(&t.parallel_ms);
    let speedup = if par > 0.0 { seq / par } else { 0.0 };
    let measured = match spec.goal.metric {
        Metric::Speedup => speedup,
        Metric::Efficiency => speedup / f64::from(cores.max(1)),
        Metric::WallMs => par,
        Metric::OverheadShare => f64::NAN,
    };
    let sides = Sides {
        baseline: format!("sequential() (Python {})", t.python),
        setup: "parallel()".to_string(),
        baseline_walls_ms: t.sequential_ms.clone(),
        setup_walls_ms: t.parallel_ms.clone(),
    };
    let why = if speedup < 1.0 {
        vec![
            "why not: parallel() was slower than sequential(): what it adds (threads taking turns on the GIL, \
             starting processes, one message per item) costs more than it saves"
                .to_string(),
        ]
    } else {
        vec![format!(
            "why not: parallel() is {speedup:.2}× faster, not enough for {}: is every core busy for the whole run?",
            crate::units::plural(u64::from(cores), "core")
        )]
    };
    let mut outcome = judge(spec, measured, cores, &sides, why);
    if outcome.passed {
        // The explanation is about the native exercise; for a file, the figures say it.
        outcome.details.retain(|d| !d.starts_with("why: "));
    }
    outcome
}

/// Reads a pipe to its end on a thread, keeping only its last `cap` bytes; the result comes on the channel.
fn keep_tail<R: Read + Send + 'static>(pipe: Option<R>, cap: usize) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 2 * cap {
                            tail.drain(..tail.len() - cap);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if tail.len() > cap {
                tail.drain(..tail.len() - cap);
            }
        }
        let _ = tx.send(tail);
    });
    rx
}

/// Reads a pipe to its end on a thread, keeping only its first `cap` bytes (the report comes first).
fn keep_head(pipe: OwnedFd, cap: usize) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(pipe);
        let mut head: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(head.len());
                    head.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(head);
    });
    rx
}

/// A fresh private folder for the harness, removed when dropped (a killed parlab's is swept by the next: `scratch`).
struct HarnessDir(Scratch);

impl HarnessDir {
    fn create() -> Result<HarnessDir> {
        Ok(HarnessDir(Scratch::create("check")?))
    }
}
