//! Python exercises: time the learner's own file with python3 through a small harness (`harness.py`, written to a
//! fresh temporary folder): `python3 harness.py FILE REPS`, no shell, in its own process group, with a timeout. The
//! harness imports only the named file, checks `sequential()` and `parallel()`, runs a warm-up and REPS timed
//! repetitions of each, and reports JSON; every way a file can go wrong comes back as a clear one-line problem.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::{CheckOutcome, Sides, check_reps, judge};
use crate::lesson::{ExerciseSpec, Metric, goal_cores};
use crate::timeline::median;

const HARNESS: &str = include_str!("harness.py");
const MARK: &str = "PARLAB-RESULT ";
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 120;
pub(crate) const MAX_TIMEOUT_S: u64 = 3600;
/// How much of the file's own output is kept for messages.
const TAIL_BYTES: usize = 8 * 1024;

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
}

/// A run of the learner's file: timed, or a problem with the file (a failed check, not a parlab error).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FileRun {
    Timed(Timings),
    Problem(String),
}

/// Checks that `file` is there and looks like a Python file (a usage error otherwise).
pub(crate) fn check_path(file: &Path) -> Result<PathBuf> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("no such file '{}'", file.display()),
        Err(e) => bail!("cannot read '{}': {e}", file.display()),
    };
    if meta.is_dir() {
        bail!("'{}' is a folder; name your Python file (e.g. fib_pool.py)", file.display());
    }
    if file.extension().is_none_or(|x| x != "py") {
        bail!("'{}' is not a Python file (expected a name ending in .py)", file.display());
    }
    std::fs::canonicalize(file).with_context(|| format!("cannot resolve '{}'", file.display()))
}

/// Runs the learner's file through the harness. `Err` means the check could not run at all (no python3, no
/// temporary folder); a file that is broken, wrong or hangs is `Ok(FileRun::Problem)`.
pub(crate) fn run_file(file: &Path, reps: u32, timeout: Duration, stop: &AtomicBool) -> Result<FileRun> {
    let file = check_path(file)?;
    let shown = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let dir = HarnessDir::create()?;
    let harness = dir.0.join("harness.py");
    std::fs::write(&harness, HARNESS).context("cannot write the check's harness")?;
    let parent = std::process::id();
    let mut cmd = Command::new("python3");
    cmd.arg(&harness)
        .arg(&file)
        .arg(reps.to_string())
        .current_dir(file.parent().unwrap_or(Path::new("/")))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout kills python3 and every worker process it started with one signal.
        .process_group(0);
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid); nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parlab exited"));
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "python3 was not found on PATH: install Python 3 to check Python exercises \
             (a native check needs no Python: leave out the file)"
        ),
        Err(e) => bail!("cannot start python3: {e}"),
    };
    let pid = child.id() as i32;
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut cancelled = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                kill_group(pid);
                bail!("cannot wait for python3: {e}");
            }
        }
        if stop.load(Ordering::Relaxed) {
            cancelled = true;
        }
        if cancelled || Instant::now() >= deadline {
            kill_group(pid);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the file left running (pool workers after an error, a forgotten Process) goes with it.
    kill_group(pid);
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if cancelled {
        bail!("check cancelled");
    }
    let Some(status) = status else {
        return Ok(FileRun::Problem(format!(
            "{shown} took longer than {} s; is something waiting forever? (a join() on a process that never ends, \
             a queue.get() nobody feeds, a lock never released; --timeout changes the limit)",
            timeout.as_secs()
        )));
    };
    let Some(json) = out.result else {
        let last = err.tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        let how = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        return Ok(FileRun::Problem(if last.is_empty() {
            format!(
                "python3 ended ({how}) before the check finished: does {shown} call exit() or kill its own process?"
            )
        } else {
            format!("python3 ended ({how}) before the check finished: {last}")
        }));
    };
    Ok(interpret_json(&json, &shown))
}

/// Turns the harness's JSON line into timings or a one-line problem.
pub(super) fn interpret_json(json: &str, shown: &str) -> FileRun {
    match serde_json::from_str::<Report>(json) {
        Ok(report) => interpret(report, shown),
        Err(e) => FileRun::Problem(format!("the check's harness printed something unreadable ({e}): {json}")),
    }
}

fn interpret(r: Report, shown: &str) -> FileRun {
    if r.ok {
        let ms = |v: Vec<f64>| v.into_iter().map(|s| s * 1e3).collect();
        return FileRun::Timed(Timings {
            sequential_ms: ms(r.sequential_s),
            parallel_ms: ms(r.parallel_s),
            python: r.python,
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
        FileRun::Timed(t) => Ok(Ok(judge_timings(spec, &t, goal_cores(spec.tasks)))),
    }
}

/// The verdict on a file's timings (pure).
pub(crate) fn judge_timings(spec: &ExerciseSpec, t: &Timings, cores: u32) -> CheckOutcome {
    let seq = median(&mut t.sequential_ms.clone());
    let par = median(&mut t.parallel_ms.clone());
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
            crate::experiment::plural(u64::from(cores), "core")
        )]
    };
    let mut outcome = judge(spec, measured, cores, &sides, why);
    if outcome.passed {
        // The explanation is about the native exercise; for a file, the figures say it.
        outcome.details.retain(|d| !d.starts_with("why: "));
    }
    outcome
}

/// The output of one of the child's pipes: the harness's result line and the tail of everything else.
#[derive(Default)]
struct Captured {
    result: Option<String>,
    tail: String,
}

fn read_all<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Captured> {
    std::thread::spawn(move || {
        let mut got = Captured::default();
        let Some(pipe) = pipe else { return got };
        let mut r = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(json) = text.strip_prefix(MARK) {
                got.result = Some(json.trim_end().to_string());
            } else {
                got.tail.push_str(&text);
                if got.tail.len() > 2 * TAIL_BYTES {
                    let mut cut = got.tail.len() - TAIL_BYTES;
                    while !got.tail.is_char_boundary(cut) {
                        cut += 1;
                    }
                    got.tail.drain(..cut);
                }
            }
        }
        got
    })
}

fn kill_group(pgid: i32) {
    // SAFETY: killpg only sends a signal; the group is the one python3 leads (ESRCH once it is empty is fine).
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

/// A fresh private folder for the harness, removed when dropped.
struct HarnessDir(PathBuf);

impl HarnessDir {
    fn create() -> Result<HarnessDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "parlab-check-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // create_dir fails if the name exists, so nobody else's folder or link is ever used.
        std::fs::create_dir(&path).with_context(|| format!("cannot create a temporary folder '{}'", path.display()))?;
        Ok(HarnessDir(path))
    }
}

impl Drop for HarnessDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
