//! `parlab watch FILE.py [ARGS...]`: runs the learner's own program with python3 and draws every thread and child
//! process it has as a lane, from the thread sampler alone (`engine::sampler`): no harness, no changes to the
//! program. On-CPU stretches are `run` spans, timed futex waits while another thread of the same process is on a
//! CPU are `gil-wait` spans, and what is left (blocked in a join, a sleep, I/O) is drawn as nothing.
//!
//! The program runs as the exercise checks do: `parlab __guard PYTHON FILE ARGS...`, no shell, in its own process
//! group, the interpreter with PR_SET_PDEATHSIG, and the guard (a subreaper) kills whatever the program left, also
//! when parlab dies; at the timeout the whole tree is stopped. Live in the TUI when stdout is a terminal, else (or
//! with `--json`, `--gantt`, `--table`, `--trace FILE`) headless, like `parlab run`.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::clock::now_ns;
use crate::engine::sampler::{self, Samples, Update};
use crate::exercise::guard::{GUARD_ARG, kill_tree};
use crate::exercise::python::{Ended, find_python, supervise};
use crate::exercise::text::terminal_safe;
use crate::experiment::available_cores;
use crate::timeline::{LabEvent, Lane, RunEnd, Span, SpanKind, Timeline, median};
use crate::units::{fmt_ms, plural};

pub(crate) const DEFAULT_TIMEOUT_S: u64 = 60;
pub(crate) const MAX_TIMEOUT_S: u64 = 3600;
/// The longest piece of a path or of the program's words put into a message.
const MAX_SHOWN: usize = 300;

/// What `parlab watch` was asked.
#[derive(Clone, Debug)]
pub(crate) struct WatchRequest {
    pub file: PathBuf,
    pub args: Vec<OsString>,
    pub python: Option<PathBuf>,
    pub timeout_s: u64,
    /// The sampler's period (1 ms by default).
    pub period: Duration,
}

/// The interpreter that runs the program.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Python {
    pub path: PathBuf,
    pub version: String,
    /// `false` on a free-threaded build with the GIL off.
    pub gil_enabled: bool,
}

/// How the watched program ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// Stopped, with every process it started, at the timeout.
    TimedOut(u64),
    /// Stopped, with every process it started, because you asked (q, Ctrl-C, a signal).
    Cancelled,
}

impl Exit {
    fn of(status: ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            _ => Exit::Code(-1),
        }
    }

    pub(crate) fn ok(&self) -> bool {
        *self == Exit::Code(0)
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut(t) => format!("stopped at the timeout ({t} s), with every process it started"),
            Exit::Cancelled => "stopped on your request, with every process it started".to_string(),
        }
    }
}

/// A watched run: what the sampler saw and how the program ended.
#[derive(Clone, Debug)]
pub(crate) struct Watched {
    pub samples: Samples,
    pub t0_ns: u64,
    pub t_end_ns: u64,
    pub guard_pid: u32,
    pub exit: Exit,
}

/// `--sample-every`: a duration like 1ms or 500us, 100us..=100ms.
pub(crate) fn parse_period(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1_000.0)
    } else {
        (t, f64::NAN)
    };
    let shown = terminal_safe(text, 40);
    let us = num.trim().parse::<f64>().map(|v| v * scale).unwrap_or(f64::NAN);
    if !us.is_finite() {
        bail!("--sample-every '{shown}' is not a duration (write e.g. 1ms or 500us; allowed 100us..=100ms)");
    }
    if !(100.0..=100_000.0).contains(&us) {
        bail!("--sample-every '{shown}' is out of range (allowed 100us..=100ms)");
    }
    Ok(Duration::from_micros(us.round() as u64))
}

/// A path as it may be shown: bytes that are not UTF-8 as `\xNN`, control characters escaped.
pub(crate) fn shown_path(p: &Path) -> String {
    let mut s = String::new();
    for chunk in p.as_os_str().as_bytes().utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    terminal_safe(&s, MAX_SHOWN)
}

