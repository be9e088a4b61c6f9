//! Starting the embedded harness (`harness.py`) in a real CPython: the file written to a fresh private folder, run
//! as `PYTHON -I -u harness.py` with no shell, in its own process group, with PR_SET_PDEATHSIG on the interpreter,
//! one JSON request on its stdin (kept open: closing it cancels), events as JSON lines on an inherited fd 3. A run's
//! events become the same `LabEvent` stream the native lab gives (`LabRun::from_python`), so the timeline, headless
//! output, the TUI and recordings take them unchanged.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

use crate::experiment::{Experiment, Mode};
use crate::lab::client::{LabFeed, LabRun};
use crate::scratch::Scratch;
use crate::timeline::LabEvent;

/// The harness, shipped in the binary.
pub(crate) const HARNESS: &str = include_str!("harness.py");
/// The descriptor the harness writes its events to.
const RESULTS_FD: i32 = 3;
/// The most of the interpreter's stderr kept for messages.
const STDERR_KEEP: usize = 16 * 1024;

/// A fresh private folder holding the harness, removed when dropped (spawn and forkserver workers re-import the
/// harness from its path, so it stays until the run is over). A folder left by a parlab killed with SIGKILL is swept
/// by the next one (`scratch`).
pub(crate) struct HarnessDir(Scratch);

impl HarnessDir {
    fn create() -> Result<HarnessDir> {
        let dir = Scratch::create("engine")?;
        std::fs::write(dir.path().join("harness.py"), HARNESS)
            .with_context(|| format!("cannot write the python engine's harness into '{}'", dir.path().display()))?;
        Ok(HarnessDir(dir))
    }

    fn harness(&self) -> PathBuf {
        self.0.path().join("harness.py")
    }
}

/// A started harness: the interpreter (leader of its own process group), its request pipe, its event pipe.
pub(crate) struct Spawned {
    pub child: Child,
    pub stdin: ChildStdin,
    pub results: File,
    pub stderr: ChildStderr,
    pub dir: HarnessDir,
}

/// Starts `python` on the harness with `request` (results_fd is added) and sends the request.
pub(crate) fn spawn(python: &Path, request: &Value) -> Result<Spawned> {
    let dir = HarnessDir::create()?;
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe for the python engine")?;
    let w = write_end.as_raw_fd();
    let parent = std::process::id();
    let mut cmd = Command::new(python);
    cmd.arg("-I")
        .arg("-u")
        .arg(dir.harness())
        .current_dir(dir.0.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls are made (dup2, fcntl, setsid, prctl, getppid), on
    // descriptors we own; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            // The results pipe becomes fd 3 without close-on-exec (dup2 clears it; fd 3 itself needs fcntl).
            let ok = if w == RESULTS_FD { libc::fcntl(w, libc::F_SETFD, 0) } else { libc::dup2(w, RESULTS_FD) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Its own session, so its own group (a cancel kills the interpreter and every worker it started with
            // one signal) and no controlling terminal: nothing it runs (a pyenv shim, a site hook) can read or
            // re-mode the TUI's terminal.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The interpreter dies with parlab, even with SIGKILL; its workers arm their own.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parlab exited"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| spawn_error(python, &e))?;
    drop(write_end);
    let mut request = request.clone();
    request["results_fd"] = json!(RESULTS_FD);
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("the interpreter has no stdin"))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("the interpreter has no stderr"))?;
    // A harness that dies at once (a broken interpreter) closes the pipe: that is said by the caller from its exit.
    let _ = stdin.write_all(format!("{request}\n").as_bytes()).and_then(|_| stdin.flush());
    Ok(Spawned { child, stdin, results: File::from(read_end), stderr, dir })
}

fn spawn_error(python: &Path, e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow!("python interpreter '{}' does not exist (expected Python 3.9 or newer)", python.display())
        }
        std::io::ErrorKind::PermissionDenied => {
            anyhow!(
                "python interpreter '{}' cannot be run: permission denied (expected an executable)",
                python.display()
            )
        }
        _ => anyhow!("cannot start python interpreter '{}': {e} (expected Python 3.9 or newer)", python.display()),
    }
}

