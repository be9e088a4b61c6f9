//! Headless `run` and `compare`: build experiments from the command line, run them through the lab, and print a
//! table with an ASCII Gantt, JSON, or a Chrome / Perfetto trace.
//!
//! A face, like `tui`: it may wire every layer together; nothing but `main` imports it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::{EngineArgs, ExperimentArgs, OutputArgs};
use crate::engine::Selection;
use crate::experiment::{
    Api, Engine, Experiment, Fit, Knobs, MODES, Mode, Workload, available_cores, check_knobs_apply_to_some,
};
use crate::lab::client::{measure, stop_flag};
use crate::timeline::{Parallelism, RunReport, Timeline, ceiling_note};
use crate::ui::gantt;
use crate::units::{fmt_ms, plural};

pub(crate) const MAX_REPEAT: u32 = 50;

/// Parses the experiment arguments shared by `run` and `compare` into a workload and knobs.
pub(crate) fn parse_knobs(args: &ExperimentArgs) -> Result<(Workload, Knobs)> {
    let workload: Workload = args.workload.parse().map_err(|e| anyhow!("{e}"))?;
    let mut knobs = args.knobs.knobs().map_err(|e| anyhow!(e))?;
    knobs.api = args.api.as_deref().map(str::parse::<Api>).transpose().map_err(|e| anyhow!(e))?;
    Ok((workload, knobs))
}

fn check_repeat(out: &OutputArgs) -> Result<()> {
    if out.repeat == 0 || out.repeat > MAX_REPEAT {
        bail!("--repeat {} is out of range (allowed 1..={MAX_REPEAT})", out.repeat);
    }
    Ok(())
}

/// The engines `--engine`/`--python`/`--scheduler`/`--address` choose, the interpreter detected.
pub(crate) fn engine_selection(args: &EngineArgs) -> Result<Selection> {
    Selection::from_flags(
        args.engine.as_deref(),
        args.python.as_deref(),
        args.scheduler.as_deref(),
        args.address.as_deref(),
    )
}

pub fn run_cmd(args: &ExperimentArgs, mode: &str, out: &OutputArgs) -> Result<u8> {
    let mode: Mode = mode.parse().map_err(|e| anyhow!("{e}"))?;
    let (workload, knobs) = parse_knobs(args)?;
    check_repeat(out)?;
    let cores = available_cores();
    let exp = Experiment::build(workload, args.tasks, mode, &knobs, Fit::Strict, cores).map_err(|e| anyhow!(e))?;
    let engines = engine_selection(&args.engine)?;
    engines.check_cluster_modes(&[mode])?;
    let exps = engines.expand(std::slice::from_ref(&exp))?;
    let trace = out.trace.as_deref().map(TraceOut::open).transpose()?;
    let record = out.record.as_deref().map(crate::replay::RecordOut::check).transpose()?;
    let window = out.gantt_window.as_deref().map(crate::replay::parse_window).transpose()?;
    let stop = stop_flag()?;
    let mut reports = Vec::new();
    for exp in &exps {
        reports.push(measure(exp, out.repeat, &stop)?);
    }
    // The figures are printed before the files are written: a file that cannot be written loses no measurement.
    let kind = if reports.len() == 1 { crate::record::Kind::Run } else { crate::record::Kind::Compare };
    if let Some(w) = window {
        let mut text = String::new();
        for r in &reports {
            text.push_str(&crate::replay::windowed_gantt(r, w, terminal_width(), out.ascii)?);
        }
        crate::stdout::print(&text).context("cannot write to stdout")?;
        crate::replay::keep_headless(kind, &reports, trace, record)?;
        if let Some(r) = reports.iter().find(|r| r.error().is_some()) {
            bail!("the run failed: {}", r.error().unwrap_or_default());
        }
        return Ok(0);
    }
    let text = if out.json && reports.len() == 1 {
        serde_json::to_string_pretty(&run_json(&reports[0]))? + "\n"
    } else if out.json {
        // Both engines: the runs side by side, like compare's.
        let runs: Vec<Value> = reports.iter().map(run_json).collect();
        serde_json::to_string_pretty(&json!({ "cores": cores, "runs": runs }))? + "\n"
    } else {
        let mut text: Vec<String> = reports.iter().map(|r| run_text(r, out.ascii)).collect();
        if let Some(offer) = engines.free_threaded_offer() {
            text.push(format!("  {offer}\n"));
        }
        text.join("\n")
    };
    crate::stdout::print(&text).context("cannot write to stdout")?;
    crate::replay::keep_headless(kind, &reports, trace, record)?;
    if let Some(r) = reports.iter().find(|r| r.error().is_some()) {
        bail!("the run failed: {}", r.error().unwrap_or_default());
    }
    check_checksums(&reports)?;
    Ok(0)
}