/// Checks that `file` is a regular Python file (a usage error otherwise) and resolves it.
pub(crate) fn check_script(file: &Path) -> Result<PathBuf> {
    let shown = shown_path(file);
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no such file '{shown}'"),
        Err(e) => bail!("cannot read '{shown}': {e}"),
    };
    if meta.is_dir() {
        bail!("'{shown}' is a folder; name a Python file (e.g. parlab watch my_threads.py)");
    }
    if !meta.is_file() {
        bail!("'{shown}' is not a regular file (a device, FIFO or socket); name a Python file");
    }
    if file.extension().is_none_or(|x| x != "py") {
        bail!("'{shown}' is not a Python file (expected a name ending in .py)");
    }
    std::fs::canonicalize(file).with_context(|| format!("cannot resolve '{shown}'"))
}

/// The interpreter: `--python PATH`, else python3 on PATH; asked its version and whether its GIL is on.
pub(crate) fn find_interpreter(given: Option<&Path>) -> Result<Python> {
    let path = match given {
        // A path, or a name on PATH (python3.13), found as the python engine finds it.
        Some(p) => match p.to_str() {
            Some(text) => crate::engine::detect::resolve(text).map_err(|e| anyhow!(terminal_safe(&e, MAX_SHOWN)))?,
            None => bail!("--python '{}' is not a UTF-8 path: rename it or use a link to it", shown_path(p)),
        },
        None => find_python()?,
    };
    let probe = "import sys; g = getattr(sys, '_is_gil_enabled', lambda: True)(); \
                 print('%d.%d.%d' % sys.version_info[:3], int(bool(g)), sys.executable)";
    let shown = shown_path(&path);
    let mut child = Command::new(&path)
        .args(["-I", "-c", probe])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow!("cannot run --python '{shown}': {e} (expected a Python interpreter)"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("'{shown}' did not answer within 10 s when asked its version: is it a Python interpreter?");
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    let mut f = out.split_whitespace();
    let (v, g) = (f.next(), f.next());
    // The interpreter itself, not a wrapper (a pyenv shim is a shell script that would be watched too).
    let exe: String = f.collect::<Vec<_>>().join(" ");
    let real = Some(PathBuf::from(&exe)).filter(|p| !exe.is_empty() && p.is_file()).unwrap_or_else(|| path.clone());
    match (status.success(), v, g) {
        (true, Some(v), Some(_)) if v.split('.').count() == 3 && !v.starts_with("3.") => {
            bail!("'{shown}' is Python {v}; parlab watch needs Python 3")
        }
        (true, Some(v), Some(g)) if v.split('.').count() == 3 => {
            Ok(Python { path: real, version: v.to_string(), gil_enabled: g == "1" })
        }
        _ => bail!("'{shown}' is not a working Python 3 interpreter (asked its version, it gave {})", describe(status)),
    }
}

fn describe(s: ExitStatus) -> String {
    Exit::of(s).describe()
}

/// Runs the program under the guard, sampled from its start to its end; `live` gets the sampler's updates as they
/// come; the program's stdout and stderr go to `output` and `errors`. Nothing the program started is left when this returns.
pub(crate) fn run_watched(
    req: &WatchRequest,
    script: &Path,
    python: &Python,
    output: Stdio,
    errors: Stdio,
    live: Option<Sender<Update>>,
    stop: &AtomicBool,
) -> Result<Watched> {
    let exe = std::env::current_exe().context("cannot find the parlab executable")?;
    let parent = std::process::id();
    let mut cmd = Command::new(exe);
    cmd.arg(GUARD_ARG)
        .arg(&python.path)
        .arg(script)
        .args(&req.args)
        .current_dir(script.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::piped())
        .stdout(output)
        .stderr(errors)
        .process_group(0);
    // SAFETY: between fork and exec only getppid is called (async-signal-safe); nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parlab exited"));
            }
            Ok(())
        });
    }
    let t0_ns = now_ns();
    let mut child = cmd.spawn().context("cannot start the watched program's guard process")?;
    let guard_pid = child.id();
    let sampler = match sampler::Sampler::start_below(guard_pid, req.period, live) {
        Ok(s) => s,
        Err(e) => {
            drop(child.stdin.take());
            kill_tree(guard_pid);
            let _ = child.kill();
            let _ = child.wait();
            bail!("cannot start the thread sampler: {e}");
        }
    };
    let lifeline = child.stdin.take();
    let ended = supervise(&mut child, lifeline, Duration::from_secs(req.timeout_s), stop);
    let t_end_ns = now_ns();
    kill_tree(std::process::id());
    let samples = sampler.stop();
    let exit = match ended? {
        Ended::Exited(status) => Exit::of(status),
        Ended::TimedOut => Exit::TimedOut(req.timeout_s),
        Ended::Cancelled => Exit::Cancelled,
    };
    Ok(Watched { samples, t0_ns, t_end_ns, guard_pid, exit })
}