/// The harness request for an experiment (see `src/engine/README.md`).
pub(crate) fn request(exp: &Experiment) -> Value {
    let mut r = json!({
        "workload": exp.workload.to_string(),
        "tasks": exp.tasks,
        "mode": exp.mode,
        "workers": exp.workers,
        "chunksize": exp.chunksize_given.then_some(exp.chunksize),
        "start": exp.start,
        "api": exp.api,
        "warm": exp.warm,
        "payload": exp.payload,
    });
    // Test-only hooks (the fault tests): a task that raises, a worker process that kills itself.
    for (var, field) in [("PARLAB_TEST_FAIL_TASK", "fail_task"), ("PARLAB_TEST_CRASH_TASK", "crash_task")] {
        if let Some(n) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
            r[field] = json!(n);
        }
    }
    match (exp.mode, &exp.cluster) {
        (Mode::Dask, Some(a)) => r["scheduler"] = json!(a),
        (Mode::Ray, Some(a)) => r["address"] = json!(a),
        _ => {}
    }
    r
}

/// The interpreter's stderr (a bounded head), kept by a thread.
pub(crate) struct Stderr {
    pub text: Arc<Mutex<String>>,
    done: mpsc::Receiver<()>,
}

impl Stderr {
    /// All of it, once the pipe has ended (waiting up to half a second: a worker may still hold it).
    pub(crate) fn read(&self) -> String {
        let _ = self.done.recv_timeout(std::time::Duration::from_millis(500));
        self.text.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Keeps the interpreter's stderr on a thread.
pub(crate) fn keep_stderr(mut pipe: ChildStderr) -> Result<Stderr> {
    let kept = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&kept);
    let (tx, done) = mpsc::channel();
    std::thread::Builder::new().name("python-stderr".into()).spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock()
                && s.len() < STDERR_KEEP
            {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        let _ = tx.send(());
    })?;
    Ok(Stderr { text: kept, done })
}

/// What a python run keeps until it ends: the harness's folder and its stderr's end.
pub(crate) struct Keep {
    _dir: HarnessDir,
    pub stderr: Stderr,
}

/// Starts a python-engine run of `exp` (its `python` names the interpreter, detected before).
/// `follower` is as for `LabRun::start`.
pub(crate) fn start<F>(exp: &Experiment, follower: impl FnOnce(u32) -> F) -> Result<LabRun>
where
    F: FnMut(LabFeed) + Send + 'static,
{
    let py = exp.python.as_ref().ok_or_else(|| anyhow!("a python-engine run names no interpreter"))?;
    start_request(Path::new(&py.path), &request(exp), follower)
}

/// Starts the harness in `python` with a raw request, the GIL sampler watching it. `follower` is as for
/// `LabRun::start`.
pub(crate) fn start_request<F>(python: &Path, request: &Value, follower: impl FnOnce(u32) -> F) -> Result<LabRun>
where
    F: FnMut(LabFeed) + Send + 'static,
{
    start_sampled(python, request, true, follower)
}

/// Starts the harness with a raw request, with or without the GIL sampler (bench: what recording costs).
pub(crate) fn start_sampled<F>(
    python: &Path,
    request: &Value,
    sample: bool,
    follower: impl FnOnce(u32) -> F,
) -> Result<LabRun>
where
    F: FnMut(LabFeed) + Send + 'static,
{
    let s = spawn(python, request)?;
    let stderr = keep_stderr(s.stderr)?;
    let text = Arc::clone(&stderr.text);
    let results = s.results;
    // The real GIL lane: the interpreter's threads read from outside while the run goes (see `sampler`).
    // Where threads of one process take turns, their run spans are held back until the run ends and sent cut
    // around their waits, so that `run` is time on a CPU and `gil-wait` is drawn where it was.
    let hold = matches!(request["mode"].as_str(), Some("threads" | "async-offload"));
    let mut gil = if sample {
        super::sampler::Sampler::start(s.child.id(), super::sampler::PERIOD).ok().map(|s| GilLane::new(s, hold))
    } else {
        None
    };
    let reader = move |seen: Arc<AtomicU64>, emit: &mut dyn FnMut(LabEvent) -> bool| {
        let mut lines = BufReader::with_capacity(256 * 1024, results).lines();
        // Line 1 is the harness's hello (the interpreter, detected already); the rest are lab events.
        let _hello = lines.next();
        for line in lines {
            let Ok(line) = line else { break };
            seen.fetch_add(1, Ordering::Relaxed);
            match serde_json::from_str::<LabEvent>(&line) {
                Ok(ev) => {
                    if let Some(g) = gil.as_mut()
                        && g.keeps(&ev)
                    {
                        continue;
                    }
                    if matches!(ev, LabEvent::Finished(_))
                        && let Some(g) = gil.take()
                    {
                        for e in g.finish() {
                            emit(e);
                        }
                    }
                    if !emit(ev) {
                        break;
                    }
                }
                Err(e) => {
                    emit(LabEvent::Note(format!("the python engine sent an unreadable event ({e})")));
                    break;
                }
            }
        }
        // Ended without `finished` (the interpreter died): what was held back goes as it came.
        if let Some(g) = gil.take() {
            for span in g.held {
                emit(LabEvent::Span(span));
            }
        }
    };
    LabRun::from_python(s.child, s.stdin, text, Keep { _dir: s.dir, stderr }, follower, reader)
}