/// Every run of the same workload computes the same checksum, whatever the mode or engine.
fn check_checksums(reports: &[RunReport]) -> Result<()> {
    let sums: Vec<u64> = reports.iter().map(RunReport::checksum).collect();
    if sums.windows(2).any(|w| w[0] != w[1]) {
        let each: Vec<String> = reports
            .iter()
            .map(|r| format!("{} {}: {:#018x}", r.experiment.engine, r.experiment.mode, r.checksum()))
            .collect();
        bail!("checksums differ between runs ({}): a run computed something else; this is a bug", each.join(", "));
    }
    Ok(())
}

pub fn compare_cmd(args: &ExperimentArgs, modes: &[String], out: &OutputArgs) -> Result<u8> {
    let (workload, knobs) = parse_knobs(args)?;
    check_repeat(out)?;
    let mut list: Vec<Mode> = Vec::new();
    for m in modes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let mode: Mode = m.parse().map_err(|e| anyhow!("{e}"))?;
        if list.contains(&mode) {
            bail!("mode '{mode}' is named twice in --modes");
        }
        list.push(mode);
    }
    if list.is_empty() {
        bail!(
            "--modes needs at least one mode (expected some of: {})",
            MODES.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")
        );
    }
    if !list.contains(&Mode::Sequential) {
        list.insert(0, Mode::Sequential);
    }
    check_knobs_apply_to_some(&knobs, &list).map_err(|e| anyhow!(e))?;
    let cores = available_cores();
    let engines = engine_selection(&args.engine)?;
    engines.check_cluster_modes(&list)?;
    let exps: Vec<Experiment> = list
        .iter()
        .map(|m| Experiment::build(workload, args.tasks, *m, &knobs, Fit::Lenient, cores))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!(e))?;
    let exps = engines.expand(&exps)?;
    let trace = out.trace.as_deref().map(TraceOut::open).transpose()?;
    let record = out.record.as_deref().map(crate::replay::RecordOut::check).transpose()?;
    if out.gantt_window.is_some() {
        bail!("--gantt-window is taken by `parlab run` (one run's Gantt); compare prints every run on one axis");
    }
    let stop = stop_flag()?;
    let mut reports = Vec::new();
    for exp in &exps {
        if !out.json && progress_on_stderr() {
            eprint!("running {} ({}) ...\r", exp.mode, exp.engine);
        }
        reports.push(measure(exp, out.repeat, &stop)?);
    }
    if !out.json && progress_on_stderr() {
        eprint!("{:40}\r", "");
    }
    apply_speedups(&mut reports);
    let text = if out.json {
        let runs: Vec<Value> = reports.iter().map(run_json).collect();
        serde_json::to_string_pretty(&json!({ "cores": cores, "runs": runs }))? + "\n"
    } else {
        compare_text(&reports, out.ascii)
    };
    crate::stdout::print(&text).context("cannot write to stdout")?;
    // After the figures: a file that cannot be written loses no measurement.
    crate::replay::keep_headless(crate::record::Kind::Compare, &reports, trace, record)?;
    if let Some(r) = reports.iter().find(|r| r.error().is_some()) {
        bail!(
            "the {} run ({} engine) failed: {}",
            r.experiment.mode,
            r.experiment.engine,
            r.error().unwrap_or_default()
        );
    }
    check_checksums(&reports)?;
    Ok(0)
}

/// Sets every report's speedup against the sequential one of its own engine.
pub(crate) fn apply_speedups(reports: &mut [RunReport]) {
    let base_of = |engine| {
        reports
            .iter()
            .find(|r| r.experiment.mode == Mode::Sequential && r.experiment.engine == engine && r.error().is_none())
            .map(RunReport::wall_ms)
    };
    let bases: Vec<Option<f64>> = reports.iter().map(|r| base_of(r.experiment.engine)).collect();
    for (r, base) in reports.iter_mut().zip(bases) {
        r.speedup = match base {
            Some(b) if r.error().is_none() && r.wall_ms() > 0.0 => Some(b / r.wall_ms()),
            _ => None,
        };
    }
}

