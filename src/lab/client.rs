//! The caller's side of a lab: start `parlab __lab` in its own process group, send it the job, and hand its
//! events to a follower. Cancelling kills the whole group (lab and workers) at once.
//!
//! Events reach the caller through one follower callback on the reader thread; `measure` and `stop_flag` are
//! here so checks and commands reach the lab through its client. Never imports the app or the widgets.

use std::io::{BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::timeline::RunReport;

use crate::experiment::Experiment;
use crate::timeline::{DemoReport, LabEvent, RunEnd, Timeline};
use crate::wire;

use super::{LAB_ARG, PARENT_ENV};
use crate::experiment::Job;
use crate::experiment::demo::DemoSpec;

/// What a lab's stream hands its follower: each event as it arrives, then once that the stream has closed.
#[derive(Debug)]
pub(crate) enum LabFeed {
    Event(LabEvent),
    Closed,
}

/// The follower of a lab's stream, called on the lab's reader thread (and by its watchdog, with `Stalled`).
type Follower = Box<dyn FnMut(LabFeed) + Send>;

/// A lab process running one job.
pub(crate) struct LabRun {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    done: bool,
    /// A python-engine run: the interpreter leads the group, and its harness folder lives as long as the run.
    python: Option<crate::engine::python::Keep>,
}

impl LabRun {
    /// Starts a lab running `job` in its own process group. `follower` is called with the lab's pid before any
    /// event arrives and returns the callback that gets them: each event as it arrives, from one reader thread,
    /// and then `LabFeed::Closed` once the stream ends (the lab exited or was cancelled).
    pub(crate) fn start<F>(job: &Job, follower: impl FnOnce(u32) -> F) -> Result<LabRun>
    where
        F: FnMut(LabFeed) + Send + 'static,
    {
        if let Job::Experiment(exp) = job
            && exp.engine == crate::experiment::Engine::Python
        {
            return crate::engine::python::start(exp, follower);
        }
        let exe = std::env::current_exe().context("cannot find the parlab executable")?;
        let mut child = Command::new(exe)
            .arg(LAB_ARG)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: Esc or Ctrl-C kills the lab and every worker with one signal.
            .process_group(0)
            .spawn()
            .context("cannot start the lab process")?;
        register_lab(child.id(), true);
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("lab has no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("lab has no stdout"))?;
        let mut stderr_pipe = child.stderr.take().ok_or_else(|| anyhow!("lab has no stderr"))?;
        let line = serde_json::to_string(job)? + "\n";
        stdin.write_all(line.as_bytes()).context("cannot send the request to the lab")?;
        stdin.flush()?;

        // The watchdog's way into the stream too; the reader empties it when the stream ends, so the follower is
        // told `Closed` once and then dropped.
        let follower: Arc<Mutex<Option<Follower>>> = Arc::new(Mutex::new(Some(Box::new(follower(child.id())))));
        let seen = Arc::new(AtomicU64::new(0));
        let (reader_follower, reader_seen) = (Arc::clone(&follower), Arc::clone(&seen));
        std::thread::Builder::new().name("lab-reader".into()).spawn(move || {
            let mut r = BufReader::with_capacity(256 * 1024, stdout);
            let mut body = Vec::new();
            while let Ok(Some(tag)) = wire::read_frame(&mut r, &mut body) {
                reader_seen.fetch_add(1, Ordering::Relaxed);
                match wire::decode_event(tag, &body) {
                    Ok(ev) => {
                        deliver(&reader_follower, LabFeed::Event(ev));
                    }
                    Err(_) => break,
                }
            }
            close(&reader_follower);
        })?;
        let lab = child.id();
        std::thread::Builder::new()
            .name("lab-watchdog".into())
            .spawn(move || watch_for_stalls(lab, &seen, &follower))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::Builder::new().name("lab-stderr".into()).spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock()
                    && s.len() < 16 * 1024
                {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        })?;
        Ok(LabRun { child, stdin: Some(stdin), stderr, done: false, python: None })
    }

    /// A python-engine run (`engine::python::start`): `read` turns the interpreter's event pipe into events,
    /// handing each to its second argument (false once nobody follows) and counting them in its first for the
    /// stall watchdog. `follower` is as for `start`.
    pub(crate) fn from_python<F>(
        child: Child,
        stdin: ChildStdin,
        stderr: Arc<Mutex<String>>,
        keep: crate::engine::python::Keep,
        follower: impl FnOnce(u32) -> F,
        read: impl FnOnce(Arc<AtomicU64>, &mut dyn FnMut(LabEvent) -> bool) + Send + 'static,
    ) -> Result<LabRun>
    where
        F: FnMut(LabFeed) + Send + 'static,
    {
        register_lab(child.id(), true);
        let follower: Arc<Mutex<Option<Follower>>> = Arc::new(Mutex::new(Some(Box::new(follower(child.id())))));
        let seen = Arc::new(AtomicU64::new(0));
        let (reader_follower, reader_seen) = (Arc::clone(&follower), Arc::clone(&seen));
        let run = LabRun { child, stdin: Some(stdin), stderr, done: false, python: Some(keep) };
        std::thread::Builder::new().name("python-reader".into()).spawn(move || {
            read(reader_seen, &mut |ev| deliver(&reader_follower, LabFeed::Event(ev)));
            close(&reader_follower);
        })?;
        let leader = run.child.id();
        std::thread::Builder::new()
            .name("python-watchdog".into())
            .spawn(move || watch_for_stalls(leader, &seen, &follower))?;
        Ok(run)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the run now: the lab and all its workers are killed and reaped.
    pub(crate) fn cancel(&mut self) {
        if !self.done && self.python.is_some() {
            // Closing stdin asks the harness to stop its workers and cluster itself; a moment later the group goes.
            self.stdin = None;
            let until = Instant::now() + PYTHON_CANCEL_GRACE;
            while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !self.done {
            // SAFETY: signalling the process group the lab leads (its pid), which holds only our processes.
            unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        }
        self.stdin = None;
        let _ = self.child.wait();
        register_lab(self.child.id(), false);
        self.done = true;
        // The killed lab's workers were handed to us (we are their subreaper): reap them.
        reap_orphans(Duration::from_millis(500));
    }

    /// Waits for the lab to exit after its event stream ended, and explains an early end.
    pub(crate) fn finish(&mut self, got_end: bool) -> Option<String> {
        self.stdin = None;
        let status = self.child.wait().ok();
        register_lab(self.child.id(), false);
        self.done = true;
        reap_orphans(Duration::ZERO);
        if got_end {
            return None;
        }
        if let Some(keep) = &self.python {
            let err = keep.stderr.read();
            let how = status.map_or_else(String::new, |s| format!(" ({s})"));
            return Some(match crate::engine::python::last_words(&err) {
                Some(words) => format!("the python engine ended before the run finished{how}: {words}"),
                None => format!("the python engine ended before the run finished{how}"),
            });
        }
        let mut msg = match status {
            Some(s) => format!("the lab process ended before the run finished ({s})"),
            None => "the lab process ended before the run finished".to_string(),
        };
        if let Ok(err) = self.stderr.lock()
            && !err.trim().is_empty()
        {
            msg.push_str(": ");
            msg.push_str(err.trim());
        }
        Some(msg)
    }
}

/// Tells the follower the stream has closed, once, and drops it (a channel follower's receiver then disconnects).
fn close(follower: &Mutex<Option<Follower>>) {
    let last = follower.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut follow) = last {
        follow(LabFeed::Closed);
    }
}

/// Hands `feed` to the follower, if the stream is still open; true if it was.
fn deliver(follower: &Mutex<Option<Follower>>, feed: LabFeed) -> bool {
    match follower.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        Some(follow) => {
            follow(feed);
            true
        }
        None => false,
    }
}

/// How long a cancelled python run gets to stop its workers (and a cluster) itself before its group is killed.
const PYTHON_CANCEL_GRACE: Duration = Duration::from_millis(300);

/// How long a live run may send nothing before the watchdog looks for stopped processes.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(3);

/// Watches a lab's event stream: after `STALL_AFTER` with no event, if a process of the run (the lab's process
/// group) is stopped, says so once with `LabEvent::Stalled`; an event re-arms it. A long task with no event while
/// every process runs or sleeps is normal and is not reported. Ends when the stream does.
fn watch_for_stalls(lab: u32, seen: &AtomicU64, follower: &Mutex<Option<Follower>>) {
    let mut last = seen.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    let mut told = false;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if follower.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return;
        }
        let now = seen.load(Ordering::Relaxed);
        if now != last {
            (last, quiet_since, told) = (now, Instant::now(), false);
            continue;
        }
        if told || quiet_since.elapsed() < STALL_AFTER {
            continue;
        }
        if let Some(msg) = stall_message(lab, &stopped_in_group(lab), quiet_since.elapsed()) {
            told = deliver(follower, LabFeed::Event(LabEvent::Stalled(msg)));
        }
    }
}