/// The lanes' names: the program's main thread `main`, its other threads `t1`, `t2`, ...; child processes `p1`,
/// `p2`, ... (in the order they were seen) and their threads `p1.t1`, ...
pub(crate) fn lane_names(s: &Samples) -> Vec<String> {
    let mut proc_no: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for (i, p) in s.processes.iter().enumerate() {
        proc_no.insert(p.pid, i);
    }
    let mut thread_no: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    s.threads
        .iter()
        .map(|t| {
            let p = proc_no.get(&t.pid).copied().unwrap_or(0);
            let prefix = if p == 0 { String::new() } else { format!("p{p}") };
            if t.tid == t.pid {
                if p == 0 { "main".to_string() } else { prefix }
            } else {
                let n = thread_no.entry(t.pid).or_insert(0);
                *n += 1;
                if p == 0 { format!("t{n}") } else { format!("{prefix}.t{n}") }
            }
        })
        .collect()
}

/// The timeline of a watched run: one lane per thread, its on-CPU stretches as `run`, its GIL waits as `gil-wait`.
pub(crate) fn timeline_of(w: &Watched, cores: u32) -> Timeline {
    let mut t = live_timeline(&w.samples, w.guard_pid, w.t0_ns, cores);
    let error = (!w.exit.ok()).then(|| w.exit.describe());
    t.ingest(LabEvent::Finished(RunEnd { t0_ns: w.t0_ns, t_end_ns: w.t_end_ns, checksum: 0, tasks_done: 0, error }));
    t
}

/// The timeline of what the sampler has seen so far (a run in progress: not finished).
pub(crate) fn live_timeline(s: &Samples, guard_pid: u32, t0_ns: u64, cores: u32) -> Timeline {
    let mut t = Timeline::new();
    t.ingest(LabEvent::Started { lab_pid: guard_pid, t0_ns, cores });
    for ((id, track), label) in s.threads.iter().enumerate().zip(lane_names(s)) {
        let id = id as u32;
        t.ingest(LabEvent::Lane(Lane { id, pid: track.pid, tid: track.tid, label }));
        for i in track.intervals.iter().filter(|i| i.state == sampler::State::OnCpu && i.end_ns > i.start_ns) {
            t.ingest(LabEvent::Span(Span {
                lane: id,
                task: 0,
                count: 0,
                kind: SpanKind::Run,
                start_ns: i.start_ns,
                end_ns: i.end_ns,
                cpu_start: i.cpu_start,
                cpu_end: i.cpu_end,
            }));
        }
        for (a, b, c0, c1) in sampler::gil_waits_of(s, track) {
            t.ingest(LabEvent::Span(Span {
                lane: id,
                task: 0,
                count: 0,
                kind: SpanKind::GilWait,
                start_ns: a,
                end_ns: b,
                cpu_start: c0,
                cpu_end: c1,
            }));
        }
    }
    t
}