/// Whether a transient "running ..." line on stderr would be seen and then overwritten (a terminal).
pub(crate) fn progress_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

pub(crate) fn terminal_width() -> u16 {
    crossterm::terminal::size().map(|(w, _)| w).unwrap_or(100).clamp(60, 160)
}

/// The lanes of a timeline as JSON.
pub(crate) fn lanes_json(t: &Timeline) -> Value {
    t.lanes.iter().map(|l| json!({"id": l.id, "pid": l.pid, "tid": l.tid, "label": l.label})).collect()
}

/// The spans of a timeline as JSON, with times in microseconds from the run's t0 (negative for a warm pool's
/// start-up), rounded to the nanosecond.
pub(crate) fn spans_json(t: &Timeline) -> Value {
    let t0 = t.t0_ns as i128;
    let us = |ns: u64| (ns as i128 - t0) as f64 / 1e3;
    t.spans
        .iter()
        .map(|s| {
            json!({
                "lane": s.lane, "task": s.task, "count": s.count, "kind": s.kind,
                "start_us": us(s.start_ns), "end_us": us(s.end_ns),
                "cpu_start": s.cpu_start, "cpu_end": s.cpu_end,
            })
        })
        .collect()
}

pub(crate) fn run_json(r: &RunReport) -> Value {
    let t = &r.timeline;
    let o = t.overhead_ms();
    let e = &r.experiment;
    json!({
        "mode": e.mode,
        "workload": e.workload,
        "tasks": e.tasks,
        "workers": e.workers,
        "chunksize": e.chunksize,
        "start": if e.mode == Mode::Processes { Value::from(e.start.name()) } else { Value::Null },
        "switch_interval_us": if e.mode == Mode::Gil { Value::from(e.switch_interval_us) } else { Value::Null },
        "payload": e.payload,
        "warm": e.warm,
        "api": if e.mode == Mode::Processes { Value::from(e.api.name()) } else { Value::Null },
        "engine": e.engine,
        "python": e.python,
        "cluster": e.cluster,
        "cores": t.cores,
        "wall_ms": r.wall_ms(),
        "walls_ms": r.walls_ns.iter().map(|w| *w as f64 / 1e6).collect::<Vec<_>>(),
        "cpu_ms": t.cpu_ns() as f64 / 1e6,
        "parallelism": t.parallelism(),
        "waits_in_flight": t.waits_in_flight(),
        "speedup": r.speedup,
        // Null where a share of the cores means nothing (tasks that wait); the note says why.
        "efficiency": r.efficiency().and_then(|e| e.value()),
        "efficiency_note": r.efficiency().and_then(|e| e.note(t.cores)),
        "parent_pid": r.parent_pid,
        "lab_pid": t.lab_pid,
        "lanes": lanes_json(t),
        "spans": spans_json(t),
        "overhead_ms": { "startup": o.startup, "ipc": o.ipc, "serialize": o.serialize, "gil_wait": o.gil_wait },
        "overhead_share": t.overhead_share(),
        "checksum": r.checksum(),
        "tasks_done": t.end.as_ref().map_or(0, |e| e.tasks_done),
        "notes": t.notes,
        "error": r.error(),
    })
}

