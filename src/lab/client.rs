//! The caller's side of a lab: start `parlab __lab` in its own process group, send it the experiment, and
//! receive its events on a channel. Cancelling kills the whole group (lab and workers) at once.

use std::io::{BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::experiment::Experiment;
use crate::timeline::{DemoReport, LabEvent, RunEnd, Timeline};
use crate::wire;

use super::demos::DemoSpec;
use super::{LAB_ARG, LabRequest, PARENT_ENV};

/// A lab process running one experiment.
pub(crate) struct LabRun {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) events: Receiver<LabEvent>,
    stderr: Arc<Mutex<String>>,
    done: bool,
}

impl LabRun {
    pub(crate) fn start(exp: &Experiment) -> Result<LabRun> {
        LabRun::start_request(&LabRequest::Experiment(exp.clone()))
    }

    /// Starts a lab running a process-internals demo.
    pub(crate) fn start_demo(spec: &DemoSpec) -> Result<LabRun> {
        LabRun::start_request(&LabRequest::Demo(spec.clone()))
    }

    pub(crate) fn start_request(request: &LabRequest) -> Result<LabRun> {
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
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("lab has no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("lab has no stdout"))?;
        let mut stderr_pipe = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("lab has no stderr"))?;
        let line = serde_json::to_string(request)? + "\n";
        stdin
            .write_all(line.as_bytes())
            .context("cannot send the request to the lab")?;
        stdin.flush()?;

        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lab-reader".into())
            .spawn(move || {
                let mut r = BufReader::with_capacity(256 * 1024, stdout);
                let mut body = Vec::new();
                while let Ok(Some(tag)) = wire::read_frame(&mut r, &mut body) {
                    match wire::decode_event(tag, &body) {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            })?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::Builder::new()
            .name("lab-stderr".into())
            .spawn(move || {
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
        Ok(LabRun {
            child,
            stdin: Some(stdin),
            events: rx,
            stderr,
            done: false,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the run now: the lab and all its workers are killed and reaped.
    pub(crate) fn cancel(&mut self) {
        if !self.done {
            // SAFETY: signalling the process group the lab leads (its pid), which holds only our processes.
            unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        }
        self.stdin = None;
        let _ = self.child.wait();
        self.done = true;
    }

    /// Waits for the lab to exit after its event stream ended, and explains an early end.
    pub(crate) fn finish(&mut self, got_end: bool) -> Option<String> {
        self.stdin = None;
        let status = self.child.wait().ok();
        self.done = true;
        if got_end {
            return None;
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

impl Drop for LabRun {
    fn drop(&mut self) {
        if !self.done {
            self.cancel();
        }
    }
}

/// Runs an experiment to its end, calling `on_event` for each event as it arrives. Returns the timeline; a run
/// that failed has `end.error` set. `stop` cancels the run (all processes killed) and returns an error.
pub(crate) fn run_to_end(
    exp: &Experiment,
    stop: &AtomicBool,
    on_event: impl FnMut(&LabEvent),
) -> Result<Timeline> {
    follow(LabRun::start(exp)?, stop, on_event)
}

/// Runs a demo by name at its default size (for the TUI and lessons): the timeline of its lanes and spans, and its
/// report. A demo that failed is an error saying why; `stop` cancels it (all its processes killed).
#[allow(dead_code, reason = "the TUI's demo panels call it")]
pub(crate) fn run_demo(
    name: &str,
    stop: &AtomicBool,
    on_event: impl FnMut(&LabEvent),
) -> Result<(Timeline, DemoReport)> {
    let spec = DemoSpec::new(name, None).map_err(|e| anyhow!(e))?;
    run_demo_spec(&spec, stop, on_event)
}

/// Runs a demo with a chosen size (see `DemoSpec::new`).
pub(crate) fn run_demo_spec(
    spec: &DemoSpec,
    stop: &AtomicBool,
    on_event: impl FnMut(&LabEvent),
) -> Result<(Timeline, DemoReport)> {
    let timeline = follow(LabRun::start_demo(spec)?, stop, on_event)?;
    if let Some(err) = timeline.end.as_ref().and_then(|e| e.error.as_deref()) {
        return Err(anyhow!("the {} demo failed: {err}", spec.name));
    }
    let report = timeline
        .demo
        .clone()
        .ok_or_else(|| anyhow!("the {} demo ended without a report", spec.name))?;
    Ok((timeline, report))
}

/// Receives a lab's events until its stream ends, building the timeline.
fn follow(
    mut lab: LabRun,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&LabEvent),
) -> Result<Timeline> {
    let mut timeline = Timeline::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            lab.cancel();
            return Err(anyhow!(
                "interrupted: the run was cancelled and its processes stopped"
            ));
        }
        match lab.events.recv_timeout(Duration::from_millis(50)) {
            Ok(ev) => {
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
