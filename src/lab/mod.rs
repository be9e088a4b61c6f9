//! The lab process: it receives one request from its parent (an experiment, or a process-internals demo), runs it
//! and streams lanes and spans back as framed events on stdout. It never outlives its parent: it dies with it (parent-death signal)
//! and exits when its stdin closes. Runs never execute in the caller's process.
//!
//! Never imports: the app, the widgets, the terminal. Its OS helpers are the leaf `sys`; the fork server is handed
//! `child_entry` rather than importing the worker and the demos.

mod asyncio;
pub mod client;
pub(crate) mod demos;
mod forkserver;
pub(crate) mod gil;
mod processes;
pub(crate) mod record;
mod sequential;
pub(crate) mod sys;
mod threads;

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::clock::{self, Mark};
use crate::experiment::{Experiment, Job, Mode, Workload, available_cores};
use crate::timeline::{LabEvent, Lane, RunEnd, Span, SpanKind};
use crate::wire;
use crate::workload::{self, Hooks};

pub(crate) use sys::{PARENT_ENV, die_with_parent};

use gil::Gil;
use record::Coalescer;

/// The hidden sub-command that turns this binary into a lab process.
pub const LAB_ARG: &str = "__lab";
/// The hidden sub-command that turns this binary into a worker process.
pub const WORKER_ARG: &str = "__worker";
/// `parlab __lab --demo-child ROLE`: a demo's child started with `spawn` (it serves on stdin/stdout).
pub(crate) const DEMO_CHILD_ARG: &str = "--demo-child";

/// Entry point of `parlab __lab`: called from `main` before any thread or runtime exists.
pub fn lab_main() -> ExitCode {
    die_with_parent();
    let mut args = std::env::args().skip(2);
    if args.next().as_deref() == Some(DEMO_CHILD_ARG) {
        let role = args.next().unwrap_or_default();
        return ExitCode::from(demos::child_main(&role).clamp(0, 255) as u8);
    }
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
        eprintln!("parlab lab: no request on stdin");
        return ExitCode::from(2);
    }
    let request: Job = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parlab lab: bad request: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = Out::new();
    out.emit(&LabEvent::Started { lab_pid: std::process::id(), t0_ns: clock::now_ns(), cores: available_cores() });
    let end = match request {
        // Single-threaded from here to the end: fork is safe, and stdin is watched by the poll loop.
        Job::Experiment(exp) if exp.mode == Mode::Processes => processes::run(&exp, &mut out),
        Job::Experiment(exp) => run_threaded(&exp, &mut out),
        // Demos fork too: they keep the lab single-threaded whenever they do.
        Job::Demo(spec) => demos::run(&spec, &mut out),
    };
    out.emit(&LabEvent::Finished(end));
    out.flush();
    ExitCode::SUCCESS
}

/// Runs an in-process mode on its own threads while this thread forwards their events.
fn run_threaded(exp: &Experiment, out: &mut Out) -> RunEnd {
    watch_stdin();
    let (tx, rx) = mpsc::channel();
    let rec = Recorder::new(tx);
    std::thread::scope(|s| {
        let runner = s.spawn(move || match exp.mode {
            Mode::Sequential => sequential::run(exp, &rec),
            Mode::Threads => threads::run(exp, &rec),
            Mode::Gil => gil::run(exp, &rec),
            Mode::Async | Mode::AsyncOffload => asyncio::run(exp, &rec),
            Mode::Processes => unreachable!("processes mode runs in the lab's main thread"),
            Mode::Interpreters | Mode::Dask | Mode::Ray => RunEnd {
                t0_ns: clock::now_ns(),
                t_end_ns: clock::now_ns(),
                checksum: 0,
                tasks_done: 0,
                error: Some(format!("mode '{}' runs only on the python engine (--engine python)", exp.mode)),
            },
        });
        forward(&rx, out);
        runner.join().unwrap_or_else(|_| RunEnd {
            t0_ns: 0,
            t_end_ns: clock::now_ns(),
            checksum: 0,
            tasks_done: 0,
            error: Some("the run panicked inside the lab".into()),
        })
    })
}