/// Processes of process group `pgid` that are stopped, with their /proc state letter (`T` or `t`).
fn stopped_in_group(pgid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        // After the command name: state, ppid, pgrp.
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let pgrp: u32 = f.nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if pgrp == pgid && matches!(state, 'T' | 't') {
            out.push((pid, state));
        }
    }
    out.sort_unstable();
    out
}

/// The one line the user reads when a run stalls on stopped processes, or None when none is stopped.
fn stall_message(lab: u32, stopped: &[(u32, char)], quiet: Duration) -> Option<String> {
    if stopped.is_empty() {
        return None;
    }
    let who: Vec<String> = stopped
        .iter()
        .map(|&(pid, state)| {
            let role = if pid == lab { "the lab" } else { "worker" };
            let how =
                if state == 't' { "stopped by a debugger (tracing stop)" } else { "stopped (SIGSTOP or SIGTSTP)" };
            format!("{role} {pid} is {how}")
        })
        .collect();
    let pids: Vec<String> = stopped.iter().map(|(p, _)| p.to_string()).collect();
    Some(format!(
        "the run has sent nothing for {} s: {}; it goes on when continued (kill -CONT {})",
        quiet.as_secs(),
        who.join(", "),
        pids.join(" ")
    ))
}

/// Kills every lab this process started, with its workers (the last resort of an interrupted headless run that
/// is stuck elsewhere, e.g. writing to a pipe nobody reads).
pub(crate) fn kill_all_labs() {
    let labs = LABS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for pid in labs {
        // SAFETY: signalling a process group a lab of ours leads, which holds only our processes.
        unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
    }
}