/// The sampler of a python-engine run and what it needs to find the GIL waits: the lanes and run spans so far.
struct GilLane {
    sampler: super::sampler::Sampler,
    lanes: Vec<crate::timeline::Lane>,
    runs: Vec<crate::timeline::Span>,
    /// Hold run spans back (they are sent cut around the waits at the end).
    hold: bool,
    held: Vec<crate::timeline::Span>,
}

impl GilLane {
    fn new(sampler: super::sampler::Sampler, hold: bool) -> GilLane {
        GilLane { sampler, lanes: Vec::new(), runs: Vec::new(), hold, held: Vec::new() }
    }

    /// Notes what the waits are found from; true when the event is held back instead of sent now.
    fn keeps(&mut self, ev: &LabEvent) -> bool {
        match ev {
            LabEvent::Lane(l) => self.lanes.push(l.clone()),
            LabEvent::Span(s) if s.kind == crate::timeline::SpanKind::Run => {
                self.runs.push(*s);
                if self.hold {
                    self.held.push(*s);
                    return true;
                }
            }
            _ => {}
        }
        false
    }

    /// Stops the sampler: the run's `gil-wait` spans, and a note saying where they came from and what it cost.
    fn finish(self) -> Vec<LabEvent> {
        let samples = self.sampler.stop();
        let waits = super::sampler::gil_waits(&samples, &self.lanes, &self.runs);
        let runs = super::sampler::cut_around(&self.held, &waits);
        let mut out: Vec<LabEvent> = runs.into_iter().map(LabEvent::Span).collect();
        if waits.is_empty() {
            return out;
        }
        let c = samples.cost;
        let note = format!(
            "gil-wait measured from outside: {} threads read every {} µs ({} ticks, {:.1}% of one core)",
            samples.threads.len(),
            c.period_ns / 1000,
            c.ticks,
            c.cpu_pct()
        );
        out.extend(waits.into_iter().map(LabEvent::Span).chain([LabEvent::Note(note)]));
        out
    }
}

/// The one line to show for an interpreter that ended without finishing: its last words (the exception) and the
/// last frame of its traceback, when its stderr has them.
pub(crate) fn last_words(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last()?.trim();
    let frame = lines.iter().rev().find(|l| l.trim_start().starts_with("File \"")).map(|l| l.trim());
    Some(match frame {
        Some(f) => format!("{last} ({})", f.trim_end_matches(',')),
        None => last.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceback_becomes_one_line_with_its_last_frame() {
        let err = "Traceback (most recent call last):\n  File \"/tmp/h.py\", line 3, in <module>\n    main()\n  \
                   File \"/tmp/h.py\", line 2, in main\n    1/0\nZeroDivisionError: division by zero\n";
        assert_eq!(
            last_words(err).unwrap(),
            "ZeroDivisionError: division by zero (File \"/tmp/h.py\", line 2, in main)"
        );
        assert_eq!(last_words("Segmentation fault\n").unwrap(), "Segmentation fault");
        assert_eq!(last_words("  \n"), None);
    }

    #[test]
    fn the_request_names_the_cluster_only_for_its_mode_and_a_default_chunksize_as_null() {
        let exp = Experiment::build(
            "fib:20".parse().unwrap(),
            8,
            Mode::Dask,
            &Default::default(),
            crate::experiment::Fit::Strict,
            2,
        )
        .unwrap();
        let mut e = exp.clone();
        e.cluster = Some("tcp://127.0.0.1:8786".into());
        let r = request(&e);
        assert_eq!(r["mode"], "dask");
        assert_eq!(r["scheduler"], "tcp://127.0.0.1:8786");
        assert_eq!(r["chunksize"], Value::Null);
        assert!(r.get("address").is_none());
        e.mode = Mode::Ray;
        assert_eq!(request(&e)["address"], "tcp://127.0.0.1:8786");
    }
}