/// Forwards events until every sender is gone, flushing at least every 30 ms so a UI sees them live.
fn forward(rx: &Receiver<Rec>, out: &mut Out) {
    loop {
        match rx.recv_timeout(Duration::from_millis(30)) {
            Ok(Rec::Event(ev)) => out.emit(&ev),
            Ok(Rec::Spans(spans)) => {
                for s in &spans {
                    out.emit_span(s);
                }
            }
            Err(RecvTimeoutError::Timeout) => out.flush(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    out.flush();
}

/// Exits the lab when its stdin closes (the parent is gone or cancelled the run).
fn watch_stdin() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::Read::read_to_end(&mut io::stdin().lock(), &mut sink);
        // SAFETY: _exit ends the process without running destructors, which is what we want mid-run.
        unsafe { libc::_exit(4) };
    });
}

/// The lab's event stream on stdout.
pub(crate) struct Out {
    w: BufWriter<io::Stdout>,
    last_flush: u64,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out { w: BufWriter::with_capacity(64 * 1024, io::stdout()), last_flush: clock::now_ns() }
    }

    pub(crate) fn emit(&mut self, ev: &LabEvent) {
        if wire::write_event(&mut self.w, ev).is_err() {
            // The parent stopped reading: nobody wants this run any more.
            // SAFETY: _exit ends the process at once.
            unsafe { libc::_exit(4) };
        }
    }

    pub(crate) fn emit_span(&mut self, s: &Span) {
        if wire::write_span(&mut self.w, s).is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(4) };
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.w.flush().is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(4) };
        }
        self.last_flush = clock::now_ns();
    }

    /// Flushes if the last flush was more than 30 ms ago.
    pub(crate) fn flush_now_and_then(&mut self) {
        if clock::now_ns().saturating_sub(self.last_flush) > 30_000_000 {
            self.flush();
        }
    }
}

/// What the lab's threads hand to the thread that writes the event stream.
pub(crate) enum Rec {
    Event(LabEvent),
    /// A batch of one lane's spans (see `Tracker`).
    Spans(Vec<Span>),
}

/// Hands out lanes and records spans from any thread of the lab.
#[derive(Clone)]
pub(crate) struct Recorder {
    tx: Sender<Rec>,
    next_lane: Arc<AtomicU32>,
    pid: u32,
}

impl Recorder {
    pub(crate) fn new(tx: Sender<Rec>) -> Recorder {
        Recorder { tx, next_lane: Arc::new(AtomicU32::new(0)), pid: std::process::id() }
    }

    /// A new lane for the calling thread.
    pub(crate) fn lane(&self, label: String) -> u32 {
        let id = self.next_lane.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Rec::Event(LabEvent::Lane(Lane { id, pid: self.pid, tid: clock::tid(), label })));
        id
    }

    /// Sends one span at once: for the rare ones (start-up, a sleep); a lane's work goes through a `Tracker`.
    pub(crate) fn span(&self, lane: u32, task: u64, count: u64, kind: SpanKind, start: Mark, end: Mark) {
        let _ = self.tx.send(Rec::Event(LabEvent::Span(Span::between(lane, task, count, kind, start, end))));
    }

    pub(crate) fn spans(&self, batch: Vec<Span>) {
        let _ = self.tx.send(Rec::Spans(batch));
    }

    pub(crate) fn note(&self, text: String) {
        let _ = self.tx.send(Rec::Event(LabEvent::Note(text)));
    }
}

/// Spans a `Tracker` keeps before handing them over, at most.
const BATCH_SPANS: usize = 1024;
/// How long a `Tracker` keeps spans at most before handing them over, so a UI still sees the run live.
const BATCH_NS: u64 = 20_000_000;