/// The median GIL hand-off interval in ms and how many were seen (two sampling periods of slack); none when no
/// thread waited for the GIL (threads that take turns for other reasons hand nothing over).
pub(crate) fn handoff_ms(s: &Samples, t: &Timeline) -> Option<(f64, usize)> {
    if t.kind_ns(SpanKind::GilWait) == 0 {
        return None;
    }
    let h = sampler::handoffs_ns(s, 2 * s.cost.period_ns.max(1));
    if h.is_empty() {
        return None;
    }
    let ms: Vec<f64> = h.iter().map(|x| *x as f64 / 1e6).collect();
    Some((median(&ms), h.len()))
}

fn script_name(req: &WatchRequest) -> String {
    req.file.file_name().map_or_else(|| shown_path(&req.file), |n| shown_path(Path::new(n)))
}

/// The headless summary: how it ended, wall and CPU time, processes and threads, per-core use, GIL waits, and what
/// the sampler cost.
pub(crate) fn watch_text(
    req: &WatchRequest,
    py: &Python,
    w: &Watched,
    t: &Timeline,
    gantt: bool,
    ascii: bool,
) -> String {
    let s = &w.samples;
    let mut out = String::new();
    let gil = if py.gil_enabled { "GIL" } else { "free-threaded, GIL off" };
    out.push_str(&format!(
        "parlab watch · {} · Python {} ({gil}) · {}\n\n",
        script_name(req),
        py.version,
        plural(t.cores as u64, "core")
    ));
    out.push_str(&format!("  ended        {}\n", w.exit.describe()));
    out.push_str(&format!("  wall         {}\n", fmt_ms(t.wall_ns() as f64 / 1e6)));
    let cpu: u64 = s.processes.iter().map(|p| p.cpu_ns).sum();
    out.push_str(&format!("  cpu          {} (all threads, from the scheduler)\n", fmt_ms(cpu as f64 / 1e6)));
    let cores: Vec<String> =
        s.per_core_ns.iter().enumerate().map(|(c, ns)| format!("cpu{c} {}", fmt_ms(*ns as f64 / 1e6))).collect();
    out.push_str(&format!("  per core     {}\n", if cores.is_empty() { "—".to_string() } else { cores.join("  ") }));
    let gw = t.kind_ns(SpanKind::GilWait);
    let handoff = match handoff_ms(s, t) {
        Some((m, n)) => format!("; hand-offs between threads every {} (median of {n})", fmt_ms(m)),
        None => String::new(),
    };
    out.push_str(&format!("  gil-wait     {} summed over threads{handoff}\n", fmt_ms(gw as f64 / 1e6)));
    let procs =
        if s.processes.len() == 1 { "1 process".to_string() } else { format!("{} processes", s.processes.len()) };
    out.push_str(&format!("  processes    {procs}, {}\n", plural(s.threads.len() as u64, "thread")));
    let names = lane_names(s);
    for p in &s.processes {
        let threads: Vec<String> = s
            .threads
            .iter()
            .zip(&names)
            .filter(|(th, _)| th.pid == p.pid)
            .map(|(th, n)| format!("{n} {}", th.tid))
            .collect();
        out.push_str(&format!(
            "    pid {:<8} {:<16} cpu {:>10}  threads: {}\n",
            p.pid,
            terminal_safe(&p.name, 16),
            fmt_ms(p.cpu_ns as f64 / 1e6),
            threads.join(", ")
        ));
    }
    let c = s.cost;
    out.push_str(&format!(
        "  sampler      every {} ({} ticks), {:.2}% of one core, longest gap {}\n",
        fmt_ms(c.period_ns as f64 / 1e6),
        c.ticks,
        c.cpu_pct(),
        fmt_ms(c.max_gap_ns as f64 / 1e6)
    ));
    if gantt {
        out.push('\n');
        let width = crossterm::terminal::size().map(|(w, _)| w).unwrap_or(100).clamp(60, 160);
        for line in crate::ui::gantt::to_text(t, width, None, ascii) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

pub(crate) fn watch_json(req: &WatchRequest, py: &Python, w: &Watched, t: &Timeline) -> Value {
    let s = &w.samples;
    let (code, signal) = match w.exit {
        Exit::Code(c) => (Value::from(c), Value::Null),
        Exit::Signal(sig) => (Value::Null, Value::from(sig)),
        Exit::TimedOut(_) | Exit::Cancelled => (Value::Null, Value::Null),
    };
    let names = lane_names(s);
    let processes: Vec<Value> = s
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let threads: Vec<u32> = s.threads.iter().filter(|th| th.pid == p.pid).map(|th| th.tid).collect();
            json!({
                "pid": p.pid, "ppid": p.ppid, "label": if i == 0 { "main".to_string() } else { format!("p{i}") },
                "name": p.name, "cpu_ms": p.cpu_ns as f64 / 1e6, "threads": threads,
            })
        })
        .collect();
    let threads: Vec<Value> = s
        .threads
        .iter()
        .zip(&names)
        .map(|(th, n)| json!({"pid": th.pid, "tid": th.tid, "label": n, "name": th.name, "cpu_ms": th.cpu_ns as f64 / 1e6}))
        .collect();
    let c = s.cost;
    json!({
        "command": "watch",
        "file": shown_path(&req.file),
        "args": req.args.iter().map(|a| shown_path(Path::new(a))).collect::<Vec<_>>(),
        "python": {"path": shown_path(&py.path), "version": py.version, "gil_enabled": py.gil_enabled},
        "exit_code": code,
        "signal": signal,
        "timed_out": matches!(w.exit, Exit::TimedOut(_)),
        "timeout_s": req.timeout_s,
        "ended": w.exit.describe(),
        "cores": t.cores,
        "parent_pid": std::process::id(),
        "guard_pid": w.guard_pid,
        "wall_ms": t.wall_ns() as f64 / 1e6,
        "cpu_ms": s.processes.iter().map(|p| p.cpu_ns).sum::<u64>() as f64 / 1e6,
        "per_core_ms": s.per_core_ns.iter().map(|n| *n as f64 / 1e6).collect::<Vec<_>>(),
        "processes": processes,
        "threads": threads,
        "lanes": crate::headless::lanes_json(t),
        "spans": crate::headless::spans_json(t),
        "overhead_ms": {"gil_wait": t.kind_ns(SpanKind::GilWait) as f64 / 1e6},
        "handoff_ms": handoff_ms(s, t).map(|h| h.0),
        "handoffs": handoff_ms(s, t).map_or(0, |h| h.1),
        "sampler": {
            "period_us": c.period_ns as f64 / 1e3, "ticks": c.ticks, "missed": c.missed,
            "max_gap_us": c.max_gap_ns as f64 / 1e3, "cpu_pct": c.cpu_pct(), "cpu_ms": c.cpu_ns as f64 / 1e6,
        },
    })
}