/// Labs this process started and still waits for (their exit status belongs to `LabRun`, not to the reaper).
static LABS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn register_lab(pid: u32, live: bool) {
    let mut labs = LABS.lock().unwrap_or_else(|e| e.into_inner());
    labs.retain(|p| *p != pid);
    if live {
        labs.push(pid);
    }
}

/// Makes this process the reaper of its orphaned descendants: when a cancelled lab dies, its workers are handed
/// to us rather than to pid 1 (which, in some containers, never reaps them), so no zombie outlives a run.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on the calling process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reaps dead parlab processes handed to us (workers of a killed lab), waiting up to `patience` for ones still
/// dying. Only zombies named parlab that are not labs we wait for ourselves are touched, so no `Child` loses its
/// exit status.
pub(crate) fn reap_orphans(patience: Duration) {
    let me = std::process::id();
    let deadline = std::time::Instant::now() + patience;
    loop {
        let labs = LABS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut dying = 0;
        for (pid, state) in parlab_children(me) {
            if labs.contains(&pid) {
                continue;
            }
            if state == 'Z' {
                let mut status = 0;
                // SAFETY: waitpid on a dead child of ours, without blocking.
                unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
            } else {
                dying += 1;
            }
        }
        if dying == 0 || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a child handed to us is one whose zombie we reap: parlab's own workers, and what a python engine's
/// harness left (its workers, its guard, Ray's processes, which rename themselves).
fn reaped_name(comm: &str) -> bool {
    ["parlab", "python", "ray::", "raylet", "gcs_server"].iter().any(|p| comm.starts_with(p))
}

/// Children of `parent` whose command name is one we reap (`reaped_name`), with their state letter.
fn parlab_children(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && reaped_name(comm) {
            out.push((pid, state));
        }
    }
    out
}

impl Drop for LabRun {
    fn drop(&mut self) {
        if !self.done {
            self.cancel();
        }
    }
}

/// Runs an experiment to its end, calling `on_event` for each event as it arrives. Returns the timeline; a run
/// that failed has `end.error` set. `stop` cancels the run (all processes killed) and returns an error.
pub(crate) fn run_to_end(exp: &Experiment, stop: &AtomicBool, on_event: impl FnMut(&LabEvent)) -> Result<Timeline> {
    follow_job(&Job::Experiment(exp.clone()), stop, on_event)
}

/// Runs a demo with a chosen size (see `DemoSpec::new`).
pub(crate) fn run_demo_spec(
    spec: &DemoSpec,
    stop: &AtomicBool,
    on_event: impl FnMut(&LabEvent),
) -> Result<(Timeline, DemoReport)> {
    let timeline = follow_job(&Job::Demo(spec.clone()), stop, on_event)?;
    if let Some(err) = timeline.end.as_ref().and_then(|e| e.error.as_deref()) {
        return Err(anyhow!("the {} demo failed: {err}", spec.name));
    }
    let report = timeline.demo.clone().ok_or_else(|| anyhow!("the {} demo ended without a report", spec.name))?;
    Ok((timeline, report))
}

/// Runs a job in a lab and receives its events until its stream ends, building the timeline.
fn follow_job(job: &Job, stop: &AtomicBool, on_event: impl FnMut(&LabEvent)) -> Result<Timeline> {
    let (follower, events) = channel_follower();
    let lab = LabRun::start(job, |_| follower)?;
    follow(lab, &events, stop, on_event)
}

/// A follower that puts each event on a channel, for a caller that polls it between looks at its stop flag.
pub(crate) fn channel_follower() -> (impl FnMut(LabFeed) + Send + 'static, Receiver<LabEvent>) {
    let (tx, events) = mpsc::channel();
    let follower = move |feed| {
        if let LabFeed::Event(ev) = feed {
            let _ = tx.send(ev);
        }
    };
    (follower, events)
}

/// Receives a started lab's events from its `channel_follower` until its stream ends, building the timeline.
pub(crate) fn follow(
    mut lab: LabRun,
    events: &Receiver<LabEvent>,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&LabEvent),
) -> Result<Timeline> {
    let mut timeline = Timeline::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            lab.cancel();
            return Err(anyhow!("interrupted: the run was cancelled and its processes stopped"));
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(ev) => {
                if let LabEvent::Stalled(msg) = &ev {
                    // Headless: one line on stderr (the watchdog says it once per stall).
                    eprintln!("parlab: {msg}");
                }
                on_event(&ev);
                timeline.ingest(ev);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(err) = lab.finish(timeline.is_finished()) {
        let now = crate::clock::now_ns();
        timeline.ingest(LabEvent::Finished(RunEnd {
            t0_ns: timeline.t0_ns,
            t_end_ns: now,
            checksum: 0,
            tasks_done: 0,
            error: Some(err),
        }));
    }
    Ok(timeline)
}

/// How long an interrupted command has to stop by itself before it is ended from outside.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Ctrl-C, SIGTERM and SIGHUP set this flag; runs poll it and cancel (killing every lab and worker process).
/// Whatever the command is stuck in when the signal comes (a write to a pipe nobody reads, ...), it ends within
/// `STOP_GRACE`: a watcher then kills the labs and exits.
pub(crate) fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&flag)).context("cannot install signal handlers")?;
    }
    let watched = Arc::clone(&flag);
    std::thread::Builder::new()
        .name("stop-watch".into())
        .spawn(move || {
            while !watched.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(STOP_GRACE);
            kill_all_labs();
            let msg = b"error: interrupted: the command was stuck and has been stopped with its processes\n";
            // SAFETY: write(2) of a static buffer to stderr, then _exit: no lock is taken (the stuck thread may
            // hold stdout's or stderr's), no destructor runs.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(2);
            }
        })
        .context("cannot start the signal watcher")?;
    Ok(flag)
}