/// Kernel hooks for in-process modes: they cut the current `run` span at waits and, under the simulated GIL, at
/// hand-offs, so every stretch of a lane's time is recorded as what it really was.
///
/// Recording is cheap: spans go through the lane's `Coalescer` into a local batch, handed to the event writer every
/// 1024 spans or 20 ms and when the tracker is dropped, so recording a span is a clock read and a push, never a
/// system call or a wake-up of another thread (which, per span, cost the sequential baseline ~11 µs each).
pub(crate) struct Tracker<'a> {
    rec: &'a Recorder,
    lane: u32,
    task: u64,
    count: u64,
    open: Mark,
    gil: Option<&'a Gil>,
    coalesce: Coalescer,
    batch: Vec<Span>,
    sent_ns: u64,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(rec: &'a Recorder, lane: u32, gil: Option<&'a Gil>) -> Tracker<'a> {
        let open = Mark::now();
        Tracker {
            rec,
            lane,
            task: 0,
            count: 0,
            open,
            gil,
            coalesce: Coalescer::new(),
            batch: Vec::with_capacity(64),
            sent_ns: open.ns,
        }
    }

    pub(crate) fn record(&mut self, span: Span) {
        let batch = &mut self.batch;
        self.coalesce.push(span, &mut |s| batch.push(s));
        if self.batch.len() >= BATCH_SPANS || span.end_ns.saturating_sub(self.sent_ns) >= BATCH_NS {
            self.send(span.end_ns);
        }
    }

    fn send(&mut self, now_ns: u64) {
        self.sent_ns = now_ns;
        if !self.batch.is_empty() {
            self.rec.spans(std::mem::replace(&mut self.batch, Vec::with_capacity(64)));
        }
    }

    /// Starts recording a chunk of tasks.
    pub(crate) fn begin(&mut self, task: u64, count: u64) {
        self.task = task;
        self.count = count;
        self.open = Mark::now();
    }

    /// Ends the chunk's last `run` piece.
    pub(crate) fn end(&mut self) {
        self.close(SpanKind::Run);
    }

    /// Records `[open, now)` as `kind` and returns now.
    fn close(&mut self, kind: SpanKind) -> Mark {
        let now = Mark::now();
        self.record(Span::between(self.lane, self.task, self.count, kind, self.open, now));
        self.open = now;
        now
    }

    /// Waits for the simulated GIL, recording the wait. Returns when this thread holds it.
    pub(crate) fn take_gil(&mut self) {
        if let Some(gil) = self.gil {
            self.open = Mark::now();
            gil.take();
            self.close(SpanKind::GilWait);
        }
    }

    /// Runs a chunk, adding each task's payload checksum (the data is passed by reference in-process). The tasks
    /// run through the same `workload::run_chunk` a worker process runs, so no mode gets faster machine code.
    pub(crate) fn run_chunk(&mut self, exp: &Experiment, first: u64, count: u64, payload: &[u8]) -> u64 {
        self.begin(first, count);
        // Without a GIL to check and no waits to cut the span at, a tracker's hooks do nothing: run the kernels
        // with `Plain`, the very instantiation a worker process runs (with the tracker's own hooks the same fib
        // tasks ran 15-25% slower in the lab's loop than in a worker, and one worker beat the loop).
        let mut sum = if self.gil.is_none() && !matches!(exp.workload, Workload::Sleep(_) | Workload::Logs(_)) {
            workload::run_chunk(&exp.workload, first, count, &mut workload::Plain)
        } else {
            workload::run_chunk(&exp.workload, first, count, self)
        };
        if !payload.is_empty() {
            for _ in 0..count {
                sum = sum.wrapping_add(workload::payload_checksum(payload));
            }
        }
        self.end();
        sum
    }
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        let batch = &mut self.batch;
        self.coalesce.flush(&mut |s| batch.push(s));
        self.send(self.sent_ns);
    }
}

impl Hooks for Tracker<'_> {
    // Never inlined, like `Plain::step`, so every mode runs the same machine code per step.
    #[inline(never)]
    fn step(&mut self) {
        if let Some(gil) = self.gil
            && gil.drop_requested()
        {
            self.close(SpanKind::Run);
            gil.release(true);
            gil.take();
            self.close(SpanKind::GilWait);
        }
    }

    fn wait(&mut self, ms: u64) {
        self.close(SpanKind::Run);
        if let Some(gil) = self.gil {
            gil.release(false);
        }
        std::thread::sleep(Duration::from_millis(ms));
        self.close(SpanKind::Idle);
        if let Some(gil) = self.gil {
            gil.take();
            self.close(SpanKind::GilWait);
        }
    }
}

/// What a forked child runs, by role (the fork server is handed it; `fork` workers run it too); returns its exit
/// code.
pub(crate) fn child_entry(role: &forkserver::Role) -> i32 {
    match role {
        forkserver::Role::Worker => match crate::worker::serve_fds(0, 1, crate::worker::QUEUE_FD) {
            Ok(()) => 0,
            Err(_) => 2,
        },
        forkserver::Role::Demo(name) => demos::child_main(name),
    }
}

/// The payload every task carries, built once per run.
pub(crate) fn payload_for(exp: &Experiment) -> Arc<Vec<u8>> {
    Arc::new(workload::make_payload(exp.payload as usize))
}

/// A finished run's end marker.
pub(crate) fn finished(t0_ns: u64, checksum: u64, tasks_done: u64) -> RunEnd {
    RunEnd { t0_ns, t_end_ns: clock::now_ns(), checksum, tasks_done, error: None }
}