pub(crate) fn run_text(r: &RunReport, ascii: bool) -> String {
    let t = &r.timeline;
    let e = &r.experiment;
    let mut s = String::new();
    s.push_str(&format!("parlab run · {} · {}\n", e.title(), plural(t.cores as u64, "core")));
    match (&e.engine, &e.python) {
        (Engine::Python, Some(py)) => s.push_str(&format!(
            "  engine: python · {} · Python {} ({}) running {}\n",
            py.path,
            py.version,
            if py.gil_enabled { "GIL" } else { "free-threaded" },
            crate::engine::what_runs(e.mode, py.gil_enabled)
        )),
        _ => s.push_str(&format!("  python counterpart: {}\n", e.mode.python())),
    }
    if e.mode == Mode::Gil {
        s.push_str("  (gil is parlab's simulation of CPython's GIL, running native Rust kernels)\n");
    }
    s.push('\n');
    let walls = if r.walls_ns.len() > 1 { format!(" (median of {})", r.walls_ns.len()) } else { String::new() };
    s.push_str(&format!("  wall         {}{walls}\n", fmt_ms(r.wall_ms())));
    s.push_str(&format!("  cpu (run)    {}\n", fmt_ms(t.cpu_ns() as f64 / 1e6)));
    let par = t.parallelism_reading();
    s.push_str(&format!("  parallelism  {}", par.describe()));
    s.push_str(if matches!(par, Parallelism::Running(_)) {
        "; `parlab compare` measures speedup against sequential\n"
    } else {
        "\n"
    });
    if let (Some(sp), Some(eff)) = (r.speedup, r.efficiency()) {
        let cores = plural(t.cores as u64, "core");
        s.push_str(&format!("  speedup      {sp:.2}×  efficiency {} of {cores}\n", eff.cell()));
        if let Some(note) = eff.note(t.cores) {
            s.push_str(&format!("               {note}\n"));
        }
    }
    let o = t.overhead_ms();
    s.push_str(&format!(
        "  overhead     start-up {}  ipc {}  serialize {}  gil-wait {}  (summed over lanes)\n",
        fmt_ms(o.startup),
        fmt_ms(o.ipc),
        fmt_ms(o.serialize),
        fmt_ms(o.gil_wait)
    ));
    let pids = distinct_pids(t);
    s.push_str(&format!(
        "  lanes        {} ({}: {})\n",
        t.lanes.len(),
        plural(pids.len() as u64, "distinct pid"),
        pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    ));
    s.push_str(&format!("  checksum     {:#018x}\n", r.checksum()));
    for n in &t.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    if let Some(err) = r.error() {
        s.push_str(&format!("  FAILED: {err}\n"));
    }
    s.push('\n');
    for line in gantt::to_text(t, terminal_width(), None, ascii) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

fn distinct_pids(t: &Timeline) -> Vec<u32> {
    let mut p: Vec<u32> = t.lanes.iter().map(|l| l.pid).collect();
    p.sort_unstable();
    p.dedup();
    p
}

pub(crate) fn compare_text(reports: &[RunReport], ascii: bool) -> String {
    let mut s = String::new();
    let Some(first) = reports.first() else {
        return s;
    };
    let cores = first.timeline.cores;
    s.push_str(&format!(
        "parlab compare · {} × {} · {} ({})\n\n",
        first.experiment.workload,
        first.experiment.tasks,
        plural(cores as u64, "core"),
        ceiling_note(&first.experiment.workload, cores)
    ));
    s.push_str(&format!(
        "  {:<14} {:<7} {:>10} {:>8} {:>10} {:>10} {:>9} {:>9}  {}\n",
        "mode", "engine", "wall", "speedup", "efficiency", "start-up", "ipc", "gil-wait", "setup"
    ));
    let mut notes: Vec<String> = Vec::new();
    for r in reports {
        let o = r.timeline.overhead_ms();
        let setup = r.experiment.title();
        let setup = setup.split_once(" · ").map_or(setup.as_str(), |x| x.1).to_string();
        let setup = setup.split_once(' ').map_or(String::new(), |x| x.1.to_string());
        // The engine has its own column.
        let setup = setup.split("· python ").next().unwrap_or_default().trim_end().to_string();
        let (speed, eff) = match (r.speedup, r.efficiency()) {
            (Some(sp), Some(ef)) => {
                if let Some(note) = ef.note(cores).filter(|n| !notes.contains(n)) {
                    notes.push(note);
                }
                (format!("{sp:.2}×"), ef.cell())
            }
            _ => ("—".to_string(), "—".to_string()),
        };
        s.push_str(&format!(
            "  {:<14} {:<7} {:>10} {:>8} {:>10} {:>10} {:>9} {:>9}  {}{}\n",
            r.experiment.mode.name(),
            r.experiment.engine.name(),
            fmt_ms(r.wall_ms()),
            speed,
            eff,
            fmt_ms(o.startup),
            fmt_ms(o.ipc + o.serialize),
            fmt_ms(o.gil_wait),
            setup,
            if r.error().is_some() { "  FAILED" } else { "" }
        ));
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    for n in &notes {
        s.push_str(&format!("  {n}\n"));
    }
    let sums: Vec<u64> = reports.iter().map(RunReport::checksum).collect();
    if sums.windows(2).all(|w| w[0] == w[1]) {
        s.push_str(&format!("\n  checksums: all equal ({:#018x})\n", sums[0]));
    }
    // Every Gantt on one time scale: the longest run sets the axis.
    let longest = reports.iter().map(|r| r.timeline.last_ns().saturating_sub(r.timeline.first_ns())).max().unwrap_or(1);
    for r in reports {
        let e = &r.experiment;
        let what = match &e.python {
            Some(py) if e.engine == Engine::Python => crate::engine::what_runs(e.mode, py.gil_enabled),
            _ => e.mode.python(),
        };
        s.push_str(&format!("\n  {} ({}) — {what}\n", e.mode, e.engine));
        let from = r.timeline.first_ns();
        for line in gantt::to_text(&r.timeline, terminal_width(), Some((from, from + longest)), ascii) {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}

/// Where `--trace` goes, opened before the run so that a path that cannot take it fails at once, before minutes of
/// measuring. A regular file keeps its old content until the trace is written.
pub(crate) struct TraceOut {
    file: File,
    path: PathBuf,
}

impl TraceOut {
    /// Opens `path` for writing without ever blocking: a FIFO nobody reads is refused with a message instead of
    /// waiting forever for a reader.
    pub(crate) fn open(path: &Path) -> Result<TraceOut> {
        let shown = path.display();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENXIO) => anyhow!(
                    "cannot write the trace to '{shown}': it is a FIFO that no process is reading (start the \
                     reader first, or give a regular file)"
                ),
                _ => anyhow!("cannot write the trace to '{shown}': {e}"),
            })?;
        // Opened: from now on writes may wait for a reader that is there (the signal watcher bounds the wait).
        // SAFETY: fcntl on a descriptor we own, changing only its O_NONBLOCK status flag.
        unsafe {
            let fd = file.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        Ok(TraceOut { file, path: path.to_path_buf() })
    }

    /// Writes a Chrome Trace Event Format file (opens in Perfetto and chrome://tracing): the one trace writer,
    /// `record::trace`, over the recording of these runs.
    pub(crate) fn write(self, rec: &crate::record::Recording) -> Result<()> {
        let text = serde_json::to_string(&crate::record::trace::trace_json(rec))?;
        self.write_text(&text)
    }

    /// Writes any trace (`parlab watch` builds its own).
    pub(crate) fn write_value(self, trace: &Value) -> Result<()> {
        let text = serde_json::to_string(trace)?;
        self.write_text(&text)
    }

    /// Writes `text` as the whole file (an SVG, a trace).
    pub(crate) fn write_text(mut self, text: &str) -> Result<()> {
        let regular = self.file.metadata().is_ok_and(|m| m.is_file());
        let written = if regular { self.file.set_len(0) } else { Ok(()) }
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .and_then(|_| self.file.flush());
        written.with_context(|| format!("cannot write to '{}'", self.path.display()))
    }
}

/// `parlab lessons`: the lesson list with each lesson's progress mark.
pub fn lessons_cmd(lessons: Option<&Path>, json: bool) -> Result<u8> {
    let (progress, warning) = crate::progress::Progress::load();
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let mark = |id: &str| match progress.lesson_mark(id) {
        crate::progress::LessonMark::NotStarted => "not started",
        crate::progress::LessonMark::Started => "started",
        crate::progress::LessonMark::Done => "done",
    };
    crate::lesson::cmd::lessons(lessons, json, &mark)
}

/// `parlab lint`: checks lesson files; with `verify`, runs every experiment in a lab to check its claims.
pub fn lint_cmd(lessons: Option<&Path>, paths: &[PathBuf], verify: bool) -> Result<u8> {
    let stop = if verify { stop_flag()? } else { Default::default() };
    crate::lesson::cmd::lint(
        lessons,
        paths,
        verify,
        &mut |exps| exps.iter().map(|exp| measure(exp, 1, &stop)).collect(),
        &mut |set| crate::exercise::verify::verify_exercises(set, &stop),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::span;
    use crate::timeline::{LabEvent, Lane, RunEnd, SpanKind};

    /// A finished run of `workload` in `mode` on `cores` cores whose lanes each waited or ran `ms`.
    fn report(workload: &str, mode: Mode, workers: u32, cores: u32, kind: SpanKind, ms: u64) -> RunReport {
        let knobs = Knobs { workers: mode.uses_workers().then_some(workers), ..Knobs::default() };
        let exp = Experiment::build(workload.parse().unwrap(), 4, mode, &knobs, Fit::Strict, cores).unwrap();
        let mut t = Timeline::new();
        t.ingest(LabEvent::Started { lab_pid: 10, t0_ns: 0, cores });
        for id in 0..workers {
            t.ingest(LabEvent::Lane(Lane { id, pid: 10, tid: 11 + id, label: format!("t{}", id + 1) }));
            t.ingest(LabEvent::Span(span(id, kind, 0, ms, 0)));
        }
        t.ingest(LabEvent::Finished(RunEnd {
            t0_ns: 0,
            t_end_ns: ms * 1_000_000,
            checksum: 3,
            tasks_done: 4,
            error: None,
        }));
        RunReport { experiment: exp, timeline: t, parent_pid: 1, walls_ns: vec![ms * 1_000_000], speedup: None }
    }

    fn percents(text: &str) -> Vec<u32> {
        text.split_whitespace().filter_map(|w| w.strip_suffix('%').and_then(|n| n.parse().ok())).collect()
    }

    #[test]
    fn compare_of_waiting_tasks_prints_no_efficiency_above_the_cores_and_says_why() {
        // Sequential waits 400 ms; async waits the same four sleeps at once in 101 ms: 3.96× on one core.
        let mut reports = vec![
            report("sleep:100", Mode::Sequential, 1, 1, SpanKind::Idle, 400),
            report("sleep:100", Mode::Async, 4, 1, SpanKind::Idle, 101),
        ];
        apply_speedups(&mut reports);
        let text = compare_text(&reports, true);
        assert!(text.contains("3.96×"), "{text}");
        assert!(!text.contains("396%") && percents(&text).iter().all(|p| *p <= 100), "{text}");
        assert!(text.contains("1 core (the 1× ceiling holds for CPU work only"), "{text}");
        assert!(text.contains("waits overlap beyond the core count, so a share of the cores means nothing"), "{text}");
        let json = run_json(&reports[1]);
        assert_eq!(json["efficiency"], Value::Null);
        assert!(json["efficiency_note"].as_str().unwrap().contains("waits overlap"));
    }

    #[test]
    fn compare_of_cpu_work_above_the_cores_marks_the_efficiency_and_explains_it() {
        let mut reports = vec![
            report("fib:20", Mode::Sequential, 1, 2, SpanKind::Run, 420),
            report("fib:20", Mode::Threads, 2, 2, SpanKind::Run, 200),
        ];
        apply_speedups(&mut reports);
        let text = compare_text(&reports, true);
        assert!(text.contains("105%*"), "{text}");
        assert!(text.contains("* above 100% of 2 cores: the sequential baseline ran slower"), "{text}");
        assert!(text.contains("(the ceiling is 2× for CPU work)"), "{text}");
    }

    #[test]
    fn run_of_sleeps_shows_the_waits_in_flight_instead_of_zero_parallelism() {
        let r = report("sleep:100", Mode::Threads, 2, 2, SpanKind::Idle, 100);
        let text = run_text(&r, true);
        assert!(!text.contains("0.00×"), "{text}");
        assert!(text.contains("the tasks only waited (2.00× waits in flight"), "{text}");
    }

    #[test]
    fn headless_text_never_says_one_workers_or_one_cores() {
        let mut reports = vec![
            report("fib:20", Mode::Sequential, 1, 1, SpanKind::Run, 100),
            report("fib:20", Mode::Threads, 1, 1, SpanKind::Run, 100),
        ];
        apply_speedups(&mut reports);
        let text = run_text(&reports[1], true) + &compare_text(&reports, true);
        for bad in ["1 workers", "1 cores", "1 distinct pids"] {
            assert!(!text.contains(bad), "'{bad}' in:\n{text}");
        }
        assert!(text.contains("(1 worker)") && text.contains("1 core") && text.contains("1 distinct pid:"), "{text}");
    }
}