/// Runs an experiment `repeat` times; the report carries the median run's timeline.
pub(crate) fn measure(exp: &Experiment, repeat: u32, stop: &AtomicBool) -> Result<RunReport> {
    let mut runs: Vec<Timeline> = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = run_to_end(exp, stop, |_| {})?;
        let failed = t.end.as_ref().is_some_and(|e| e.error.is_some());
        runs.push(t);
        if failed {
            break;
        }
    }
    let walls_ns: Vec<u64> = runs.iter().map(Timeline::wall_ns).collect();
    let mut sorted: Vec<(u64, usize)> = walls_ns.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    let pick = if runs.iter().any(|t| t.end.as_ref().is_some_and(|e| e.error.is_some())) {
        runs.len() - 1
    } else {
        sorted[(sorted.len() - 1) / 2].1
    };
    let timeline = runs.swap_remove(pick);
    Ok(RunReport { experiment: exp.clone(), timeline, parent_pid: std::process::id(), walls_ns, speedup: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_process_of_the_run_is_named_with_its_state() {
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().expect("sleep runs");
        let pid = child.id();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stopped = Vec::new();
        while Instant::now() < deadline {
            stopped = stopped_in_group(pid);
            if !stopped.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(stopped, vec![(pid, 'T')]);
        let msg = stall_message(pid, &stopped, Duration::from_secs(3)).unwrap();
        assert_eq!(
            msg,
            format!(
                "the run has sent nothing for 3 s: the lab {pid} is stopped (SIGSTOP or SIGTSTP); it goes on when \
                 continued (kill -CONT {pid})"
            )
        );
        assert_eq!(stall_message(pid, &[], Duration::from_secs(3)), None, "a quiet run that runs is not a stall");
    }
}