/// A Chrome / Perfetto trace of a watched run: a track per thread, processes named, per-core CPU counters from the
/// sampler's slices.
pub(crate) fn watch_trace(req: &WatchRequest, w: &Watched, t: &Timeline) -> Value {
    let from = t.first_ns();
    let us = |ns: u64| ns.saturating_sub(from) as f64 / 1e3;
    let mut events: Vec<Value> = Vec::new();
    let names = lane_names(&w.samples);
    for (i, p) in w.samples.processes.iter().enumerate() {
        let label = if i == 0 { format!("{} (main)", script_name(req)) } else { format!("p{i} {}", p.name) };
        events.push(json!({"ph": "M", "name": "process_name", "pid": p.pid, "tid": 0, "args": {"name": label}}));
    }
    for (l, n) in t.lanes.iter().zip(&names) {
        events.push(json!({"ph": "M", "name": "thread_name", "pid": l.pid, "tid": l.tid, "args": {"name": n}}));
    }
    for s in &t.spans {
        let Some(l) = t.lanes.get(s.lane as usize) else { continue };
        events.push(json!({
            "ph": "X", "name": s.kind.name(), "cat": s.kind.name(), "pid": l.pid, "tid": l.tid,
            "ts": us(s.start_ns), "dur": s.dur_ns() as f64 / 1e3,
            "args": {"cpu_start": s.cpu_start, "cpu_end": s.cpu_end},
        }));
    }
    let first = w.samples.first_ns;
    for (k, slice) in w.samples.slices.iter().enumerate() {
        let mut args = serde_json::Map::new();
        for (c, ns) in slice.iter().enumerate() {
            args.insert(format!("cpu{c}"), json!((*ns as f64 * 1000.0 / sampler::SLICE_NS as f64).round() / 10.0));
        }
        let at = first + k as u64 * sampler::SLICE_NS;
        events.push(json!({"ph": "C", "name": "core busy % (watched)", "pid": w.guard_pid, "tid": 0, "ts": us(at), "args": args}));
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

/// Output options of `parlab watch`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WatchOutput {
    pub json: bool,
    pub gantt: bool,
    pub table: bool,
    pub ascii: bool,
}

/// `parlab watch` from its command line.
pub fn watch_args_cmd(w: crate::cli::WatchArgs) -> Result<u8> {
    let period = parse_period(&w.sample_every)?;
    let req = WatchRequest { file: w.file, args: w.args, python: w.python, timeout_s: w.timeout, period };
    let out = WatchOutput { json: w.json, gantt: w.gantt, table: w.table, ascii: w.ascii };
    watch_cmd(&req, out, w.trace.as_deref())
}

/// `parlab watch`: exit 0 when the program exited 0, 1 when it failed or was stopped at the timeout, 2 on a usage
/// or runtime error.
pub(crate) fn watch_cmd(req: &WatchRequest, out: WatchOutput, trace: Option<&Path>) -> Result<u8> {
    if req.timeout_s == 0 || req.timeout_s > MAX_TIMEOUT_S {
        bail!("--timeout {} is out of range (allowed 1..={MAX_TIMEOUT_S} seconds)", req.timeout_s);
    }
    let script = check_script(&req.file)?;
    let python = find_interpreter(req.python.as_deref())?;
    let trace = trace.map(crate::headless::TraceOut::open).transpose()?;
    use std::io::IsTerminal;
    let live =
        !out.json && !out.gantt && !out.table && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let stop = if live {
        // Raw mode turns Ctrl-C into a key; SIGTERM and SIGHUP stop the program and the view in order.
        let flag = std::sync::Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            signal_hook::flag::register(sig, std::sync::Arc::clone(&flag)).context("cannot install signal handlers")?;
        }
        flag
    } else {
        crate::lab::client::stop_flag()?
    };
    let cores = available_cores();
    let watched = if live {
        crate::watch_tui::run(req, &script, &python, cores, &stop)?
    } else {
        // The program's own output goes to stderr, so that stdout carries only the table or the JSON.
        let errout =
            || std::io::stderr().as_fd().try_clone_to_owned().map(Stdio::from).unwrap_or_else(|_| Stdio::null());
        run_watched(req, &script, &python, errout(), errout(), None, &stop)?
    };
    let t = timeline_of(&watched, cores);
    if let Some(trace) = trace {
        trace.write_value(&watch_trace(req, &watched, &t))?;
    }
    let text = if out.json {
        serde_json::to_string_pretty(&watch_json(req, &python, &watched, &t))? + "\n"
    } else {
        watch_text(req, &python, &watched, &t, out.gantt || live, out.ascii)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush());
    Ok(if watched.exit.ok() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sampler::{Interval, ProcessTrack, State, ThreadTrack};

    fn th(pid: u32, tid: u32, iv: Vec<(u64, u64, State)>) -> ThreadTrack {
        ThreadTrack {
            pid,
            tid,
            name: "python3".into(),
            first_ns: 0,
            last_ns: 0,
            cpu_ns: 0,
            intervals: iv
                .into_iter()
                .map(|(a, b, state)| Interval {
                    start_ns: a * 1_000_000,
                    end_ns: b * 1_000_000,
                    state,
                    cpu_start: 0,
                    cpu_end: 1,
                })
                .collect(),
        }
    }

    fn pr(pid: u32, ppid: u32) -> ProcessTrack {
        ProcessTrack { pid, ppid, name: "python3".into(), first_ns: 0, last_ns: 0, cpu_ns: 0 }
    }

    fn watched() -> Watched {
        use State::*;
        let samples = Samples {
            processes: vec![pr(100, 99), pr(200, 100)],
            threads: vec![
                th(100, 100, vec![(0, 20, Blocked)]),
                th(100, 101, vec![(0, 5, OnCpu), (5, 10, TimedWait), (10, 15, OnCpu)]),
                th(100, 102, vec![(0, 5, TimedWait), (5, 10, OnCpu), (10, 15, TimedWait)]),
                th(200, 200, vec![(2, 18, OnCpu)]),
                th(200, 201, vec![(2, 18, Blocked)]),
            ],
            ..Samples::default()
        };
        Watched { samples, t0_ns: 0, t_end_ns: 20_000_000, guard_pid: 99, exit: Exit::Code(0) }
    }

    #[test]
    fn lanes_are_named_main_threads_and_child_processes() {
        assert_eq!(lane_names(&watched().samples), vec!["main", "t1", "t2", "p1", "p1.t1"]);
    }

    #[test]
    fn on_cpu_stretches_run_and_timed_waits_beside_a_running_sibling_wait_for_the_gil() {
        let t = timeline_of(&watched(), 2);
        let spans: Vec<(u32, SpanKind, u64, u64)> =
            t.spans.iter().map(|s| (s.lane, s.kind, s.start_ns / 1_000_000, s.end_ns / 1_000_000)).collect();
        use SpanKind::*;
        assert_eq!(
            spans,
            vec![
                (1, Run, 0, 5),
                (1, Run, 10, 15),
                (1, GilWait, 5, 10),
                (2, Run, 5, 10),
                (2, GilWait, 0, 5),
                (2, GilWait, 10, 15),
                (3, Run, 2, 18),
            ]
        );
        // The main thread (blocked in a join) and p1's second thread have lanes but no spans.
        assert_eq!(t.lanes.len(), 5);
        assert_eq!(t.wall_ns(), 20_000_000);
    }

    #[test]
    fn a_path_that_is_not_utf8_is_shown_with_its_bytes_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9\x1b.py"));
        assert_eq!(shown_path(p), "caf\\xe9\\x1b.py");
    }

    #[test]
    fn sampling_periods_are_durations_within_range() {
        assert_eq!(parse_period("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_period("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(
            parse_period("10").unwrap_err().to_string(),
            "--sample-every '10' is not a duration (write e.g. 1ms or 500us; allowed 100us..=100ms)"
        );
        assert_eq!(
            parse_period("5us").unwrap_err().to_string(),
            "--sample-every '5us' is out of range (allowed 100us..=100ms)"
        );
    }

    #[test]
    fn a_timeout_is_no_success_and_says_the_tree_was_stopped() {
        let e = Exit::TimedOut(3);
        assert!(!e.ok());
        assert_eq!(e.describe(), "stopped at the timeout (3 s), with every process it started");
        assert_eq!(Exit::Code(0).describe(), "exit status 0");
    }
}
